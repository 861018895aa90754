"""Style is part of the house rules: ruff must be clean on the package, tests and notebooks."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT


def test_ruff_is_clean() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "notebooks"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
