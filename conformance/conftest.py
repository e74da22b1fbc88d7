"""Conformance suite plumbing: options, the ``target`` fixture, hypothesis profiles, ordering, drift report.

Options (also listed by ``wavespeed-mock conformance --help``):
  --target fake|URL   the API under test (default: a fake started here on a loopback port; a URL needs
                      WAVESPEED_API_KEY)
  --budget N          at most N accepted (paid) submits against a URL target (default 3)
  --dry-run           print what would be sent and its estimated cost; send nothing
  --report PATH       write the JSON drift report here
  --max-examples N    override the hypothesis profile's examples per property
  --poll-interval S / --poll-timeout S   polling of a URL target: first pause, and the deadline
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from kit_media import fixture_data_uris
from kit_target import Budget, Target, endpoints_of, price_rank, short_model
from kit_violations import ConformanceError, Violation, split_exceptions

from mock_server.contract.catalog import Endpoint, default_catalog

API_KEY_ENV = "WAVESPEED_API_KEY"
DEFAULT_BUDGET = 3
# The default run on the fake: each endpoint is its own test, and the four paid properties all drive a full
# submit-and-poll journey through the same checks, so 15 examples per property still give every endpoint 60
# journeys; past that, extra examples mostly repeat what was seen (and the run took ~5 minutes at 50).
FAKE_EXAMPLES = 15
THOROUGH_EXAMPLES = 50  # --profile thorough: the earlier default depth, for scheduled runs
PAID_EXAMPLES = 3
PROFILES = ("fake", "thorough", "paid")
STANDIN_URLS = ("https://example.com/inputs/lighthouse.png", "https://example.com/inputs/portrait.jpg")


@dataclass
class SuiteState:
    """Everything the plugin keeps for one run (in ``config.stash``)."""

    target_option: str
    budget_limit: int | None
    dry_run: bool
    report_path: Path | None
    profile: str
    target: Target | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    failed_tests: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    passed: int = 0

    @property
    def paid(self) -> bool:
        return self.target_option != "fake"


STATE = pytest.StashKey[SuiteState]()


# --------------------------------------------------------------------------------------------------------
# options and configuration


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wavespeed-conformance", "WaveSpeed API conformance")
    group.addoption(
        "--target",
        default="fake",
        help="'fake' (default: start the fake on a loopback port) or the base URL of a WaveSpeed-"
        f"compatible API; a URL needs the API key in ${API_KEY_ENV}",
    )
    group.addoption(
        "--budget",
        type=int,
        default=None,
        help=f"at most N accepted (paid) predictions against a URL target (default {DEFAULT_BUDGET}); "
        "tests that would submit more are skipped",
    )
    group.addoption(
        "--dry-run",
        action="store_true",
        default=False,
        help="print each request the suite would send and the estimated cost; send nothing",
    )
    group.addoption("--report", default=None, metavar="PATH", help="write the JSON drift report to PATH")
    group.addoption(
        "--max-examples",
        type=int,
        default=None,
        metavar="N",
        help=f"examples per property (default: profile 'fake' {FAKE_EXAMPLES}, 'thorough' "
        f"{THOROUGH_EXAMPLES}, 'paid' {PAID_EXAMPLES})",
    )
    group.addoption(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="URL target: first pause between polls, growing 1.5x per poll up to 8 s (default 1)",
    )
    group.addoption(
        "--poll-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up on a prediction that is not terminal after this long (default 300)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "free: costs nothing (requests the API must reject, auth probes, uploads)")
    config.addinivalue_line("markers", "paid: submits predictions a real API charges for")
    config.addinivalue_line("markers", "endpoint_has(name): run only for endpoints whose schema lists `name`")
    target_option = str(config.getoption("--target"))
    paid = target_option != "fake"
    budget = config.getoption("--budget")
    if budget is None:
        budget = DEFAULT_BUDGET if paid else None
    report = config.getoption("--report")
    # No "explain" phase: its coverage tracing reruns examples and names httpx internals, not the API.
    for name, examples in (("fake", FAKE_EXAMPLES), ("thorough", THOROUGH_EXAMPLES)):
        settings.register_profile(
            name,
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=_relaxed(),
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        )
    settings.register_profile(
        "paid",
        max_examples=PAID_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=_relaxed(),
        phases=(Phase.explicit, Phase.generate),
    )  # shrinking would pay for every step
    profile = str(config.getoption("hypothesis_profile", None) or ("paid" if paid else "fake"))
    examples = config.getoption("--max-examples")
    if examples is not None:
        settings.register_profile(
            f"{profile}-{examples}", parent=settings.get_profile(profile), max_examples=max(1, examples)
        )
        profile = f"{profile}-{examples}"
    settings.load_profile(profile)
    config.stash[STATE] = SuiteState(
        target_option,
        budget if paid else None,
        bool(config.getoption("--dry-run")),
        Path(report) if report else None,
        profile,
    )


def _relaxed() -> list[HealthCheck]:
    return [
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ]


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    budget = "unlimited (fake)" if state.budget_limit is None else f"{state.budget_limit} paid prediction(s)"
    return [
        f"wavespeed conformance: target {state.target_option}, budget {budget}, hypothesis profile "
        f"{state.profile}{', DRY RUN (nothing is sent)' if state.dry_run else ''}"
    ]


# --------------------------------------------------------------------------------------------------------
# parametrization and order: free probes first, then paid properties cheapest endpoint first


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "endpoint" not in metafunc.fixturenames:
        return
    endpoints = endpoints_of(default_catalog())
    for marker in metafunc.definition.iter_markers("endpoint_has"):
        endpoints = [e for e in endpoints if all(name in e.properties for name in marker.args)]
    metafunc.parametrize("endpoint", endpoints, ids=[short_model(e.model) for e in endpoints])


# Within one endpoint, paid properties that check the most per prediction go first: a small budget then
# buys whole journeys (submit, lifecycle, downloads) rather than bare acceptance checks.
PAID_ORDER = (
    "test_outputs_are_images_of_the_requested_format_and_size",
    "test_sync_mode_matches_submit_then_poll",
    "test_lifecycle_moves_forward_and_terminal_state_is_stable",
    "test_valid_request_is_accepted",
)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    def key(indexed: tuple[int, pytest.Item]) -> tuple[int, float, int, int]:
        index, item = indexed
        free = item.get_closest_marker("free") is not None
        callspec = getattr(item, "callspec", None)
        endpoint = callspec.params.get("endpoint") if callspec is not None else None
        cost = price_rank(endpoint)[0] if isinstance(endpoint, Endpoint) else math.inf
        name = getattr(item, "originalname", item.name)
        priority = PAID_ORDER.index(name) if name in PAID_ORDER else len(PAID_ORDER)
        return (0 if free else 1, cost, priority, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]


# --------------------------------------------------------------------------------------------------------
# the target


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The API under test: a fake started here, or the URL given by --target (needs WAVESPEED_API_KEY)."""
    config = request.config
    state = config.stash[STATE]
    budget = Budget(state.budget_limit)
    common: dict[str, Any] = {
        "budget": budget,
        "dry_run": state.dry_run,
        "catalog": default_catalog(),
        "poll_timeout": float(config.getoption("--poll-timeout")),
    }
    if not state.paid:
        key = f"conformance-{secrets.token_hex(8)}"
        tgt = Target(
            name="fake",
            base_url="http://fake.invalid",
            api_key=key,
            paid=False,
            controls=True,
            poll_steps=1,
            poll_interval=0.0,
            max_polls=50,
            input_images=fixture_data_uris() + STANDIN_URLS,
            **common,
        )
        running = None
        if not state.dry_run:
            from mock_server.http.app import create_app
            from mock_server.http.server import run_in_thread

            running = run_in_thread(create_app(_fake_settings(key)))
            tgt.base_url = running.base_url
        capture = ServerErrors(tgt)
        logging.getLogger("uvicorn.error").addFilter(capture)
        state.target = tgt
        yield tgt
        logging.getLogger("uvicorn.error").removeFilter(capture)
        tgt.close()
        if running is not None:
            running.stop()
        return
    key = os.environ.get(API_KEY_ENV, "")
    if not key and not state.dry_run:
        pytest.skip(
            f"--target {state.target_option} needs an API key: set {API_KEY_ENV} (real-target tests "
            "are skipped without one)"
        )
    tgt = Target(
        name=state.target_option,
        base_url=state.target_option.rstrip("/"),
        api_key=key or "<unset>",
        paid=True,
        poll_interval=max(0.0, float(config.getoption("--poll-interval"))),
        input_images=fixture_data_uris(),
        **common,
    )
    state.target = tgt
    yield tgt
    tgt.close()


class ServerErrors(logging.Filter):
    """Exceptions inside the fake, kept as notes for the report instead of tracebacks on stderr.

    Formatting a traceback in the server thread while pytest formats one in the main thread trips a CPython
    3.11.7 bug (both use the AST machinery: "SystemError: AST constructor recursion depth mismatch"), which
    would hide the real failure; the 500 answer itself is what the properties report.
    """

    def __init__(self, target: Target, limit: int = 20) -> None:
        super().__init__()
        self.target = target
        self.limit = limit
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        exc = record.exc_info[1]
        text = f"exception in the fake: {type(exc).__name__}: {str(exc)[:300]}"
        if text not in self.seen and len(self.seen) < self.limit:
            self.seen.add(text)
            self.target.notes.append(text)
        return False


def _fake_settings(key: str) -> Any:
    """The fake as the suite wants it: one step per poll (nothing sleeps), only our key, money no object."""
    from mock_server.settings import Settings

    wanted: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "api_keys": (key,),
        "progression": "polls",
        "poll_every": 1,
        "latency_scale": 0.0,
        "log_level": "warning",
        "starting_balance": 1e12,
    }
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in wanted.items() if k in known}).validated()


# --------------------------------------------------------------------------------------------------------
# the drift report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    state = item.config.stash[STATE]
    if report.failed:
        state.failed_tests.append(item.nodeid)
        state.violations.extend(_violations_of(item, call))
    elif report.skipped and call.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        state.skipped.append({"test": item.nodeid, "reason": str(reason).removeprefix("Skipped: ")})
    elif report.passed and call.when == "call":
        state.passed += 1
    return report


def _violations_of(item: pytest.Item, call: pytest.CallInfo[None]) -> list[dict[str, Any]]:
    prop = getattr(item, "originalname", item.name).removeprefix("test_")
    callspec = getattr(item, "callspec", None)
    endpoint = callspec.params.get("endpoint") if callspec else None
    default_endpoint = endpoint.model if isinstance(endpoint, Endpoint) else "-"
    found: list[dict[str, Any]] = []
    if call.excinfo is None:
        return found
    for exc in split_exceptions(call.excinfo.value):
        example = "\n".join(str(n) for n in getattr(exc, "__notes__", []))
        if isinstance(exc, ConformanceError):
            for violation in exc.violations:
                found.append(
                    {
                        "property": prop,
                        "test": item.nodeid,
                        **violation.to_json(),
                        "request": exc.request,
                        "example": example,
                    }
                )
        else:
            generic = Violation(
                default_endpoint,
                f"{call.when} of the test",
                "(property)",
                "the property to hold",
                f"{type(exc).__name__}: {str(exc)[:400]}",
            )
            found.append(
                {"property": prop, "test": item.nodeid, **generic.to_json(), "request": None, "example": example}
            )
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or state.report_path is None:
        return
    state.report_path.parent.mkdir(parents=True, exist_ok=True)
    state.report_path.write_text(json.dumps(_report(state, int(exitstatus)), indent=2) + "\n", encoding="utf-8")


def _report(state: SuiteState, exitstatus: int) -> dict[str, Any]:
    target = state.target
    return {
        "target": state.target_option,
        "profile": state.profile,
        "dry_run": state.dry_run,
        "exit_status": exitstatus,
        "ok": not state.violations and not state.failed_tests,
        "counts": {
            "passed": state.passed,
            "failed": len(state.failed_tests),
            "skipped": len(state.skipped),
            "violations": len(state.violations),
        },
        "violations": state.violations,
        "budget": (target.budget.to_json() if target else Budget(state.budget_limit).to_json()),
        "notes": list(target.notes) if target else [],
        "planned_requests": [p.to_json() for p in target.planned] if target else [],
        "skipped": state.skipped,
    }


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is None:
        return
    write = terminalreporter.write_line
    terminalreporter.section("wavespeed conformance report", sep="=")
    target = state.target
    budget = target.budget if target else Budget(state.budget_limit)
    limit = "unlimited" if budget.limit is None else str(budget.limit)
    write(
        f"target: {state.target_option}   profile: {state.profile}   accepted submits: {budget.spent} "
        f"(budget {limit})   estimated cost: ${budget.cost_usd:.3f}"
        + (f" + {budget.unpriced} at an unknown price" if budget.unpriced else "")
    )
    if state.dry_run and target is not None:
        write(f"dry run: {len(target.planned)} request(s) would be sent (nothing was):")
        paid = [p for p in target.planned if p.estimated_cost_usd != 0.0]
        for planned in target.planned:
            write(f"  {planned.line()}")
        cap = len(paid) if budget.limit is None else min(budget.limit, len(paid))
        known = sum(p.estimated_cost_usd or 0.0 for p in paid[:cap])
        write(
            f"estimated cost of the first {cap} paid prediction(s) the budget allows: ${known:.3f}"
            + (" (+ unknown prices)" if any(p.estimated_cost_usd is None for p in paid[:cap]) else "")
        )
    for note in target.notes if target else []:
        write(f"note: {note}")
    if not state.violations:
        write(f"no violations ({state.passed} passed, {len(state.skipped)} skipped)")
        return
    write(f"{len(state.violations)} violation(s) in {len(state.failed_tests)} failed test(s):", red=True)
    for entry in state.violations:
        write(
            f"  [{entry['property']}] {entry['endpoint']}: {entry['where']} {entry['path']}: expected "
            f"{entry['expected']}; observed {entry['observed']}",
            red=True,
        )
        if entry.get("request"):
            write(f"      request: {entry['request']}")
    if state.report_path is not None:
        write(f"JSON drift report: {state.report_path}")
    sys.stdout.flush()
