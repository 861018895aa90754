"""The runner under faults: interrupts and kills, runs at the same time, a write that fails,
and arguments that must be refused before anything runs. Toy notebooks, seconds each."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import TOY_PASSING, environment, run_runner, write_notebook

from helpers import files, integrity, pages
from helpers.run import main, read_provenance, results_mismatch

SCRATCH = ("--output-dir", "out", "--results-dir", "res")

# A notebook whose kernel starts a process of its own (as a data loader's workers are), says
# where both are, then sleeps: the run is interrupted or times out meanwhile.
SLEEPER = """\
# %%
import os
import pathlib
import subprocess
import time

worker = subprocess.Popen(["sleep", "120"])
pathlib.Path(os.environ["KERNEL_PID_FILE"]).write_text(f"{os.getpid()} {worker.pid}")
time.sleep(120)
"""


def _environment(root: Path) -> dict[str, str]:
    """The runner's environment: its own temp folder (to find scratch leftovers) and the
    file in which the kernel writes its pid."""
    (root / "tmp").mkdir(exist_ok=True)
    return environment(TMPDIR=str(root / "tmp"), KERNEL_PID_FILE=str(root / "kernel.pid"))


def _start_runner(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "helpers.run", *args], cwd=root,
                            env=_environment(root), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds} s for {what}")
        time.sleep(0.1)


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _start_sleeper(root: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """A runner busy with the sleeping notebook, and the pids of all its processes."""
    write_notebook(root / "notebooks", "01_sleeps", SLEEPER)
    runner = _start_runner(root, "--profile", "smoke", *SCRATCH, "01_sleeps")
    pid_file = root / "kernel.pid"
    _wait_for(lambda: pid_file.is_file() and pid_file.read_text(), 120, "the kernel to start")
    kernel_and_worker = [int(pid) for pid in pid_file.read_text().split()]
    below = [process.pid for process in psutil.Process(runner.pid).children(recursive=True)]
    assert set(kernel_and_worker) <= set(below), "the kernel and its worker run below the runner"
    return runner, [runner.pid, *below]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["ctrl-c", "sigterm", "sigkill"])
def test_no_process_of_an_interrupted_run_survives_it(toy_book: Path, stop: signal.Signals) -> None:
    runner, pids = _start_sleeper(toy_book)
    runner.send_signal(stop)
    _, stderr = runner.communicate(timeout=60)
    _wait_for(lambda: not any(_running(pid) for pid in pids), 20,
              f"processes {pids} to stop")
    # the run's scratch folder is gone too (the guard removes it when the runner was killed)
    _wait_for(lambda: not list((toy_book / "tmp").glob("nbrun-*")), 20,
              "the scratch folder to be removed")
    assert not (toy_book / "out" / "01_sleeps.ipynb").exists()
    if stop != signal.SIGKILL:
        assert runner.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[stop]
        assert "interrupted" in stderr and "kernel included" in stderr, stderr


def test_a_timeout_stops_the_kernel_too(toy_book: Path) -> None:
    write_notebook(toy_book / "notebooks", "01_sleeps", SLEEPER)
    done = subprocess.run([sys.executable, "-m", "helpers.run", "--profile", "smoke",
                           "--timeout", "15", *SCRATCH], cwd=toy_book,
                          env=_environment(toy_book), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert read_provenance(toy_book / "out" / "01_sleeps.ipynb")["status"] == "timeout"
    # the runner stopped the whole tree before it returned: the kernel and its worker too
    pids = [int(pid) for pid in (toy_book / "kernel.pid").read_text().split()]
    assert not any(_running(pid) for pid in pids), pids


def test_a_failed_write_leaves_the_previous_copy_and_results(
    published_toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails (a full disk, a kill) half way: the published pair is untouched."""
    toy_book = published_toy
    executed = toy_book / "book" / "notebooks" / "01_toy.ipynb"
    results = toy_book / "book" / "results" / "01_toy.json"
    before = executed.read_bytes(), results.read_bytes()

    real_open = io.open

    def failing_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in mode and Path(file).parent == executed.parent:
            handle.close()  # the file is opened (and truncated), then the disk is full
            raise OSError(28, "No space left on device (injected)")
        return handle

    monkeypatch.chdir(toy_book)
    monkeypatch.delenv("NB_PROFILE", raising=False)  # `make test` sets smoke
    monkeypatch.setattr(io, "open", failing_open)
    with pytest.raises(OSError, match="injected"):
        main(["--profile", "cpu", "01_toy"])
    monkeypatch.undo()
    assert (executed.read_bytes(), results.read_bytes()) == before
    assert {p.name for p in executed.parent.iterdir()} == {"01_toy.ipynb", files.LOCK_NAME}


def test_an_unreadable_copy_is_stale_not_a_crash(published_toy: Path) -> None:
    toy_book = published_toy
    executed = toy_book / "book" / "notebooks" / "01_toy.ipynb"
    executed.write_bytes(b"")  # what a write cut short by an older runner left
    found = "\n".join(integrity.problems(toy_book))
    assert "01_toy: an executed copy that cannot be read" in found, found
    again = run_runner(toy_book, "--profile", "cpu")
    assert again.returncode == 0, again.stderr
    assert re.search(r"^01_toy\s+ran\s", again.stdout, re.M), again.stdout
    assert integrity.problems(toy_book) == []


def test_a_results_file_from_another_run_is_caught(published_toy: Path) -> None:
    """The smoke results of a scratch run, copied into the book with its pages regenerated:
    every page agrees with the results, but the results do not belong to the copy."""
    toy_book = published_toy
    assert run_runner(toy_book, "--profile", "smoke", *SCRATCH).returncode == 0
    published = toy_book / "book" / "results" / "01_toy.json"
    published.write_bytes((toy_book / "res" / "01_toy.json").read_bytes())
    pages.write_pages(toy_book)
    found = "\n".join(integrity.problems(toy_book))
    assert "its results file is from another run (started" in found, found
    assert "profile 'smoke' there, 'cpu' here" in found, found


def test_smoke_results_are_refused_into_the_book(toy_book: Path) -> None:
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    done = run_runner(toy_book, "--profile", "smoke", "--output-dir", "out")
    assert done.returncode == 2 and "not written into the book" in done.stderr, done.stderr
    assert "--results-dir" in done.stderr
    assert not (toy_book / "book").exists() and not (toy_book / "out").exists()


def test_runs_at_the_same_time_keep_their_own_logs(toy_book: Path) -> None:
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    runners = [_start_runner(toy_book, "--profile", "smoke", *SCRATCH, "01_toy")
               for _ in range(2)]
    for runner in runners:
        assert runner.wait(timeout=240) == 0, runner.communicate()
    logs = sorted((toy_book / "_build" / "logs").glob("01_toy*.log"))
    assert len(logs) == 2, logs
    for log in logs:  # each holds one run of papermill, not a splice of two
        assert log.read_text("utf-8").count("Input Notebook:") == 1, log.read_text("utf-8")
    provenance = read_provenance(toy_book / "out" / "01_toy.ipynb")
    assert results_mismatch(provenance, toy_book / "res" / "01_toy.json") is None


def test_a_runner_waits_for_the_other_to_finish_writing(toy_book: Path) -> None:
    """Another writer holds the folders' lock: the run finishes but writes its pair (the
    copy and its results) only when the lock is free, so the two always belong together."""
    write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    out, res = toy_book / "out", toy_book / "res"
    with files.locked(out, res):
        runner = _start_runner(toy_book, "--profile", "smoke", *SCRATCH, "01_toy")
        waiting = runner.stdout.readline() + runner.stdout.readline()
        assert "waiting for another runner writing to" in waiting, waiting
        assert not (out / "01_toy.ipynb").exists() and not (res / "01_toy.json").exists()
    assert runner.wait(timeout=60) == 0
    provenance = read_provenance(out / "01_toy.ipynb")
    assert provenance["status"] == "ok"
    assert results_mismatch(provenance, res / "01_toy.json") is None
    assert json.loads((res / "01_toy.json").read_text("utf-8"))["provenance"]["status"] == "ok"


PARAMETERS = """\
extra = 1
rate = 0.5
choice = None
from typing import Literal
part: Literal["a", "b"] | None = None"""


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        (["extra", "[1, 2"], "not valid YAML"),
        (["choice", "2024-01-01"], "reads the value as a date"),
        (["choice", "no"], "the boolean false, but choice takes a string"),
        (["extra", "4.5"], "extra takes an integer (its default is 1)"),
        (["rate", "yes"], "rate takes a number"),
        (["part", "c"], "part takes one of 'a', 'b', None"),
    ],
    ids=["malformed-yaml", "date", "yaml-false", "float-for-int", "bool-for-float",
         "not-a-choice"],
)
def test_a_bad_parameter_value_is_refused_before_anything_runs(
    toy_book: Path, parameter: list[str], message: str
) -> None:
    write_notebook(toy_book / "notebooks", "01_params", "# %%\nprint(extra)\n",
                   parameters=PARAMETERS)
    done = run_runner(toy_book, "--profile", "smoke", *SCRATCH, "-p", *parameter)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert not (toy_book / "out").exists()


def test_good_parameter_values_reach_the_notebook(toy_book: Path) -> None:
    body = ("# %%\nassert (extra, rate, choice, part) == (2, 3, 'no', 'b'), "
            "(extra, rate, choice, part)\n")
    write_notebook(toy_book / "notebooks", "01_params", body, parameters=PARAMETERS)
    done = run_runner(toy_book, "--profile", "smoke", *SCRATCH, "-p", "extra", "2",
                      "-p", "rate", "3", "-p", "choice", "'no'", "-p", "part", "b")
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_provenance(toy_book / "out" / "01_params.ipynb")["parameters"] == {
        "extra": 2, "rate": 3, "choice": "no", "part": "b"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output-dir", "notebooks", "--results-dir", "res"], "among the source notebooks"),
        (["--output-dir", "out", "--results-dir", "notebooks/res"], "among the source"),
        (["--output-dir", ".", "--results-dir", "res"], "among the source notebooks"),
        (["--timeout", "0", *SCRATCH], "--timeout 0: give a positive number"),
        (["--timeout", "-5", *SCRATCH], "--timeout -5: give a positive number"),
    ],
    ids=["output-in-sources", "results-in-sources", "output-above-sources", "timeout-0",
         "negative-timeout"],
)
def test_bad_folders_and_timeouts_are_refused(
    toy_book: Path, args: list[str], message: str
) -> None:
    source = write_notebook(toy_book / "notebooks", "01_toy", TOY_PASSING)
    before = source.read_bytes()
    done = run_runner(toy_book, "--profile", "cpu", *args, "01_toy")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert source.read_bytes() == before
    assert not (toy_book / "out").exists()
    assert nbformat.read(source, 4).metadata.get("provenance") is None
