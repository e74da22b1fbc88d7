"""The /_mock/ control plane judged by JSON Schemas (schemas/control/): every door, one outcome shape, every
violation listed, nothing invalid reaching state — and whatever the schemas accept never breaks a later submit."""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from mock_server.cli import main
from mock_server.contract import controlschemas
from mock_server.contract.catalog import default_catalog
from mock_server.contract.controlschemas import bundle, check_control, validate_control
from mock_server.contract.errors import BadRequest
from mock_server.http.app import create_app
from mock_server.http.control import OPERATIONS, Controller
from mock_server.http.faults import ACTIONS, DISTRIBUTION_KEYS, KEYS
from mock_server.model.predictions import TASK_ERRORS
from mock_server.model.rules import OUTCOME_STATUSES
from mock_server.resources import data_dir
from mock_server.settings import PROGRESSIONS, Settings
from mock_server.testing.assertions import TenantHandle
from mock_server.testing.client import ControlError, FakeWaveSpeed
from mock_server.testing.inprocess import InProcessServer
from tests.conftest import DEV, T2I, Live

CONTROL = data_dir("schemas") / "control"
SCHEMAS = controlschemas.default()
FLAT = {"status": "failed", "code": 1402, "prompt_contains": "broken"}
NESTED = {"outcome": {"status": "failed", "code": 1402}, "prompt_contains": "broken"}


# --- the schemas themselves ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", sorted(SCHEMAS.schemas))
def test_each_control_schema_is_2020_12_and_closed(stem: str) -> None:
    schema = SCHEMAS.schemas[stem]

    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"{controlschemas.ID_BASE}{stem}.json"
    if stem == "enqueue":  # two closed forms, chosen by the presence of "outcome"
        assert schema["then"]["additionalProperties"] is False and schema["else"]["additionalProperties"] is False
    else:
        assert schema["additionalProperties"] is False


def _properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for branch in (schema, schema.get("then", {}), schema.get("else", {})):
        yield from branch.get("properties", {}).items()


@pytest.mark.parametrize("stem", sorted(SCHEMAS.schemas))
def test_every_key_has_examples_and_every_example_validates(stem: str) -> None:
    validator = SCHEMAS.validators[stem].explainer
    schema = SCHEMAS.schemas[stem]

    assert schema["examples"]
    for example in schema["examples"]:
        assert validate_control(stem, example) == [], example
    for name, prop in _properties(schema):
        resolved = validator.evolve(schema=prop)
        examples = prop.get("examples") or _referenced(validator, prop).get("examples")
        assert examples, (stem, name)
        for example in examples:
            assert resolved.is_valid(example), (stem, name, example)


def _referenced(validator: Draft202012Validator, prop: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in prop:
        return {}
    resolved: dict[str, Any] = validator._resolver.lookup(prop["$ref"]).contents  # noqa: SLF001
    return resolved


def test_every_operation_with_a_body_has_its_schema_and_they_agree_on_the_route() -> None:
    posts = {op.name: op for op in OPERATIONS if op.method == "POST"}
    documented = {s["x-operation"]["name"]: s["x-operation"] for s in SCHEMAS.schemas.values() if "x-operation" in s}

    assert set(documented) == set(posts)
    for name, operation in documented.items():
        assert (operation["method"], operation["path"]) == ("POST", "/_mock" + posts[name].path)


def test_every_schema_key_is_a_parameter_of_its_controller_method() -> None:
    for name, stem in SCHEMAS.operations.items():
        parameters = inspect.signature(getattr(Controller, name)).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        keys = {k for k, _ in _properties(SCHEMAS.schemas[stem])} - set(SCHEMAS.outcome_fields)
        assert keys <= set(parameters), (name, keys - set(parameters))


def test_the_schemas_agree_with_the_constants_the_code_uses() -> None:
    outcome = SCHEMAS.schemas["outcome"]["properties"]
    fault = SCHEMAS.schemas["fault"]
    latency_forms = fault["properties"]["latency"]["anyOf"]

    assert tuple(outcome["status"]["enum"]) == OUTCOME_STATUSES
    assert outcome["code"]["anyOf"][0]["enum"] == sorted(TASK_ERRORS)
    assert tuple(SCHEMAS.schemas["behaviour"]["properties"]["progression"]["anyOf"][0]["enum"]) == PROGRESSIONS
    assert tuple(fault["properties"]["action"]["anyOf"][0]["enum"]) == ACTIONS
    assert tuple(fault["properties"]) == KEYS
    assert {
        f["properties"]["distribution"]["const"]: tuple(f["required"][1:]) for f in latency_forms if "properties" in f
    } == DISTRIBUTION_KEYS


def test_the_limits_are_the_documented_ones() -> None:
    too_much = [
        ("advance_clock", {"seconds": 315_576_001}),
        ("behave", {"latency": 3601}),
        ("behave", {"poll_every": 10**6 + 1}),
        ("enqueue", {"times": 10**6 + 1}),
        ("add_fault", {"status": 600}),
        ("add_fault", {"status": 399}),
        ("add_fault", {"status": 500, "probability": 1.01}),
        ("add_fault", {"latency": -1}),
        ("seed", {"seed": 2**63}),
        ("seed", {"seed": -(2**63) - 1}),
        ("configure_webhooks", {"delay": 3601}),
        ("enqueue", {"latency": 3600.5}),
    ]
    enough = [
        ("advance_clock", {"seconds": 315_576_000}),
        ("seed", {"seed": 2**63 - 1}),
        ("seed", {"seed": None}),
        ("add_fault", {"status": 599, "probability": 0}),
        ("behave", {"latency": [0, 3600]}),
    ]

    for name, body in too_much:
        assert validate_control(name, body), (name, body)
    for name, body in enough:
        assert validate_control(name, body) == [], (name, body)


# --- one outcome shape, every door ----------------------------------------------------------------------------


def test_flat_and_nested_outcomes_normalise_to_the_same_rule() -> None:
    assert check_control("enqueue", FLAT) == check_control("enqueue", NESTED) == NESTED
    scenario = check_control("apply_scenario", {"outcomes": [FLAT, NESTED]})
    assert scenario == {"outcomes": [NESTED, NESTED]}


def test_mixing_the_two_forms_is_refused() -> None:
    violations = validate_control("enqueue", {"outcome": {"status": "failed"}, "code": 1402})

    assert [(v.path, v.message.split(";")[0]) for v in violations] == [("code", "unknown field")]


@pytest.mark.parametrize("body", [FLAT, NESTED], ids=["flat", "nested"])
def test_both_forms_over_http(live: Live, body: dict[str, Any]) -> None:
    response = httpx.post(f"{live.base_url}/_mock/outcomes", json={**body, "tenant": live.key})

    assert response.status_code == 200, response.text
    assert live.run_to_end(T2I, {"prompt": "broken"})["code"] == 1402


@pytest.mark.parametrize("door", ["http", "python"])
@pytest.mark.parametrize("body", [FLAT, NESTED], ids=["flat", "nested"])
def test_both_forms_through_the_python_handle_and_in_scenarios(live: Live, door: str, body: dict[str, Any]) -> None:
    controller = live.running.app.state.mock.controller if door == "python" else None
    handle = FakeWaveSpeed(live.base_url, live.key, controller=controller)

    handle.enqueue(**body)
    handle.apply_scenario({"outcomes": [{**body, "tenant": live.key}]})

    assert [live.run_to_end(T2I, {"prompt": "broken"})["code"] for _ in range(2)] == [1402, 1402]


@pytest.mark.parametrize("body", [FLAT, NESTED], ids=["flat", "nested"])
def test_both_forms_in_the_pytest_marker(live: Live, body: dict[str, Any]) -> None:
    handle = TenantHandle(live.base_url, live.key, controller=live.running.app.state.mock.controller)

    handle.configure(outcomes=[{**body, "times": None}])  # what @pytest.mark.wavespeed(outcomes=[...]) calls

    assert live.run_to_end(T2I, {"prompt": "broken"})["code"] == 1402


@pytest.mark.parametrize("body", [FLAT, NESTED], ids=["flat", "nested"])
def test_both_forms_in_a_scenario_file(tmp_path: Path, body: dict[str, Any]) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"outcomes": [{**body, "times": None}]}))

    app = create_app(Settings(scenario=str(scenario)))

    assert app.state.mock.controller.outcomes()[0]["outcome"] == {"status": "failed", "code": 1402}


# --- every violation, nothing reaching state -----------------------------------------------------------------


def test_an_invalid_body_is_one_400_listing_every_violation(live: Live) -> None:
    response = httpx.post(
        f"{live.base_url}/_mock/scenario",
        json={
            "outcomes": [{"outcome": {"status": "failed", "code": 1402}, "tenant": live.key}],  # valid
            "faults": [{"status": 200}, {"action": "reset", "status": 500}],
            "behaviour": [{"latency": 4000, "tenant": live.key}],
            "colour": "red",
        },
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400
    assert [e["path"] for e in body["errors"]] == [
        "behaviour[0].latency",
        "colour",
        "faults[0].status",
        "faults[1].status",
    ]
    assert all(e["path"] in body["message"] for e in body["errors"])
    assert httpx.get(f"{live.base_url}/_mock/outcomes", params={"tenant": live.key}).json()["data"] == []


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/_mock/reset", {"tenant": 5}, "tenant"),
        ("/_mock/seed", {"seed": 1.5}, "seed"),
        ("/_mock/seed", {}, "seed"),
        ("/_mock/outcomes", {"outcome": {"code": 42}}, "outcome.code"),
        ("/_mock/behaviour", {"progression": "warp"}, "progression"),
        ("/_mock/predictions/abc/advance", {"steps": 0}, "steps"),
        ("/_mock/predictions/abc/advance", {"prediction_id": "other"}, "prediction_id"),
        ("/_mock/clock/advance", {"seconds": -1}, "seconds"),
        ("/_mock/faults", {"status": 503, "method": "GET\n"}, "method"),
        ("/_mock/faults", {"status": 503, "latency": {"distribution": "normal", "mean": 1}}, "latency"),
        ("/_mock/webhooks", {"duplicate": "yes"}, "duplicate"),
        ("/_mock/scenario", {"webhooks": {"delay": -1}}, "webhooks.delay"),
    ],
)
def test_each_control_body_is_checked_by_its_schema(live: Live, path: str, body: dict[str, Any], where: str) -> None:
    response = httpx.post(live.base_url + path, json=body)

    assert response.status_code == 400, response.text
    assert [e["path"] for e in response.json()["errors"]] == [where]


def test_query_parameters_are_judged_with_the_body(live: Live) -> None:
    ok = httpx.post(f"{live.base_url}/_mock/reset", params={"tenant": live.key})
    bad = httpx.post(f"{live.base_url}/_mock/clock/advance", params={"seconds": "5"})

    assert ok.status_code == 200
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "seconds"


def test_the_python_door_refuses_what_json_cannot_say(live: Live) -> None:
    handle = FakeWaveSpeed(live.base_url, live.key, controller=live.running.app.state.mock.controller)

    with pytest.raises(ControlError, match="NaN is not a JSON number"):
        handle.advance_clock(float("nan"))
    with pytest.raises(ControlError, match="seconds: 1e\\+300 is greater than the maximum"):
        handle.advance_clock(1e300)
    handle.behave(DEV, latency=(0.5, 1.0))  # a tuple travels as a JSON array, as over HTTP


def test_a_scenario_file_lists_every_violation_on_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"seed": "seven", "outcomes": [{"code": 42}], "faults": [{"path": "/x"}]}))

    with pytest.raises(ValueError) as raised:
        create_app(Settings(scenario=str(scenario)))

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"scenario file {scenario}: Invalid scenario: ")
    for where in (
        "faults[0]: needs one of status, latency, action",
        "outcomes[0].code: 42 is not one of",
        'seed: "seven" is not of type integer',
    ):
        assert where in message


def test_a_scenario_file_is_strict_json(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text('{"seed": 1, "seed": 2}')

    with pytest.raises(ValueError, match='scenario file .*duplicate key "seed"'):
        create_app(Settings(scenario=str(scenario)))


# --- OpenAPI --------------------------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_control_bodies(live: Live) -> None:
    document = live.http.get("/openapi.json").json()
    components = document["components"]["schemas"]

    for schema in SCHEMAS.schemas.values():
        operation = schema.get("x-operation")
        if operation is None:
            continue
        described = document["paths"][operation["path"]]["post"]
        ref = described["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components
    refs = [r for r in _all_refs(components) if "Control" in r]
    assert refs and all(_resolves(document, r) for r in refs)


def _all_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _all_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_refs(value)


def _resolves(document: dict[str, Any], ref: str) -> bool:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False
    return True


# --- whatever the schemas accept never breaks a later submit -------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[httpx.Client]:
    server = InProcessServer(create_app(Settings(progression="polls")))
    with httpx.Client(transport=server.sync_transport, base_url=server.base_url) as client:
        yield client
    server.close()


RESULT_VALIDATOR = Draft202012Validator(default_catalog().result_schema)
MODELS = st.sampled_from(["*", T2I, DEV])
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


def _still_serves(client: httpx.Client, tenant: str, polls: int = 3) -> None:
    """A submit of ``tenant`` is accepted and its polls answer valid results (whatever status they report)."""
    headers = {"Authorization": f"Bearer {tenant}"}
    submitted = client.post(f"/api/v3/{T2I}", json={"prompt": "after a control call"}, headers=headers)
    assert submitted.status_code == 200, submitted.text
    prediction_id = submitted.json()["data"]["id"]
    for _ in range(polls):
        polled = client.get(f"/api/v3/predictions/{prediction_id}/result", headers=headers)
        assert polled.status_code == 200, polled.text
        assert RESULT_VALIDATOR.is_valid(polled.json()), polled.json()


def _apply(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    # 400 only where the Controller knows more than a schema can say (e.g. an unknown model, uniform min > max).
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["code"] == 400 and response.json()["message"]


def _tenants() -> tuple[str, str]:
    return f"victim-{uuid.uuid4().hex[:8]}", f"bystander-{uuid.uuid4().hex[:8]}"


@PROPERTY
@given(body=from_schema(bundle("enqueue")))
def test_any_accepted_outcome_rule_leaves_every_tenant_served(fake: httpx.Client, body: dict[str, Any]) -> None:
    victim, bystander = _tenants()
    _apply(fake, "/_mock/outcomes", {**body, "tenant": victim, "model": None})
    try:
        _still_serves(fake, victim)
        _still_serves(fake, bystander)
    finally:
        fake.post("/_mock/reset", json={"tenant": victim})


@PROPERTY
@given(body=from_schema(bundle("behaviour")), model=MODELS)
def test_any_accepted_behaviour_leaves_every_tenant_served(
    fake: httpx.Client, body: dict[str, Any], model: str
) -> None:
    victim, bystander = _tenants()
    _apply(fake, "/_mock/behaviour", {**body, "model": model, "tenant": victim})
    try:
        _still_serves(fake, victim)
        _still_serves(fake, bystander)
    finally:
        fake.post("/_mock/reset", json={"tenant": victim})


@PROPERTY
@given(body=from_schema(bundle("fault")))
def test_any_accepted_fault_spares_the_other_tenants(fake: httpx.Client, body: dict[str, Any]) -> None:
    # A fault is meant to break its target's requests; what must hold is that it breaks nothing else and that
    # the fault list still renders.
    victim, bystander = _tenants()
    _apply(fake, "/_mock/faults", {**body, "tenant": victim})
    try:
        assert fake.get("/_mock/faults").status_code == 200
        _still_serves(fake, bystander)
    finally:
        fake.request("DELETE", "/_mock/faults", params={"tenant": victim})


@PROPERTY
@given(
    clock=from_schema(bundle("clock-advance")),
    seed=from_schema(bundle("seed")),
    hooks=from_schema(bundle("webhooks")),
    steps=from_schema(bundle("advance")),
)
def test_any_accepted_clock_seed_webhook_or_advance_leaves_every_tenant_served(
    fake: httpx.Client, clock: dict[str, Any], seed: dict[str, Any], hooks: dict[str, Any], steps: dict[str, Any]
) -> None:
    victim, bystander = _tenants()
    headers = {"Authorization": f"Bearer {victim}"}
    prediction_id = fake.post(f"/api/v3/{T2I}", json={"prompt": "x"}, headers=headers).json()["data"]["id"]
    _apply(fake, "/_mock/clock/advance", clock)
    _apply(fake, "/_mock/seed", seed)
    _apply(fake, "/_mock/webhooks", {**hooks, "tenant": victim})
    _apply(fake, f"/_mock/predictions/{prediction_id}/advance", {**steps, "tenant": victim})
    try:
        _still_serves(fake, victim)
        _still_serves(fake, bystander)
    finally:
        fake.post("/_mock/seed", json={"seed": None})
        fake.post("/_mock/reset", json={"tenant": victim})


def test_the_controller_still_refuses_what_no_schema_can_express(live: Live) -> None:
    """The schemas come first; the Controller's own checks stay behind them (and still answer 400)."""
    uniform = {"status": None, "latency": {"distribution": "uniform", "min": 2, "max": 1}}
    assert validate_control("add_fault", uniform) == []
    assert httpx.post(f"{live.base_url}/_mock/faults", json=uniform).status_code == 400
    # The enqueue schema now refuses a model that is no model id (its pattern); the Controller still does too.
    assert validate_control("enqueue", {"model": "no model id"}) != []
    with pytest.raises(BadRequest, match="unknown model"):
        live.running.app.state.mock.controller.enqueue(model="no model id")


def test_serve_reports_a_broken_scenario_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"outcomes": [{"status": "exploded"}], "faults": [{"status": 200}]}))

    assert main(["serve", "--scenario", str(scenario), "--port", "0"]) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"wavespeed-mock: scenario file {scenario}: Invalid scenario: faults[0].status: 200 ")
    assert 'outcomes[0].status: "exploded" is not one of' in line
