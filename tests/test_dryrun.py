"""helpers.dryrun: capped loops, what they record, and the dry-run command on a toy book."""

import json
import subprocess
import sys

import pytest
from conftest import environment, write_notebook

from helpers import dryrun, results


@pytest.fixture
def records(monkeypatch, tmp_path):
    """The dry-loop records a capped loop writes, read back as a list."""
    sink = tmp_path / "results.jsonl"
    monkeypatch.setenv(results.RESULTS_ENV, str(sink))

    def read():
        if not sink.exists():
            return []
        return [e for e in map(json.loads, sink.read_text().splitlines())
                if e["kind"] == "dry_loop"]

    return read


def test_outside_a_dry_run_the_loop_is_untouched(monkeypatch, records):
    monkeypatch.delenv(dryrun.DRY_RUN_ENV, raising=False)
    steps = range(1000)
    assert dryrun.capped(steps) is steps
    assert records() == []


def test_a_dry_run_caps_times_and_counts_nested_loops(monkeypatch, records):
    monkeypatch.setenv(dryrun.DRY_RUN_ENV, "2")
    seen = []
    for epoch in dryrun.capped(range(30)):  # 30 epochs of 400 batches
        for batch in dryrun.capped(range(400)):
            seen.append((epoch, batch))
    for _ in dryrun.capped(iter(range(10**6)), total=500, what="evaluations"):
        pass
    assert seen == [(0, 0), (0, 1), (1, 0), (1, 1)]
    loops = records()
    # the batch loop ran once per epoch of the dry run, but is counted once: epochs x batches
    (updates,) = [e for e in loops if e["what"] == "updates"]
    assert updates["full_iterations"] == 12_000
    assert updates["iterations_run"] == 2 and updates["seconds_per_iteration"] >= 0
    (sweep,) = [e for e in loops if e["what"] == "evaluations"]
    assert sweep["full_iterations"] == 500
    row = dryrun.summarize("toy", "ok", "", 1.0, None, loops)
    assert row.updates == 12_000


def test_loops_three_deep_and_side_by_side_multiply_once(monkeypatch, records):
    monkeypatch.setenv(dryrun.DRY_RUN_ENV, "3")
    for _seed in dryrun.capped(range(3)):  # 3 seeds
        for _model in dryrun.capped(range(4)):  # 4 models, each trained then evaluated
            for _epoch in dryrun.capped(range(10)):
                for _batch in dryrun.capped(range(100)):
                    pass
            for _sweep in dryrun.capped(range(50), what="evaluations"):
                pass
    row = dryrun.summarize("toy", "ok", "", 1.0, None, records())
    assert row.updates == 3 * 4 * 10 * 100
    evaluations = [e for e in records() if e["what"] == "evaluations"]
    assert [e["full_iterations"] for e in evaluations] == [3 * 4 * 50]


def test_a_loop_that_breaks_early_is_still_recorded(monkeypatch, records):
    monkeypatch.setenv(dryrun.DRY_RUN_ENV, "3")
    for _step in dryrun.capped(range(100)):
        break
    (entry,) = records()
    assert entry["full_iterations"] == 100 and entry["iterations_run"] == 0


def test_an_early_stopped_loop_makes_its_counts_upper_bounds(monkeypatch, records):
    monkeypatch.setenv(dryrun.DRY_RUN_ENV, "2")
    for _ in dryrun.capped(range(300), may_stop_early=True):  # epochs, early stopping
        for _ in dryrun.capped(range(200)):  # batches
            pass
    for _ in dryrun.capped(range(50)):  # a fixed-length loop beside it
        pass
    loops = records()
    assert [(e["full_iterations"], e["upper_bound"]) for e in loops] == [
        (60_000, True), (50, False)]
    for e in loops:
        e["seconds_per_iteration"] = 0.01
    row = dryrun.summarize("03_mlps/03_batch_size", "ok", "", 5.0, None, loops)
    assert row.updates == 60_050 and row.upper_bound
    assert "| at most 60,050 |" in dryrun.table([row])


def test_an_unknown_length_is_reported_not_guessed(monkeypatch, records):
    monkeypatch.setenv(dryrun.DRY_RUN_ENV, "2")
    assert list(dryrun.capped(iter(range(50)))) == [0, 1]
    row = dryrun.summarize("toy", "ok", "", 1.0, None, records())
    assert row.updates is None and row.training_s is None
    assert "unknown" in dryrun.table([row])


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_iteration_count_is_refused(monkeypatch, value):
    monkeypatch.setenv(dryrun.DRY_RUN_ENV, value)
    with pytest.raises(ValueError, match="positive number of iterations"):
        dryrun.capped(range(3))


def test_the_table_adds_the_loops_of_a_notebook():
    loops = [
        {"kind": "dry_loop", "what": "updates", "full_iterations": 1000,
         "seconds_per_iteration": 0.02},
        {"kind": "dry_loop", "what": "updates", "full_iterations": 3000,
         "seconds_per_iteration": 0.01},
        {"kind": "dry_loop", "what": "evaluations", "full_iterations": 10,
         "seconds_per_iteration": 1.5},
    ]
    row = dryrun.summarize("05_cnn_ood/04_models", "ok", "", 12.0, 2 << 30, loops)
    assert row.updates == 4000
    assert row.training_s == pytest.approx(50.0)
    assert row.seconds_per_update == pytest.approx(0.0125)
    assert row.evaluation_s == pytest.approx(15.0)
    assert "| 05_cnn_ood/04_models | 4,000 | 0.0125 |" in dryrun.table([row])


TOY_TRAINING = '''\
# %%
import time

from helpers import profiles
from helpers.dryrun import capped

run = profiles.setup(profile, seed=3, steps=(5, 50, 100_000))

# %%
for step in capped(range(run.steps)):
    time.sleep(0.01)
loss = 1.0
assert loss < 0.1, "a quality bound a dry run cannot meet (removed by PYTHONOPTIMIZE)"
'''


TOY_WHOLE = '''\
# %%
from helpers import profiles

run = profiles.setup(profile, seed=3, n=(5, 50, 500))

# %%
if (run.n, scale) != (500, 2):  # not an assert: the dry run removes those
    raise ValueError(f"ran with n={run.n}, scale={scale}: not the gpu scale and -p scale 2")
'''


def dry_run(root, *args):
    return subprocess.run([sys.executable, "-m", "helpers.dryrun", *args], cwd=root,
                          env=environment(), capture_output=True, text=True, timeout=300)


def test_the_command_dry_runs_the_full_scale_and_writes_nothing_to_the_book(toy_book):
    write_notebook(toy_book / "notebooks" / "01_toy", "01_training", TOY_TRAINING)
    write_notebook(toy_book / "notebooks" / "01_toy", "02_whole", TOY_WHOLE,
                   parameters="scale = 1")
    done = dry_run(toy_book, "--updates", "3", "-p", "scale", "2")  # every notebook
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in done.stdout.splitlines() if line.startswith("| 01_toy/")}
    cells = rows["01_toy/01_training"]
    assert cells[1] == "100,000"  # the gpu profile's steps, not the 3 that ran
    assert 0.005 < float(cells[2]) < 0.5  # the 10 ms sleep, per update
    assert cells[-1].startswith("ok")
    # No capped loop: it ran whole, with the -p value it declares (the other does not).
    assert rows["01_toy/02_whole"][1:5] == ["runs whole", "–", "–", "–"]
    assert rows["01_toy/02_whole"][-1].startswith("ok")
    assert not (toy_book / "book").exists()


def test_the_command_refuses_a_parameter_no_notebook_declares(toy_book):
    write_notebook(toy_book / "notebooks" / "01_toy", "01_training", TOY_TRAINING)
    done = dry_run(toy_book, "01_toy", "-p", "scale", "2")
    assert done.returncode == 2
    assert "has no parameter 'scale'" in done.stderr
