"""The runner, on throwaway notebooks in a temporary book: provenance, results, failures."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
from conftest import TOY_PASSING, run_runner, write_notebook

from helpers import run
from helpers.run import read_provenance, source_hash, tidy_streams

SCRATCH = ("--output-dir", "out", "--results-dir", "res")


def test_passing_notebook_is_stamped_with_provenance_and_results(toy_book: Path) -> None:
    source = write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    done = run_runner(toy_book, "--profile", "smoke", *SCRATCH, "01_toy")
    assert done.returncode == 0, done.stdout + done.stderr

    executed = toy_book / "out" / "01_toy.ipynb"
    provenance = read_provenance(executed)
    assert provenance is not None
    assert provenance["status"] == "ok"
    assert provenance["profile"] == "smoke"
    assert provenance["device"].startswith(("CPU", "NVIDIA", "Apple"))
    assert provenance["seed"] == 7
    assert 0 < provenance["wall_time_s"] < 300
    assert provenance["date"] == provenance["started"][:10]
    assert provenance["profile_requested"] == "smoke"
    assert provenance["source"] == "notebooks/01_toy.ipynb"
    assert provenance["source_hash"] == source_hash(source)
    assert provenance["source_hash"] == source_hash(source.with_suffix(".py"))
    for package in ("python", "torch", "numpy", "papermill", "dl-notes-helpers"):
        assert provenance["packages"][package] != "not installed", package
    # the notebook really ran: its outputs are in the executed copy, not in the source
    notebook = nbformat.read(executed, as_version=4)
    assert any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    # the progress bar's 51 redraws are one output holding its final state
    printed = [output.text for output in notebook.cells[-1].outputs]
    assert printed == ["progress 50/50\n"], printed
    assert not any(
        cell.get("outputs") for cell in nbformat.read(source, 4).cells if cell.cell_type == "code"
    )

    summary = json.loads((toy_book / "res" / "01_toy.json").read_text("utf-8"))
    assert summary["title"] == "A toy chapter"
    assert [v["name"] for v in summary["values"]] == ["mean_x"]
    (comparison,) = summary["comparisons"]
    assert comparison["name"] == "std_x" and comparison["holds"] is True
    assert abs(comparison["ours"] - 1.0) < 0.5
    # the summary table's row: notebook, action, profile, device, wall time, status
    assert re.search(r"^01_toy\s+ran\s+smoke\s.*\sok\s*$", done.stdout, re.M), done.stdout


def test_a_failure_is_reported_and_the_others_still_run(toy_book: Path) -> None:
    notebooks = toy_book / "notebooks"
    write_notebook(notebooks, "01_fails", "# %%\nanswer = 1 / 0\n")
    write_notebook(notebooks, "02_passes", TOY_PASSING)
    done = run_runner(toy_book, "--profile", "smoke", *SCRATCH)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any("01_fails" in line and "failed" in line for line in lines), done.stdout
    assert any("02_passes" in line and line.rstrip().endswith("ok") for line in lines)
    assert "ZeroDivisionError" in done.stdout
    failed = read_provenance(toy_book / "out" / "01_fails.ipynb")
    assert failed["status"] == "failed" and "ZeroDivisionError" in failed["detail"]
    assert read_provenance(toy_book / "out" / "02_passes.ipynb")["status"] == "ok"


def test_a_hanging_notebook_is_stopped_at_the_timeout(toy_book: Path) -> None:
    write_notebook(toy_book / "notebooks", "01_hangs", "# %%\nimport time\ntime.sleep(120)\n")
    started = time.perf_counter()
    done = run_runner(toy_book, "--profile", "smoke", "--timeout", "8", *SCRATCH)
    assert time.perf_counter() - started < 60
    assert done.returncode == 1
    assert read_provenance(toy_book / "out" / "01_hangs.ipynb")["status"] == "timeout"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "bogus"], "valid profiles: smoke, cpu, gpu, auto"),
        (["--profile", "smoke", "01_toi"], "Did you mean 01_toy?"),
        (["--profile", "smoke", "-p", "n_stesp", "3"], "its parameters are: profile"),
        (["--profile", "smoke", "-p", "profile", "cpu"], "with --profile"),
    ],
    ids=["bogus-profile", "misspelled-notebook", "misspelled-parameter", "profile-as-parameter"],
)
def test_bad_input_is_an_error_before_anything_runs(
    toy_book: Path, args: list[str], message: str
) -> None:
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    done = run_runner(toy_book, *args, *SCRATCH)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert not (toy_book / "out").exists()


def test_an_executed_copy_is_not_taken_for_a_source(toy_book: Path) -> None:
    source = write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    copy = toy_book / "book" / "notebooks" / "01_toy.ipynb"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(source.read_bytes())
    done = run_runner(toy_book, "--profile", "cpu", "book/notebooks/01_toy.ipynb", *SCRATCH)
    assert done.returncode == 2 and "is not a source notebook" in done.stderr, done.stderr
    assert copy.read_bytes() == source.read_bytes()  # papermill never wrote onto it


def test_env_profile_and_flag_must_agree(toy_book: Path) -> None:
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    done = run_runner(toy_book, "--profile", "cpu", *SCRATCH, env={"NB_PROFILE": "smoke"})
    assert done.returncode == 2 and "contradicts NB_PROFILE=smoke" in done.stderr
    done = run_runner(toy_book, *SCRATCH, env={"NB_PROFILE": "tiny"})
    assert done.returncode == 2 and "environment variable NB_PROFILE" in done.stderr


def test_smoke_runs_are_kept_out_of_the_book(toy_book: Path) -> None:
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    done = run_runner(toy_book, "--profile", "smoke")
    assert done.returncode == 2 and "not written into the book" in done.stderr


def test_default_run_reuses_fresh_copies_and_reruns_stale_ones(toy_book: Path) -> None:
    source = write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    first = run_runner(toy_book, "--profile", "cpu")
    assert first.returncode == 0, first.stdout + first.stderr
    executed = toy_book / "book" / "notebooks" / "01_toy.ipynb"
    assert read_provenance(executed)["profile"] == "cpu"
    # the runner wrote the results and regenerated both pages
    assert (toy_book / "book" / "results" / "01_toy.json").is_file()
    assert "01_toy" in (toy_book / "book" / "status.md").read_text("utf-8")
    assert "standard deviation" in (toy_book / "book" / "reproduction.md").read_text("utf-8")

    again = run_runner(toy_book, "--profile", "cpu")
    assert again.returncode == 0 and "reused" in again.stdout

    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING + "\n# %%\nprint('new')\n")
    assert read_provenance(executed)["source_hash"] != source_hash(source)
    stale = run_runner(toy_book, "--profile", "cpu")
    assert stale.returncode == 0 and "ran" in stale.stdout and "reused" not in stale.stdout
    assert read_provenance(executed)["source_hash"] == source_hash(source)


def test_extra_parameters_reach_the_notebook(toy_book: Path) -> None:
    body = "# %%\nassert extra == 41, extra\n"
    write_notebook(toy_book / "notebooks", "01_params", body, parameters="extra = 1")
    done = run_runner(toy_book, "--profile", "smoke", "-p", "extra", "41", *SCRATCH)
    assert done.returncode == 0, done.stdout + done.stderr
    executed = toy_book / "out" / "01_params.ipynb"
    assert read_provenance(executed)["parameters"] == {"extra": 41}
    injected = [c.source for c in nbformat.read(executed, 4).cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected == ["# Parameters\nextra = 41\n"]  # the profile travels in NB_PROFILE


def test_commit_outside_a_checkout_comes_from_nb_git_commit(tmp_path: Path, monkeypatch) -> None:
    from helpers.run import git_state

    monkeypatch.delenv("NB_GIT_COMMIT", raising=False)
    assert git_state(tmp_path) == ("unknown (not a git checkout)", False)
    monkeypatch.setenv("NB_GIT_COMMIT", "4e10450")
    assert git_state(tmp_path) == ("4e10450", False)


def test_tidy_streams_keeps_what_a_front_end_shows() -> None:
    stream = nbformat.v4.new_output
    figure = stream("display_data", data={"text/plain": "<Figure>"})
    cell = nbformat.v4.new_code_cell("train()", outputs=[
        stream("stream", name="stderr", text="\rtraining:   0%| 0/9"),
        stream("stream", name="stderr", text="\rtraining:  50%| 4/9\rtraining: 100%| 9/9\n"),
        stream("stream", name="stdout", text="loss 0.5\n"),
        figure,
        stream("stream", name="stderr", text="\revaluation: 0/2"),
        stream("stream", name="stderr", text="\r                 \r"),  # a bar that erased itself
        stream("stream", name="stdout", text="first\n"),
        stream("stream", name="stdout", text="second\n"),
    ])
    markdown = nbformat.v4.new_markdown_cell("text\rstays")
    notebook = nbformat.v4.new_notebook(cells=[cell, markdown])
    tidy_streams(notebook)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in cell.outputs] == [
        ("stream", "stderr", "training: 100%| 9/9\n"),
        ("stream", "stdout", "loss 0.5\n"),
        ("display_data", None, None),
        ("stream", "stdout", "first\nsecond\n"),
    ]
    assert markdown.source == "text\rstays"


def test_the_timeout_follows_the_last_published_run(published_toy: Path) -> None:
    """A notebook that took 5,000 s last time gets three times that, not the 3,600 s default;
    --timeout still wins, and a notebook never published gets the default."""
    results = published_toy / "book" / "results" / "01_toy.json"
    summary = json.loads(results.read_text("utf-8"))
    summary["provenance"]["wall_time_s"] = 5000.0
    results.write_text(json.dumps(summary), "utf-8")
    write_notebook(published_toy / "notebooks", "02_new", TOY_PASSING)
    done = run_runner(published_toy, "--profile", "cpu", *SCRATCH, "01_toy", "02_new")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "running 01_toy (timeout 15000 s," in done.stdout, done.stdout
    assert "running 02_new (timeout 3600 s," in done.stdout, done.stdout
    done = run_runner(published_toy, "--profile", "cpu", "--timeout", "900", *SCRATCH, "01_toy")
    assert "running 01_toy (timeout 900 s," in done.stdout, done.stdout


def test_outputs_in_book_do_not_make_a_run_modified(tmp_path: Path) -> None:
    """Executed copies and pages rewritten by earlier runs are not code a notebook runs."""
    from helpers.run import git_state

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for path in ("notebooks/01_toy.py", "book/notebooks/01_toy.ipynb", "book/status.md"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1\n", "utf-8")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy")
    for path in ("book/notebooks/01_toy.ipynb", "book/status.md"):
        (tmp_path / path).write_text("v2\n", "utf-8")
    assert git_state(tmp_path)[1] is False
    (tmp_path / "notebooks/01_toy.py").write_text("v2\n", "utf-8")
    assert git_state(tmp_path)[1] is True


def test_a_chapter_name_stands_for_its_sections_in_order(toy_book: Path) -> None:
    chapter = toy_book / "notebooks" / "02_chapter"
    for name in ("02_second", "01_first"):
        write_notebook(chapter, name, "# %%\nprint('hello')\n")
    expected = [chapter / "01_first.ipynb", chapter / "02_second.ipynb"]
    assert run.resolve_notebooks(toy_book, "02_chapter") == expected
    assert run.resolve_notebooks(toy_book, str(chapter)) == expected
    assert run.resolve_notebooks(toy_book, "02_chapter/02_second") == expected[1:]
    with pytest.raises(run.RunnerError, match="no notebook '03_missing'"):
        run.resolve_notebooks(toy_book, "03_missing")
