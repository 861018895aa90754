"""The book's structure, known in one place: its root, its chapters and their sections.

``_toc.yml`` is the only list. Its numbered part holds the chapters, in order. A chapter is
either one notebook (``file: book/notebooks/02_autodiff``) or, in the lecture shape, an
overview page with one notebook per section::

    - file: book/chapters/01_backprop            # the overview: goals, sources, map
      sections:
        - file: book/notebooks/01_backprop/01_chain_rule
        - file: book/notebooks/01_backprop/02_gradient_checking

A notebook is named by its path below ``notebooks/`` without the suffix
(``01_backprop/01_chain_rule``, ``02_autodiff``). The same name places its executed copy
(``book/notebooks/<name>.ipynb``), its results (``book/results/<name>.json``) and its log.
The runner, the integrity checks and the generated pages all ask this module, so none of
them needs to know the layout itself. It needs only the standard library and PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NOTEBOOKS_DIR = Path("notebooks")
OUTPUT_DIR = Path("book") / "notebooks"
RESULTS_DIR = Path("book") / "results"
TOC = "_toc.yml"
#: A page's front matter: a YAML block between two ``---`` lines at the very top.
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


class BookError(Exception):
    """The book's layout is not what it should be, or a command was run outside it."""


def find_root(start: Path | None = None) -> Path:
    """The book's root: the nearest folder upwards from ``start`` holding ``_toc.yml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / TOC).is_file():
            return folder
    raise BookError(f"no {TOC} in {here} or above it: run from inside the book's repository")


def _read_toc(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / TOC).read_text("utf-8")) or {}


def toc_files(root: Path) -> list[str]:
    """Every ``file:`` (and the root) in ``_toc.yml``, in order, without suffixes."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root"):
                    yield Path(value).with_suffix("").as_posix()
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(_read_toc(root)))


@dataclass(frozen=True)
class Chapter:
    """One numbered chapter of the book."""

    number: int
    #: its toc entry without suffix: an overview page or a single notebook's executed copy
    page: str
    #: its notebooks, by name (``01_backprop/01_chain_rule``), in reading order
    notebooks: tuple[str, ...]

    @property
    def has_sections(self) -> bool:
        """True for the lecture shape: an overview page followed by section notebooks."""
        return not self.page.startswith(OUTPUT_DIR.as_posix() + "/")

    @property
    def key(self) -> str:
        """``01_backprop``: the chapter's folder (or, for a one-notebook chapter, its name)."""
        return Path(self.page).name


def notebook_of_page(page: str) -> str | None:
    """The notebook name whose executed copy is the toc page ``page``, or None."""
    prefix = OUTPUT_DIR.as_posix() + "/"
    return page[len(prefix):] if page.startswith(prefix) else None


def chapters(root: Path) -> list[Chapter]:
    """The chapters of the numbered part(s) of ``_toc.yml``, numbered from 1."""
    found: list[Chapter] = []
    for part in _read_toc(root).get("parts", []):
        if not part.get("numbered"):
            continue
        for entry in part.get("chapters", []):
            page = Path(entry["file"]).with_suffix("").as_posix()
            names = [notebook_of_page(Path(section["file"]).with_suffix("").as_posix())
                     for section in entry.get("sections", [])]
            if notebook_of_page(page) is not None:
                names.insert(0, notebook_of_page(page))
            if None in names:
                raise BookError(f"{TOC}: the sections of {page} must be executed notebooks "
                                f"(files in {OUTPUT_DIR}/)")
            found.append(Chapter(len(found) + 1, page, tuple(names)))
    return found


def source_notebooks(root: Path) -> list[Path]:
    """Every source notebook (``notebooks/**/*.ipynb``), sorted by name."""
    folder = root / NOTEBOOKS_DIR
    return sorted(path for path in folder.rglob("*.ipynb")
                  if ".ipynb_checkpoints" not in path.parts)


def notebook_name(root: Path, source: Path) -> str:
    """``notebooks/01_backprop/01_chain_rule.ipynb`` -> ``01_backprop/01_chain_rule``."""
    return source.resolve().relative_to((root / NOTEBOOKS_DIR).resolve()).with_suffix(
        "").as_posix()


def executed_path(root: Path, name: str, output_dir: Path | None = None) -> Path:
    """Where the executed copy of ``name`` goes (in ``output_dir``, else the book)."""
    return (output_dir or root / OUTPUT_DIR) / f"{name}.ipynb"


def results_path(root: Path, name: str, results_dir: Path | None = None) -> Path:
    return (results_dir or root / RESULTS_DIR) / f"{name}.json"


def page_title(root: Path, page: str) -> str:
    """The first ``# `` heading of a toc page (Markdown page or notebook), else its name."""
    for suffix in (".md", ".ipynb"):
        path = root / f"{page}{suffix}"
        if not path.is_file():
            continue
        text = FRONT_MATTER.sub("", path.read_text("utf-8"))
        if suffix == ".ipynb":
            import json

            cells = json.loads(text).get("cells", [])
            text = "\n".join("".join(c.get("source", "")) for c in cells
                             if c.get("cell_type") == "markdown")
        match = re.search(r"^# (.+)$", text, re.M)
        if match:
            return match.group(1).strip()
    return Path(page).name
