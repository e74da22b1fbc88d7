"""The README's "Use it in your tests" example, run as a client project would run it, so it cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    """The first python code block of the README section "Use it in your tests"."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Use it in your tests\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, "README.md has no '## Use it in your tests' section"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)
    assert block, "the README section 'Use it in your tests' has no ```python block"
    return block.group(1)


def asgi_example() -> str:
    """The python code block of the README section on the ``wavespeed_asgi`` fixture."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^### In process, without a socket: `wavespeed_asgi`\n(.*?)(?=^##)", text, re.S | re.M)
    assert section, "README.md has no '### In process, without a socket: `wavespeed_asgi`' section"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), re.S | re.M)
    assert block, "the README section on wavespeed_asgi has no ```python block"
    return block.group(1)


def test_the_readme_example_passes_in_a_client_project(pytester: pytest.Pytester) -> None:
    code = readme_example()
    pytester.makepyfile(test_readme_example=code)

    result = pytester.runpytest(
        "-p",
        "wavespeed_mock",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:benchmark",
        "-W",
        "error",
        "-W",
        "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
    )

    result.assert_outcomes(passed=len(re.findall(r"^def test_", code, re.M)))


def test_the_readme_example_is_short_and_uses_the_fixture() -> None:
    code = readme_example()

    assert 8 <= len(code.strip().splitlines()) <= 20
    assert "def test_" in code and "(wavespeed)" in code and "wavespeed.sdk()" in code


def test_the_readme_asgi_example_passes_in_a_client_project(pytester: pytest.Pytester) -> None:
    code = asgi_example()
    pytester.makepyfile(test_readme_asgi_example=code)

    # anyio's plugin by name too, in case plugin autoloading is off (PYTEST_DISABLE_PLUGIN_AUTOLOAD).
    result = pytester.runpytest(
        "-p",
        "wavespeed_mock",
        "-p",
        "anyio",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "-p",
        "no:benchmark",
        "-W",
        "error",
        "-W",
        "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
    )

    result.assert_outcomes(passed=2)
    assert "wavespeed_asgi.sync_transport" in code and "wavespeed_asgi.transport" in code
