"""Plain `pytest` from a fresh shell works: the suite puts the project's tools on PATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from konbit.paths import PROJECT_ROOT


@pytest.mark.parametrize(
    "target", ["tests/backend/test_settings.py", "tests/contracts/test_registry.py"]
)
def test_pytest_from_a_fresh_shell(target: str, tmp_path: Path) -> None:
    """No PATH beyond the system's, no SOLCX_BINARY_PATH: the suite finds anvil and solc."""
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout
