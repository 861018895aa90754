"""The runtime package installs what the notebooks import, and not the book-building stack."""

import ast
import re
import sys

import tomllib
from conftest import REPO_ROOT

SRC = REPO_ROOT / "src" / "helpers"
#: What the book's tools use, never a notebook: these may import the book extra.
BOOK_TOOLS = {"run", "guard", "pages", "integrity", "book", "savecells", "structure"}
#: Import names whose distribution is named otherwise.
DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "pyyaml", "myst_nb": "myst-nb"}
#: Provided by the kernel that runs a notebook (Jupyter, Colab), not installed by us.
KERNEL = {"IPython"}


def project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[;]", r, maxsplit=1)[0].lower() for r in requirements}


def third_party_imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "helpers"} - KERNEL


def test_runtime_modules_import_only_runtime_dependencies():
    runtime = names(project()["dependencies"])
    modules = [p for p in SRC.rglob("*.py") if p.stem not in BOOK_TOOLS]
    assert len(modules) > 8
    missing = {
        f"{p.relative_to(SRC)}: {m}"
        for p in modules
        for m in third_party_imports(p)
        if DISTRIBUTIONS.get(m, m).lower() not in runtime
    }
    assert not missing, f"imported by a notebook's helpers but not a runtime dependency: {missing}"


def test_the_book_stack_is_an_extra_not_a_runtime_dependency():
    runtime = names(project()["dependencies"])
    book = names(project()["optional-dependencies"]["book"])
    assert {"papermill", "jupytext", "pyyaml", "psutil"} <= book
    assert not runtime & {"papermill", "jupytext", "jupyter-book", "psutil", "pyyaml"}
