"""Chapter 6 on the full TinyStories files: the path its `gpu` profile takes when online.

Neither CI nor the machines these notes are built on reach the network, so the canonical
files are stood in for by files cut from the offline sample, each with the checksum file a
download leaves beside it; the chapter then runs in the `smoke` profile with
``tinystories = "full"``. What this checks is the notebook's code path (loading, the
validation file, chunked encoding), not the real files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
from conftest import MIRROR, REPO_ROOT, require, run_runner

from helpers import data

SAMPLE = data.TINYSTORIES_PARTS["sample"][1]
N_TRAIN, N_VAL = 300, 50  # the smoke column of full_train_stories and full_val_stories


def _stand_in(folder: Path, name: str, stories: list[str]) -> None:
    """``name`` as the canonical files are laid out, with its checksum file beside it."""
    raw = "".join(f"{story}\n<|endoftext|>\n" for story in stories).encode()
    (folder / name).write_bytes(raw)
    (folder / f"{name}.sha256").write_text(f"{hashlib.sha256(raw).hexdigest()}  {name}\n")


def test_chapter_6_trains_on_the_full_files(tmp_path: Path, monkeypatch) -> None:
    require((MIRROR / "tinystories" / SAMPLE).is_file(), f"offline mirror not found at {MIRROR}")
    monkeypatch.setenv("NB_DATA", str(MIRROR))
    stories = data.load_tinystories("sample")
    # More stories than the profile reads, so that max_stories is what stops the reading.
    train, val = stories[: N_TRAIN + 100], stories[N_TRAIN + 100 : N_TRAIN + 100 + N_VAL + 20]
    folder = tmp_path / "data" / "tinystories"
    folder.mkdir(parents=True)
    _stand_in(folder, "TinyStories-train.txt", train)
    _stand_in(folder, "TinyStories-valid.txt", val)

    done = run_runner(
        REPO_ROOT, "--profile", "smoke", "-p", "tinystories", "full",
        "--output-dir", str(tmp_path / "out"), "--results-dir", str(tmp_path / "res"),
        "06_rnn_attention/01_data_tokenizer", "06_rnn_attention/04_training",
        env={"NB_DATA": str(tmp_path / "data"), "NB_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    executed = nbformat.read(tmp_path / "out" / "06_rnn_attention" / "01_data_tokenizer.ipynb",
                             as_version=4)
    glued = {
        output["metadata"]["scrapbook"]["name"]: next(
            value for mime, value in output["data"].items() if mime.endswith("text/plain"))
        for cell in executed.cells if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if "scrapbook" in output.get("metadata", {})
    }
    assert glued["n_train_stories"] == str(N_TRAIN)  # the first N_TRAIN of the training file
    assert 0 < int(glued["n_val_stories"]) <= N_VAL  # of the validation file, less repeats
    assert not (tmp_path / "cache").exists()  # nothing was downloaded
