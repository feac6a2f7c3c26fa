"""/metrics with WHALE_METRICS_ALLOW set through the environment, as the shipped env file does.

The allowlist used to be parsed into a lowercase module global that Django never copies into
`settings`, so every call without a token answered 500; tests that set the attribute by hand
could not see it. These tests start a fresh interpreter with the variable set.
"""

from tests.security.support import run_django

SCRAPE = """
from django.test import Client
from whaleproject.metrics import _client_allowed
print(Client().get('/metrics', REMOTE_ADDR='203.0.113.9').status_code)
print(_client_allowed('10.9.3.4'), _client_allowed('10.8.3.4'), _client_allowed('::1'))
"""


def test_allowlist_from_the_environment_answers_403_outside_it():
    result = run_django(SCRAPE, WHALE_METRICS_ALLOW="10.9.0.0/16,::1/128", WHALE_METRICS_TOKEN="")
    assert result.returncode == 0, result.stderr
    status, allowed = result.stdout.split("\n")[:2]
    assert status == "403"
    assert allowed == "True False True"


def test_bad_network_stops_start_up_naming_the_variable():
    result = run_django("", WHALE_METRICS_ALLOW="10.9.0.0/16,not-a-net")
    assert result.returncode != 0
    assert "WHALE_METRICS_ALLOW" in result.stderr
