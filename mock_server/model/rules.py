"""What tests ask of the fake: queued outcomes, per-model progression and latency."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from mock_server.model.predictions import CANCELLED, COMPLETED, FAILED, TASK_ERRORS, TIMEOUT, Outcome

OUTCOME_STATUSES = (COMPLETED, FAILED, CANCELLED, TIMEOUT)


@dataclass
class Rule:
    """Give ``outcome`` to the next ``times`` predictions that match (None: every match, until reset)."""

    outcome: Outcome
    model: str | None = None
    prompt_contains: str | None = None
    tenant: str | None = None
    times: int | None = 1
    used: int = 0

    def matches(self, tenant: str, model: str, prompt: str) -> bool:
        return (
            (self.tenant is None or self.tenant == tenant)
            and (self.model is None or self.model == model)
            and (self.prompt_contains is None or self.prompt_contains in prompt)
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = {k: v for k, v in data["outcome"].items() if v not in (None, False)}
        if self.tenant is not None:
            data["tenant"] = "<redacted>"
        return data


def make_outcome(spec: dict[str, Any]) -> Outcome:
    """An Outcome from plain data (control API, scenario files, markers), with every field checked."""
    allowed = {"status", "code", "error", "nsfw", "outputs", "stuck", "sync_timeout", "latency"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"unknown outcome field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    status = spec.get("status", FAILED if "code" in spec else COMPLETED)
    if status not in OUTCOME_STATUSES:
        raise ValueError(f"outcome status must be one of {', '.join(OUTCOME_STATUSES)}, not {status!r}")
    code = spec.get("code")
    if code is not None and code not in TASK_ERRORS:
        raise ValueError(f"task code {code!r} is not in the API's error-code table {sorted(TASK_ERRORS)}")
    if code is not None and status == COMPLETED:
        raise ValueError("a task code only makes sense with status failed")
    nsfw = spec.get("nsfw")
    if nsfw is not None and not (isinstance(nsfw, list) and all(isinstance(x, bool) for x in nsfw)):
        raise ValueError("nsfw must be a list of booleans, one per output")
    outputs = spec.get("outputs")
    if outputs is not None and (not isinstance(outputs, int) or outputs < 0):
        raise ValueError("outputs must be a non-negative integer")
    latency = spec.get("latency")
    if latency is not None and (not isinstance(latency, (int, float)) or latency < 0):
        raise ValueError("latency must be a non-negative number of seconds")
    for flag in ("stuck", "sync_timeout"):
        if not isinstance(spec.get(flag, False), bool):
            raise ValueError(f"{flag} must be true or false")
    error = spec.get("error")
    if error is not None and not isinstance(error, str):
        raise ValueError("error must be a string")
    return Outcome(status=status, code=code, error=error, nsfw=tuple(nsfw) if nsfw is not None else None,
                   outputs=outputs, stuck=spec.get("stuck", False), sync_timeout=spec.get("sync_timeout", False),
                   latency=latency)


@dataclass
class ModelBehaviour:
    progression: str | None = None
    poll_every: int | None = None
    latency: tuple[float, float] | None = None  # (queue seconds, generation seconds)


@dataclass
class Scenario:
    rules: list[Rule] = field(default_factory=list)
    behaviour: dict[str, ModelBehaviour] = field(default_factory=dict)  # by model; "*" for all
    # By (tenant, model): one test's progression must not reach tests running beside it on the same server.
    tenant_behaviour: dict[tuple[str, str], ModelBehaviour] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def enqueue(self, outcome: Outcome, *, model: str | None = None, prompt_contains: str | None = None,
                tenant: str | None = None, times: int | None = 1) -> Rule:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or null for every match)")
        rule = Rule(outcome, model, prompt_contains, tenant, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def take(self, tenant: str, model: str, prompt: str) -> Outcome:
        with self._lock:
            for rule in self.rules:
                if rule.matches(tenant, model, prompt):
                    rule.used += 1
                    if rule.times is not None and rule.used >= rule.times:
                        self.rules.remove(rule)
                    return rule.outcome
        return Outcome()

    def set_behaviour(self, model: str, tenant: str | None = None, **changes: Any) -> None:
        with self._lock:
            if tenant is None:
                current = self.behaviour.setdefault(model, ModelBehaviour())
            else:
                current = self.tenant_behaviour.setdefault((tenant, model), ModelBehaviour())
            for key, value in changes.items():
                setattr(current, key, value)

    def behaviour_for(self, model: str, tenant: str | None = None) -> ModelBehaviour:
        """Each field from the most specific layer that sets it: tenant+model, tenant, model, "*"."""
        with self._lock:
            layers = [self.behaviour.get(model), self.behaviour.get("*")]
            if tenant is not None:
                layers[:0] = [self.tenant_behaviour.get((tenant, model)), self.tenant_behaviour.get((tenant, "*"))]
            found = [layer for layer in layers if layer is not None]
            return ModelBehaviour(
                progression=next((b.progression for b in found if b.progression is not None), None),
                poll_every=next((b.poll_every for b in found if b.poll_every is not None), None),
                latency=next((b.latency for b in found if b.latency is not None), None),
            )

    def reset(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self.rules.clear()
                self.behaviour.clear()
                self.tenant_behaviour.clear()
            else:
                self.tenant_behaviour = {k: v for k, v in self.tenant_behaviour.items() if k[0] != tenant}
                self.rules = [r for r in self.rules if r.tenant != tenant]
