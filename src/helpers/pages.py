"""The two generated pages of the book: Status and Reproduction.

Both are written from ``book/results/*.json``, which the runner fills (one file per
executed notebook). Run ``python -m helpers.pages`` after the runner, or let the runner and
``helpers.book.build`` do it. The pages are committed so that the book on main always shows
the results of the executed copies on main; a test checks they are up to date.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# Here rather than in helpers.run, which imports torch: the pages need only the standard library.
RESULTS_DIR = Path("book") / "results"
STATUS_PAGE = Path("book") / "status.md"
REPRODUCTION_PAGE = Path("book") / "reproduction.md"

STATUS_INTRO = """\
# Status

Every chapter is a notebook that the runner (`python -m helpers.run`) executed top to
bottom; the page you read is that executed copy. This table says how each one was run: the
profile (`smoke`, `cpu` or `gpu`, see {doc}`setup`), the device, how long it took, when,
from which commit of the book, and whether it finished without an error. The same facts are
stored in each executed notebook's metadata under `provenance`, with the versions of the
packages that ran it and a hash of the notebook's source. A commit marked *(modified)* had
uncommitted changes in the working tree when the notebook ran; the source hash pins what
ran, and `python -m helpers.integrity` fails when it differs from the committed source.
"""

REPRODUCTION_INTRO = """\
# Reproduction

The source problem sets give reference numbers: accuracies, losses, timings. Each row
below puts one of them beside the number our notebook computed in its last run, with the
tolerance we consider a reproduction and whether it holds. The rule is one of: *within*
(the difference is at most the tolerance), *at least* (ours is not below the reference by
more than the tolerance) and *at most*; the chapter explains each tolerance at the check
that records the row. Where a row does not hold, the chapter explains by how much and why.
A few rows compare with a number that is not in the sources, an acceptance bound of ours or
a prediction of the chapter's own theory, and their Source column says so. A row with the
rule *beside* has no verdict: the two numbers were not measured alike (another tokenizer,
a smaller scale, other hardware), its quantity says how, and the reference is there for
orientation only.

The Source column names the problem sets by number (and sections within them):
000 UPenn ESE 546, homework 3; 001 USC CSCI machine learning, homework 3; 002 CMU
10-301/601, homework 7; 003 Concordia COMP 499/691, assignment 1; 004 Cornell CS 4787,
prelim. nanoGPT is Karpathy's reference implementation {cite:p}`karpathy2022nanogpt`.
"""


def load_results(root: Path) -> list[dict[str, Any]]:
    """Every notebook's results file, in notebook order (the NN_ prefix)."""
    folder = root / RESULTS_DIR
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]


def format_number(value: Any) -> str:
    """Thousands separators for integers (and integral floats), four significant digits else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"  # a count stays a count, e.g. 17,328 parameters
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3e}"
    return f"{value:.4g}"


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def _chapter(entry: dict[str, Any]) -> str:
    return f"{{doc}}`{entry['title']} <notebooks/{entry['notebook']}>`"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def status_page(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return STATUS_INTRO + "\nNo chapter has been executed yet.\n"
    rows = []
    for entry in entries:
        p = entry["provenance"]
        commit = p["git_commit"]  # a hash, or a sentence such as "unknown (not a git checkout)"
        commit = commit[:10] if re.fullmatch(r"[0-9a-f]{7,40}", commit) else commit
        commit += " (modified)" if p.get("git_dirty") else ""
        status = "✅ passed" if p["status"] == "ok" else f"❌ {p['status']}"
        rows.append([_chapter(entry), p["profile"], p["device"],
                     format_duration(p["wall_time_s"]), p["date"], f"`{commit}`", status])
    passed = sum(entry["provenance"]["status"] == "ok" for entry in entries)
    return (
        STATUS_INTRO
        + f"\n{passed} of {len(entries)} notebooks passed.\n\n"
        + _table(["Chapter", "Profile", "Device", "Wall time", "Date", "Commit", "Status"], rows)
        + "\n"
    )


def reproduction_page(entries: list[dict[str, Any]]) -> str:
    rows = []
    for entry in entries:
        for c in entry["comparisons"]:
            unit = f" {c['unit']}" if c.get("unit") else ""
            beside = c["rule"] == "beside"
            rule = {"within": "±", "at_least": "≥ ref −", "at_most": "≤ ref +"}.get(c["rule"])
            rows.append([
                _chapter(entry), c["description"] or c["name"], c["source"],
                format_number(c["reference"]) + unit, format_number(c["ours"]) + unit,
                "—" if beside else f"{rule} {format_number(c['tolerance'])}",
                entry["provenance"]["profile"],
                "— beside" if beside else "✅ holds" if c["holds"] else "❌ misses",
            ])
    if not rows:
        return REPRODUCTION_INTRO + "\nNo chapter has recorded a comparison yet.\n"
    held = sum(row[-1].startswith("✅") for row in rows)
    shown = sum(row[-1] == "— beside" for row in rows)
    verb = "is" if shown == 1 else "are"
    also = f" {shown} more {verb} shown beside ours without a verdict." if shown else ""
    return (
        REPRODUCTION_INTRO
        + f"\n{held} of the {len(rows) - shown} rows with a verdict hold.{also}\n\n"
        + _table(["Chapter", "Quantity", "Source", "Reference", "Ours", "Tolerance",
                  "Profile", "Verdict"], rows)
        + "\n"
    )


def render_pages(root: Path) -> dict[Path, str]:
    """What the two pages should contain, from the results on disk."""
    entries = load_results(root)
    return {root / STATUS_PAGE: status_page(entries),
            root / REPRODUCTION_PAGE: reproduction_page(entries)}


def write_pages(root: Path) -> list[Path]:
    """Regenerate the Status and Reproduction pages; returns the paths written."""
    pages = render_pages(root)
    for path, text in pages.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return list(pages)


def main() -> int:
    from helpers.run import find_root

    for path in write_pages(find_root()):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
