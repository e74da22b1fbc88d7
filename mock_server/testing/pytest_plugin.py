"""pytest plugin: an offline fake WaveSpeedAI API for a client project's tests, one tenant per test (xdist-safe).

Loaded through the ``pytest11`` entry point. Fixtures: ``wavespeed_server`` (session, uvicorn on loopback),
``wavespeed`` (a tenant handle on it), ``wavespeed_asgi`` (in-process, no socket), ``wavespeed_env`` (the
environment and the SDK's module config point at the fake), ``wavespeed_examples``. Marker: ``wavespeed(...)``.

pytest loads this module in every session of a project that merely has the package installed, so at import it
needs only pytest, the standard library and ``mock_server.settings`` (itself stdlib-only): the app, starlette,
jsonschema, Pillow and httpx load inside the fixtures, when a test asks for the fake.
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mock_server.settings import PROGRESSIONS, UNKNOWN_MODELS, Settings

if TYPE_CHECKING:
    from mock_server.http.control import Controller
    from mock_server.http.server import RunningServer
    from mock_server.testing.assertions import TenantHandle
    from mock_server.testing.inprocess import ASGIFake

FIXTURES = ("wavespeed", "wavespeed_asgi", "wavespeed_env")
# A client polling faster than this is almost certainly in a loop without a sleep; 0 turns the check off.
DEFAULT_MIN_POLL_INTERVAL = 0.05
# Spelled out rather than read from TenantHandle's signatures, which would import the whole kit at start-up;
# tests/test_plugin_import.py keeps them equal to TenantHandle.audit_polling's and TenantHandle.configure's.
AUDIT_OPTIONS = ("prediction_id", "min_interval", "stop_at_terminal", "duplicate_submits", "retry_after", "tolerance")
# The marker takes exactly TenantHandle.configure's options, plus the teardown audit.
MARKER_OPTIONS = ("progression", "poll_every", "latency", "seed", "outcomes", "faults", "webhooks", "audit")
# (ini name, type, default, help); each is also a --wavespeed-... flag, which wins over the ini value.
OPTIONS: tuple[tuple[str, type, Any, str], ...] = (
    ("wavespeed_progression", str, "polls", f"how predictions advance: {', '.join(PROGRESSIONS)}"),
    ("wavespeed_poll_every", int, 1, "with progression polls: polls per lifecycle step"),
    ("wavespeed_latency_scale", float, 1.0, "with progression time: multiply each model's latency (0 = instant)"),
    ("wavespeed_audit", bool, False, "audit each tenant's polling at teardown (only of tests that passed)"),
    (
        "wavespeed_min_poll_interval",
        float,
        DEFAULT_MIN_POLL_INTERVAL,
        "seconds the teardown audit requires between two polls of a prediction (0: no minimum)",
    ),
    ("wavespeed_schemas", str, "", "directory of extra endpoint schemas (`wavespeed-mock schemas add`) to serve too"),
    (
        "wavespeed_unknown_models",
        str,
        "generic",
        "a model path no schema describes: "
        f"{' (placeholder outputs) or '.join(UNKNOWN_MODELS)} (404 with a suggestion)",
    ),
)
CHOICES = {"wavespeed_progression": PROGRESSIONS, "wavespeed_unknown_models": UNKNOWN_MODELS}
SETTINGS = pytest.StashKey[Settings]()
AUDIT = pytest.StashKey[tuple[bool, dict[str, Any]]]()  # (audit every test?, default audit options)
CALL_PASSED = pytest.StashKey[bool]()


# --- the marker ----------------------------------------------------------------------------------------------


def _marker_options(item: pytest.Item) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("wavespeed"))):  # module, then class, then function wins
        if marker.args:
            pytest.fail(
                f"@pytest.mark.wavespeed takes keyword options only ({', '.join(MARKER_OPTIONS)}), "
                f"got positional {marker.args!r}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    unknown = sorted(set(options) - set(MARKER_OPTIONS))
    if unknown:
        pytest.fail(
            f"@pytest.mark.wavespeed: unknown option(s) {', '.join(unknown)}; allowed: {', '.join(MARKER_OPTIONS)}",
            pytrace=False,
        )
    return options


def _audit_options(config: pytest.Config, options: dict[str, Any]) -> dict[str, Any] | None:
    every_test, defaults = config.stash[AUDIT]
    audit = options.get("audit", every_test)
    if audit is False or audit is None:
        return None
    if audit is True:
        return dict(defaults)
    unknown = sorted(set(audit) - set(AUDIT_OPTIONS)) if isinstance(audit, dict) else [repr(audit)]
    if unknown:
        pytest.fail(
            f"@pytest.mark.wavespeed(audit=...) takes true/false or a dict; unknown: {', '.join(unknown)}; "
            f"allowed keys: {', '.join(AUDIT_OPTIONS)}",
            pytrace=False,
        )
    return {**defaults, **audit}


@contextmanager
def _tenant(request: pytest.FixtureRequest, base_url: str, controller: Controller) -> Iterator[TenantHandle]:
    from mock_server.testing.assertions import TenantHandle

    handle = TenantHandle(base_url, f"ws-test-{secrets.token_hex(12)}", controller=controller)
    options = _marker_options(request.node)
    audit = _audit_options(request.config, options)
    try:
        try:
            handle.configure(**{k: v for k, v in options.items() if k != "audit"})
        except ValueError as exc:
            pytest.fail(f"@pytest.mark.wavespeed option {exc}", pytrace=False)
        yield handle
        if audit is not None and request.node.stash.get(CALL_PASSED, False):
            _teardown_audit(handle, audit)
    finally:
        handle.reset()
        if "seed" in options:
            handle.seed(None)


def _teardown_audit(handle: TenantHandle, audit: dict[str, Any]) -> None:
    from mock_server.testing.assertions import PollingAuditError

    try:
        handle.audit_polling(**audit)
        return
    except PollingAuditError as exc:
        failure = exc
    # Failed outside the except block, or pytest would print the audit error again as the failure's context; and
    # without the traceback, which would be this plugin's code printed before the message.
    hint = ""
    if any("poll interval(s) shorter than" in violation for violation in failure.violations):
        hint = (
            f"\n(min_interval {audit['min_interval']:g} s: change it with "
            '@pytest.mark.wavespeed(audit={"min_interval": ...}) or the wavespeed_min_poll_interval ini '
            "option; 0 turns the check off)"
        )
    pytest.fail(f"wavespeed teardown audit: {failure}{hint}", pytrace=False)


# --- hooks ----------------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wavespeed", "fake WaveSpeedAI API (wavespeed-mock)")
    for name, kind, default, text in OPTIONS:
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            parser.addini(name, text, type="bool", default=default)
            group.addoption(flag, dest=name, action="store_true", default=None, help=f"{text} [ini {name}]")
        else:
            parser.addini(name, text, default=str(default))
            choices = CHOICES.get(name)
            metavar = (
                None
                if choices
                else "DIR"
                if kind is str
                else "N"
                if kind is int
                else "FACTOR"
                if "scale" in name
                else "SECONDS"
            )
            shown = "none" if default == "" else default
            group.addoption(
                flag,
                dest=name,
                type=kind,
                default=None,
                help=f"{text} [ini {name}; default {shown}]",
                choices=choices,
                metavar=metavar,
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"wavespeed({', '.join(MARKER_OPTIONS)}): configure this test's tenant "
        "on the fake WaveSpeedAI API (mock_server.testing.pytest_plugin)",
    )
    values: dict[str, Any] = {}
    for name, kind, _, _ in OPTIONS:
        value = config.getoption(name)
        value = config.getini(name) if value is None else value
        try:
            values[name.removeprefix("wavespeed_")] = value if kind is bool else kind(value)
        except ValueError:
            raise pytest.UsageError(f"{name} = {value!r} is not a valid {kind.__name__}") from None
    try:
        config.stash[SETTINGS] = Settings(
            port=0,
            log_level="warning",
            progression=values["progression"],
            poll_every=values["poll_every"],
            latency_scale=values["latency_scale"],
            unknown_models=values["unknown_models"],
            schemas=_schemas_dir(config, values["schemas"]),
        ).validated()
    except ValueError as exc:
        raise pytest.UsageError(f"wavespeed options: {exc}") from None
    if values["min_poll_interval"] < 0:
        raise pytest.UsageError(
            f"wavespeed_min_poll_interval = {values['min_poll_interval']!r} must not be negative "
            "(0 turns the check off)"
        )
    config.stash[AUDIT] = (values["audit"], {"min_interval": values["min_poll_interval"] or None})


def _schemas_dir(config: pytest.Config, value: str) -> str | None:
    """The ``wavespeed_schemas`` folder: a flag is relative to where pytest was started, an ini value to its
    ini file; checked now so a wrong path is one usage error rather than an error in every test."""
    if not value:
        return None
    base = (
        config.invocation_params.dir
        if config.getoption("wavespeed_schemas")
        else (config.inipath.parent if config.inipath else config.rootpath)
    )
    path = Path(base) / value
    if not (path / "index.json").is_file():
        raise pytest.UsageError(
            f"wavespeed_schemas = {value!r}: {path} holds no generated schemas (no index.json); "
            f"create it with `wavespeed-mock schemas add SOURCE --into {value}`"
        )
    return str(path)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("wavespeed") and not set(getattr(item, "fixturenames", ())) & set(FIXTURES):
        pytest.fail(
            f"@pytest.mark.wavespeed on {item.name} does nothing without one of the fixtures {', '.join(FIXTURES)}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_PASSED] = report.passed  # teardown audits must not bury the test's own failure
    return report


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wavespeed_server(pytestconfig: pytest.Config) -> Iterator[RunningServer]:
    """The session's fake WaveSpeedAI server: uvicorn on a free loopback port (one per xdist worker)."""
    from mock_server.http.app import create_app
    from mock_server.http.server import run_in_thread

    running = run_in_thread(create_app(pytestconfig.stash[SETTINGS]))
    yield running
    running.stop()


@pytest.fixture
def wavespeed(request: pytest.FixtureRequest, wavespeed_server: RunningServer) -> Iterator[TenantHandle]:
    """A fresh tenant (random API key) on the session's fake: ``base_url``, ``api_key``, ``sdk()``, control and
    assertion helpers. Configured by ``@pytest.mark.wavespeed(...)``; reset at teardown."""
    with _tenant(request, wavespeed_server.base_url, wavespeed_server.app.state.mock.controller) as handle:
        yield handle


@pytest.fixture
def wavespeed_asgi(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[ASGIFake]:
    """A fresh in-process fake (no socket): ``transport`` / ``sync_transport`` for httpx, ``client()``,
    ``async_client()``, ``base_url`` and the tenant ``handle``. Its lifespan runs until teardown."""
    from mock_server.http.app import create_app
    from mock_server.testing.inprocess import ASGIFake, InProcessServer

    app = create_app(pytestconfig.stash[SETTINGS])
    server = InProcessServer(app)
    try:
        with _tenant(request, server.base_url, app.state.mock.controller) as handle:
            yield ASGIFake(server, handle)
    finally:
        server.close()


@pytest.fixture
def wavespeed_env(wavespeed: TenantHandle, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantHandle]:
    """The ``wavespeed`` handle, with WAVESPEED_API_KEY / WAVESPEED_BASE_URL set and the official SDK's module
    config pointed at the fake, so ``wavespeed.run(...)`` works unmodified."""
    for name, value in wavespeed.env.items():
        monkeypatch.setenv(name, value)
    try:
        sdk = importlib.import_module("wavespeed")
    except ImportError:
        yield wavespeed
        return
    # Set and restored by hand: the SDK's config is a proxy whose values are not in its __dict__, so recent
    # pytest's monkeypatch.setattr takes them for absent and deletes them at teardown (breaking later clients).
    config = sdk.config.api
    saved = (config.api_key, config.base_url)
    config.api_key, config.base_url = wavespeed.api_key, wavespeed.base_url
    # wavespeed.run() keeps the Client it built from the config on first use; have it build a fresh one.
    monkeypatch.setattr(sdk.api, "_default_client", None, raising=False)
    try:
        yield wavespeed
    finally:
        config.api_key, config.base_url = saved


@pytest.fixture
def wavespeed_examples() -> dict[str, dict[str, Any]]:
    """A valid example request body per model (fresh copies), from the shipped ``fixtures/examples``."""
    from mock_server.testing import fixtures_data

    return fixtures_data.examples()
