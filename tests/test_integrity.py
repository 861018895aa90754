"""The book's integrity: run on the repository itself, and shown to catch each problem."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
from conftest import REPO_ROOT

from helpers import integrity


def test_the_repository_has_no_integrity_problem() -> None:
    assert integrity.problems(REPO_ROOT) == []


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text("utf-8")
    ci = (REPO_ROOT / ".ci" / "run").read_text("utf-8")
    assert "make test" in readme and "make book" in readme
    repository = integrity.repository_url(REPO_ROOT).removeprefix("https://github.com/")
    assert f"colab.research.google.com/github/{repository}/blob/main/notebooks/" in readme
    assert re.search(r"^\s*make test\b", ci, re.M), ".ci/run must call the README's `make test`"


def test_the_colab_cell_installs_from_the_configured_url(tmp_path: Path) -> None:
    url = integrity.repository_url(REPO_ROOT)
    assert url.startswith("https://github.com/")
    cell = integrity.colab_cell(url)
    assert f'"dl-notes-helpers @ git+{url}"' in cell
    # where helpers is importable the cell is a no-op: it must not try to install anything
    namespace: dict = {}
    exec(compile(cell, "<colab cell>", "exec"), namespace)
    assert namespace["helpers"].__name__ == "helpers" and "subprocess" not in namespace


def test_each_kind_of_problem_is_caught(published_toy: Path) -> None:
    root = published_toy
    source = root / "notebooks" / "01_toy.ipynb"

    # a source edited without re-running: stale, and the twin out of sync
    notebook = nbformat.read(source, as_version=4)
    notebook.cells[-1].source += "\nprint('edited')"
    nbformat.write(notebook, source)
    found = "\n".join(integrity.problems(root))
    assert "book/notebooks/01_toy.ipynb is stale" in found
    assert "differs from its .py twin" in found

    # outputs in a source, a missing parameters cell, a wrong Colab cell
    notebook.cells[1].source = notebook.cells[1].source.replace("example", "elsewhere")
    notebook.cells[2].metadata["tags"] = []
    notebook.cells[-1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nbformat.write(notebook, source)
    found = "\n".join(integrity.check_conventions(root))
    assert "has outputs" in found and "Colab cell" in found and "profile = None" in found
    notebook.cells[1].source = integrity.colab_cell("https://github.com/example/toy-book")
    notebook.cells[1].metadata["tags"] = []
    nbformat.write(notebook, source)
    assert "tag the Colab cell 'remove-cell'" in "\n".join(integrity.check_conventions(root))

    # a parameters cell that only mentions `profile = None` in a comment does not count
    notebook.cells[2].metadata["tags"] = ["parameters"]
    notebook.cells[2].source = "# profile = None\nprofile = 'cpu'"
    nbformat.write(notebook, source)
    assert "profile = None" in "\n".join(integrity.check_conventions(root))

    # a notebook missing from the toc and a toc entry without a file
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "- file: book/notebooks/02_gone\n", "utf-8")
    found = "\n".join(integrity.check_toc(root))
    assert "01_toy.ipynb is not in _toc.yml" in found and "lists book/notebooks/02_gone" in found


def test_failed_smoke_and_orphaned_copies_are_caught(published_toy: Path) -> None:
    root = published_toy
    executed = root / "book" / "notebooks" / "01_toy.ipynb"
    notebook = nbformat.read(executed, as_version=4)
    notebook.metadata.provenance.update(status="failed", profile="smoke")
    nbformat.write(notebook, executed)
    shutil.copy(executed, root / "book" / "notebooks" / "09_old.ipynb")
    found = "\n".join(integrity.check_executed(root))
    assert "did not pass" in found and "profile 'smoke'" in found
    assert "09_old.ipynb has no source notebook" in found

    executed.unlink()
    assert "no executed copy" in "\n".join(integrity.check_executed(root))


def test_stale_pages_are_caught(published_toy: Path) -> None:
    root = published_toy
    results_file = root / "book" / "results" / "01_toy.json"
    summary = json.loads(results_file.read_text("utf-8"))
    summary["comparisons"][0]["ours"] = 123.0
    results_file.write_text(json.dumps(summary), "utf-8")
    assert integrity.check_pages(root) == [
        "book/reproduction.md is out of date: run `python -m helpers.pages`"
    ]
