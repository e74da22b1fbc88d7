"""`drift live`: the fake's schemas against a live (here: another fake's) or saved model catalog."""

from __future__ import annotations

import copy
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mock_server import cli
from mock_server.contract.catalog import Catalog
from mock_server.contract.livedrift import compare, run_drift_live
from mock_server.contract.modelcatalog import export_models
from mock_server.http.server import RunningServer
from tests.conftest import EDIT, T2I, Live

CATALOG_FILE = Path(__file__).parent / "data" / "catalogs" / "acme_catalog.json"
# What altered_catalog() does to T2I, as drift reports it: (kind, location, breaking, detail).
T2I_ALTERATIONS = [
    ("enum-value-removed", "request.aspect_ratio", True, "value '9:21' no longer allowed"),
    ("range-narrowed", "request.num_images", True, "maximum 4 -> 2"),
    ("required-changed", "request.seed", True, "now required"),
    ("type-changed", "request.guidance_scale", True, "type number -> integer"),
    ("default-changed", "request.safety_tolerance", False, "documented default changed"),
    ("parameter-removed", "request.enable_sync_mode", True, "parameter no longer documented"),
]


def altered_catalog(catalog: Catalog) -> dict[str, Any]:
    """Our own export with T2I altered once per kind of drift, EDIT missing and an acme model added."""
    models = copy.deepcopy(export_models(catalog))
    request = next(m for m in models if m["model_id"] == T2I)["api_schema"]["api_schemas"][0]["request_schema"]
    props = request["properties"]
    del props["enable_sync_mode"]
    request["x-order-properties"].remove("enable_sync_mode")
    request["required"].append("seed")
    props["num_images"]["maximum"] = 2
    props["aspect_ratio"]["enum"].remove("9:21")
    props["guidance_scale"]["type"] = "integer"
    props["safety_tolerance"]["default"] = "3"
    models = [m for m in models if m["model_id"] != EDIT]
    acme = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))["data"][0]
    return {"code": 200, "message": "success", "data": [*models, acme]}


def _drift(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["drift", "live", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _changes(report: dict[str, Any], model: str) -> list[tuple[str, str, bool, str]]:
    entry = next(m for m in report["models"] if m["model"] == model)
    return [(c["kind"], c["location"], c["breaking"], c["detail"]) for c in entry["changes"]]


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAVESPEED_API_KEY", "drift-live-test")


def test_our_own_fake_shows_no_drift(
    shared_server: RunningServer, keyed: None, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _drift("--target", shared_server.base_url, capsys=capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"live drift: wavespeed-mock -> {shared_server.base_url}/api/v3/models"
    assert lines[1:-1] == [f"{model}: no drift" for model in catalog.endpoints]
    assert lines[-1] == (
        "summary: 12 models (12 compared, 0 only in the fake, 0 only live, 0 without a live "
        "schema), 0 changes, 0 breaking"
    )
    code, out, _ = _drift("--target", shared_server.base_url, "--format", "json", capsys=capsys)
    report = json.loads(out)
    assert code == 0 and report["breaking"] == 0
    assert {m["status"] for m in report["models"]} == {"compared"}
    assert all(m["changes"] == [] for m in report["models"])


def test_a_saved_catalog_names_every_alteration(
    tmp_path: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "live.json"
    saved.write_text(json.dumps(altered_catalog(catalog)), encoding="utf-8")

    code, out, _ = _drift("--catalog", str(saved), "--format", "json", capsys=capsys)
    report = json.loads(out)
    assert code == 1
    assert _changes(report, T2I) == T2I_ALTERATIONS
    t2i = next(m for m in report["models"] if m["model"] == T2I)
    assert t2i["breaking"] == 5
    assert [c["old"] for c in t2i["changes"]][:4] == ["9:21", 4, False, "number"]
    missing = next(m for m in report["models"] if m["model"] == EDIT)
    assert (missing["status"], missing["breaking"]) == ("missing-live", 1)
    assert "acme/pixel-forge" not in {m["model"] for m in report["models"]}  # default: only what the fake serves
    assert report["breaking"] == 6

    code, out, _ = _drift("--catalog", str(saved), capsys=capsys)
    assert code == 1
    assert f"{T2I}: 6 changes, 5 breaking" in out
    for kind, location, breaking, detail in T2I_ALTERATIONS:
        marker = "BREAKING" if breaking else "ok"
        assert any(
            line.split()[:3] == [marker, kind, location + ":"] and line.endswith(f"({detail})")
            for line in out.splitlines()
        ), (kind, location)
    assert f"{EDIT}: BREAKING  missing-live  (served by the fake, absent from the live catalog)" in out


def test_models_globs_pick_either_side(tmp_path: Path, catalog: Catalog, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "live.json"
    saved.write_text(json.dumps(altered_catalog(catalog)["data"]), encoding="utf-8")  # the bare list reads too
    code, out, _ = _drift(
        "--catalog",
        str(saved),
        "--models",
        "acme/*",
        "--models",
        "*/flux-kontext-dev",
        "--format",
        "json",
        capsys=capsys,
    )
    report = json.loads(out)
    assert code == 0  # a model only the live API has breaks nothing
    assert [(m["model"], m["status"]) for m in report["models"]] == [
        ("wavespeed-ai/flux-kontext-dev", "compared"),
        ("acme/pixel-forge", "only-live"),
    ]


def test_a_second_fake_serving_altered_schemas_is_reported_the_same(
    tmp_path: Path, catalog: Catalog, keyed: None, start_server: Callable[..., Live], capsys: pytest.CaptureFixture[str]
) -> None:
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(altered_catalog(catalog)), encoding="utf-8")
    folder = tmp_path / "altered-schemas"
    assert cli.main(["schemas", "add", str(altered), "--models", T2I, "--into", str(folder)]) == 0
    other = start_server(schemas=str(folder))  # serves the altered T2I instead of the shipped one
    capsys.readouterr()

    code, out, _ = _drift("--target", other.base_url, "--format", "json", capsys=capsys)
    report = json.loads(out)
    assert code == 1 and report["breaking"] == 5
    assert _changes(report, T2I) == T2I_ALTERATIONS
    assert all(m["changes"] == [] for m in report["models"] if m["model"] != T2I)

    # Compared with its own folder, the second fake is in line again.
    code, out, _ = _drift("--target", other.base_url, "--schemas", str(folder), "--models", T2I, capsys=capsys)
    assert code == 0 and f"{T2I}: no drift" in out


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (
            ["--target", "http://127.0.0.1:9", "--catalog", "x.json"],
            {},
            "give --target URL or --catalog FILE, not both",
        ),
        (["--target", "http://127.0.0.1:9"], {}, "set WAVESPEED_API_KEY to read the catalog of http://127.0.0.1:9"),
        (["--catalog", "missing.json"], {}, "cannot read missing.json: No such file or directory"),
        (["--catalog", "{tmp}/bad.json"], {}, "bad.json: not a JSON catalog"),
        (["--target", "http://127.0.0.1:9"], {"WAVESPEED_API_KEY": "k"}, "GET http://127.0.0.1:9/api/v3/models failed"),
        (["--catalog", str(CATALOG_FILE), "--schemas", "{tmp}/none"], {}, "holds no generated schemas"),
    ],
)
def test_usage_and_fetch_errors_are_one_line_and_exit_2(
    argv: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("WAVESPEED_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    code, out, err = _drift(*(a.replace("{tmp}", str(tmp_path)) for a in argv), capsys=capsys)
    assert (code, out) == (2, "")
    assert err.startswith("drift live: ") and message in err and err.count("\n") == 1


def test_a_wrong_key_is_a_fetch_error(start_server: Callable[..., Live], capsys: pytest.CaptureFixture[str]) -> None:
    guarded = start_server(api_keys=("the-right-key",))
    code = run_drift_live(target=guarded.base_url, environ={"WAVESPEED_API_KEY": "a-wrong-key"}, stream=io.StringIO())
    assert code == 2
    assert capsys.readouterr().err == (
        f"drift live: GET {guarded.base_url}/api/v3/models answered HTTP 401: Unauthorized: invalid API key\n"
    )


@pytest.mark.skipif(
    not (os.environ.get("WAVESPEED_API_KEY") and os.environ.get("WAVESPEED_MOCK_LIVE") == "1"),
    reason="reads the real catalog: set WAVESPEED_API_KEY and WAVESPEED_MOCK_LIVE=1",
)
def test_against_the_real_api(capsys: pytest.CaptureFixture[str]) -> None:  # pragma: no cover - opt-in only
    code, out, err = _drift("--format", "json", capsys=capsys)
    assert code in (0, 1), err
    report = json.loads(out)
    assert report["theirs"] == "https://api.wavespeed.ai/api/v3/models"
    assert {m["status"] for m in report["models"]} <= {"compared", "missing-live", "no-schema"}


def test_a_live_entry_without_a_request_schema_is_noted_not_breaking(catalog: Catalog) -> None:
    document = [{"model_id": T2I, "api_schema": {"api_schemas": []}}]
    [drift] = compare(catalog, document, origin="live.json", models=[T2I])
    assert (drift.status, drift.breaking, drift.changes) == ("no-schema", 0, [])
    assert drift.note == f"live.json: {T2I} has no api_schema.api_schemas[].request_schema.properties"
