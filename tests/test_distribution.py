"""What ships: the wheel's contents, ``--version``, the licence, the changelog, the Dockerfile and compose.yaml.

There is no Docker daemon in the test environment, so the Dockerfile is read instead of built: its command line
is run against the installed package (on loopback) and its health check is run against that server.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import mock_server
from mock_server.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
WAIT = 20.0  # upper bound for the server to come up; the poll returns as soon as it answers


def pyproject(key: str) -> str:
    """A top-level string of [project] (tomllib is 3.11+; the package supports 3.10)."""
    match = re.search(rf'^{key} = "([^"]*)"', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    assert match, f"pyproject.toml has no {key}"
    return match.group(1)


# --- version, licence, changelog ----------------------------------------------------------------------------


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"wavespeed-mock {mock_server.__version__}"
    # One version everywhere: the package, its installed metadata and pyproject.toml.
    assert mock_server.__version__ == importlib.metadata.version("wavespeed-mock") == pyproject("version")


def test_the_licence_file_is_the_one_pyproject_names() -> None:
    assert pyproject("license") == "MIT"
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_the_changelog_has_an_unreleased_section_and_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert versions[0] == "Unreleased"
    assert pyproject("version") in versions
    for heading in versions:  # Keep a Changelog: every version heading has its link at the bottom
        assert re.search(rf"^\[{re.escape(heading)}\]: \S+", text, re.M), heading


# --- the wheel ----------------------------------------------------------------------------------------------


def test_the_wheel_ships_the_inspector_data_and_licence(tmp_path: Path) -> None:
    # No build isolation: hatchling comes from the test extra, so the build needs no network.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("wavespeed_mock-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for asset in ("index.html", "app.js", "app.css"):
        assert f"mock_server/http/inspector/{asset}" in names
    assert "mock_server/schemas/openapi.json" in names
    assert any(name.startswith("mock_server/fixtures/") for name in names)
    assert any(name.startswith("mock_server/conformance/") for name in names)
    assert any(re.fullmatch(r"wavespeed_mock-[^/]+\.dist-info/licenses/LICENSE", name) for name in names)
    assert not any(name.startswith(("tests/", "schemas/")) for name in names)


# --- Dockerfile ---------------------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, name: str) -> list[str]:
        return [rest for instruction, rest in self.instructions if instruction == name]

    def last(self, name: str) -> str:
        found = self.all(name)
        assert found, f"the final stage has no {name}"
        return found[-1]


def dockerfile_stages() -> list[Stage]:
    """The Dockerfile as (instruction, arguments) per stage: comments dropped, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line.strip())
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append(Stage(rest.split()[0]))
        else:
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, rest.strip()))
    return stages


def exec_form(value: str) -> list[str]:
    argv = json.loads(value)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), f"not an exec-form array: {value}"
    return argv


def healthcheck_argv(stage: Stage) -> list[str]:
    options, _, command = stage.last("HEALTHCHECK").partition("CMD ")
    assert command, "HEALTHCHECK needs a CMD"
    assert all(option.startswith("--") for option in options.split())
    return exec_form(command)


def test_the_image_runs_the_cli_as_a_non_root_user_with_a_health_check() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    assert final.base == "python:3.11-slim"
    user = final.last("USER").split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert exec_form(final.last("ENTRYPOINT")) == ["wavespeed-mock"]
    command = exec_form(final.last("CMD"))
    assert command[:1] == ["serve"] and command[command.index("--host") + 1] == "0.0.0.0"
    build_parser().parse_args(command)  # every option exists
    assert "8000" in final.last("EXPOSE").split()
    check = healthcheck_argv(final)
    assert check[:2] == ["python", "-c"] and "/_mock/health" in check[2]
    assert not any("curl" in part or "wget" in part for part in check), "python:3.11-slim has neither"
    # Everything the build copies exists, so `docker build` cannot fail on a missing path.
    for stage in stages:
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_healthcheck(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert argv[0] == "python"
    return subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=30)


def test_the_image_command_serves_and_its_health_check_passes_against_it() -> None:
    final = dockerfile_stages()[-1]
    argv = exec_form(final.last("ENTRYPOINT")) + exec_form(final.last("CMD"))
    # The same command line, on loopback and a free port (given as the variable the health check also reads).
    argv[argv.index("--host") + 1] = "127.0.0.1"
    port = free_port()
    env = {**os.environ, "WAVESPEED_MOCK_PORT": str(port), "WAVESPEED_MOCK_LOG_LEVEL": "warning"}
    for assignment in final.all("ENV"):
        env.update(dict(pair.split("=", 1) for pair in shlex.split(assignment)))
    executable = Path(sys.executable).with_name(argv[0])
    assert executable.exists(), f"{argv[0]} is not installed next to {sys.executable}"
    check = healthcheck_argv(final)
    server = subprocess.Popen(
        [str(executable), *argv[1:]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + WAIT
        while True:
            assert server.poll() is None, f"{shlex.join(argv)} exited: {server.communicate()[0]}"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_mock/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{shlex.join(argv)} did not answer within {WAIT} s"
            time.sleep(0.05)  # readiness poll with a deadline
        healthy = run_healthcheck(check, env)
        assert healthy.returncode == 0, healthy.stderr
    finally:
        server.terminate()
        server.communicate(timeout=20)
    # With the server gone the same check fails: it really asks the server.
    assert run_healthcheck(check, env).returncode != 0


# --- compose.yaml -------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_compose_runs_the_image_against_redis() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "wavespeed-mock"}
    redis, mock = services["redis"], services["wavespeed-mock"]
    assert str(redis["image"]).startswith("redis:")
    assert redis["healthcheck"]["test"][:2] == ["CMD", "redis-cli"]
    assert mock["build"]["context"] == "."
    assert mock["depends_on"]["redis"]["condition"] == "service_healthy"
    assert any(str(port).endswith(":8000") for port in mock["ports"])
    command = mock["command"]
    assert command[:1] == ["serve"] and command[command.index("--host") + 1] == "0.0.0.0"
    store = command[command.index("--store") + 1]
    assert re.fullmatch(r"redis://redis:6379/\d+", store), "the store must name the compose service 'redis'"
    assert int(command[command.index("--workers") + 1]) > 1  # the point of a shared store
    for name in mock.get("environment", {}):
        assert name.startswith("WAVESPEED_MOCK_"), name


def test_compose_command_is_one_the_cli_accepts() -> None:
    command = compose()["services"]["wavespeed-mock"]["command"]
    _, unknown = build_parser().parse_known_args(command)
    if unknown[:1] == ["--store"]:
        pytest.skip("`serve --store` does not exist yet (the Redis store is being added)")
    assert not unknown, f"serve does not know {unknown}"
