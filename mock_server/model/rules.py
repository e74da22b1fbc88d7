"""What tests ask of the fake: queued outcomes, per-model progression and latency, kept in the store."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

from mock_server.model.predictions import CANCELLED, COMPLETED, FAILED, TASK_ERRORS, TIMEOUT, Outcome
from mock_server.model.store import DELETE, Deleted, Kept, Record, Store

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
    id: int = 0

    def matches(self, tenant: str, model: str, prompt: str) -> bool:
        return (
            (self.tenant is None or self.tenant == tenant)
            and (self.model is None or self.model == model)
            and (self.prompt_contains is None or self.prompt_contains in prompt)
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.to_record()
        return data

    def to_record(self) -> Record:
        return {**asdict(self), "outcome": self.outcome.to_record()}

    @classmethod
    def from_record(cls, record: Record) -> Rule:
        return cls(**{**record, "outcome": Outcome.from_record(record["outcome"])})


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
    return Outcome(
        status=status,
        code=code,
        error=error,
        nsfw=tuple(nsfw) if nsfw is not None else None,
        outputs=outputs,
        stuck=spec.get("stuck", False),
        sync_timeout=spec.get("sync_timeout", False),
        latency=latency,
    )


@dataclass
class ModelBehaviour:
    progression: str | None = None
    poll_every: int | None = None
    latency: tuple[float, float] | None = None  # (queue seconds, generation seconds)

    @classmethod
    def from_record(cls, record: Record) -> ModelBehaviour:
        latency = record.get("latency")
        return cls(record.get("progression"), record.get("poll_every"), tuple(latency) if latency else None)


class Rules:
    """Outcome rules and per-model behaviour of one fake, kept in its store.

    A rule's uses are counted by an atomic update of the rule itself, so ``times: 1`` fires once however many
    workers share the store. Rules scoped to a tenant belong to it (a tenant reset removes them).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # Every submit reads the rules and its model's behaviour: kept until the store's version moves.
        self._rules = Kept(store, self._read)
        self._behaviours: tuple[int, dict[tuple[str, str | None], ModelBehaviour]] | None = None

    def enqueue(
        self,
        outcome: Outcome,
        *,
        model: str | None = None,
        prompt_contains: str | None = None,
        tenant: str | None = None,
        times: int | None = 1,
    ) -> Rule:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or null for every match)")
        rule = Rule(outcome, model, prompt_contains, tenant, times, id=int(self.store.incr("rule.seq")))
        self.store.put("rule", f"{rule.id:012d}", rule.to_record(), tenant=tenant or "")
        return rule

    def rules(self, tenant: str | None = None) -> list[Rule]:
        """Rules in the order they were queued; with ``tenant``, only those scoped to it."""
        return [r for r in self._all() if tenant is None or r.tenant == tenant]

    def _all(self) -> tuple[Rule, ...]:
        return self._rules.get()

    def _read(self) -> tuple[Rule, ...]:
        return tuple(sorted((Rule.from_record(r) for r in self.store.records("rule")), key=lambda r: r.id))

    def take(self, tenant: str, model: str, prompt: str) -> Outcome:
        """The outcome of the first matching rule, using it up; a plain success when none matches."""
        rule = self.take_rule(tenant, model, prompt)
        return rule.outcome if rule is not None else Outcome()

    def take_rule(self, tenant: str, model: str, prompt: str) -> Rule | None:
        """The first matching rule with one of its uses taken (``used`` counts it), or None when none matches."""
        for rule in self._rules.get():  # every submit asks, and the usual answer is that there are none
            if not rule.matches(tenant, model, prompt):
                continue
            used: list[Record] = []

            def use(record: Record, used: list[Record]) -> Record | Deleted:
                used.clear()
                record["used"] += 1
                used.append(dict(record))
                times = record.get("times")
                return DELETE if times is not None and record["used"] >= times else record

            self.store.update("rule", f"{rule.id:012d}", functools.partial(use, used=used))
            if used:
                return Rule.from_record(used[0])
            # Another worker used up this rule in the meantime: the next match decides.
        return None

    def clear(self, tenant: str | None = None) -> int:
        """Remove every rule (None) or those scoped to ``tenant``; returns how many."""
        gone = self.rules(tenant)
        for rule in gone:
            self.store.delete("rule", f"{rule.id:012d}")
        return len(gone)

    def set_behaviour(self, model: str, tenant: str | None = None, **changes: Any) -> None:
        key = f"{tenant or ''}|{model}"
        changes = {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}
        if self.store.update("behaviour", key, lambda current: {**current, **changes}) is None:
            self.store.put("behaviour", key, changes, tenant=tenant or "")

    def behaviour_for(self, model: str, tenant: str | None = None) -> ModelBehaviour:
        """Each field from the most specific layer that sets it: tenant+model, tenant, model, "*"."""
        version, cached = self.store.version(), self._behaviours
        if version is not None and cached is not None and cached[0] == version:
            known = cached[1].get((model, tenant))
            if known is not None:
                return known
        behaviour = self._read_behaviour(model, tenant)
        if version is not None:
            # Bounded by the models and keys a run uses; started afresh when the version moves (or it grows large).
            found = cached[1] if cached is not None and cached[0] == version and len(cached[1]) < 4096 else {}
            self._behaviours = (version, {**found, (model, tenant): behaviour})
        return behaviour

    def _read_behaviour(self, model: str, tenant: str | None) -> ModelBehaviour:
        keys = [f"|{model}", "|*"]
        if tenant is not None:
            keys[:0] = [f"{tenant}|{model}", f"{tenant}|*"]
        found = [ModelBehaviour.from_record(r) for r in self.store.get_many("behaviour", keys) if r]
        if not found:  # the usual case: no test set any
            return ModelBehaviour()
        return ModelBehaviour(
            progression=next((b.progression for b in found if b.progression is not None), None),
            poll_every=next((b.poll_every for b in found if b.poll_every is not None), None),
            latency=next((b.latency for b in found if b.latency is not None), None),
        )
