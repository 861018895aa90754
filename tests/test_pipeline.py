"""The whole pipeline on a throwaway chapter: runner -> provenance -> results -> pages -> HTML.

No filler chapter lives in the book: this test makes one in a temporary copy of the book
(the real _config.yml, a toc of its own) in the lecture shape, an overview page and one
section notebook, runs it with the cpu profile, builds the book with warnings as errors and
opens the pages in headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import browser
import pytest
from conftest import REPO_ROOT, TOY_PASSING, require_chromium, run_runner, write_notebook

from helpers import book

SECTION = TOY_PASSING + '''
# %% [markdown]
# The sample mean is {glue:text}`mean_x:.3f`, and {prf:ref}`thm-toy` says why it is small.
#
# ```{prf:theorem} Law of large numbers
# :label: thm-toy
# The mean of $n$ independent draws with mean $\\mu$ converges to $\\mu$ as $n \\to \\infty$:
#
# $$
# \\frac{1}{n} \\sum_{i=1}^{n} x_i \\xrightarrow{\\text{a.s.}} \\mu .
# $$
# ```

# %% tags=["hide-input"]
from helpers import plots

fig, ax = plots.figure(width=4.0, height=3.0)
ax.hist(x, bins=20, label="sample")
ax.set(xlabel="x", ylabel="count")
ax.legend()
plots.glue_figure("fig_histogram", fig)

# %% [markdown]
# ```{glue:figure} fig_histogram
# :name: fig-toy-histogram
# :alt: A histogram of the sample, bell-shaped around zero.
#
# The sample's histogram: look at its centre, near zero.
# ```
#
# {numref}`fig-toy-histogram` shows the sample.
'''

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
      - file: book/chapters/01_toy
        sections:
          - file: book/notebooks/01_toy/01_first
  - caption: Results
    chapters:
      - file: book/status
      - file: book/reproduction
  - caption: References
    chapters:
      - file: book/glossary
      - file: book/bibliography
"""

INTRO = """\
# A toy book

Its one chapter, {doc}`chapters/01_toy`, took {{ time_01_toy }}; see {doc}`setup`.
"""

OVERVIEW = """\
# A throwaway chapter

Its section {doc}`../notebooks/01_toy/01_first` took {{ time_01_first }}.
"""


@pytest.fixture(scope="module")
def built_toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A book with one chapter in the lecture shape: an overview and one section notebook."""
    root = tmp_path_factory.mktemp("toy-book")
    shutil.copy(REPO_ROOT / "_config.yml", root)
    (root / "_toc.yml").write_text(TOC, "utf-8")
    (root / "book" / "chapters").mkdir(parents=True)
    for name in ("setup.md", "bibliography.md", "references.bib", "logo.svg"):
        shutil.copy(REPO_ROOT / "book" / name, root / "book" / name)
    shutil.copytree(REPO_ROOT / "book" / "static", root / "book" / "static")
    (root / "book" / "intro.md").write_text(INTRO, "utf-8")
    (root / "book" / "chapters" / "01_toy.md").write_text(OVERVIEW, "utf-8")
    # the glossary's entries link the real chapters: a page of its own here
    (root / "book" / "glossary.md").write_text("# Glossary\n", "utf-8")
    # MathJax: reuse the repository's copy (fetched once by the book test or `make book`)
    book.ensure_mathjax(REPO_ROOT)
    shutil.copytree(book.mathjax_dir(REPO_ROOT), book.mathjax_dir(root))
    write_notebook(root / "notebooks" / "01_toy", "01_first", SECTION, title="A first section")

    done = run_runner(root, "--profile", "cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    book.build(root, strict=True)
    return root


def test_status_and_reproduction_pages_list_the_section(built_toy: Path) -> None:
    status = (built_toy / "book" / "status.md").read_text("utf-8")
    assert "1 of 1 notebooks passed" in status and "## 1. A throwaway chapter" in status
    assert "1.1 A first section <notebooks/01_toy/01_first>" in status
    assert re.search(r"\| \d+(\.\d+)?\u00a0MB \|", status), "no peak memory in the status table"
    reproduction = (built_toy / "book" / "reproduction.md").read_text("utf-8")
    assert "1 of the 1 rows with a verdict hold" in reproduction
    assert "toy source" in reproduction and "± 0.5" in reproduction
    html = built_toy / "_build" / "html" / "book"
    assert "A first section" in (html / "status.html").read_text("utf-8")
    assert "standard deviation of a unit normal" in (html / "reproduction.html").read_text("utf-8")
    # the run times reach the landing page and the overview through their front matter
    assert "under a minute" in (html / "intro.html").read_text("utf-8")
    assert "under a minute" in (html / "chapters" / "01_toy.html").read_text("utf-8")


def test_the_section_page_renders_math_glue_and_a_numbered_figure(built_toy: Path,
                                                                  tmp_path: Path) -> None:
    require_chromium()
    page_html = built_toy / "_build" / "html" / "book" / "notebooks" / "01_toy" / "01_first.html"
    text = page_html.read_text("utf-8")
    assert "Law of large numbers" in text
    assert "git+https://github.com/example/toy-book" not in text  # the Colab cell is removed
    assert re.search(r"<details.*?Settings of this run.*?<table.*?this run.*?</table>", text,
                     re.S), "the scale table is not a table in a dropdown"
    assert "colab.research.google.com/github/executable-dl/lecture-notes/blob/main/" \
           "book/notebooks/01_toy/01_first.ipynb" in text
    # the glued figure: once, in a numbered figure with its caption and alt text
    assert len(re.findall(r'<img[^>]*src="[./]*_images/', text)) == 1, "the figure twice"
    assert re.search(r'<figure[^>]*id="fig-toy-histogram".*?<img[^>]*alt="A histogram of the '
                     r'sample.*?<span class="caption-number">Fig\. 1\.1 </span>', text, re.S)
    with browser.serve(built_toy / "_build" / "html") as base:
        report = browser.inspect_page(f"{base}/book/notebooks/01_toy/01_first.html",
                                      screenshot=tmp_path / "section.png")
    assert report.math >= 3 and report.display_math >= 1 and report.math_errors == 0
    assert report.images >= 2 and report.broken_images == []  # the logo and the histogram
    assert report.external_requests == [] and report.page_errors == []
    # the glued value in the prose is the one the run recorded
    results = built_toy / "book" / "results" / "01_toy" / "01_first.json"
    recorded = json.loads(results.read_text("utf-8"))
    mean = next(v["value"] for v in recorded["values"] if v["name"] == "mean_x")
    assert f"{mean:.3f}" in text


def test_nbval_runs_each_notebook_in_the_smoke_profile(toy_book: Path) -> None:
    """`make test` collects notebooks/ with nbval: a passing one passes, a failing one fails."""
    notebooks = toy_book / "notebooks"
    write_notebook(notebooks, "01_ok", TOY_PASSING + "\n# %%\nassert run.profile == 'smoke'\n")
    write_notebook(notebooks, "02_bad", "# %%\nassert 1 + 1 == 3, 'arithmetic'\n")
    env = {**os.environ, "NB_PROFILE": "smoke"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", str(notebooks)],
        cwd=toy_book, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 1, done.stdout
    assert re.search(r"\b1 failed, \d+ passed", done.stdout), done.stdout
    assert "02_bad.ipynb" in done.stdout and "arithmetic" in done.stdout
