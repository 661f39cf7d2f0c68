"""The kit's code passes ruff with the settings in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

RUFF_TIMEOUT_S = 120  # ruff checks the whole kit in well under a second


def test_the_kit_passes_ruff_with_the_pyproject_settings():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                            capture_output=True, text=True, timeout=RUFF_TIMEOUT_S)
    assert result.returncode == 0, result.stdout + result.stderr
