"""Wall-clock timing for the side-by-side measurements every chapter reports.

A from-scratch implementation is always timed next to the library version in the same run,
and the ratio is reported: ``measure`` times a callable several times after a warm-up (first
calls pay for allocation, caching and, on a GPU, kernel compilation) and keeps the median,
which a single slow run caused by the rest of the machine does not move;
``measure_alternately`` times several callables in interleaved rounds, so that such a run
slows all of them alike. On CUDA the device is synchronised before and after each run: kernel
launches are asynchronous, so without it the clock would measure only the launch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median of ``runs`` (``seconds``) and the fastest (``best``)."""

    runs: tuple[float, ...]

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)

    @property
    def best(self) -> float:
        return min(self.runs)

    def __str__(self) -> str:
        return f"{format_seconds(self.seconds)} (median of {len(self.runs)})"


def format_seconds(seconds: float) -> str:
    """'812 µs', '3.41 ms', '2.05 s': three significant digits in a readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    if torch.backends.mps.is_available():  # MPS, like CUDA, returns before the kernels finish
        torch.mps.synchronize()


def measure(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1, number: int = 1) -> Timing:
    """Time ``fn()``: ``warmup`` untimed calls, then ``repeat`` runs of ``number`` calls each.

    Each run's time is divided by ``number``, so ``number > 1`` times calls too short for the
    clock one by one.
    """
    if repeat < 1 or number < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1, number >= 1, warmup >= 0; got {repeat}, {number}, "
                         f"{warmup}")
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeat):
        _synchronize()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        _synchronize()
        runs.append((time.perf_counter() - start) / number)
    return Timing(tuple(runs))


def measure_alternately(
    functions: Sequence[Callable[[], Any]], rounds: int, *, repeat: int = 1, warmup: int = 1
) -> list[Timing]:
    """Time several callables side by side: ``warmup`` untimed calls of each, then ``rounds``
    rounds that time ``repeat`` runs of each, in reversed order every other round.

    A slow spell of a shared machine then hits all of them alike, where timing one after the
    other would put it on one only. With ``repeat=1`` the i-th runs of the results were taken
    in the same round, so they can be compared pairwise.
    """
    if rounds < 1 or repeat < 1 or warmup < 0:
        raise ValueError(f"need rounds >= 1, repeat >= 1, warmup >= 0; got {rounds}, {repeat}, "
                         f"{warmup}")
    for fn in functions:
        for _ in range(warmup):
            fn()
    runs: list[list[float]] = [[] for _ in functions]
    order = list(range(len(functions)))
    for i in range(rounds):
        for k in order if i % 2 == 0 else order[::-1]:
            runs[k] += measure(functions[k], repeat=repeat, warmup=0).runs
    return [Timing(tuple(r)) for r in runs]


def speed_ratio(slow: Timing, fast: Timing) -> float:
    """How many times faster ``fast`` is than ``slow`` (ratio of the medians)."""
    return slow.seconds / fast.seconds


def round_ratios(slow: Timing, fast: Timing) -> list[float]:
    """The ratio slow / fast of each round, for two results of one ``measure_alternately``
    call with ``repeat=1`` (its i-th runs were taken in the same round, so they pair up).

    Their range shows how much a ratio of medians could move with the state of the machine.
    """
    if len(slow.runs) != len(fast.runs):
        raise ValueError(f"the timings have {len(slow.runs)} and {len(fast.runs)} runs: not "
                         "paired by round")
    return [s / f for s, f in zip(slow.runs, fast.runs, strict=True)]


def ratio_verdict(ratio: float, above: str, below: str, within: str, margin: float = 1.1) -> str:
    """Words for a time ratio that timing noise may blur: ``above`` if it exceeds ``margin``,
    ``below`` if it is under ``1 / margin``, else ``within`` (no clear winner)."""
    if ratio > margin:
        return above
    if ratio < 1 / margin:
        return below
    return within
