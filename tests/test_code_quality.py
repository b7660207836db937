"""The package stays typed (mypy) and lint-clean (ruff), as the style guide asks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_mypy_is_clean_on_the_package() -> None:
    result = _run("mypy", "src/patron")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean_on_the_package() -> None:
    result = _run("ruff", "check", "src")
    assert result.returncode == 0, result.stdout + result.stderr
