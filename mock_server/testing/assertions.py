"""Assertions over what a client did to the fake, on a per-tenant handle: what it submitted and how it polled.

``TenantHandle`` is the ``FakeWaveSpeed`` the pytest fixtures hand out. Its checks read only the tenant's
journal and predictions, so they hold under parallel tests, and they fail with ``AssertionError`` subclasses
whose messages list every problem found.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from typing import Any

from mock_server.contract.catalog import default_catalog
from mock_server.model.predictions import TERMINAL
from mock_server.testing.client import ControlError, FakeWaveSpeed

# The faults note "fault <id>: status <code>" on the journal entry of a request they answered.
_FAULT_NOTE = re.compile(r"^fault (\d+): status (\d+)")
_LISTED = 5  # violations of one kind shown per prediction before "... and N more"


class WaveSpeedAssertionError(AssertionError):
    """Base of every assertion the fake's test helpers raise."""


class SubmissionMismatch(WaveSpeedAssertionError):
    """No submission carried the expected parameters."""


class PollingAuditError(WaveSpeedAssertionError):
    """The client's polling broke one or more rules; ``violations`` lists them, one readable line each."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = violations
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(f"polling audit found {len(violations)} violation(s):\n{lines}")


@dataclass(frozen=True)
class Submission:
    """One submit request as the fake recorded it."""

    model: str
    body: dict[str, Any]
    status: int | None
    seq: int
    time: float


class TenantHandle(FakeWaveSpeed):
    """A ``FakeWaveSpeed`` for one test's tenant, with assertion helpers and the official SDK at hand.

    Behaviour (``behave``) and faults (``add_fault``) default to this tenant only, like outcomes do.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retry_after: dict[int, float] = {}  # fault id → Retry-After seconds, for the polling audit

    # --- tenant-scoped control --------------------------------------------------------------------------

    def behave(self, model: str = "*", *, all_tenants: bool = False, **behaviour: Any) -> dict[str, Any]:
        """Progression, polls per step and latency for this tenant (``all_tenants=True``: server-wide)."""
        return super().behave(model, **behaviour, **({} if all_tenants else {"tenant": self.api_key}))

    def add_fault(self, *, all_tenants: bool = False, **spec: Any) -> dict[str, Any]:
        fault = super().add_fault(all_tenants=all_tenants, **spec)
        if fault.get("retry_after") is not None:
            self._retry_after[int(fault["id"])] = float(fault["retry_after"])
        return fault

    def configure(
        self,
        *,
        progression: str | None = None,
        poll_every: int | None = None,
        latency: float | list[float] | None = None,
        seed: int | None = None,
        outcomes: list[dict[str, Any]] | None = None,
        faults: list[dict[str, Any]] | None = None,
        webhooks: dict[str, Any] | None = None,
    ) -> None:
        """Set this tenant up declaratively; ``@pytest.mark.wavespeed(...)`` passes its options here.

        Args:
            progression: ``time``, ``polls`` or ``manual``, for this tenant's predictions.
            poll_every: polls per lifecycle step (progression ``polls``).
            latency: seconds, or ``[queue, generation]`` seconds (progression ``time``).
            seed: makes ids, drawn seeds and fault probabilities reproducible (server-wide).
            outcomes: ``enqueue`` arguments each: outcome fields plus ``model``/``prompt_contains``/``times``.
            faults: ``add_fault`` arguments each (``status``, ``retry_after``, ``path``, ``times``, ...).
            webhooks: ``configure_webhooks`` arguments (``delay``, ``duplicate``, ``out_of_order``, ...).

        Raises:
            ValueError: ``"<option>=<value>: <why>"`` for the first option the fake refused.
        """
        given = {k: v for k, v in locals().items() if k != "self" and v is not None}
        for name, value in given.items():
            try:
                if name in ("progression", "poll_every", "latency"):
                    self.behave(**{name: value})
                elif name == "seed":
                    _require(isinstance(value, int) and not isinstance(value, bool), "must be an integer")
                    self.seed(value)
                elif name == "webhooks":
                    _require(isinstance(value, dict), "must be a dict")
                    self.configure_webhooks(**value)
                else:
                    _require(
                        isinstance(value, list) and all(isinstance(i, dict) for i in value), "must be a list of dicts"
                    )
                    for item in value:
                        (self.enqueue if name == "outcomes" else self.add_fault)(**item)
            except (ControlError, ValueError, TypeError) as exc:
                raise ValueError(f"{name}={value!r}: {exc}") from None

    def sdk(self, **options: Any) -> Any:
        """An official SDK client (``wavespeed.Client``) with this tenant's key, pointed at the fake.

        Args:
            **options: further ``wavespeed.Client`` arguments, e.g. ``max_connection_retries=0``.

        Raises:
            RuntimeError: the ``wavespeed`` package is not installed.
        """
        try:
            sdk = importlib.import_module("wavespeed")
        except ImportError:
            raise RuntimeError("handle.sdk() needs the official SDK: pip install wavespeed") from None
        return sdk.Client(api_key=self.api_key, base_url=self.base_url, **options)

    # --- what was sent ------------------------------------------------------------------------------------

    def submission_log(self, model: str | None = None) -> list[Submission]:
        """Every submit request of this tenant (accepted or not), oldest first."""
        controller = self._controller
        models = controller.backend.catalog.endpoints if controller is not None else default_catalog().endpoints
        found = []
        for entry in self.journal(method="POST", path="/api/v3/*"):
            name = entry["path"].removeprefix("/api/v3/")
            if name in models and (model is None or name == model) and isinstance(entry["body"], dict):
                found.append(Submission(name, entry["body"], entry["status"], entry["seq"], entry["time"]))
        return found

    def submissions(self, model: str | None = None) -> list[dict[str, Any]]:
        """The parameters each submit of this tenant sent (to ``model``, if given), oldest first."""
        return [s.body for s in self.submission_log(model)]

    def assert_submitted(self, model: str, /, **params: Any) -> dict[str, Any]:
        """Pass if some submit to ``model`` carried every given parameter with the given value.

        Returns:
            The first matching request body.

        Raises:
            SubmissionMismatch: listing what each submit to ``model`` sent instead.
        """
        bodies = self.submissions(model)
        for body in bodies:
            if all(name in body and body[name] == value for name, value in params.items()):
                return body
        wanted = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "(any parameters)"
        if not bodies:
            others = sorted({s.model for s in self.submission_log()})
            raise SubmissionMismatch(
                f"nothing was submitted to {model} (wanted {wanted}); "
                f"submitted to: {', '.join(others) or 'no model at all'}"
            )
        lines = []
        for number, body in enumerate(bodies, 1):
            differences = [
                f"{k}={body[k]!r}" if k in body else f"{k} missing"
                for k, v in params.items()
                if body.get(k, _MISSING) != v
            ]
            lines.append(f"  #{number}: {', '.join(differences)}   (sent {_short(body)})")
        raise SubmissionMismatch(
            f"no submit to {model} had {wanted}; {len(bodies)} submit(s) differ:\n" + "\n".join(lines)
        )

    def poll_count(self, prediction_id: str) -> int:
        """How many times this tenant asked for the prediction's result."""
        return int(self.prediction(prediction_id)["polls"])

    # --- the polling audit --------------------------------------------------------------------------------

    def audit_polling(
        self,
        prediction_id: str | None = None,
        *,
        min_interval: float | None = None,
        stop_at_terminal: bool = True,
        duplicate_submits: bool = True,
        retry_after: bool = True,
        tolerance: float = 0.005,
    ) -> None:
        """Check how the client polled, for one prediction or all of this tenant's.

        Args:
            prediction_id: audit only this prediction (and requests about it); default: everything.
            min_interval: seconds required between two polls of one prediction.
            stop_at_terminal: no poll after the one that answered completed/failed/cancelled/timeout.
            duplicate_submits: the same model and body accepted twice is a violation.
            retry_after: after a 429/503 with Retry-After N on a path, the next request to it not before N s.
            tolerance: seconds of timing slack (the fake timestamps requests, not the client's sleeps).

        Raises:
            PollingAuditError: listing every violation.
        """
        predictions = [self.prediction(prediction_id)] if prediction_id else self.predictions()
        violations: list[str] = []
        for p in predictions:
            log = [(float(e["time"]), str(e["status"])) for e in p["poll_log"]]
            if stop_at_terminal:
                violations += _after_terminal(p["id"], log)
            if min_interval is not None:
                violations += _too_fast(p["id"], log, min_interval, tolerance)
        if duplicate_submits:
            violations += self._duplicates(predictions if prediction_id else None)
        if retry_after:
            violations += self._ignored_retry_after(predictions[0] if prediction_id else None, tolerance)
        if violations:
            raise PollingAuditError(violations)

    def _duplicates(self, only: list[dict[str, Any]] | None) -> list[str]:
        groups: dict[tuple[str, str], list[Submission]] = {}
        for s in self.submission_log():
            if s.status == 200:
                groups.setdefault((s.model, json.dumps(s.body, sort_keys=True)), []).append(s)
        wanted = {(p["model"], json.dumps(p["input"], sort_keys=True)) for p in only} if only is not None else None
        return [
            f"{model}: the same request was accepted {len(subs)} times (journal "
            f"{', '.join(f'#{s.seq}' for s in subs)}): {_short(subs[0].body)}"
            for (model, key), subs in groups.items()
            if len(subs) > 1 and (wanted is None or (model, key) in wanted)
        ]

    def _ignored_retry_after(self, prediction: dict[str, Any] | None, tolerance: float) -> list[str]:
        entries = [e for e in self.journal() if e["kind"] != "webhook"]  # deliveries are the fake's requests
        if prediction is not None:
            submit_path = f"/api/v3/{prediction['model']}"
            entries = [e for e in entries if prediction["id"] in e["path"] or e["path"] == submit_path]
        violations = []
        for index, entry in enumerate(entries):
            wait = self._retry_after_of(entry)
            if wait is None:
                continue
            following = next((e for e in entries[index + 1 :] if e["path"] == entry["path"]), None)
            if following is None:
                continue
            answered = float(entry["time"]) + float(entry["latency_ms"]) / 1000
            gap = float(following["time"]) - answered
            if gap < wait - tolerance:
                violations.append(
                    f"{entry['method']} {entry['path']}: answered {entry['status']} with Retry-After {wait:g} s "
                    f"(journal #{entry['seq']}), but the next request to it came {max(gap, 0):.3f} s later "
                    f"(journal #{following['seq']})"
                )
        return violations

    def _retry_after_of(self, entry: dict[str, Any]) -> float | None:
        if entry.get("status") not in (429, 503):
            return None
        response_headers = entry.get("response_headers") or {}
        if "retry-after" in response_headers:
            return _seconds(response_headers["retry-after"])
        match = _FAULT_NOTE.match(entry.get("note") or "")
        if match is None:
            return None
        fault_id = int(match.group(1))
        if fault_id not in self._retry_after:  # added by another handle, and maybe not spent yet
            for fault in self.call("faults"):
                if fault["id"] == fault_id and fault.get("retry_after") is not None:
                    self._retry_after[fault_id] = float(fault["retry_after"])
        return self._retry_after.get(fault_id)


_MISSING = object()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _after_terminal(prediction_id: str, log: list[tuple[float, str]]) -> list[str]:
    end = next((i for i, (_, status) in enumerate(log) if status in TERMINAL), None)
    if end is None or end == len(log) - 1:
        return []
    extra = len(log) - end - 1
    return [
        f"prediction {prediction_id}: polled {extra} more time(s) after poll {end + 1} answered "
        f"{log[end][1]!r} (polls {end + 2}..{len(log)}; the first {log[end + 1][0] - log[end][0]:.3f} s later)"
    ]


def _too_fast(prediction_id: str, log: list[tuple[float, str]], minimum: float, tolerance: float) -> list[str]:
    gaps = [(i + 1, log[i + 1][0] - log[i][0]) for i in range(len(log) - 1)]
    fast = [(n, gap) for n, gap in gaps if gap < minimum - tolerance]
    if not fast:
        return []
    shown = ", ".join(f"polls {n}→{n + 1} {gap:.3f} s" for n, gap in fast[:_LISTED])
    more = f" ... and {len(fast) - _LISTED} more" if len(fast) > _LISTED else ""
    return [
        f"prediction {prediction_id}: {len(fast)} poll interval(s) shorter than the required "
        f"{minimum:g} s: {shown}{more}"
    ]


def _seconds(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # an HTTP-date Retry-After: the fake never sends one


def _short(body: dict[str, Any], limit: int = 160) -> str:
    text = json.dumps(body, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["PollingAuditError", "Submission", "SubmissionMismatch", "TenantHandle", "WaveSpeedAssertionError"]
