"""The one error shape for paths and methods the API does not have."""

from __future__ import annotations

import pytest

from tests.api.conftest import error_of

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_a_json_404(api, anon):
    for client in (api, anon):
        response = client.get("/api/v1/nothing-here/")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert error_of(response)["code"] == "not_found"


def test_pages_outside_the_api_keep_their_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/v1/whales/"),
        ("delete", f"/api/v1/whales/{'ab' * 32}/"),
        ("put", "/api/v1/stats/"),
        ("get", "/api/v1/auth/token/"),
    ],
)
def test_wrong_method_is_405_in_the_error_shape(api, method, url):
    response = getattr(api, method)(url)
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert response["Allow"]


def test_schema_and_offline_docs_are_served(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/api/v1/whales/", "/api/v1/whales/{txid}/", "/api/v1/stats/"):
        assert path in paths
    for page in ("/api/docs/", "/api/redoc/"):
        html = api.get(page).content.decode()
        assert "/static/drf_spectacular_sidecar/" in html  # no CDN: works offline
