"""The inspector at /_mock/ui, looked at in a real browser: Debian's chromium driven by Playwright.

Each test starts its own fake on a loopback port, fills it through the real API and the control API, and asserts
what a person would see. Outside CI the browser tests skip when chromium or Playwright is missing; under
``CI=true`` that is a failure, so the page cannot silently go untested.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mock_server.http.app import create_app
from mock_server.http.server import RunningServer, run_in_thread
from mock_server.settings import Settings
from tests.conftest import T2I

EDIT = "wavespeed-ai/flux-kontext-pro"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPORTS = Path(__file__).resolve().parent.parent / "reports"
WAIT = 10.0  # upper bound for anything to arrive; every wait returns as soon as it does
UI_WAIT_MS = 10_000
HOSTILE_PROMPT = 'a lighthouse <img src=x onerror="document.body.dataset.pwned=1"> & <b>bold</b>'
TOKEN = "s3cret-control-token"


# --- the browser --------------------------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but the inspector cannot be tested in a browser: {reason}")
    pytest.skip(f"inspector browser tests need Debian's chromium and Playwright: {reason}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    # Never `playwright install`: its browser download is not reachable; the distribution's chromium is used.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.set_default_timeout(UI_WAIT_MS)
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def wait_loaded(page: Any, after: int = 0) -> None:
    """Until the page has drawn the answers of a refresh newer than ``after``."""
    # Functions, not expression strings: the page's Content-Security-Policy forbids the eval that strings need.
    page.wait_for_function("after => Number(document.body.dataset.loaded || 0) > after", arg=after)


def loaded(page: Any) -> int:
    return int(page.evaluate("Number(document.body.dataset.loaded || 0)"))


# --- a fake with something in it ----------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint on its own loopback port answering scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.script: deque[int] = deque()
        self.running: RunningServer = run_in_thread(Starlette(routes=[Route("/hook", self._hook, methods=["POST"])]))
        self.url = f"{self.running.base_url}/hook"

    async def _hook(self, request: Request) -> Response:
        await request.body()
        return Response(status_code=self.script.popleft() if self.script else 200)


@dataclass
class Scene:
    running: RunningServer
    keys: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def ui(self) -> str:
        return f"{self.base_url}/_mock/ui"

    def client(self, tenant: str) -> httpx.Client:
        if tenant not in self.clients:
            self.clients[tenant] = httpx.Client(
                base_url=self.base_url, timeout=30, headers={"Authorization": f"Bearer {self.keys[tenant]}"}
            )
        return self.clients[tenant]

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.base_url}/_mock{path}", json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def submit(self, tenant: str, model: str, body: dict[str, Any], **params: str) -> str:
        response = self.client(tenant).post(f"/api/v3/{model}", json=body, params=params)
        assert response.status_code == 200, response.text
        prediction_id: str = response.json()["data"]["id"]
        return prediction_id

    def finish(self, tenant: str, prediction_id: str) -> dict[str, Any]:
        for _ in range(10):
            response = self.client(tenant).get(f"/api/v3/predictions/{prediction_id}/result")
            data: dict[str, Any] = response.json()["data"]
            if data["status"] in ("completed", "failed"):
                return data
        raise AssertionError(f"{prediction_id} did not finish in 10 polls")

    def wait_for_deliveries(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT
        while True:
            deliveries: list[dict[str, Any]] = self.control("GET", "/webhooks/deliveries")
            if len(deliveries) >= count:
                return deliveries
            assert time.monotonic() < deadline, f"expected {count} webhook deliveries, got {deliveries}"
            time.sleep(0.02)  # readiness poll with a deadline

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.running.stop()


def png_data_uri(size: tuple[int, int] = (64, 48)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def empty_fake() -> Iterator[Scene]:
    running = run_in_thread(create_app(Settings(progression="polls", latency_scale=0, webhook_retry_base=0.01)))
    scene = Scene(running, {name: f"key-{name}-{uuid.uuid4().hex}" for name in ("a", "b")})
    yield scene
    scene.close()


@pytest.fixture
def fake(empty_fake: Scene) -> Iterator[Scene]:
    """Two tenants: a completed text-to-image, an edit with a data-URI input, a failure with code 1402 and a
    pending prediction; a 404; a fault; an outcome rule still queued; webhook deliveries (one retried after a
    500, one deliberately signed with the wrong key)."""
    scene = empty_fake
    receiver = Receiver()
    try:
        scene.ids["completed"] = scene.submit("a", T2I, {"prompt": HOSTILE_PROMPT, "aspect_ratio": "16:9"})
        scene.finish("a", scene.ids["completed"])
        scene.ids["edit"] = scene.submit("a", EDIT, {"prompt": "make it blue", "image": png_data_uri()})
        scene.finish("a", scene.ids["edit"])
        scene.control(
            "POST",
            "/outcomes",
            {"outcome": {"status": "failed", "code": 1402}, "prompt_contains": "broken", "tenant": scene.keys["a"]},
        )
        scene.ids["failed"] = scene.submit("a", T2I, {"prompt": "a broken one"})
        assert scene.finish("a", scene.ids["failed"])["status"] == "failed"
        scene.ids["pending"] = scene.submit("b", T2I, {"prompt": "still waiting"})
        assert scene.client("a").get("/api/v3/no-such-thing").status_code == 404
        scene.control("POST", "/faults", {"path": "/api/v3/never-called/*", "status": 503, "times": None})
        scene.control(
            "POST",
            "/outcomes",
            {"outcome": {"status": "failed", "code": 5000}, "prompt_contains": "never-used", "times": 3},
        )
        receiver.script.append(500)
        scene.ids["hook_a"] = scene.submit("a", T2I, {"prompt": "hooked"}, webhook=receiver.url)
        scene.finish("a", scene.ids["hook_a"])
        scene.wait_for_deliveries(2)  # the 500, then its retry
        scene.control("POST", "/webhooks", {"tenant": scene.keys["b"], "bad_signature": True})
        scene.ids["hook_b"] = scene.submit("b", T2I, {"prompt": "badly signed"}, webhook=receiver.url)
        scene.finish("b", scene.ids["hook_b"])
        scene.wait_for_deliveries(3)
        yield scene
    finally:
        receiver.running.stop()


# --- served by the fake (no browser needed) -----------------------------------------------------------------


def test_the_page_and_its_files_are_served_with_a_strict_policy(empty_fake: Scene) -> None:
    with httpx.Client(base_url=empty_fake.base_url) as http:
        page = http.get("/_mock/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "img-src 'self' data:" in policy
        assert page.headers["referrer-policy"] == "no-referrer"
        assert 'src="ui/app.js"' in page.text and "innerHTML" not in page.text
        for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
            asset = http.get(f"/_mock/ui/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert http.get("/_mock/ui/../control.py").status_code == 404
        assert http.get("/_mock/ui/inspector.py").status_code == 404
        redirect = http.get("/_mock/ui/?token=x")
        assert redirect.status_code == 308 and redirect.headers["location"] == "../ui?token=x"
        # The page's own requests never show up in the journal a test asserts on.
        assert empty_fake.control("GET", "/journal") == []


def test_the_script_never_writes_html() -> None:
    script = (Path(__file__).resolve().parent.parent / "mock_server/http/inspector/app.js").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, sink


# --- in the browser -----------------------------------------------------------------------------------------


def test_the_inspector_shows_predictions_journal_faults_rules_and_deliveries(page: Any, fake: Scene) -> None:
    page.goto(fake.ui)
    wait_loaded(page)
    predictions = fake.control("GET", "/predictions")
    cards = page.locator("article.card")
    assert cards.count() == len(predictions) == 6

    def card(name: str) -> Any:
        return page.locator(f'article.card[data-id="{fake.ids[name]}"]')

    assert card("completed").get_attribute("data-status") == "completed"
    assert card("pending").get_attribute("data-status") == "created"
    assert "not polled yet" in card("pending").inner_text()
    failed = card("failed")
    assert failed.get_attribute("data-status") == "failed"
    assert "code 1402" in failed.inner_text()
    # The status timeline: submitted, then every poll's answer.
    steps = card("completed").locator(".timeline li").all_inner_texts()
    assert [step.split()[0] for step in steps] == ["submitted", "processing", "completed"], steps
    assert all(re.search(r"\d\d:\d\d:\d\d\.\d{3}", step) for step in steps), steps

    # Real pictures: every thumbnail decoded (the outputs from the fake's media routes, the input from its data URI).
    page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].every(img => img.complete)")
    sizes = page.evaluate("[...document.querySelectorAll('img.thumb')].map(img => [img.alt, img.naturalWidth])")
    assert len(sizes) == 5  # the four completed predictions' outputs and the edit's input image
    assert all(width > 0 for _, width in sizes), sizes
    assert [width for alt, width in sizes if alt.startswith("input")] == [64]
    assert card("completed").locator(".outputs img.thumb").evaluate("img => img.naturalWidth") == 1360

    # What a client sent is shown as text, never run or parsed as markup.
    assert HOSTILE_PROMPT in card("completed").locator(".prompt").inner_text()
    assert page.evaluate("document.body.dataset.pwned") is None

    # The other sections.
    assert page.locator("#unmatched-table tbody tr").count() == 1
    assert "/api/v3/no-such-thing" in page.locator("#unmatched-table").inner_text()
    assert "/api/v3/never-called/*" in page.locator("#faults-table").inner_text()
    assert "never-used" in page.locator("#outcomes-table").inner_text()
    assert "code 5000" in page.locator("#outcomes-table").inner_text()
    deliveries = page.locator(".delivery")
    assert deliveries.count() == 2
    retried = page.locator(f'.delivery:has(code:text-is("{fake.ids["hook_a"]}"))')
    assert "delivered after 1 failed attempt" in retried.inner_text()
    assert retried.locator("tbody tr").count() == 2 and "500" in retried.inner_text()
    badly_signed = page.locator(f'.delivery:has(code:text-is("{fake.ids["hook_b"]}"))')
    assert "bad signature" in badly_signed.inner_text()
    assert "signature ok" in retried.inner_text()
    assert "Nothing yet." in page.locator("#generic").inner_text()  # /_mock/generic: no model served generically
    assert re.search(r"ok\s+\d+ models", page.locator("#health").inner_text())

    # Keys stay off the page: no raw key, no Authorization header, even inside collapsed details.
    page.locator("#journal-table details").first.evaluate("node => { node.open = true; }")
    html = page.content()
    for key in fake.keys.values():
        assert key not in html
    header_names = page.evaluate("[...document.querySelectorAll('dl.headers dt')].map(dt => dt.textContent)")
    assert "content-type" in header_names and "authorization" not in header_names
    assert "Bearer" not in html

    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / "inspector.png"), full_page=True)


def test_journal_filters_go_to_the_control_api_as_query_parameters(page: Any, fake: Scene) -> None:
    page.goto(fake.ui)
    wait_loaded(page)
    everything = page.locator("#journal-table tbody tr").count()
    form = page.locator("#journal-filters")
    form.locator("input[name=status]").fill("404")
    with page.expect_request(lambda r: "/_mock/journal?" in r.url and "status=404" in r.url):
        form.locator("button[type=submit]").click()
    page.wait_for_function("() => document.querySelectorAll('#journal-table tbody tr').length === 1")
    row = page.locator("#journal-table tbody tr")
    assert row.get_attribute("data-status") == "404"
    assert "/api/v3/no-such-thing" in row.inner_text()
    assert "status=404" in page.url  # a reload keeps the view

    with page.expect_request(lambda r: "method=POST" in r.url and "status=404" in r.url):
        form.locator("select[name=method]").select_option("POST")
    page.wait_for_selector("#journal-body .empty")  # no POST answered 404

    form.locator("input[name=status]").fill("")
    with page.expect_request(lambda r: "/_mock/journal?" in r.url and "method=POST" in r.url and "status" not in r.url):
        form.locator("button[type=submit]").click()
    page.wait_for_selector("#journal-table")
    methods = page.evaluate("[...document.querySelectorAll('#journal-table tbody tr')].map(tr => tr.dataset.method)")
    assert methods and set(methods) == {"POST"} and len(methods) < everything

    page.locator("#journal-clear").click()
    page.wait_for_function("n => document.querySelectorAll('#journal-table tbody tr').length >= n", arg=everything)
    assert "method=" not in page.url


def test_the_reset_button_empties_the_fake(page: Any, fake: Scene) -> None:
    page.goto(fake.ui)
    wait_loaded(page)
    assert page.locator("article.card").count() == 6
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#reset").click()
    page.wait_for_selector("#predictions-body .empty")
    assert "6 prediction(s) removed" in page.locator("#message").inner_text()
    assert page.locator("article.card").count() == 0
    assert page.locator("#faults-body .empty").is_visible()
    assert page.locator("#webhooks-body .empty").is_visible()
    assert fake.control("GET", "/predictions") == []


def test_the_clock_button_finishes_time_progressed_predictions(page: Any) -> None:
    running = run_in_thread(create_app(Settings(progression="time", frozen_clock=True)))
    try:
        response = httpx.post(
            f"{running.base_url}/api/v3/{T2I}",
            json={"prompt": "slow"},
            timeout=30,
            headers={"Authorization": "Bearer key-clock"},
        )
        prediction_id = response.json()["data"]["id"]
        page.goto(f"{running.base_url}/_mock/ui")
        wait_loaded(page)
        card = page.locator(f'article.card[data-id="{prediction_id}"]')
        assert card.get_attribute("data-status") == "created"
        page.locator("#clock-seconds").fill("3600")
        page.locator("#clock-advance").click()
        page.wait_for_selector(f'article.card[data-id="{prediction_id}"][data-status="completed"]')
        assert "1 prediction(s) finished" in page.locator("#message").inner_text()
    finally:
        running.stop()


def test_polling_runs_every_two_seconds_and_pauses(page: Any, empty_fake: Scene) -> None:
    page.clock.install()  # the page's timers run only when the test says so: no waiting on real time
    page.goto(empty_fake.ui)
    wait_loaded(page)

    def refreshes() -> int:
        return int(page.evaluate("Number(document.body.dataset.refreshes)"))

    first = refreshes()
    page.clock.run_for(2100)
    wait_loaded(page, first)
    assert refreshes() == first + 1
    page.locator("#pause").click()
    assert page.locator("#pause").get_attribute("aria-pressed") == "true"
    paused_at = refreshes()
    page.clock.run_for(20_000)
    assert refreshes() == paused_at
    page.locator("#pause").click()  # resuming refreshes at once
    assert refreshes() == paused_at + 1


# --- what the page does with answers this server does not give yet (simulated in the browser) ---------------


def route_control(page: Any, handler: Callable[[Any, str], dict[str, Any] | None]) -> list[Any]:
    """Intercept /_mock/ calls (not the page's own files): ``handler(request, path)`` returns a JSON body to
    answer with (``status`` popped from it, default 200), or None to let the fake answer."""
    seen: list[Any] = []

    def on_route(route: Any) -> None:
        request = route.request
        path = request.url.split("/_mock", 1)[1].split("?", 1)[0]
        if path.startswith("/ui"):
            route.continue_()
            return
        seen.append(request)
        answer = handler(request, path)
        if answer is None:
            route.continue_()
        else:
            status = answer.pop("status", 200)
            route.fulfill(status=status, content_type="application/json", body=json.dumps(answer))

    page.route("**/_mock/**", on_route)
    return seen


def test_a_control_token_is_required_sent_and_kept_out_of_the_address_bar(page: Any, fake: Scene) -> None:
    def guard(request: Any, path: str) -> dict[str, Any] | None:
        if request.headers.get("x-mock-control-token") == TOKEN:
            return None
        return {"status": 401, "code": 401, "message": "control token required"}

    seen = route_control(page, guard)
    page.goto(fake.ui)
    wait_loaded(page)
    banner = page.locator("#banner")
    assert banner.is_visible() and "Control token required" in banner.inner_text()
    assert page.locator("article.card").count() == 0

    page.locator("#token").fill(TOKEN)
    page.locator("#token-form button[type=submit]").click()
    page.wait_for_selector("article.card")
    assert banner.is_hidden()

    page.locator("#token-forget").click()
    page.wait_for_selector("#banner:visible")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#reset").click()
    page.wait_for_selector("#message.bad")
    assert "control token required" in page.locator("#message").inner_text()
    assert len(fake.control("GET", "/predictions")) == 6  # nothing was reset

    page.goto(f"{fake.ui}?token={TOKEN}&status=404")  # no token stored now: it comes from the address bar
    wait_loaded(page)
    page.wait_for_selector("article.card")  # the guard answers 401 without it, so the token was sent
    assert banner.is_hidden()
    assert TOKEN not in page.url and "status=404" in page.url
    assert TOKEN not in page.content()
    # Every call carries it. Counted from a refresh of the new page only: the old page's last calls (without a
    # token) may still reach the route handler while the new one loads.
    seen.clear()
    before = loaded(page)
    page.locator("#refresh-now").click()
    wait_loaded(page, before)
    assert len(seen) >= 7 and all(r.headers.get("x-mock-control-token") == TOKEN for r in seen)


def test_tenant_fingerprints_group_predictions_and_filter_the_journal(page: Any, fake: Scene) -> None:
    fingerprints = {"a": "tk_aaaaaaaaaaaa", "b": "tk_bbbbbbbbbbbb"}
    owner = {fake.ids[name]: "b" if name in ("pending", "hook_b") else "a" for name in fake.ids}
    predictions = fake.control("GET", "/predictions")

    def fingerprinted(request: Any, path: str) -> dict[str, Any] | None:
        if path == "/predictions":  # the control API as it will answer once it reports fingerprints
            return {
                "code": 200,
                "message": "success",
                "data": [{**p, "tenant": fingerprints[owner[p["id"]]]} for p in predictions],
            }
        return None

    route_control(page, fingerprinted)
    page.goto(fake.ui)
    wait_loaded(page)
    headings = [" ".join(text.split()) for text in page.locator(".tenant-heading").all_inner_texts()]
    assert sorted(headings) == ["tenant tk_aaaaaaaaaaaa · 4", "tenant tk_bbbbbbbbbbbb · 2"]
    pending = page.locator(f'.tenant-group:has(article[data-id="{fake.ids["pending"]}"]) .tenant-heading')
    assert "tk_bbbbbbbbbbbb" in pending.inner_text()
    with page.expect_request(lambda r: "/_mock/journal?" in r.url and "tenant=tk_bbbbbbbbbbbb" in r.url):
        pending.locator("button.tenant").click()
    assert page.locator("#journal-filters input[name=tenant]").input_value() == "tk_bbbbbbbbbbbb"


def test_generically_served_models_appear_when_the_server_lists_them(page: Any, empty_fake: Scene) -> None:
    models = [{"model": "acme/flux-lookalike", "endpoint": "/api/v3/acme/flux-lookalike", "served": "generic"}]

    def generic(request: Any, path: str) -> dict[str, Any] | None:
        return {"code": 200, "message": "success", "data": models} if path == "/generic" else None

    route_control(page, generic)
    page.goto(empty_fake.ui)
    wait_loaded(page)
    section = page.locator("#generic")
    assert section.is_visible()
    assert "acme/flux-lookalike" in section.inner_text()
    assert page.locator("#generic-link").is_visible()
