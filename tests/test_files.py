"""helpers.files: atomic replacement, leftovers of killed writers, and the writers' lock."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import files, integrity, pages
from helpers.structure import BookError


def test_a_failed_replacement_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old", "utf-8")
    with pytest.raises(RuntimeError), files.replacing(target) as temporary:
        temporary.write_text("half of the new", "utf-8")
        raise RuntimeError("killed half way")
    assert target.read_text("utf-8") == "old"
    assert list(tmp_path.iterdir()) == [target]
    files.write_atomically(target, "new")
    assert target.read_text("utf-8") == "new" and list(tmp_path.iterdir()) == [target]


def test_stale_parts_are_matched_by_their_exact_prefix(tmp_path: Path) -> None:
    """A file name with glob characters in it ([1].txt) does not match other files."""
    old = time.time() - 3600
    mine, other = tmp_path / ".a[1].txt.x.part", tmp_path / ".a1.txt.x.part"
    for part in (mine, other):
        part.touch()
        os.utime(part, (old, old))
    assert files.remove_stale_parts(tmp_path, ".a[1].txt.", older_than_s=60) == [mine]
    assert other.exists()


HOLD = """\
import sys, time
from pathlib import Path
from helpers import files
with files.locked(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_writer_waits_for_the_lock(tmp_path: Path, capsys) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path), "1.5"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "holding\n"
    started = time.monotonic()
    with files.locked(tmp_path, waiting="waiting for {folder}"):
        waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited > 0.5, waited
    assert f"waiting for {tmp_path.resolve()}" in capsys.readouterr().out


def test_a_corrupt_results_file_is_reported_not_a_crash(published_toy: Path) -> None:
    results = published_toy / "book" / "results" / "01_toy.json"
    results.write_text('{"notebook": "01_toy", "valu', "utf-8")
    with pytest.raises(BookError, match="01_toy.json is not valid JSON"):
        pages.load_results(published_toy)
    found = "\n".join(integrity.problems(published_toy))
    assert "01_toy.json is not valid JSON" in found, found
    assert "its results file cannot be read" in found, found
