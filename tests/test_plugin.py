"""The pytest plugin as a client project uses it: fixtures, the marker, ini/flag defaults, audits, examples."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from mock_server.contract.tenants import fingerprint
from mock_server.http.server import RunningServer
from mock_server.model.rules import ModelBehaviour, Rules
from mock_server.model.store import MemoryStore
from mock_server.resources import data_dir
from mock_server.testing import fixtures_data, pytest_plugin
from mock_server.testing.assertions import PollingAuditError, SubmissionMismatch, TenantHandle
from mock_server.testing.inprocess import ASGIFake
from tests.conftest import DEV, T2I

pytest_plugins = ["pytester"]

# Inner runs load the plugin by its entry-point name (so PYTEST_DISABLE_PLUGIN_AUTOLOAD cannot drop it) and turn
# warnings into errors (our fixtures must not emit any), except the editable-install one. Without hypothesis'
# plugin: in-process runs would re-import (and assert-rewrite) hypothesis each time, ~3 s.
STRICT = (
    "-p",
    "wavespeed_mock",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:benchmark",
    "-W",
    "error",
    "-W",
    "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
)

CLIENT = """
import os
import httpx
import pytest

T2I = "wavespeed-ai/flux-kontext-pro/text-to-image"
HTTP = httpx.Client()


@pytest.fixture(scope="module", autouse=True)
def _close_http():
    yield
    HTTP.close()


def submit(fake, body=None, model=T2I):
    response = HTTP.post(f"{fake.base_url}/api/v3/{model}", json=body or {"prompt": "x"}, headers=fake.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def poll(fake, prediction_id):
    response = HTTP.get(f"{fake.base_url}/api/v3/predictions/{prediction_id}/result", headers=fake.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["status"]
"""


HTTP = httpx.Client(timeout=30)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


def submit(handle: TenantHandle, body: dict[str, object] | None = None, model: str = T2I) -> str:
    response = HTTP.post(f"{handle.base_url}/api/v3/{model}", json=body or {"prompt": "x"}, headers=handle.headers)
    assert response.status_code == 200, response.text
    prediction_id: str = response.json()["data"]["id"]
    return prediction_id


def poll(handle: TenantHandle, prediction_id: str) -> httpx.Response:
    return HTTP.get(f"{handle.base_url}/api/v3/predictions/{prediction_id}/result", headers=handle.headers)


def status(handle: TenantHandle, prediction_id: str) -> str:
    response = poll(handle, prediction_id)
    assert response.status_code == 200, response.text
    result: str = response.json()["data"]["status"]
    return result


# --- fixtures from a client project -----------------------------------------------------------------------


def test_every_fixture_works_from_a_client_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        CLIENT
        + """
APPS = []


def test_session_server_answers(wavespeed_server):
    assert httpx.get(wavespeed_server.base_url + "/_mock/health").json()["data"]["ok"] is True


def test_handle_drives_the_official_sdk(wavespeed):
    output = wavespeed.sdk(max_connection_retries=0).run(T2I, {"prompt": "a lighthouse"}, poll_interval=0.01)

    assert httpx.get(output["outputs"][0]).headers["content-type"] == "image/jpeg"
    assert wavespeed.api_key.startswith("ws-test-")
    assert [p["status"] for p in wavespeed.predictions()] == ["completed"]


def test_env_points_unmodified_module_level_sdk_calls_at_the_fake(wavespeed_env):
    import wavespeed

    output = wavespeed.run(T2I, {"prompt": "x"}, poll_interval=0.01)

    assert output["outputs"] and os.environ["WAVESPEED_BASE_URL"] == wavespeed_env.base_url
    assert os.environ["WAVESPEED_API_KEY"] == wavespeed_env.api_key
    assert wavespeed_env.count(method="POST", path="/api/v3/" + T2I) == 1


def test_asgi_sync_client_runs_in_process_with_its_lifespan(wavespeed_asgi):
    APPS.append(wavespeed_asgi.server.app)
    assert wavespeed_asgi.server.app.state.mock.runtime.loop is not None
    with wavespeed_asgi.client() as client:
        prediction_id = client.post("/api/v3/" + T2I, json={"prompt": "x"}).json()["data"]["id"]
        statuses = [client.get(f"/api/v3/predictions/{prediction_id}/result").json()["data"]["status"]
                    for _ in range(2)]
        image = client.get(client.get(f"/api/v3/predictions/{prediction_id}").json()["data"]["outputs"][0])

    assert statuses == ["processing", "completed"] and image.content[:2] == b"\\xff\\xd8"
    assert wavespeed_asgi.base_url == "http://wavespeed.test"
    assert wavespeed_asgi.handle.poll_count(prediction_id) == 3


def test_asgi_lifespan_was_shut_down_at_teardown():
    assert APPS[0].state.mock.runtime.loop is None


@pytest.fixture
def anyio_backend():
    return "asyncio"  # the fake's app is asyncio-only


@pytest.mark.anyio
async def test_asgi_async_transport(wavespeed_asgi):
    async with httpx.AsyncClient(transport=wavespeed_asgi.transport, base_url=wavespeed_asgi.base_url,
                                 headers=wavespeed_asgi.handle.headers) as client:
        response = await client.post("/api/v3/" + T2I, json={"prompt": "x", "aspect_ratio": "9:99"})

    assert response.status_code == 400 and "aspect_ratio" in response.text
    assert wavespeed_asgi.handle.journal()[0]["status"] == 400


def test_examples_fixture(wavespeed_examples):
    assert wavespeed_examples[T2I]["prompt"] and len(wavespeed_examples) == 12
"""
    )

    result = pytester.runpytest(*STRICT, "-p", "anyio")

    result.assert_outcomes(passed=7)


# --- the marker ------------------------------------------------------------------------------------------


def test_the_marker_applies_every_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        CLIENT
        + """
IDS = []


@pytest.mark.wavespeed(progression="polls", poll_every=2)
def test_progression_and_poll_every(wavespeed):
    prediction_id = submit(wavespeed)
    assert [poll(wavespeed, prediction_id) for _ in range(4)] == ["created", "processing", "processing", "completed"]


@pytest.mark.wavespeed(progression="manual")
def test_manual(wavespeed):
    prediction_id = submit(wavespeed)
    assert {poll(wavespeed, prediction_id) for _ in range(3)} == {"created"}
    wavespeed.advance(prediction_id, 2)
    assert poll(wavespeed, prediction_id) == "completed"


@pytest.mark.wavespeed(progression="time", latency=[0, 3600])
def test_time_and_latency(wavespeed):
    prediction_id = submit(wavespeed)
    assert poll(wavespeed, prediction_id) == "processing"
    assert wavespeed.advance(prediction_id)["timings"]["inference"] == 3600 * 1000


@pytest.mark.wavespeed(seed=7)
def test_seed_first(wavespeed):
    IDS.append(submit(wavespeed))


@pytest.mark.wavespeed(seed=7)
def test_seed_second(wavespeed):
    IDS.append(submit(wavespeed))
    assert IDS[0] == IDS[1]


@pytest.mark.wavespeed(outcomes=[{"status": "failed", "code": 1402, "prompt_contains": "broken", "times": None},
                                 {"nsfw": [True], "model": T2I}])
def test_outcomes(wavespeed):
    broken = [submit(wavespeed, {"prompt": "broken " + str(i)}) for i in range(2)]
    fine = submit(wavespeed, {"prompt": "fine"})
    for prediction_id in broken + [fine]:
        poll(wavespeed, prediction_id), poll(wavespeed, prediction_id)
    assert [wavespeed.prediction(p)["status"] for p in broken] == ["failed", "failed"]
    assert wavespeed.prediction(fine)["has_nsfw_contents"] == [True]


@pytest.mark.wavespeed(faults=[{"path": "/api/v3/predictions/*", "status": 429, "retry_after": 0.25}])
def test_faults(wavespeed):
    prediction_id = submit(wavespeed)
    response = HTTP.get(f"{wavespeed.base_url}/api/v3/predictions/{prediction_id}/result", headers=wavespeed.headers)
    assert (response.status_code, response.headers["retry-after"]) == (429, "0.25")
    assert poll(wavespeed, prediction_id) == "processing"


@pytest.mark.wavespeed(webhooks={"duplicate": True, "delay": 0.5})
def test_webhooks(wavespeed, wavespeed_server):
    adversary = wavespeed_server.app.state.mock.webhooks.adversary(wavespeed.api_key)
    assert (adversary.duplicate, adversary.delay) == (True, 0.5)


@pytest.mark.wavespeed(progression="manual", poll_every=3)
class TestLayered:
    @pytest.mark.wavespeed(progression="polls")
    def test_the_closest_marker_wins_per_option(self, wavespeed):
        prediction_id = submit(wavespeed)
        assert [poll(wavespeed, prediction_id) for _ in range(3)] == ["created", "created", "processing"]


def test_nothing_leaks_into_the_next_test(wavespeed, wavespeed_server):
    prediction_id = submit(wavespeed)
    assert [poll(wavespeed, prediction_id) for _ in range(2)] == ["processing", "completed"]
    assert wavespeed_server.app.state.mock.controller.faults() == []
    assert wavespeed_server.app.state.mock.controller.outcomes() == []
"""
    )

    result = pytester.runpytest(*STRICT)

    result.assert_outcomes(passed=10)


def test_the_marker_rejects_unknown_options_and_bad_values_readably(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        CLIENT
        + """
@pytest.mark.wavespeed(progession="manual")
def test_typo(wavespeed):
    pass


@pytest.mark.wavespeed(progression="warp")
def test_bad_progression(wavespeed):
    pass


@pytest.mark.wavespeed(outcomes=[{"status": "exploded"}])
def test_bad_outcome(wavespeed):
    pass


@pytest.mark.wavespeed(faults={"status": 429})
def test_faults_not_a_list(wavespeed):
    pass


@pytest.mark.wavespeed("manual")
def test_positional(wavespeed):
    pass


@pytest.mark.wavespeed(audit={"min_intervall": 1})
def test_bad_audit_option(wavespeed):
    pass


@pytest.mark.wavespeed(progression="manual")
def test_marker_without_a_fixture():
    pass
"""
    )

    result = pytester.runpytest(*STRICT)

    result.assert_outcomes(errors=7)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.wavespeed: unknown option(s) progession; allowed: progression, poll_every, latency, seed, "
            "outcomes, faults, webhooks, audit",
            '*@pytest.mark.wavespeed option progression=\'warp\': *progression: "warp" is not one of "time", '
            '"polls", "manual"*',
            "*@pytest.mark.wavespeed option outcomes=[[]{'status': 'exploded'}[]]: "
            '*status: "exploded" is not one of *',
            "*@pytest.mark.wavespeed option faults={'status': 429}: must be a list of dicts",
            "*@pytest.mark.wavespeed takes keyword options only (*), got positional ('manual',)",
            "*@pytest.mark.wavespeed(audit=...) takes true/false or a dict; unknown: min_intervall; allowed keys: *",
            "*@pytest.mark.wavespeed on test_marker_without_a_fixture does nothing without one of the fixtures *",
        ]
    )


# --- isolation --------------------------------------------------------------------------------------------


def test_behaviour_is_layered_per_tenant_and_reset_with_it() -> None:
    store = MemoryStore()
    scenario = Rules(store)
    scenario.set_behaviour("*", progression="polls", poll_every=2)
    scenario.set_behaviour(DEV, "a", progression="manual")
    scenario.set_behaviour("*", "a", latency=(1.0, 2.0))

    assert scenario.behaviour_for(DEV, "a") == ModelBehaviour("manual", 2, (1.0, 2.0))
    assert scenario.behaviour_for(T2I, "a") == ModelBehaviour("polls", 2, (1.0, 2.0))
    assert scenario.behaviour_for(DEV, "b") == scenario.behaviour_for(DEV) == ModelBehaviour("polls", 2, None)
    store.reset("a")
    assert scenario.behaviour_for(DEV, "a") == ModelBehaviour("polls", 2, None)


def test_two_tenants_on_one_server_keep_their_own_progression(
    wavespeed: TenantHandle, wavespeed_server: RunningServer
) -> None:
    other = TenantHandle(wavespeed_server.base_url, "ws-test-other")  # over HTTP (/_mock/), not in-process
    try:
        wavespeed.behave(progression="manual")
        other.behave(DEV, progression="polls", poll_every=2)
        mine, theirs = submit(wavespeed, model=DEV), submit(other, model=DEV)

        assert [status(wavespeed, mine) for _ in range(2)] == ["created", "created"]
        assert [status(other, theirs) for _ in range(2)] == ["created", "processing"]
        assert [p["id"] for p in wavespeed.predictions()] == [mine]
        assert {e["tenant"] for e in other.journal()} == {fingerprint("ws-test-other")}  # never the key itself
    finally:
        other.reset()


def test_tenants_are_isolated_across_xdist_workers(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        CLIENT
        + """
import time


@pytest.mark.parametrize("n", range(8))
def test_tenant(wavespeed, wavespeed_server, n):
    wavespeed.behave(progression="manual" if n % 2 else "polls")
    prediction_id = submit(wavespeed, {"prompt": f"test {n}"})
    time.sleep(0.05)
    expected = "created" if n % 2 else "processing"
    assert poll(wavespeed, prediction_id) == expected
    assert [p["input"]["prompt"] for p in wavespeed.predictions()] == [f"test {n}"]
    with open(os.environ["SEEN"], "a") as seen:
        seen.write(f"{os.environ['PYTEST_XDIST_WORKER']} {wavespeed_server.port}\\n")
"""
    )
    seen = pytester.path / "seen.txt"
    monkeypatch.setenv("SEEN", str(seen))

    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist", *STRICT)

    result.assert_outcomes(passed=8)
    workers = dict(line.split() for line in seen.read_text().splitlines())
    assert len(workers) == 2 and len(set(workers.values())) == 2  # two workers, each with its own server


# --- assertion helpers ------------------------------------------------------------------------------------


def test_submissions_and_assert_submitted(wavespeed: TenantHandle) -> None:
    submit(wavespeed, {"prompt": "a", "aspect_ratio": "16:9"})
    submit(wavespeed, {"prompt": "b", "aspect_ratio": "1:1"}, model=DEV)

    assert wavespeed.submissions() == [{"prompt": "a", "aspect_ratio": "16:9"}, {"prompt": "b", "aspect_ratio": "1:1"}]
    assert wavespeed.submissions(DEV) == [{"prompt": "b", "aspect_ratio": "1:1"}]
    assert wavespeed.assert_submitted(T2I, aspect_ratio="16:9")["prompt"] == "a"
    with pytest.raises(SubmissionMismatch) as raised:
        wavespeed.assert_submitted(T2I, aspect_ratio="21:9", num_images=2)
    assert str(raised.value) == (
        f"no submit to {T2I} had aspect_ratio='21:9', num_images=2; 1 submit(s) differ:\n"
        """  #1: aspect_ratio='16:9', num_images missing   (sent {"aspect_ratio": "16:9", "prompt": "a"})"""
    )
    with pytest.raises(SubmissionMismatch, match=f"nothing was submitted to {EDITS} .*submitted to: {DEV}, {T2I}"):
        wavespeed.assert_submitted(EDITS, prompt="a")


EDITS = "wavespeed-ai/flux-kontext-max/multi"


def test_poll_count_counts_result_requests(wavespeed: TenantHandle) -> None:
    prediction_id = submit(wavespeed)
    for _ in range(3):
        poll(wavespeed, prediction_id)

    assert wavespeed.poll_count(prediction_id) == 3


def test_audit_reports_polls_after_the_terminal_state(wavespeed: TenantHandle) -> None:
    prediction_id = submit(wavespeed)
    statuses = [status(wavespeed, prediction_id) for _ in range(4)]

    with pytest.raises(PollingAuditError) as raised:
        wavespeed.audit_polling()

    assert statuses == ["processing", "completed", "completed", "completed"]
    assert re.fullmatch(
        rf"polling audit found 1 violation\(s\):\n  - prediction {prediction_id}: polled 2 more time\(s\) after "
        r"poll 2 answered 'completed' \(polls 3\.\.4; the first \d\.\d{3} s later\)",
        str(raised.value),
    )
    assert len(raised.value.violations) == 1


def test_audit_reports_a_duplicate_submit(wavespeed: TenantHandle) -> None:
    submit(wavespeed, {"prompt": "same"})
    submit(wavespeed, {"prompt": "other"})
    submit(wavespeed, {"prompt": "same"})

    with pytest.raises(
        PollingAuditError, match=re.escape(f"- {T2I}: the same request was accepted 2 times (journal #")
    ) as raised:
        wavespeed.audit_polling()

    assert str(raised.value).endswith('): {"prompt": "same"}')


def test_audit_reports_an_ignored_retry_after(wavespeed: TenantHandle) -> None:
    prediction_id = submit(wavespeed)
    wavespeed.add_fault(path="/api/v3/predictions/*", status=429, retry_after=2)
    first, second = poll(wavespeed, prediction_id), poll(wavespeed, prediction_id)

    with pytest.raises(PollingAuditError) as raised:
        wavespeed.audit_polling(prediction_id)

    assert (first.status_code, first.headers["retry-after"], second.status_code) == (429, "2", 200)
    assert re.search(
        rf"GET /api/v3/predictions/{prediction_id}/result: answered 429 with Retry-After 2 s "
        r"\(journal #\d+\), but the next request to it came 0\.\d{3} s later \(journal #\d+\)",
        str(raised.value),
    )


def test_audit_accepts_a_client_that_waits_as_told(wavespeed: TenantHandle) -> None:
    prediction_id = submit(wavespeed)
    wavespeed.add_fault(path="/api/v3/predictions/*", status=503, retry_after=0.2)
    assert poll(wavespeed, prediction_id).status_code == 503
    time.sleep(0.25)
    assert [status(wavespeed, prediction_id) for _ in range(2)] == ["processing", "completed"]

    wavespeed.audit_polling(prediction_id)


def test_audit_reports_polls_closer_than_the_minimum_interval(wavespeed: TenantHandle) -> None:
    prediction_id = submit(wavespeed)
    for _ in range(2):
        status(wavespeed, prediction_id)

    with pytest.raises(PollingAuditError) as raised:
        wavespeed.audit_polling(min_interval=0.5)

    assert re.search(
        rf"- prediction {prediction_id}: 1 poll interval\(s\) shorter than the required 0\.5 s: "
        r"polls 1→2 0\.\d{3} s$",
        str(raised.value),
    )


def test_the_official_sdk_passes_the_audit_but_ignores_retry_after(wavespeed: TenantHandle) -> None:
    client = wavespeed.sdk(max_connection_retries=2, retry_interval=0.05)
    client.run(T2I, {"prompt": "x"}, poll_interval=0.05)
    wavespeed.audit_polling(min_interval=0.05)

    wavespeed.add_fault(path="/api/v3/predictions/*", status=429, retry_after=1)
    client.run(T2I, {"prompt": "y"}, poll_interval=0.05)

    # The SDK (2.0.5) backs off retry_interval * attempt and never reads Retry-After.
    with pytest.raises(PollingAuditError, match=r"answered 429 with Retry-After 1 s .* came 0\.\d+ s later"):
        wavespeed.audit_polling()


def test_sdk_without_the_package_is_a_clear_error(wavespeed: TenantHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wavespeed", None)

    with pytest.raises(RuntimeError, match="handle.sdk\\(\\) needs the official SDK: pip install wavespeed"):
        wavespeed.sdk()


def test_teardown_audit_never_hides_the_tests_own_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        CLIENT
        + """
def poll_too_long(wavespeed):
    prediction_id = submit(wavespeed)
    for _ in range(4):
        poll(wavespeed, prediction_id)


@pytest.mark.wavespeed(audit=True)
def test_passes_but_polls_after_completion(wavespeed):
    poll_too_long(wavespeed)


@pytest.mark.wavespeed(audit=True)
def test_fails_on_its_own(wavespeed):
    poll_too_long(wavespeed)
    assert 1 == 2, "the test's own failure"


@pytest.mark.wavespeed(audit={"min_interval": 0})
def test_polls_well(wavespeed):
    prediction_id = submit(wavespeed)
    assert [poll(wavespeed, prediction_id) for _ in range(2)] == ["processing", "completed"]
"""
    )

    result = pytester.runpytest(*STRICT)

    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_passes_but_polls_after_completion*",
            "*polling audit found 2 violation(s):",
            "*- prediction * polled 2 more time(s) after poll 2 answered 'completed'*",
            "*- prediction * poll interval(s) shorter than the required 0.05 s: polls *",
            "*AssertionError: the test's own failure*",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_fails_on_its_own*")


TIGHT_AND_PATIENT = (
    CLIENT
    + """
import time


@pytest.mark.wavespeed(audit=True, poll_every=3)
def test_polls_in_a_tight_loop(wavespeed):
    prediction_id = submit(wavespeed)
    assert [poll(wavespeed, prediction_id) for _ in range(6)] == ["created"] * 2 + ["processing"] * 3 + ["completed"]


@pytest.mark.wavespeed(audit=True, poll_every=3)
def test_sleeps_between_polls(wavespeed):
    prediction_id = submit(wavespeed)
    statuses = []
    while not statuses or statuses[-1] != "completed":
        if statuses:
            time.sleep(float(os.environ.get("INTERVAL", "0.05")))  # the client behaviour under test
        statuses.append(poll(wavespeed, prediction_id))
    assert len(statuses) == 6
"""
)


def test_the_teardown_audit_catches_a_tight_polling_loop_by_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TIGHT_AND_PATIENT)

    result = pytester.runpytest(*STRICT, "-rE")

    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_polls_in_a_tight_loop*",
            "*polling audit found 1 violation(s):",
            # Each gap is one loopback round trip; under load a few may exceed 0.05 s, so the count is not pinned.
            "*- prediction * poll interval(s) shorter than the required 0.05 s: polls *",
            "*ERROR*test_polls_in_a_tight_loop*",
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_sleeps_between_polls*")


def test_a_teardown_audit_failure_shows_its_message_first_and_no_plugin_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TIGHT_AND_PATIENT)

    result = pytester.runpytest(*STRICT)

    result.assert_outcomes(passed=2, errors=1)
    output = result.stdout.lines
    header = next(i for i, line in enumerate(output) if "ERROR at teardown of test_polls_in_a_tight_loop" in line)
    assert output[header + 1].startswith("wavespeed teardown audit: polling audit found 1 violation(s):")
    assert re.match(
        r"  - prediction \w+: \d poll interval\(s\) shorter than the required 0\.05 s: ", output[header + 2]
    )
    assert output[header + 3].startswith("(min_interval 0.05 s: change it with @pytest.mark.wavespeed(audit=")
    plugin_source = {
        line.strip()
        for line in Path(pytest_plugin.__file__).read_text(encoding="utf-8").splitlines()
        if len(line.strip()) > 12 and not line.strip().startswith(("#", '"""'))
    }
    shown = [line for line in output if line.strip() in plugin_source or line.startswith(("E ", ">"))]
    assert shown == []
    assert "pytest_plugin.py" not in result.stdout.str() and "another exception occurred" not in result.stdout.str()


@pytest.mark.parametrize(
    ("ini", "flags", "errors"),
    [
        ("wavespeed_min_poll_interval = 0", (), 0),
        ("wavespeed_min_poll_interval = 0", ("--wavespeed-min-poll-interval", "0.05"), 1),
        ("wavespeed_min_poll_interval = 0.2", (), 2),
    ],
)
def test_the_default_minimum_poll_interval_can_be_changed_or_turned_off(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, flags: tuple[str, ...], errors: int
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(TIGHT_AND_PATIENT)
    # The patient client still sleeps 0.05 s: too little for a 0.2 s minimum.
    monkeypatch.setenv("INTERVAL", "0.05")

    result = pytester.runpytest(*STRICT, *flags)

    result.assert_outcomes(passed=2, errors=errors)


def test_a_negative_minimum_poll_interval_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TIGHT_AND_PATIENT)

    result = pytester.runpytest(*STRICT, "--wavespeed-min-poll-interval", "-1")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*wavespeed_min_poll_interval = -1.0 must not be negative (0 turns the check off)"])


# --- ini options and flags --------------------------------------------------------------------------------

STATUSES = (
    CLIENT
    + """
def test_statuses(wavespeed):
    prediction_id = submit(wavespeed)
    assert ",".join(poll(wavespeed, prediction_id) for _ in range(4)) == os.environ["EXPECTED"]
"""
)


@pytest.mark.parametrize(
    ("ini", "flags", "expected"),
    [
        ("wavespeed_progression = manual", (), "created,created,created,created"),
        (
            "wavespeed_progression = manual",
            ("--wavespeed-progression=polls", "--wavespeed-poll-every=2"),
            "created,processing,processing,completed",
        ),
        ("wavespeed_poll_every = 3", (), "created,created,processing,processing"),
        ("wavespeed_progression = time\nwavespeed_latency_scale = 0", (), "completed,completed,completed,completed"),
        ("", ("--wavespeed-progression", "time", "--wavespeed-latency-scale", "0"), "completed," * 3 + "completed"),
    ],
)
def test_ini_options_and_flags_set_the_defaults(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, flags: tuple[str, ...], expected: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(STATUSES)
    monkeypatch.setenv("EXPECTED", expected)

    pytester.runpytest(*STRICT, *flags).assert_outcomes(passed=1)


@pytest.mark.parametrize("how", ["ini", "flags"])
def test_teardown_audit_for_every_test_from_ini_or_flags(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makeini(
        "[pytest]\nwavespeed_audit = true\nwavespeed_min_poll_interval = 0.3\n" if how == "ini" else "[pytest]\n"
    )
    pytester.makepyfile(STATUSES)
    monkeypatch.setenv("EXPECTED", "processing,completed,completed,completed")
    flags = ("--wavespeed-audit", "--wavespeed-min-poll-interval", "0.3") if how == "flags" else ()

    result = pytester.runpytest(*STRICT, *flags)

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*polling audit found 2 violation(s):",
            "*- prediction * polled 2 more time(s) after poll 2 answered 'completed'*",
            "*- prediction * 3 poll interval(s) shorter than the required 0.3 s: polls 1→2 *",
        ]
    )


UNKNOWN_MODEL = (
    CLIENT
    + """
def test_unknown_model(wavespeed):
    response = HTTP.post(f"{wavespeed.base_url}/api/v3/acme/flux-kontext-pro", json={"prompt": "x"},
                         headers=wavespeed.headers)
    assert response.status_code == int(os.environ["EXPECTED"]), response.text
"""
)


@pytest.mark.parametrize(
    ("ini", "flags", "expected"),
    [
        ("", (), "200"),
        ("wavespeed_unknown_models = reject", (), "404"),
        ("wavespeed_unknown_models = reject", ("--wavespeed-unknown-models=generic",), "200"),
    ],
)
def test_unknown_models_are_served_generically_or_rejected_as_configured(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ini: str, flags: tuple[str, ...], expected: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(UNKNOWN_MODEL)
    monkeypatch.setenv("EXPECTED", expected)

    pytester.runpytest(*STRICT, *flags).assert_outcomes(passed=1)


def test_bad_ini_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nwavespeed_progression = warp\n")
    pytester.makepyfile(STATUSES)

    result = pytester.runpytest(*STRICT)

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*wavespeed options: invalid settings: progression must be one of time, polls, *"])


# --- shipped examples and images --------------------------------------------------------------------------


def _index_models() -> list[str]:
    index = json.loads((data_dir("schemas") / "index.json").read_text(encoding="utf-8"))
    return [entry["model"] for entry in index["endpoints"]]


def test_every_endpoint_has_one_example_valid_against_its_request_schema() -> None:
    index = json.loads((data_dir("schemas") / "index.json").read_text(encoding="utf-8"))

    assert fixtures_data.example_models() == sorted(_index_models())
    for entry in index["endpoints"]:
        schema = json.loads((data_dir("schemas") / entry["request"]).read_text(encoding="utf-8"))
        body = fixtures_data.example(entry["model"])
        # Strict: the real API would keep unknown fields, but an example must use documented ones only.
        errors = [e.message for e in Draft202012Validator({**schema, "additionalProperties": False}).iter_errors(body)]
        assert errors == [], entry["model"]
        assert fixtures_data.example_path(entry["model"]).name == entry["model"].replace("/", "__") + ".json"


def test_the_fake_completes_every_example(
    wavespeed_asgi: ASGIFake, wavespeed_examples: dict[str, dict[str, object]]
) -> None:
    with wavespeed_asgi.client() as client:
        for model, body in wavespeed_examples.items():
            submitted = client.post(f"/api/v3/{model}", json=body)
            assert submitted.status_code == 200, (model, submitted.text)
            result_url = f"/api/v3/predictions/{submitted.json()['data']['id']}/result"
            assert [client.get(result_url).json()["data"]["status"] for _ in range(2)] == ["processing", "completed"]


def test_fixture_images_and_lookup_errors() -> None:
    assert [p.name for p in fixtures_data.images()] == ["badge-48x64.png", "shapes-64x48.png", "target-96x96.jpg"]
    assert fixtures_data.image_path("shapes-64x48.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="no fixture image 'nope.png'; available: badge-48x64.png, "):
        fixtures_data.image_path("nope.png")
    with pytest.raises(KeyError, match="no example request for model 'acme/x'; examples exist for: wavespeed-ai/"):
        fixtures_data.example("acme/x")
    first, second = fixtures_data.example(T2I), fixtures_data.example(T2I)
    first["prompt"] = "changed"
    assert second["prompt"] != "changed"
