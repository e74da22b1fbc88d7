"""Who may use the control plane: --no-control, --control-token, the Host check, cross-site refusal, tenant scope,
and paginated listings."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mock_server.contract.tenants import fingerprint
from mock_server.http.app import create_app
from mock_server.settings import Settings
from mock_server.testing.client import ControlError, FakeWaveSpeed
from mock_server.testing.inprocess import InProcessServer
from tests.conftest import T2I


def client_for(**settings: object) -> Iterator[httpx.Client]:
    server = InProcessServer(create_app(Settings(progression="polls", **settings)))  # type: ignore[arg-type]
    try:
        with httpx.Client(transport=server.sync_transport, base_url="http://127.0.0.1:8000") as client:
            yield client
    finally:
        server.close()


@pytest.fixture
def open_fake() -> Iterator[httpx.Client]:
    yield from client_for()


@pytest.fixture
def locked_fake() -> Iterator[httpx.Client]:
    yield from client_for(control_token="s3cret")


def test_no_control_removes_the_control_api_but_not_the_api() -> None:
    for client in client_for(control=False):
        assert client.get("/_mock/health").status_code == 404
        answer = client.post(f"/api/v3/{T2I}", json={"prompt": "x"}, headers={"Authorization": "Bearer k"})
        assert answer.status_code == 200


def test_a_control_token_is_required_on_every_control_call(locked_fake: httpx.Client) -> None:
    refused = locked_fake.post("/_mock/reset", json={})
    assert refused.status_code == 401 and "X-Mock-Control-Token" in refused.json()["message"].title()
    assert locked_fake.post("/_mock/reset", json={}, headers={"X-Mock-Control-Token": "wrong"}).status_code == 401
    assert locked_fake.post("/_mock/reset", json={}, headers={"X-Mock-Control-Token": "s3cret"}).status_code == 200
    assert locked_fake.get("/_mock/ui").status_code == 200  # the page itself asks for the token


def test_fake_wavespeed_sends_the_token(locked_fake: httpx.Client) -> None:
    with_token = FakeWaveSpeed("http://127.0.0.1:8000", "k", http=locked_fake, control_token="s3cret")
    assert with_token.health()["ok"] is True
    with pytest.raises(ControlError, match="Control token required"):
        FakeWaveSpeed("http://127.0.0.1:8000", "k", http=locked_fake, control_token="").health()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8000", True),
        ("localhost", True),
        ("[::1]:8000", True),
        ("mock.localhost", True),
        ("attacker.example", False),
        ("attacker.example:8000", False),
    ],
)
def test_the_control_api_answers_only_to_its_own_host_names(open_fake: httpx.Client, host: str, allowed: bool) -> None:
    status = open_fake.get("/_mock/health", headers={"Host": host}).status_code
    assert status == (200 if allowed else 403)


def test_an_allowlisted_host_name_is_accepted() -> None:
    for client in client_for(control_hosts=("mock.internal",)):
        assert client.get("/_mock/health", headers={"Host": "mock.internal:8000"}).status_code == 200


def test_cross_site_simple_requests_are_refused(open_fake: httpx.Client) -> None:
    form = open_fake.post("/_mock/reset", content=b"tenant=x", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415 and form.json()["code"] == 415
    other_site = open_fake.post("/_mock/reset", json={}, headers={"Origin": "http://attacker.example"})
    assert other_site.status_code == 403
    same_site = open_fake.post("/_mock/reset", json={}, headers={"Origin": "http://127.0.0.1:8000"})
    assert same_site.status_code == 200


def test_a_request_scoped_to_a_tenant_cannot_reach_another(open_fake: httpx.Client) -> None:
    alice, bob = {"Authorization": "Bearer alice"}, {"Authorization": "Bearer bob"}
    mine = open_fake.post(f"/api/v3/{T2I}", json={"prompt": "a"}, headers=alice).json()["data"]["id"]
    open_fake.post(f"/api/v3/{T2I}", json={"prompt": "b"}, headers=bob)

    listed = open_fake.get("/_mock/predictions", headers=alice).json()["data"]
    assert [p["id"] for p in listed] == [mine] and listed[0]["tenant"] == fingerprint("alice")
    assert open_fake.get("/_mock/predictions", params={"tenant": "bob"}, headers=alice).status_code == 403
    assert open_fake.post("/_mock/seed", json={"seed": 1}, headers=alice).status_code == 403
    assert open_fake.post("/_mock/reset", json={}, headers=alice).json()["data"]["predictions_removed"] == 1
    assert len(open_fake.get("/_mock/predictions").json()["data"]) == 1  # bob's is still there


def test_large_listings_come_a_page_at_a_time(open_fake: httpx.Client) -> None:
    for _ in range(5):
        open_fake.get("/missing")
    page = open_fake.get("/_mock/journal", params={"offset": 1, "limit": 2})
    assert page.headers["x-total-count"] == "5" and len(page.json()["data"]) == 2
    assert page.json()["data"][0]["seq"] == open_fake.get("/_mock/journal").json()["data"][1]["seq"]
    assert open_fake.get("/_mock/journal", params={"limit": 0}).status_code == 400
