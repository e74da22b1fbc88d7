"""The command line as a user meets it: mistakes are one readable line and exit 2, and --help is complete."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mock_server.settings import PREFIX, Settings


def run_cli(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m mock_server ARGV`` with no WAVESPEED_MOCK_* variables but ``env``; bounded, so a server that
    started by mistake is killed rather than left running."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    return subprocess.run(
        [sys.executable, "-m", "mock_server", *argv],
        env={**environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *parts: str, prefix: str = "wavespeed-mock: ") -> str:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    line = done.stderr.rstrip("\n")
    assert line.startswith(prefix), line
    for part in parts:
        assert part in line, line
    return line


# --- serve: scenario files, flags, environment variables ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file or directory"),
        ("{not json", "Expecting property name enclosed in double quotes"),
        ("[]", "[] is not of type object"),
        ('{"outcomez": []}', "outcomez: unknown field"),
        ('{"outcomes": [{"outcome": {"code": 42}}]}', "error-code table"),
        ('{"behaviour": [{"modle": "*"}]}', "behaviour[0].modle: unknown field"),
    ],
)
def test_a_bad_scenario_file_is_one_line_and_exit_2(tmp_path: Path, content: str | None, reason: str) -> None:
    scenario = tmp_path / "scenario.json"
    if content is not None:
        scenario.write_text(content, encoding="utf-8")

    # Both ways of naming the file; the app is built (and fails) before anything binds a port.
    by_flag = run_cli("serve", "--port", "0", "--scenario", str(scenario))
    by_env = run_cli("serve", "--port", "0", env={"WAVESPEED_MOCK_SCENARIO": str(scenario)})

    for done in (by_flag, by_env):
        assert_one_line_error(done, f"scenario file {scenario}: ", reason)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--port", "abc"], "argument --port: invalid int value: 'abc' (see wavespeed-mock serve --help)"),
        (["serve", "--progression", "nope"], "argument --progression: invalid choice: 'nope'"),
        (["serve", "--latency-scale", "-1"], "invalid settings: latency_scale and sync_timeout must not be negative"),
        (["serve", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["schemas"], "the following arguments are required: action (see wavespeed-mock schemas --help)"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    assert_one_line_error(run_cli(*argv), message)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "abc", "WAVESPEED_MOCK_PORT='abc' is not a valid int"),
        ("FROZEN_CLOCK", "maybe", "WAVESPEED_MOCK_FROZEN_CLOCK='maybe' is not a valid bool"),
        ("PROGRESSION", "nope", "invalid settings: progression must be one of time, polls, manual, not 'nope'"),
        ("LOG_LEVEL", "loud", "invalid settings: log_level must be one of critical, error, warning, info, debug"),
        ("LOG_FORMAT", "xml", "invalid settings: log_format must be one of text, json, not 'xml'"),
        ("WORKERS", "2", "--workers 2 needs a shared store"),
    ],
)
def test_a_bad_environment_variable_is_one_line_and_exit_2(name: str, value: str, message: str) -> None:
    assert_one_line_error(run_cli("serve", "--port", "0", env={PREFIX + name: value}), message)


# --- other commands reading files --------------------------------------------------------------------------


def test_schemas_parse_of_a_missing_page_is_one_line_and_exit_2(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("schemas", "parse", "missing-page.txt", cwd=tmp_path), "No such file or directory", "missing-page.txt"
    )


def test_drift_docs_of_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "new.json").write_text("{}", encoding="utf-8")

    assert_one_line_error(
        run_cli("drift", "docs", "old.txt", "new.json", cwd=tmp_path),
        "cannot read old.txt: ",
        "No such file or directory",
        prefix="drift docs: ",
    )


# --- serve --help ------------------------------------------------------------------------------------------


def test_serve_help_names_every_setting_with_its_flag_and_environment_variable() -> None:
    done = run_cli("serve", "--help", env={"COLUMNS": "100"})

    assert done.returncode == 0, done.stderr
    options = re.split(r"\n  (?=-)", done.stdout.split("\noptions:\n", 1)[1])
    documented = {}
    for option in options:
        flags = re.findall(r"--[a-z][a-z-]*", option.split("  ", 1)[0])
        text = " ".join(option.split())  # argparse wraps help text at the terminal width
        env = re.search(r"\[env (WAVESPEED_MOCK_[A-Z_]+)(, comma-separated)?; default [^]]+\]", text)
        if flags and flags[0] != "--help":
            assert env, f"{flags[0]} does not name its environment variable: {option!r}"
            documented[flags[0]] = env.group(1)
    expected = {}
    for f in dataclasses.fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        expected[flag.removesuffix("s") if f.metadata["repeat"] else flag] = PREFIX + f.name.upper()
    assert documented == expected
    assert {"--workers", "--store", "--log-format"} <= set(documented)
