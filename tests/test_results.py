"""Results: what a notebook records, how comparisons are judged, the file the runner reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import results


@pytest.fixture
def results_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "results.jsonl"
    monkeypatch.setenv(results.RESULTS_ENV, str(path))
    return path


def test_records_are_appended_as_json_lines_and_the_last_value_wins(results_file: Path) -> None:
    assert results.record("accuracy", np.float32(0.5), unit="fraction") is None  # no stray output
    results.record("epochs", torch.tensor(12))
    results.record("accuracy", 0.875, unit="fraction")
    lines = [json.loads(line) for line in results_file.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["accuracy", "epochs", "accuracy"]
    assert lines[1]["value"] == 12 and isinstance(lines[1]["value"], int)
    latest = {r["name"]: r["value"] for r in results.read_records(results_file)}
    assert latest == {"accuracy": 0.875, "epochs": 12}


@pytest.mark.parametrize(
    ("ours", "reference", "tolerance", "rule", "holds"),
    [
        (87.0, 87.9, 3.0, "within", True),
        (84.8, 87.9, 3.0, "within", False),
        (91.0, 87.9, 3.0, "within", False),
        (91.0, 87.9, 0.0, "at_least", True),
        (86.0, 87.9, 1.0, "at_least", False),
        (2.2, 2.29, 0.0, "at_most", True),
        (2.4, 2.29, 0.1, "at_most", False),
        (3.45, 2.29, 0.0, "beside", None),
    ],
)
def test_comparison_rules(
    results_file: Path, ours: float, reference: float, tolerance: float, rule: str,
    holds: bool | None,
) -> None:
    comparison = results.compare("acc", ours, reference, tolerance=tolerance, rule=rule,
                                 source="001 P3.5")
    assert comparison.holds is holds
    assert comparison.difference == pytest.approx(ours - reference)
    (entry,) = results.read_records(results_file)
    assert entry["holds"] is holds and entry["reference"] == reference


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: results.record("Test Acc", 1.0), ValueError, "lower_snake_case"),
        (lambda: results.record("x", float("nan")), ValueError, "finite"),
        (lambda: results.record("x", np.zeros(3)), TypeError, "summary number"),
        (lambda: results.compare("x", 1, 1, tolerance=-1, source="s"), ValueError, ">= 0"),
        (lambda: results.compare("x", 1, 1, tolerance=0, source=""), ValueError, "source"),
        (lambda: results.compare("x", 1, 1, tolerance=0, source="s", rule="near"),
         ValueError, "within, at_least, at_most, beside"),
    ],
)
def test_bad_records_are_refused(results_file: Path, call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()
    assert not results_file.exists() or results_file.read_text() == ""


def test_values_are_glued_for_the_prose(capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    published: list[dict] = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: published.append(
        {"data": data, "metadata": metadata})
    try:
        results.record("slope", -0.25)
    finally:
        InteractiveShell.clear_instance()
    (message,) = published
    assert message["metadata"]["scrapbook"]["name"] == "slope"
    assert any("-0.25" in str(value) for value in message["data"].values())


def test_a_corrupt_results_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"kind": "value", "name": "a", "value": 1}\nnot json\n')
    with pytest.raises(ValueError, match=r"r.jsonl:2"):
        results.read_records(path)


def test_a_dry_run_leaves_out_a_number_its_capped_sweep_did_not_measure(
        results_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import dryrun

    monkeypatch.setenv(dryrun.DRY_RUN_ENV, "3")
    results.record("sweep_mean", float("nan"))  # grid points past the cap stay NaN
    results.record("sweep_in_domain", np.float32(97.5))  # measured: recorded as usual
    with pytest.raises(ValueError, match="finite"):  # infinity is no unmeasured point
        results.record("sweep_ratio", float("inf"))
    names = [json.loads(line)["name"] for line in results_file.read_text().splitlines()]
    assert names == ["sweep_in_domain"]
    monkeypatch.delenv(dryrun.DRY_RUN_ENV)  # in a real run the NaN is an error
    with pytest.raises(ValueError, match="finite"):
        results.record("sweep_mean", float("nan"))
