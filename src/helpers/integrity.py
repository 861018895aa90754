"""Checks that keep the book honest: twins in sync, every notebook in the toc, fresh copies.

``python -m helpers.integrity`` prints every problem (and exits 1 if there is one); the
test suite runs the same checks on the repository. Each check returns a list of
human-readable problems, each of which says how to fix it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import nbformat
import yaml

from helpers.pages import render_pages
from helpers.run import read_provenance, results_mismatch, source_hash
from helpers.savecells import stale_modules
from helpers.structure import (
    NOTEBOOKS_DIR,
    OUTPUT_DIR,
    RESULTS_DIR,
    BookError,
    chapters,
    executed_path,
    find_root,
    notebook_name,
    results_path,
    source_notebooks,
    toc_files,
)

PUBLISHED_PROFILES = ("cpu", "gpu")

COLAB_CELL = """\
# On Colab (or wherever this book's helpers are missing), install them from the repository.
try:
    import helpers
except ImportError:
    import importlib
    import subprocess
    import sys

    package = "dl-notes-helpers @ git+{url}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)
    importlib.invalidate_caches()
    import helpers"""


COLAB_TAG = "remove-cell"  # the book's pages leave it out; Colab and Jupyter still run it


def colab_cell(url: str) -> str:
    """The first code cell of every notebook, for the repository at ``url``."""
    return COLAB_CELL.format(url=url.rstrip("/"))


def repository_url(root: Path) -> str:
    """The repository URL, set once in ``_config.yml`` (launch buttons and Colab installs)."""
    config = yaml.safe_load((root / "_config.yml").read_text("utf-8"))
    return config["repository"]["url"]


def check_twins(root: Path) -> list[str]:
    """Each ``notebooks/**/NN.py`` has an ``.ipynb`` twin with the same cells, and vice versa."""
    problems = []
    folder = root / NOTEBOOKS_DIR
    stems = {p.with_suffix("") for p in folder.rglob("*.py")} | {
        p.with_suffix("") for p in source_notebooks(root)}
    for stem in sorted(stems):
        script, notebook = stem.with_suffix(".py"), stem.with_suffix(".ipynb")
        if not script.is_file() or not notebook.is_file():
            missing = script if not script.is_file() else notebook
            problems.append(f"{missing.relative_to(root)} is missing: pair it with "
                            f"`jupytext --set-formats ipynb,py:percent` and `jupytext --sync`")
        elif source_hash(script) != source_hash(notebook):
            problems.append(f"{notebook.relative_to(root)} differs from its .py twin: "
                            f"run `jupytext --sync {script.relative_to(root)}`")
    return problems


def check_conventions(root: Path) -> list[str]:
    """The source notebooks: no outputs, the Colab cell first, a ``profile`` parameter."""
    problems = []
    expected_colab = colab_cell(repository_url(root))
    for path in source_notebooks(root):
        name = path.relative_to(root)
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        if any(cell.get("outputs") or cell.get("execution_count") for cell in code):
            problems.append(f"{name} has outputs: sources stay clean "
                            "(`jupyter nbconvert --clear-output --inplace`)")
        if not code or code[0].source.strip() != expected_colab:
            problems.append(f"{name}: the first code cell must be the Colab cell "
                            "(helpers.integrity.colab_cell, with the URL from _config.yml)")
        elif COLAB_TAG not in code[0].get("metadata", {}).get("tags", []):
            problems.append(f"{name}: tag the Colab cell {COLAB_TAG!r} (readers need not see it)")
        parameters = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        if not parameters or not _assigns_none(parameters[0].source, "profile"):
            problems.append(f"{name} needs `profile = None` in a cell tagged 'parameters'")
        if notebook.metadata.get("kernelspec", {}).get("name") != "python3":
            problems.append(f"{name} needs the python3 kernelspec in its metadata")
    return problems


def _assigns_none(source: str, name: str) -> bool:
    """Whether the cell's code (not a comment or a string in it) says ``name = None``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
        and isinstance(node.value, ast.Constant) and node.value.value is None
        for node in tree.body
    )


def check_toc(root: Path) -> list[str]:
    """Every notebook is in ``_toc.yml`` (as its executed copy); every entry exists; a chapter
    with sections keeps them in its own folder."""
    listed = set(toc_files(root))
    problems = []
    for path in source_notebooks(root):
        page = (OUTPUT_DIR / notebook_name(root, path)).as_posix()
        if page not in listed:
            problems.append(f"{path.relative_to(root)} is not in _toc.yml: add `- file: {page}`")
    for entry in sorted(listed):
        if not any((root / f"{entry}{suffix}").is_file() for suffix in (".md", ".ipynb")):
            problems.append(f"_toc.yml lists {entry}, which does not exist")
    for chapter in chapters(root):
        if chapter.has_sections:
            strays = [name for name in chapter.notebooks if not name.startswith(chapter.key + "/")]
            if strays:
                problems.append(f"_toc.yml: the sections of {chapter.page} must be notebooks in "
                                f"{NOTEBOOKS_DIR}/{chapter.key}/, not {', '.join(strays)}")
    return problems


def check_executed(root: Path) -> list[str]:
    """Each notebook has a passing, fresh executed copy from a published profile."""
    problems = []
    names = set()
    for source in source_notebooks(root):
        name = notebook_name(root, source)
        names.add(name)
        executed = executed_path(root, name)
        rerun = f"run `python -m helpers.run {name}` and commit the result"
        provenance = read_provenance(executed)
        if provenance is None:
            what = ("no executed copy" if not executed.is_file() else
                    "an executed copy that cannot be read or has no provenance")
            problems.append(f"{name}: {what} in {OUTPUT_DIR}: {rerun}")
            continue
        if provenance.get("source_hash") != source_hash(source):
            problems.append(f"{executed.relative_to(root)} is stale (its source changed): {rerun}")
        if provenance.get("status") != "ok":
            problems.append(f"{executed.relative_to(root)} did not pass "
                            f"({provenance.get('status')}: {provenance.get('detail')})")
        if provenance.get("profile") not in PUBLISHED_PROFILES:
            problems.append(f"{executed.relative_to(root)} ran with profile "
                            f"{provenance.get('profile')!r}; the book publishes cpu or gpu runs")
        mismatch = results_mismatch(provenance, results_path(root, name))
        if mismatch:
            problems.append(f"{executed.relative_to(root)}: {mismatch}: {rerun}")
    for folder, suffix in ((OUTPUT_DIR, ".ipynb"), (RESULTS_DIR, ".json")):
        for orphan in sorted((root / folder).rglob(f"*{suffix}")):
            if orphan.relative_to(root / folder).with_suffix("").as_posix() not in names:
                problems.append(f"{orphan.relative_to(root)} has no source notebook: delete it")
    return problems


def check_pages(root: Path) -> list[str]:
    """The Status and Reproduction pages match the results on disk."""
    try:
        rendered = render_pages(root)
    except BookError as error:  # a results file that cannot be read
        return [str(error)]
    return [
        f"{path.relative_to(root)} is out of date: run `python -m helpers.pages`"
        for path, text in rendered.items()
        if not path.is_file() or path.read_text("utf-8") != text
    ]


def check_lessons(root: Path) -> list[str]:
    """The lessons library (``helpers.lessons``) is what the cells tagged ``save`` say."""
    return stale_modules(root)


CHECKS = (check_twins, check_conventions, check_toc, check_executed, check_pages, check_lessons)


def problems(root: Path) -> list[str]:
    """Every integrity problem of the book at ``root``."""
    return [problem for check in CHECKS for problem in check(root)]


def main() -> int:
    found = problems(find_root())
    for problem in found:
        print(f"- {problem}")
    print(f"{len(found)} problem(s)" if found else "the book is consistent")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
