"""The book's structure (helpers.structure), the lessons library (helpers.savecells), the
figure helper (helpers.plots) and the nested layout in the runner and the integrity checks."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from conftest import REPO_ROOT, TOY_PASSING, run_runner, write_notebook

from helpers import integrity, plots, savecells, structure
from helpers.run import read_provenance

TOC = """\
format: jb-book
root: book/intro
parts:
  - caption: Using this book
    chapters:
      - file: book/setup
  - caption: Lecture notes
    numbered: true
    chapters:
      - file: book/chapters/01_ch
        sections:
          - file: book/notebooks/01_ch/01_first
          - file: book/notebooks/01_ch/02_second
      - file: book/notebooks/02_flat
"""


@pytest.fixture
def nested(toy_book: Path) -> Path:
    """A toy book with a chapter of two sections (the second uses the first's saved cell)
    and a one-notebook chapter, in the toc."""
    (toy_book / "_toc.yml").write_text(TOC, "utf-8")
    (toy_book / "book" / "chapters").mkdir(parents=True)
    (toy_book / "book" / "intro.md").write_text("# Intro\n", "utf-8")
    (toy_book / "book" / "setup.md").write_text("# Setup\n", "utf-8")
    (toy_book / "book" / "chapters" / "01_ch.md").write_text("# A chapter\n", "utf-8")
    saved = '# %% tags=["save"]\nimport math\n\n\ndef half(x):\n    return x / 2\n'
    write_notebook(toy_book / "notebooks" / "01_ch", "01_first", TOY_PASSING + saved)
    write_notebook(toy_book / "notebooks" / "01_ch", "02_second", TOY_PASSING)
    write_notebook(toy_book / "notebooks", "02_flat", TOY_PASSING)
    return toy_book


def test_chapters_come_from_the_toc(nested: Path) -> None:
    first, second = structure.chapters(nested)
    assert (first.number, first.key, first.has_sections) == (1, "01_ch", True)
    assert first.notebooks == ("01_ch/01_first", "01_ch/02_second")
    assert (second.key, second.has_sections, second.notebooks) == ("02_flat", False, ("02_flat",))
    assert structure.page_title(nested, "book/chapters/01_ch") == "A chapter"
    names = [structure.notebook_name(nested, p) for p in structure.source_notebooks(nested)]
    assert names == ["01_ch/01_first", "01_ch/02_second", "02_flat"]


def test_find_root_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(structure.BookError, match="no _toc.yml"):
        structure.find_root(tmp_path)


def test_the_real_book_lists_chapter_one_as_sections() -> None:
    chapter = structure.chapters(REPO_ROOT)[0]
    assert chapter.has_sections and chapter.key == "01_backprop"
    assert all(name.startswith("01_backprop/") for name in chapter.notebooks)


def test_saved_cells_make_a_module_and_a_stale_one_is_caught(nested: Path) -> None:
    modules = savecells.render_modules(nested)
    (path, text), = modules.items()
    assert path == nested / "src" / "helpers" / "lessons" / "ch.py"
    assert "# --- from 01_ch/01_first.py" in text and "def half(x):" in text
    namespace: dict = {}
    exec(compile(text, str(path), "exec"), namespace)  # the module runs on its own
    assert namespace["half"](3) == 1.5
    assert "differs from the cells tagged 'save'" in savecells.stale_modules(nested)[0]
    savecells.write_modules(nested)
    assert savecells.stale_modules(nested) == []
    (path.parent / "gone.py").write_text("x = 1\n")
    assert "has no cells tagged 'save'" in savecells.stale_modules(nested)[0]


def test_the_lessons_library_matches_the_notebooks() -> None:
    assert savecells.stale_modules(REPO_ROOT) == []


def test_sections_run_into_their_chapter_folder(nested: Path) -> None:
    done = run_runner(nested, "--profile", "smoke", "--output-dir", "out", "--results-dir",
                      "res", "01_ch/01_first", "02_second")
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("01_ch/01_first", "01_ch/02_second"):
        provenance = read_provenance(nested / "out" / f"{name}.ipynb")
        assert provenance["status"] == "ok" and provenance["source"] == f"notebooks/{name}.ipynb"
        # the kernel's peak memory (it imports torch: well over 50 MB); no GPU here
        assert provenance["peak_rss_bytes"] > 50e6 and provenance["peak_cuda_bytes"] is None
        summary = json.loads((nested / "res" / f"{name}.json").read_text("utf-8"))
        assert summary["notebook"] == name
    assert "01_ch/02_second" in done.stdout


def test_an_ambiguous_file_name_is_an_error(nested: Path) -> None:
    write_notebook(nested / "notebooks" / "03_other", "01_first", TOY_PASSING)
    done = run_runner(nested, "--profile", "smoke", "--output-dir", "out",
                      "--results-dir", "res", "01_first")
    assert done.returncode == 2 and "ambiguous" in done.stderr, done.stderr


def test_integrity_knows_the_nested_layout(nested: Path) -> None:
    done = run_runner(nested, "--profile", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    savecells.write_modules(nested)
    assert integrity.problems(nested) == []
    assert (nested / "book" / "notebooks" / "01_ch" / "02_second.ipynb").is_file()
    # an orphaned section copy, and a section listed outside its chapter's folder
    orphan = nested / "book" / "results" / "01_ch" / "09_old.json"
    orphan.write_text("{}", "utf-8")
    assert "book/results/01_ch/09_old.json has no source notebook" in "\n".join(
        integrity.check_executed(nested))
    (nested / "_toc.yml").write_text(TOC.replace("book/notebooks/01_ch/02_second",
                                                 "book/notebooks/02_flat"), "utf-8")
    found = "\n".join(integrity.check_toc(nested))
    assert "notebooks/01_ch/02_second.ipynb is not in _toc.yml" in found
    assert "must be notebooks in notebooks/01_ch/" in found


def test_figures_fit_the_column() -> None:
    fig, axes = plots.figure(ncols=3)
    assert len(axes) == 3 and fig.get_figwidth() == plots.COLUMN_INCHES
    plots.glue_figure("fig_test", fig)
    assert not plt.fignum_exists(fig.number), "a glued figure must be closed (no duplicate)"
    with pytest.raises(ValueError, match="at most 3"):
        plots.figure(ncols=4)
    with pytest.raises(ValueError, match="shrunk"):
        plots.figure(width=10)
