"""``FakeWaveSpeed``: a handle on one fake server for one tenant, offering every ``/_mock/`` operation in Python."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from mock_server.contract.controlschemas import check_control
from mock_server.contract.errors import ApiError
from mock_server.contract.jsonbody import parse_json
from mock_server.http.control import OPERATIONS, PREFIX, Controller

if TYPE_CHECKING:
    import httpx


class ControlError(RuntimeError):
    """A control operation the fake refused, with its message."""


class FakeWaveSpeed:
    """A handle on one fake server for one tenant (API key): the same operations as ``/_mock/``.

    In-process (``controller`` given) the calls go straight to the server's state; otherwise over HTTP.
    Operations that take a tenant default to this handle's key, so parallel tests never see each other.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        controller: Controller | None = None,
        http: httpx.Client | None = None,
        control_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self._controller = controller
        self._http = http
        # A fake started with --control-token wants it on every /_mock/ call; the environment is where a
        # shared mock's users keep it.
        token = control_token if control_token is not None else os.environ.get("WAVESPEED_MOCK_CONTROL_TOKEN")
        self._control_headers = {"X-Mock-Control-Token": token} if token else {}

    # --- plumbing -------------------------------------------------------------------------------------

    def call(self, name: str, **kwargs: Any) -> Any:
        op = next(o for o in OPERATIONS if o.name == name)
        if self._controller is not None:
            in_path = {k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in op.path}
            try:
                if op.method in ("POST", "PUT"):
                    # The JSON the HTTP door would receive, judged by the same parser and schema.
                    kwargs = check_control(name, parse_json(json.dumps(kwargs).encode(), what="control body"))
                return getattr(self._controller, name)(**kwargs, **in_path)
            except ApiError as exc:
                raise ControlError(exc.message) from None
        import httpx  # only over HTTP: the fixtures' handles reach their server in-process

        path = PREFIX + op.path.format(**{k: kwargs.pop(k) for k in list(kwargs) if "{" + k + "}" in op.path})
        client = self._http or httpx.Client(timeout=30)
        try:
            if op.method in ("GET", "DELETE"):
                query = {k: v for k, v in kwargs.items() if v is not None}
                response = client.request(op.method, self.base_url + path, params=query, headers=self._control_headers)
            else:
                response = client.request(op.method, self.base_url + path, json=kwargs, headers=self._control_headers)
        finally:
            if self._http is None:
                client.close()
        body = response.json()
        if response.status_code != 200:
            raise ControlError(body.get("message", response.text))
        return body["data"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    @property
    def env(self) -> dict[str, str]:
        """Environment variables clients read: key and base URL (Java SDK, CLI, MCP server)."""
        return {"WAVESPEED_API_KEY": self.api_key, "WAVESPEED_BASE_URL": self.base_url}

    # --- operations -----------------------------------------------------------------------------------

    def reset(self, *, everything: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.call("reset", tenant=None if everything else self.api_key)
        return result

    def seed(self, seed: int | None) -> None:
        self.call("seed", seed=seed)

    def enqueue(
        self,
        *,
        model: str | None = None,
        prompt_contains: str | None = None,
        times: int | None = 1,
        all_tenants: bool = False,
        **outcome: Any,
    ) -> dict[str, Any]:
        """Queue an outcome (``status``, ``code``, ``error``, ``nsfw``, ``outputs``, ``stuck``, ``sync_timeout``,
        ``latency``) for the next ``times`` matching predictions of this tenant. The fields may also come nested,
        ``enqueue(outcome={"status": "failed"}, ...)``: the same two forms as ``POST /_mock/outcomes``."""
        # Sent flat (the outcome fields beside the rule) unless the caller passed outcome={...}: the server takes
        # both forms and normalises them alike.
        result: dict[str, Any] = self.call(
            "enqueue",
            **outcome,
            model=model,
            prompt_contains=prompt_contains,
            tenant=None if all_tenants else self.api_key,
            times=times,
        )
        return result

    def fail_next(self, code: int = 5000, error: str | None = None, **match: Any) -> dict[str, Any]:
        if error is not None:
            match["error"] = error
        return self.enqueue(status="failed", code=code, **match)

    def behave(self, model: str = "*", **behaviour: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("behave", model=model, **behaviour)
        return result

    def advance(self, prediction_id: str, steps: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = self.call("advance", prediction_id=prediction_id, steps=steps, tenant=self.api_key)
        return result

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self.call("advance_clock", seconds=seconds)
        return result

    def prediction(self, prediction_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("prediction", prediction_id=prediction_id, tenant=self.api_key)
        return result

    def predictions(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("predictions", tenant=self.api_key)
        return result

    def add_fault(self, *, all_tenants: bool = False, **spec: Any) -> dict[str, Any]:
        """Inject an HTTP fault; by default only this tenant's requests are hit."""
        if not all_tenants:
            spec.setdefault("tenant", self.api_key)
        result: dict[str, Any] = self.call("add_fault", **spec)
        return result

    def clear_faults(self) -> None:
        self.call("clear_faults", tenant=self.api_key)

    def faults(self) -> list[dict[str, Any]]:
        """The server's active faults (each says which tenant it targets)."""
        result: list[dict[str, Any]] = self.call("faults")
        return result

    def outcomes(self) -> list[dict[str, Any]]:
        """This tenant's queued outcome rules."""
        result: list[dict[str, Any]] = self.call("outcomes", tenant=self.api_key)
        return result

    def clear_outcomes(self) -> None:
        self.call("clear_outcomes", tenant=self.api_key)

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.call("health")
        return result

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("journal", tenant=self.api_key, **filters)
        return result

    def count(self, **filters: Any) -> int:
        result: int = self.call("journal_count", tenant=self.api_key, **filters)
        return result

    def unmatched(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("unmatched", tenant=self.api_key)
        return result

    def configure_webhooks(self, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.call("configure_webhooks", tenant=self.api_key, **options)
        return result

    def deliveries(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("deliveries", tenant=self.api_key)
        return result

    def generic(self) -> list[dict[str, Any]]:
        """The model paths this tenant ran that the fake served generically (no schema), with counts."""
        result: list[dict[str, Any]] = self.call("generic", tenant=self.api_key)
        return result

    def apply_scenario(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("apply_scenario", **document)
        return result
