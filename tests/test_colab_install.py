"""The Colab path, tested: a fresh venv with only what Colab preinstalls, the notebooks' own
install cell pointed at this repository, and one section executed in it.

Slow (a fresh venv with torch: about 3 minutes and 1.4 GB), so not part of every run:

    NB_PROFILE=smoke .venv/bin/python -m pytest -m colab tests/test_colab_install.py

(`make test-colab` does the same.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import REPO_ROOT
from nbclient import NotebookClient

from helpers import integrity

pytestmark = pytest.mark.colab

#: What a Colab runtime has before a notebook's first cell runs (of what the book uses).
COLAB_PREINSTALLED = ("torch", "numpy", "matplotlib", "ipykernel", "tqdm", "scikit-learn")
#: The book-building stack: the runtime package must not pull it into Colab.
BOOK_ONLY = ("papermill", "jupytext", "jupyter_book", "myst_nb")
#: The section executed in the fresh venv, without myst-nb: it glues numbers and a
#: figure through helpers.glue.
SECTION = "05_cnn_ood/03_momentum"


def pinned(package: str) -> str:
    """``package==version`` as requirements.txt pins it (the versions this disk holds)."""
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package.lower():
            return f"{package}=={version.strip()}"
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def run(*command: str | Path, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **kw)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def installable_copy(destination: Path) -> Path:
    """What pip needs to build the package, copied so that the build writes nothing here."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, destination / name)
    shutil.copytree(REPO_ROOT / "src", destination / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return destination


@pytest.fixture(scope="module")
def colab_like(tmp_path_factory) -> Path:
    """A fresh venv holding only Colab's preinstalled packages; returns its python."""
    root = tmp_path_factory.mktemp("colab")
    run(sys.executable, "-m", "venv", root / "venv")
    python = root / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", *map(pinned, COLAB_PREINSTALLED))
    return python


def first_cells() -> dict[str, str]:
    """Each section notebook's first code cell (the Colab install cell), by name."""
    cells = {}
    for path in sorted((REPO_ROOT / "notebooks").glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        cells[f"{path.parent.name}/{path.stem}"] = code[0].source
    return cells


def pointed_here(cell: str, package_dir: Path) -> str:
    """The install cell with GitHub replaced by the local copy of this repository."""
    url = integrity.repository_url(REPO_ROOT).rstrip("/")
    github = f'"dl-notes-helpers @ git+{url}"'
    assert github in cell, f"the install cell no longer installs {github}:\n{cell}"
    return cell.replace(github, repr(f"dl-notes-helpers @ {package_dir.as_uri()}"))


def kernel_environment() -> dict[str, str]:
    """Our environment, less what would let the kernel import this repository's sources."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NB_PROFILE"] = "smoke"
    return env


def test_the_install_cell_installs_the_runtime_package_only(colab_like, tmp_path):
    env = kernel_environment()
    missing = subprocess.run([colab_like, "-c", "import helpers"], env=env, capture_output=True)
    assert missing.returncode != 0, "the fresh venv already has the helpers"
    package = installable_copy(tmp_path)
    cells = first_cells()
    assert len(cells) >= 20, f"only {len(cells)} section notebooks found"
    for name, cell in cells.items():  # the first installs; the others find it installed
        done = subprocess.run([colab_like, "-c", pointed_here(cell, package)], env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, f"{name}'s install cell failed:\n{done.stderr[-3000:]}"
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = run(colab_like, "-c", probe, *BOOK_ONLY, env=env).stdout.strip()
    assert found == "[]", f"the runtime package pulled the book-building stack: {found}"


def test_a_section_runs_and_shows_its_numbers(colab_like, tmp_path, monkeypatch):
    # after the install test (same module, run in order): the helpers are installed
    # (and myst-nb is not: the first test checks that the book stack is absent)
    run(colab_like, "-c", "import helpers.glue", env=kernel_environment())
    notebook = nbformat.read(REPO_ROOT / "notebooks" / f"{SECTION}.ipynb", as_version=4)
    assert "from helpers.glue import glue" in "".join(c.source for c in notebook.cells)
    run(colab_like, "-m", "ipykernel", "install", "--prefix", tmp_path / "jupyter",
        "--name", "colab-like")
    for name, value in kernel_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter" / "share" / "jupyter"))
    NotebookClient(notebook, kernel_name="colab-like", timeout=600,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    shown = re.findall(r"^([a-z][a-z0-9_]*) = \S", text, flags=re.MULTILINE)
    glued = set(re.findall(r"\{glue:text\}`([a-z][a-z0-9_]*)", "".join(
        c.source for c in notebook.cells if c.cell_type == "markdown")))
    assert glued, f"{SECTION} glues nothing: pick a section that does"
    assert glued <= set(shown), f"glued but not shown without myst-nb: {glued - set(shown)}"
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    glued_figures = re.findall(r"```\{glue:figure\}", "".join(
        c.source for c in notebook.cells if c.cell_type == "markdown"))
    assert len(figures) >= len(glued_figures) > 0, "the glued figures are not shown"
