"""helpers.timing: medians of repeated runs, warm-up excluded, readable units."""

from __future__ import annotations

import time

import pytest

from helpers.timing import (
    Timing,
    format_seconds,
    measure,
    measure_alternately,
    ratio_verdict,
    round_ratios,
    speed_ratio,
)


def test_measure_excludes_warmup_and_takes_the_median() -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.002)  # a slow first call, like a warm-up

    timing = measure(work, repeat=5, warmup=1)
    assert len(calls) == 6 and len(timing.runs) == 5
    assert 0.0015 < timing.seconds < 0.03 and timing.best <= timing.seconds
    assert max(timing.runs) < 0.03  # the 50 ms warm-up call is in none of the timed runs


def test_number_divides_each_run() -> None:
    timing = measure(lambda: time.sleep(0.001), repeat=3, warmup=0, number=4)
    assert 0.0009 < timing.seconds < 0.01


def test_ratio_and_formatting() -> None:
    assert speed_ratio(Timing((2.0, 2.0, 4.0)), Timing((0.5,))) == 4.0
    assert [format_seconds(s) for s in (2.05, 3.41e-3, 8.12e-4, 5e-9)] == [
        "2.05 s", "3.41 ms", "812 µs", "5 ns"]
    assert str(Timing((0.001, 0.002, 0.003))) == "2 ms (median of 3)"


def test_measure_alternately_interleaves_rounds_and_reverses_the_order() -> None:
    calls = []
    timings = measure_alternately([lambda: calls.append("f"), lambda: calls.append("g")],
                                  rounds=3, repeat=2, warmup=1)
    # warm-ups first, then rounds of two runs each: f g, then g f, then f g
    assert "".join(calls) == "fg" + "ffgg" + "ggff" + "ffgg"
    assert [len(t.runs) for t in timings] == [6, 6]


def test_measure_alternately_times_each_callable() -> None:
    slow, fast = measure_alternately([lambda: time.sleep(0.004), lambda: time.sleep(0.001)],
                                     rounds=3, warmup=0)
    assert len(slow.runs) == len(fast.runs) == 3
    assert all(a > b for a, b in zip(slow.runs, fast.runs, strict=True))  # paired by round


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="repeat"):
        measure(lambda: None, repeat=0)
    with pytest.raises(ValueError, match="rounds"):
        measure_alternately([lambda: None], rounds=0)


def test_ratio_verdict_has_a_band_of_no_winner() -> None:
    words = ("slower", "faster", "tie")
    assert [ratio_verdict(r, *words) for r in (1.2, 0.8, 1.05, 1 / 1.05)] == [
        "slower", "faster", "tie", "tie"]
    assert ratio_verdict(1.3, *words, margin=1.5) == "tie"


def test_round_ratios_pair_the_runs_of_each_round() -> None:
    assert round_ratios(Timing((2.0, 6.0)), Timing((1.0, 2.0))) == [2.0, 3.0]
    with pytest.raises(ValueError, match="paired"):
        round_ratios(Timing((1.0,)), Timing((1.0, 2.0)))
