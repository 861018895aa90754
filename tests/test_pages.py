"""The generated pages (Status, Reproduction) and run times, from hand-made results entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import pages

TOC = """\
format: jb-book
root: book/intro
parts:
  - caption: Lecture notes
    numbered: true
    chapters:
      - file: book/chapters/01_toy
        sections:
          - file: book/notebooks/01_toy/01_first
          - file: book/notebooks/01_toy/02_second
      - file: book/notebooks/02_flat
"""

PROVENANCE = {"status": "ok", "profile": "cpu", "device": "CPU: x (2 logical cores)",
              "wall_time_s": 754.2, "date": "2026-11-23", "git_commit": "0123456789abcdef",
              "git_dirty": True, "peak_rss_bytes": 312_000_000, "peak_cuda_bytes": None}

WITHIN = {"name": "cnn2_acc", "ours": 86.91, "reference": 87.9, "tolerance": 3.0,
          "rule": "within", "source": "001 P3.5", "unit": "%", "holds": True,
          "description": "2-layer CNN, in-domain test accuracy"}
MISSED = {"name": "cnn2_shift", "ours": 40.0, "reference": 54.7, "tolerance": 10.0,
          "rule": "at_least", "source": "001 P3.5", "unit": "%", "holds": False,
          "description": "2-layer CNN, shifted up by 4 px", "note": "Ours is a mean of 3 seeds."}
BESIDE = {"name": "val_loss", "ours": 3.45, "reference": 2.29, "tolerance": 0.0,
          "rule": "beside", "source": "002 5.4(a)", "unit": "nats/token", "holds": None,
          "description": "validation loss per token"}


def entry(name: str, title: str, comparisons=(), **provenance) -> dict:
    return {"notebook": name, "title": title, "provenance": {**PROVENANCE, **provenance},
            "values": [], "comparisons": list(comparisons)}


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A book root with a chapter of two sections and a one-notebook chapter."""
    (tmp_path / "_toc.yml").write_text(TOC, "utf-8")
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nChapter 1 takes {{ time_01_toy }}.\n")
    (tmp_path / "book" / "chapters" / "01_toy.md").write_text("# The toy chapter\n\nText.\n")
    return tmp_path


def test_number_formats() -> None:
    assert pages.format_number(60000) == "60,000"
    assert pages.format_number(17328.0) == "17,328"
    assert pages.format_number(0.123456) == "0.1235"
    assert pages.format_number(2.5e-5) == "2.500e-05"
    assert pages.format_number(True) == "True"
    assert pages.format_duration(754.2) == "12\u00a0min\u00a034\u00a0s"  # never split
    assert pages.format_duration(3.14) == "3.1\u00a0s"
    assert pages.format_duration(77_222) == "21\u00a0h\u00a027\u00a0min"  # a dry run's estimate
    assert pages.format_bytes(312_000_000) == "312\u00a0MB"
    assert pages.format_bytes(None) == "not recorded"
    assert pages.short_device("CPU: AMD EPYC 7B13 (2 logical cores)") == "CPU, 2\u00a0cores"
    assert pages.short_device("NVIDIA H100 80GB HBM3") == "NVIDIA H100 80GB HBM3"


def test_scale_names_and_run_times_in_words() -> None:
    gpu_on_cpu = {**PROVENANCE, "profile": "gpu"}
    assert pages.scale_name(PROVENANCE) == "reduced"
    assert pages.scale_name(gpu_on_cpu) == "full, on a CPU"
    assert pages.scale_name({**gpu_on_cpu, "device": "NVIDIA H100"}) == "full"
    assert pages.scale_phrase(PROVENANCE) == "at the reduced scale"
    assert pages.scale_phrase(gpu_on_cpu) == "at full scale, on a CPU"
    assert pages.run_time([]) == pages.NOT_RUN
    assert pages.run_time([{**PROVENANCE, "wall_time_s": 20}]) == "under a minute"
    assert pages.run_time([PROVENANCE, PROVENANCE]) == "about 25 min"  # 2 x 754 s
    assert pages.run_time([gpu_on_cpu]) == "about 13 min at full scale, on two CPU cores"


def test_empty_pages_say_so(book: Path) -> None:
    assert "No notebook has been executed yet." in pages.status_page(book, {})
    assert "No notebook has recorded a comparison yet." in pages.reproduction_page(book, {})


def test_status_has_a_table_per_chapter_with_memory_and_plain_words(book: Path) -> None:
    results = {
        "01_toy/01_first": entry("01_toy/01_first", "First section"),
        "01_toy/02_second": entry("01_toy/02_second", "Second section", status="timeout",
                                  peak_cuda_bytes=1_200_000_000, profile="gpu",
                                  device="NVIDIA H100", git_dirty=False),
        "02_flat": entry("02_flat", "A flat chapter", profile="gpu"),
    }
    page = pages.status_page(book, results)
    assert "2 of 3 notebooks passed" in page
    assert "## 1. The toy chapter" in page and "## 2. 02_flat" in page
    page = page.replace("\u00a0", " ")  # units are glued to their numbers; compare plainly
    assert ("| {doc}`1.1 First section <notebooks/01_toy/01_first>` | reduced | CPU, 2 cores | "
            "12 min 34 s | 312 MB | 2026-11-23, `0123456789` (modified) | "
            "{bdg-success}`passed` |") in page
    assert "| full | NVIDIA H100 | 12 min 34 s | 312 MB; GPU 1.2 GB |" in page
    assert "{bdg-danger}`timeout`" in page
    assert "| {doc}`A flat chapter <notebooks/02_flat>` | full, on a CPU |" in page
    assert "*(modified)* means" in page and "*full, on a CPU* means" in page


def test_a_commit_that_is_not_a_hash_is_shown_whole(book: Path) -> None:
    results = {"02_flat": entry("02_flat", "Flat", git_dirty=False,
                                git_commit="unknown (not a git checkout)")}
    assert "2026-11-23, `unknown (not a git checkout)` |" in pages.status_page(book, results)


def test_reproduction_has_four_columns_and_a_footnote_per_row(book: Path) -> None:
    results = {"01_toy/02_second": entry("01_toy/02_second", "Second section",
                                         [WITHIN, MISSED, BESIDE])}
    page = pages.reproduction_page(book, results)
    assert "1 of the 2 rows with a verdict hold. 1 more is shown beside ours" in page
    assert "| Quantity | Reference | Ours | Verdict |" in page
    assert ("| 2-layer CNN, in-domain test accuracy[^1-1] | 87.9\u00a0% | 86.91\u00a0% | "
            "{bdg-success}`holds` |") in page
    assert "| 54.7\u00a0% | 40\u00a0% | {bdg-danger}`misses` |" in page
    assert "| 2.29 nats/token | 3.45 nats/token | {bdg-secondary}`beside` |" in page
    assert ("[^1-1]: Source: 001 P3.5. Accepted: ours within ± 3 % of the reference. From "
            "{doc}`1.2 Second section <notebooks/01_toy/02_second>`, run at the reduced "
            "scale.") in page
    assert "ours at least the reference − 10 %" in page and "Ours is a mean of 3 seeds." in page
    assert "Accepted: shown beside ours, no verdict." in page


def test_run_times_go_to_the_front_matter_of_intro_and_overview(book: Path) -> None:
    (book / "book" / "results" / "01_toy").mkdir(parents=True)
    (book / "book" / "results" / "01_toy" / "01_first.json").write_text(
        '{"notebook": "01_toy/01_first", "title": "First", "comparisons": [], "values": [],'
        ' "provenance": {"wall_time_s": 30, "profile": "cpu", "device": "CPU: x",'
        ' "status": "ok", "date": "d", "git_commit": "abc1234"}}')
    rendered = pages.render_pages(book)
    intro = rendered[book / "book" / "intro.md"]
    assert intro.startswith("---\n# Generated by")
    assert "myst:\n  substitutions:\n    time_01_toy: under a minute\n" in intro
    assert "    time_02_flat: not run yet\n" in intro
    assert intro.endswith("# Intro\n\nChapter 1 takes {{ time_01_toy }}.\n")
    overview = rendered[book / "book" / "chapters" / "01_toy.md"]
    assert "time_01_first: under a minute" in overview and "time_02_second: not run yet" in overview
    # rewriting keeps the other front-matter keys and is stable
    text = "---\nmystnb:\n  x: 1\n---\n# Page\n"
    once = pages.with_front_matter(text, {"a": "b"})
    assert "mystnb:\n  x: 1\n" in once and once.endswith("---\n# Page\n")
    assert pages.with_front_matter(once, {"a": "b"}) == once


def test_a_one_sided_rule_without_slack_reads_plainly() -> None:
    comparison = {"source": "000 P4(b)", "rule": "at_most", "tolerance": 0}
    assert "Accepted: ours at most the reference. " in pages._footnote(comparison, "x", "y")
    comparison.update(rule="at_least", tolerance=0.5)
    assert "Accepted: ours at least the reference − 0.5. " in pages._footnote(
        comparison, "x", "y")
