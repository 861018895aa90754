"""Shared fixtures: the repository root, throwaway books, and the CI rule for skips.

A test may skip only with a stated reason, and never in CI (the env var ``CI`` is set):
there a missing prerequisite (the data mirror, Chromium, npm) is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
import pytest

from helpers import integrity
from helpers.integrity import COLAB_TAG, colab_cell

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # lets tests import the sibling module `browser`
    sys.path.insert(0, str(TESTS_DIR))


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` fails, except in CI, where it is a failure."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


#: The offline data mirror: ``$NB_DATA`` when set, else ``../shared/data`` beside the repository.
MIRROR = (
    Path(os.environ["NB_DATA"]).resolve()
    if os.environ.get("NB_DATA")
    else REPO_ROOT.parent / "shared" / "data"
)

TOY_REPOSITORY = "https://github.com/example/toy-book"
def require_chromium() -> None:
    """The browser checks need Debian's Chromium and the playwright package."""
    from browser import BrowserMissing, find_chromium

    try:
        find_chromium()
        import playwright.sync_api  # noqa: F401
    except (BrowserMissing, ImportError) as missing:
        require(False, f"browser checks need Chromium and playwright: {missing}")


# The first cells every chapter has (see README, "Adding a chapter").
TOY_HEADER = '''\
# %% [markdown]
# # {title}
#
# A throwaway notebook made by the tests. Euler's identity: $e^{{i\\pi}} + 1 = 0$.

# %%
{colab}

# %% tags=["parameters"]
profile = None
{parameters}
'''


def write_notebook(
    folder: Path, name: str, body: str, title: str = "A toy chapter", parameters: str = ""
) -> Path:
    """Write ``folder/name.py`` (jupytext percent) and its ``.ipynb`` twin; return the latter."""
    folder.mkdir(parents=True, exist_ok=True)
    header = TOY_HEADER.format(title=title, parameters=parameters, colab="{colab}")
    text = header + "\n" + textwrap.dedent(body)
    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.cells[1].source = colab_cell(TOY_REPOSITORY)
    notebook.cells[1].metadata["tags"] = [COLAB_TAG]
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python"
    }
    path = folder / f"{name}.ipynb"
    jupytext.write(notebook, path, fmt="ipynb")
    jupytext.write(notebook, folder / f"{name}.py", fmt="py:percent")
    return path


TOY_PASSING = '''\
# %%
from helpers import profiles, results

run = profiles.setup(profile, seed=7, n=(50, 200, 2000))
run

# %%
import numpy as np

x = np.random.default_rng(run.seed).normal(size=run.n)
results.record("mean_x", float(x.mean()), description="mean of the sample")
results.compare("std_x", float(x.std()), 1.0, tolerance=0.5, source="toy source",
                description="standard deviation of a unit normal")

# %%
import sys

for i in range(50):  # a progress bar redrawing its line, as tqdm does
    sys.stderr.write(f"\\rprogress {i}/50")
    sys.stderr.flush()
print("\\rprogress 50/50", file=sys.stderr)
'''


@pytest.fixture
def toy_book(tmp_path: Path) -> Path:
    """An empty book root (``_config.yml``, ``_toc.yml``, ``notebooks/``) in a temp folder."""
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n", "utf-8")
    (tmp_path / "_config.yml").write_text(f"repository:\n  url: {TOY_REPOSITORY}\n", "utf-8")
    (tmp_path / "notebooks").mkdir()
    return tmp_path


def environment(**overrides: str) -> dict[str, str]:
    """This process's environment without NB_PROFILE (which `make test` sets), plus
    ``overrides``: what a command run by a test sees."""
    base = {k: v for k, v in os.environ.items() if k != "NB_PROFILE"}
    return {**base, **overrides}


def run_runner(root: Path, *args: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m helpers.run ARGS`` in ``root`` with NB_PROFILE cleared unless given."""
    return subprocess.run(
        [sys.executable, "-m", "helpers.run", *args], cwd=root, env=environment(**(env or {})),
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def published_toy(toy_book: Path) -> Path:
    """A toy book with one notebook, executed with the cpu profile, in the toc: no problems."""
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    (toy_book / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nchapters:\n- file: book/notebooks/01_toy\n", "utf-8"
    )
    (toy_book / "book").mkdir()
    (toy_book / "book" / "intro.md").write_text("# Intro\n", "utf-8")
    done = run_runner(toy_book, "--profile", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    assert integrity.problems(toy_book) == []
    return toy_book
