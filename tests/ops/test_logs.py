"""Logs: JSON lines with a request id, and no configured secret in any line. Real requests and a
real Celery task run with secrets configured; everything they log is captured and scanned."""

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops import leaky
from whaleproject.logs import JsonFormatter, PlainFormatter, RequestIdFilter, redact

ROOT = Path(__file__).resolve().parent.parent.parent
SECRETS = {
    "SECRET_KEY": "sk-ops-test-4e1d0c9b8a7f6e5d4c3b2a19080706050403",
    "EMAIL_HOST_PASSWORD": "smtp-pass-Zq8xW2vL",
    "WHALE_METRICS_TOKEN": "metrics-tok-8c1f2e3d4c5b6a79",
    "DATABASE_PASSWORD": "db-pass-Yt6uI9oP",
}


def leaked(text: str) -> list[str]:
    found = [name for name, value in SECRETS.items() if value in text]
    if leaky.WEBHOOK_SECRET in text:
        found.append("webhook secret")
    if leaky.JWT.split(".")[1] in text:
        found.append("jwt")
    return found


@pytest.fixture
def secret_settings(settings):
    settings.SECRET_KEY = SECRETS["SECRET_KEY"]
    settings.EMAIL_HOST_PASSWORD = SECRETS["EMAIL_HOST_PASSWORD"]
    settings.WHALE_METRICS_TOKEN = SECRETS["WHALE_METRICS_TOKEN"]
    settings.DATABASE_URL = f"postgres://whalewatch:{SECRETS['DATABASE_PASSWORD']}@db:5432/whales"
    settings.ROOT_URLCONF = "tests.ops.leaky"
    return settings


@pytest.fixture
def captured_json_log():
    """Everything logged anywhere, through the production JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous_level)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db(transaction=True)
def test_requests_and_tasks_log_no_secrets(
    client, secret_settings, celery_worker_process, captured_json_log
):
    # The worker starts first: starting it reconfigures logging, which would drop the capture.
    from tests.support.processes import wait_until

    ok = client.get("/leaky/", HTTP_X_REQUEST_ID="req-ops-test-0001")
    assert ok.status_code == 200
    assert ok["X-Request-ID"] == "req-ops-test-0001"
    client.raise_request_exception = False
    crashed = client.get("/leaky/?crash=1")
    assert crashed.status_code == 500
    refused = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {leaky.JWT}")
    assert refused.status_code == 403
    leaky.leaky_task.delay(crash=True)
    wait_until(lambda: "task crash with" in captured_json_log.getvalue(), timeout=30)

    text = captured_json_log.getvalue()
    assert leaked(text) == [], text
    lines = json_lines(captured_json_log)  # every line is one JSON object
    handled = [line for line in lines if line["message"].startswith("handling with")]
    assert handled[0]["request_id"] == "req-ops-test-0001"
    crash_report = next(line for line in lines if line["logger"] == "django.request")
    assert crash_report["request_id"] == crashed["X-Request-ID"]
    assert "RuntimeError" in crash_report["exception"]
    task_lines = [line for line in lines if line["message"].startswith("task sees")]
    assert task_lines and task_lines[0]["request_id"] not in ("-", None)
    assert "[redacted]" in text and "[jwt-redacted]" in text


def test_a_production_process_writes_redacted_json_to_stderr(tmp_path):
    """The real LOGGING config, in a fresh process started with secrets in its environment."""
    script = (
        "import django, logging; django.setup()\n"
        "from tests.ops.leaky import leak_everything\n"
        "log = logging.getLogger('whalewatch.scan')\n"
        "log.warning('starting with %s', leak_everything())\n"
        "try:\n"
        "    raise ValueError(leak_everything())\n"
        "except ValueError:\n"
        "    log.exception('failed')\n"
    )
    environment = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "whaleproject.settings",
        "DEBUG": "false",
        "SITE_URL": "https://whales.example",
        "LOG_FORMAT": "json",
        "WHALE_VAR_DIR": str(tmp_path),
        "SECRET_KEY": SECRETS["SECRET_KEY"],
        "EMAIL_HOST_PASSWORD": SECRETS["EMAIL_HOST_PASSWORD"],
        "WHALE_METRICS_TOKEN": SECRETS["WHALE_METRICS_TOKEN"],
        "DATABASE_URL": f"postgres://whalewatch:{SECRETS['DATABASE_PASSWORD']}@db:5432/whales",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"].split(" ")[0] for line in lines] == ["starting", "failed"]
    assert "ValueError" in lines[1]["exception"]
    assert leaked(result.stderr) == [], result.stderr


def test_debug_runs_log_plain_text(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, logging; django.setup(); logging.getLogger('x').warning('hello')",
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "whaleproject.settings",
            "DEBUG": "true",
            "WHALE_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.rstrip().endswith("WARNING x [-] hello")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:hunter2@db/x", "postgres://u:***@db/x"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("secret whsec_abc123XYZ+/= end", "secret whsec_[redacted] end"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [redacted]"),
        ("plain words stay", "plain words stay"),
    ],
)
def test_redaction_patterns(text, expected):
    assert redact(text) == expected


def test_plain_formatter_redacts_too():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "url %s", ("rediss://a:b1234@h",), None)
    assert "b1234" not in PlainFormatter().format(record)


async def test_request_id_on_the_asgi_path(async_client, settings):
    """Daphne runs the async middleware chain; it must set and return the id as well.
    (/metrics refusing an anonymous caller touches no database.)"""
    settings.WHALE_METRICS_TOKEN = ""
    response = await async_client.get("/metrics", headers={"X-Request-ID": "bad id!"})
    generated = response["X-Request-ID"]
    assert len(generated) == 32 and generated != "bad id!"  # unsafe ids are replaced
    response = await async_client.get("/metrics", headers={"X-Request-ID": "abc12345-x"})
    assert response["X-Request-ID"] == "abc12345-x"
