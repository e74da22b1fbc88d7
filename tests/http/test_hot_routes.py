"""HotRoutes answers a catalog submit and a poll without the route table: it must pick exactly what the table
would, and answer exactly as it would."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import Match, Route

from mock_server.http.app import create_app
from mock_server.http.routes import HotRoutes
from mock_server.http.state import STATE_KEY
from mock_server.settings import Settings
from mock_server.testing.inprocess import InProcessServer
from tests.conftest import DEV, T2I

APP = create_app(Settings())
SEGMENTS = st.sampled_from(["", "api", "v3", "predictions", "result", "delete", "abc123", "%20", "wavespeed-ai"])
PATHS = st.one_of(
    st.lists(SEGMENTS, max_size=6).map(lambda parts: "/" + "/".join(parts)),
    st.builds(
        lambda prefix, model, tail: prefix + model + tail,
        st.sampled_from(["/api/v3/", "/api/v3//", "/api/v2/", "/api/v3/predictions/"]),
        st.sampled_from([T2I, DEV, "wavespeed-ai/nope", "predictions", "x"]),
        st.sampled_from(["", "/", "/result", "/result/", "//result"]),
    ),
)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], "app": APP, STATE_KEY: APP.state.mock}


def _table_endpoint(method: str, path: str) -> Any:
    """The endpoint of the first route of the table that fully matches, as Starlette's router picks it."""
    scope = _scope(method, path)
    for route in APP.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "endpoint", None), child.get("path_params", {})
    return None, {}


@settings(max_examples=400, deadline=None)
@given(method=METHODS, path=PATHS)
def test_hot_routes_pick_what_the_route_table_would(method: str, path: str) -> None:
    scope = _scope(method, path)
    hot = HotRoutes.endpoint(scope)
    if hot is not None:
        endpoint, params = _table_endpoint(method, path)
        assert (hot, scope["path_params"]) == (endpoint, params)


def test_answers_match_the_route_tables_on_every_method_of_the_hot_paths() -> None:
    server = InProcessServer(create_app(Settings()))
    client = httpx.Client(
        transport=server.sync_transport, base_url=server.base_url, headers={"Authorization": "Bearer k"}
    )
    submitted = client.post(f"/api/v3/{T2I}", json={"prompt": "a cat"})
    assert submitted.status_code == 200
    pid = submitted.json()["data"]["id"]

    assert client.get(f"/api/v3/predictions/{pid}/result").json()["data"]["id"] == pid
    assert client.get(f"/api/v3/predictions/{pid}").json()["data"]["id"] == pid
    # HEAD and the wrong methods go to the route table, which answers them as before.
    assert client.head(f"/api/v3/predictions/{pid}/result").status_code == 200
    wrong = client.put(f"/api/v3/predictions/{pid}/result")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD")
    assert wrong.json()["code"] == 405
    # The API's errors in its envelope, from the hot path as from any route.
    assert client.get("/api/v3/predictions/nope/result").json()["code"] == 404
    unauthorized = client.post(f"/api/v3/{T2I}", json={"prompt": "a cat"}, headers={"Authorization": ""})
    assert (unauthorized.status_code, unauthorized.json()["code"]) == (401, 401)
    invalid = client.post(f"/api/v3/{T2I}", json={"prompt": 7})
    assert (invalid.status_code, invalid.json()["code"]) == (400, 400)
    assert "prompt" in invalid.json()["message"]
    client.close()
    server.close()


def test_routes_of_the_hot_paths_stay_in_the_table() -> None:
    paths = {route.path for route in APP.routes if isinstance(route, Route)}
    assert {"/api/v3/predictions/{id}/result", "/api/v3/predictions/{id}"} <= paths
