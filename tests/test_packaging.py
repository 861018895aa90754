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


def optional_imports(tree: ast.AST) -> set[ast.AST]:
    """Imports in a ``try`` that handles ImportError: used where installed, not required."""
    return {node for t in ast.walk(tree) if isinstance(t, ast.Try)
            if any(isinstance(h.type, ast.Name) and h.type.id == "ImportError"
                   for h in t.handlers)
            for statement in t.body for node in ast.walk(statement)}


def third_party_imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    optional = optional_imports(tree)
    found = set()
    for node in ast.walk(tree):
        if node in optional:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "helpers"} - KERNEL


def not_runtime_imports(paths, relative_to) -> set[str]:
    """``path: module`` for each third-party import of ``paths`` that the runtime
    dependencies (what the Colab cell installs) do not provide."""
    runtime = names(project()["dependencies"])
    return {
        f"{p.relative_to(relative_to)}: {m}"
        for p in paths
        for m in third_party_imports(p)
        if DISTRIBUTIONS.get(m, m).lower() not in runtime
    }


def test_runtime_modules_import_only_runtime_dependencies():
    modules = [p for p in SRC.rglob("*.py") if p.stem not in BOOK_TOOLS]
    assert len(modules) > 8
    missing = not_runtime_imports(modules, SRC)
    assert not missing, f"imported by a notebook's helpers but not a runtime dependency: {missing}"


def test_the_book_stack_is_an_extra_not_a_runtime_dependency():
    runtime = names(project()["dependencies"])
    book = names(project()["optional-dependencies"]["book"])
    stack = {"papermill", "jupytext", "pyyaml", "psutil", "myst-nb"}
    assert stack <= book
    assert not runtime & (stack | {"jupyter-book"})


def test_notebooks_import_only_runtime_dependencies():
    """What the Colab cell installs is enough to run every notebook: no notebook imports the
    book stack (myst-nb's glue comes through helpers.glue, which works without it)."""
    notebooks = sorted((REPO_ROOT / "notebooks").glob("*/*.py"))
    assert len(notebooks) >= 40
    missing = not_runtime_imports(notebooks, REPO_ROOT)
    assert not missing, f"imported by a notebook but not a runtime dependency: {missing}"
