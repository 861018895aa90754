"""The generated Status and Reproduction pages, from hand-made results entries."""

from __future__ import annotations

from helpers import pages

ENTRY = {
    "notebook": "05_cnn_ood",
    "title": "CNNs out of distribution",
    "provenance": {"status": "ok", "profile": "cpu", "device": "CPU: x (2 logical cores)",
                   "wall_time_s": 754.2, "date": "2026-11-23", "git_commit": "0123456789abcdef",
                   "git_dirty": True},
    "values": [],
    "comparisons": [
        {"name": "cnn2_acc", "ours": 86.91, "reference": 87.9, "tolerance": 3.0,
         "rule": "within", "source": "001 P3.5", "unit": "%", "holds": True,
         "description": "2-layer CNN, in-domain test accuracy"},
        {"name": "cnn2_shift", "ours": 40.0, "reference": 54.7, "tolerance": 10.0,
         "rule": "at_least", "source": "001 P3.5", "unit": "%", "holds": False,
         "description": "2-layer CNN, shifted up by 4 px"},
    ],
}


def test_number_formats() -> None:
    assert pages.format_number(60000) == "60,000"
    assert pages.format_number(17328.0) == "17,328"
    assert pages.format_number(0.123456) == "0.1235"
    assert pages.format_number(2.5e-5) == "2.500e-05"
    assert pages.format_number(True) == "True"
    assert pages.format_duration(754.2) == "12 min 34 s"
    assert pages.format_duration(3.14) == "3.1 s"


def test_empty_pages_say_so() -> None:
    assert "No chapter has been executed yet." in pages.status_page([])
    assert "No chapter has recorded a comparison yet." in pages.reproduction_page([])


def test_status_row() -> None:
    page = pages.status_page([ENTRY, {**ENTRY, "notebook": "06_rnn", "provenance": {
        **ENTRY["provenance"], "status": "timeout"}}])
    assert "1 of 2 notebooks passed" in page
    assert ("| {doc}`CNNs out of distribution <notebooks/05_cnn_ood>` | cpu | "
            "CPU: x (2 logical cores) | 12 min 34 s | 2026-11-23 | `0123456789 (modified)` | "
            "✅ passed |") in page
    assert "❌ timeout" in page


def test_reproduction_rows_show_reference_beside_ours() -> None:
    page = pages.reproduction_page([ENTRY])
    assert "1 of the 2 rows with a verdict hold" in page
    assert ("| 2-layer CNN, in-domain test accuracy | 001 P3.5 | 87.9 % | 86.91 % | ± 3 | cpu "
            "| ✅ holds |") in page
    assert "| 54.7 % | 40 % | ≥ ref − 10 | cpu | ❌ misses |" in page


def test_beside_rows_have_no_verdict_and_are_not_counted() -> None:
    beside = {"name": "val_loss", "ours": 3.45, "reference": 2.29, "tolerance": 0.0,
              "rule": "beside", "source": "002 5.4(a)", "unit": "nats/token", "holds": None,
              "description": "validation loss per token (another tokenizer)"}
    page = pages.reproduction_page([{**ENTRY, "comparisons": [*ENTRY["comparisons"], beside]}])
    assert "1 of the 2 rows with a verdict hold. 1 more is shown beside ours" in page
    assert ("| validation loss per token (another tokenizer) | 002 5.4(a) | 2.29 nats/token | "
            "3.45 nats/token | — | cpu | — beside |") in page


def test_a_commit_that_is_not_a_hash_is_shown_whole() -> None:
    entry = {**ENTRY, "provenance": {**ENTRY["provenance"], "git_dirty": False,
                                     "git_commit": "unknown (not a git checkout)"}}
    assert "| `unknown (not a git checkout)` |" in pages.status_page([entry])
    assert "| `0123456789 (modified)` |" in pages.status_page([ENTRY])
