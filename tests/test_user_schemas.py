"""`schemas add` into a user folder, then `serve --schemas DIR`: extra models validated and served like shipped ones."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server import cli
from mock_server.contract.catalog import catalog_for, default_catalog
from mock_server.contract.userschemas import add
from mock_server.http.app import create_app
from mock_server.resources import data_dir
from mock_server.settings import Settings
from mock_server.testing.inprocess import InProcessServer
from tests.conftest import T2I
from tests.test_plugin import STRICT

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"
CATALOG_FILE = DATA / "catalogs" / "acme_catalog.json"
PAGE = DATA / "doc_pages" / "acme_v1_pipe.txt"
FORGE = "acme/pixel-forge"
MOTION = "acme/motion-v1/text-to-video"
AUTH = {"Authorization": "Bearer user-schemas-test"}
BAD_FORGE = {"size": "100*100", "style": "oil-paint", "num_images": 9, "seed": "7"}
BAD_FORGE_PATHS = ["prompt", "num_images", "seed", "size", "style"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user schemas folder holding the fixture catalog (both models) and one doc page."""
    into = tmp_path_factory.mktemp("user-schemas")
    assert cli.main(["schemas", "add", str(CATALOG_FILE), "--into", str(into)]) == 0
    assert cli.main(["schemas", "add", str(PAGE), "--into", str(into)]) == 0
    return into


@pytest.fixture(scope="module")
def fake(folder: Path) -> Iterator[httpx.Client]:
    """An in-process fake built from Settings(schemas=folder), as create_app builds it for `serve`."""
    server = InProcessServer(create_app(Settings(schemas=str(folder), progression="polls")))
    with httpx.Client(transport=server.sync_transport, base_url=server.base_url, headers=AUTH) as client:
        yield client
    server.close()


def _run_to_end(http: httpx.Client, model: str, body: dict[str, Any]) -> dict[str, Any]:
    submitted = http.post(f"/api/v3/{model}", json=body)
    assert submitted.status_code == 200, submitted.text
    prediction_id = submitted.json()["data"]["id"]
    for _ in range(5):  # --progression polls: one lifecycle step per poll
        data: dict[str, Any] = http.get(f"/api/v3/predictions/{prediction_id}/result").json()["data"]
        if data["status"] == "completed":
            return data
    raise AssertionError(f"{model}: prediction {prediction_id} did not complete")


# ------------------------------------------------------------------------------------------------ schemas add


def test_schemas_add_writes_source_tables_and_generated_schemas(folder: Path) -> None:
    sources = sorted(p.name for p in (folder / "sources").iterdir())
    assert sources == [
        "acme__example-model@docs-acme_v1_pipe.json",
        "acme__motion-v1__text-to-video@catalog-acme_catalog.json",
        "acme__pixel-forge@catalog-acme_catalog.json",
        "descriptions.json",
        "overlays.json",
    ]
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert [e["model"] for e in index["endpoints"]] == ["acme/example-model", MOTION, FORGE]
    forge = index["endpoints"][2]
    assert (forge["price_usd"], forge["price_unit"], forge["catalog"]["type"]) == (0.03, "image", "text-to-image")
    request = json.loads((folder / forge["request"]).read_text(encoding="utf-8"))
    assert request["properties"]["size"]["x-provenance"] == [
        {"source": "acme/pixel-forge@catalog-acme_catalog", "table": "request", "row": 3}
    ]
    # The response envelope is not in a catalog: it comes from the reference notes, and says so.
    submit = json.loads((folder / forge["submit_response"]).read_text(encoding="utf-8"))
    assert submit["required"] == ["code", "message", "data"]
    assert submit["properties"]["code"]["x-provenance"][0]["ref"].startswith("wavespeed_api.md §2")


def test_adding_the_same_source_again_changes_nothing(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schemas", "add", str(CATALOG_FILE), "--into", str(folder)]) == 0
    assert "0 generated file(s) changed" in capsys.readouterr().out


def test_models_picks_catalog_entries_and_the_folder_defaults_to_the_serve_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WAVESPEED_MOCK_SCHEMAS", str(tmp_path))
    assert cli.main(["schemas", "add", str(CATALOG_FILE), "--models", "acme/motion-*"]) == 0
    assert f"added {MOTION}@catalog-acme_catalog" in capsys.readouterr().out
    assert list(catalog_for(str(tmp_path)).endpoints)[-1:] == [MOTION]
    assert FORGE not in catalog_for(str(tmp_path)).endpoints


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["schemas", "add", str(CATALOG_FILE)], "say where with --into DIR (or set WAVESPEED_MOCK_SCHEMAS)"),
        (["schemas", "add", "missing.json", "--into", "{tmp}"], "No such file or directory"),
        (["schemas", "add", str(CATALOG_FILE), "--models", "nobody/*", "--into", "{tmp}"], "no model matches nobody/*"),
        (["schemas", "add", "{tmp}/broken.json", "--into", "{tmp}"], "entry 0 has no model_id"),
        (["serve", "--schemas", "{tmp}/nothing-here"], "holds no generated schemas (no index.json)"),
    ],
)
def test_usage_and_input_errors_are_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WAVESPEED_MOCK_SCHEMAS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.json").write_text('[{"name": "no id"}]', encoding="utf-8")
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------------- serving, in-process


def test_the_catalog_adds_the_folder_and_leaves_the_cached_shipped_catalog_alone(folder: Path) -> None:
    extended = catalog_for(str(folder))
    shipped = default_catalog()
    assert catalog_for(None) is shipped and FORGE not in shipped.endpoints
    assert set(extended.endpoints) == set(shipped.endpoints) | {FORGE, MOTION, "acme/example-model"}
    assert extended._validators[T2I] is shipped._validators[T2I]  # compiled once, shared
    assert "/api/v3/acme/pixel-forge" in extended.openapi["paths"]
    assert "/api/v3/acme/pixel-forge" not in shipped.openapi["paths"]


def test_a_bad_submit_to_an_added_model_lists_every_violation(fake: httpx.Client) -> None:
    response = fake.post(f"/api/v3/{FORGE}", json=BAD_FORGE)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and body["message"].startswith(f"Invalid parameters for {FORGE}: ")
    assert [e["path"] for e in body["errors"]] == BAD_FORGE_PATHS
    video = fake.post(f"/api/v3/{MOTION}", json={"prompt": "surf", "duration": 11, "fps": 25, "size": "640*480"})
    assert video.status_code == 400
    assert {e["path"]: e["message"] for e in video.json()["errors"]} == {
        "duration": "11 is greater than the maximum of 10",
        "fps": "25 is not one of 16, 24",
        "size": "'640*480' is not one of 832*480, 480*832, 1280*720, 720*1280",
    }


def test_a_good_submit_to_an_added_model_runs_to_an_output_of_the_asked_size(fake: httpx.Client) -> None:
    data = _run_to_end(fake, FORGE, {"prompt": "a fox", "size": "2048*512", "style": "pixel-art", "num_images": 2})
    assert len(data["outputs"]) == 2 and data["outputs"][0].endswith(".png")  # the catalog's default format
    image = fake.get(data["outputs"][0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert _run_to_end(fake, MOTION, {"prompt": "surf", "duration": 8, "fps": 16})["status"] == "completed"
    assert _run_to_end(fake, "acme/example-model", {"prompt": "x"})["status"] == "completed"


def test_the_models_list_shows_added_models_with_their_catalog_facts(fake: httpx.Client) -> None:
    by_id = {m["model_id"]: m for m in fake.get("/api/v3/models").json()["data"]}
    assert {T2I, FORGE, MOTION, "acme/example-model"} <= set(by_id)
    motion = by_id[MOTION]
    assert (motion["name"], motion["type"], motion["base_price"], motion["sort_order"]) == (
        "Acme Motion v1 Text-to-Video",
        "text-to-video",
        0.2,
        340,
    )
    assert motion["formula"] == '{"total_price": base_price * duration / 5}'
    request = motion["api_schema"]["api_schemas"][0]["request_schema"]
    assert request["required"] == ["prompt"]
    assert request["x-order-properties"] == [
        "prompt",
        "size",
        "duration",
        "fps",
        "camera_moves",
        "loop",
        "seed",
        "enable_sync_mode",
    ]


def test_the_environment_variable_adds_the_folder_too(folder: Path) -> None:
    settings = Settings.from_env({"WAVESPEED_MOCK_SCHEMAS": str(folder)})
    assert settings.schemas == str(folder)
    assert FORGE in create_app(settings).state.mock.backend.catalog.endpoints


# ------------------------------------------------------------------------------ serving, a real subprocess


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def served(folder: Path) -> Iterator[str]:
    """`wavespeed-mock serve --schemas DIR` in its own process on a free loopback port, ready when yielded."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "mock_server",
        "serve",
        "--schemas",
        str(folder),
        "--port",
        str(port),
        "--progression",
        "polls",
        "--log-level",
        "warning",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAVESPEED_MOCK_")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:  # readiness poll with a deadline
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}: {process.stderr.read().decode()}")
            try:
                if httpx.get(f"{base_url}/_mock/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not answer within 30 s")
            time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def test_serve_with_schemas_validates_and_serves_the_added_models(served: str) -> None:
    with httpx.Client(base_url=served, headers=AUTH, timeout=30) as http:
        bad = http.post(f"/api/v3/{FORGE}", json=BAD_FORGE)
        assert bad.status_code == 400
        assert [e["path"] for e in bad.json()["errors"]] == BAD_FORGE_PATHS
        data = _run_to_end(http, FORGE, {"prompt": "a fox", "size": "512*640"})
        assert data["outputs"][0].startswith(served)
        models = [m["model_id"] for m in http.get("/api/v3/models").json()["data"]]
        assert FORGE in models and MOTION in models and T2I in models
        assert http.post(f"/api/v3/{T2I}", json={"prompt": "still served"}).status_code == 200


# ------------------------------------------------------------------------------------------- the pytest plugin

CLIENT_TESTS = """
import httpx

FORGE = "acme/pixel-forge"


def test_in_process(wavespeed_asgi):
    with wavespeed_asgi.client() as client:
        assert client.post(f"/api/v3/{FORGE}", json={"size": "1*1"}).status_code == 400
        assert client.post(f"/api/v3/{FORGE}", json={"prompt": "x"}).status_code == 200


def test_session_server(wavespeed):
    response = httpx.post(f"{wavespeed.base_url}/api/v3/{FORGE}", json={"prompt": "y"}, headers=wavespeed.headers)
    assert response.status_code == 200
    wavespeed.assert_submitted(FORGE, prompt="y")
"""


def test_the_pytest_plugin_serves_the_folder_named_by_its_ini_option_or_flag(
    pytester: pytest.Pytester, folder: Path
) -> None:
    shutil.copytree(folder, pytester.path / "extra-schemas")
    pytester.makeini("[pytest]\nwavespeed_schemas = extra-schemas\n")
    pytester.makepyfile(CLIENT_TESTS)
    pytester.runpytest(*STRICT).assert_outcomes(passed=2)
    pytester.makeini("[pytest]\n")
    pytester.runpytest(*STRICT, "--wavespeed-schemas", "extra-schemas").assert_outcomes(passed=2)


def test_the_pytest_plugin_refuses_a_folder_without_schemas(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest(*STRICT, "--wavespeed-schemas", "nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*wavespeed_schemas = 'nowhere'*holds no generated schemas (no index.json)*"])


def test_adding_a_doc_page_to_a_copy_of_the_shipped_folder_changes_no_shipped_schema(tmp_path: Path) -> None:
    shipped = tmp_path / "schemas"
    shutil.copytree(data_dir("schemas"), shipped)
    before = {p.relative_to(shipped): p.read_bytes() for p in shipped.rglob("*.json")}
    added = add(PAGE, shipped)
    after = {p.relative_to(shipped): p.read_bytes() for p in shipped.rglob("*.json")}
    changed = {name for name in after if before.get(name) != after[name]}
    assert {str(n) for n in changed} == {
        "sources/acme__example-model@docs-acme_v1_pipe.json",
        "sources/overlays.json",  # typed, see _with_envelope
        "index.json",
        "openapi.json",
        "result-response.json",
        "endpoints/acme__example-model.request.json",
        "endpoints/acme__example-model.submit-response.json",
        "endpoints/acme__example-model.result-response.json",
    }
    assert sorted(added.changed) == sorted(str(n) for n in changed if not str(n).startswith("sources/"))


def test_a_doc_page_alone_makes_a_servable_folder(tmp_path: Path) -> None:
    add(PAGE, tmp_path)
    extended = catalog_for(str(tmp_path))
    assert [v.path for v in extended.validate("acme/example-model", {"num_images": "two"})] == ["prompt", "num_images"]
    result = extended.endpoints["acme/example-model"].result_schema
    assert "id" in result["properties"]["data"]["required"]  # the page's result table omits it; the overlays type it
