"""A dry run of the full scale on a CPU: every loop capped at a few iterations, and timed.

A training loop written as ::

    for step in capped(range(steps)):
        ...

runs ``range(steps)`` untouched in a normal run. In a dry run (the environment variable
``NB_DRY_RUN`` set to a number of iterations, 3 by default from the command below), it runs
only the first few iterations, times them, and records how many the full loop would have
run, so the whole ``gpu`` configuration (full-size models, batches and data) is exercised
for a few updates: shape, dtype and memory errors show up in minutes instead of after an
hour of GPU time. Loops inside loops multiply: an epoch loop over a capped batch loop counts
epochs x batches. Evaluation sweeps that would take long at full scale are capped the same
way with ``what="evaluations"``; they are timed but not counted as updates. An epoch loop
that early stopping may end is written ``capped(..., may_stop_early=True)``: its counts are
upper bounds, and the table says "at most".

    python -m helpers.dryrun [NOTEBOOK ...] [--updates 3] [-p NAME VALUE]

runs each notebook (a chapter's name stands for its sections; default: every notebook) at
the ``gpu`` profile on this CPU with the checks switched off (``PYTHONOPTIMIZE=1`` removes
``assert`` statements: two updates cannot meet a bound on a trained model's loss), writes
nothing into the book, and prints one row per notebook: the updates the full run would
make, the seconds per update here, the training time that implies on this CPU, and the
peak memory. A notebook without a capped loop (its full scale takes a minute or two on a
CPU) runs whole, and its row says so. ``-p`` values are checked as the runner checks them
and reach the notebooks that declare them. A session that is lent a GPU plans its runs
from that table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any, Literal

DRY_RUN_ENV = "NB_DRY_RUN"
DEFAULT_ITERATIONS = 3
What = Literal["updates", "evaluations"]


def iterations() -> int | None:
    """Iterations per capped loop in this dry run, or None in a normal run."""
    value = os.environ.get(DRY_RUN_ENV, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{DRY_RUN_ENV}={value!r} must be a positive number of iterations") \
            from None
    if n < 1:
        raise ValueError(f"{DRY_RUN_ENV}={value!r} must be a positive number of iterations")
    return n


@dataclass
class _Loop:
    """What one innermost loop ran: its kind, its full length, its timed iterations."""

    what: str
    full: int | None
    seconds: list[float]
    bound: bool = False  # full is an upper bound: a loop in or around it may stop early


@dataclass
class _Frame:
    full: int | None  # iterations of the uncapped loop (None: unknown)
    what: str
    bound: bool = False  # the loop may stop before ``full`` (early stopping)
    seconds: list[float] = field(default_factory=list)
    iteration: int = 0  # the item being run now
    inner: list[_Loop] = field(default_factory=list)  # loops run in its first iteration
    has_inner: bool = False


_active: list[_Frame] = []  # the capped loops running now, outermost first
_recorded = count()


class _Capped:
    """The first ``limit`` items of ``iterable``, timed; recorded when the loop ends."""

    def __init__(self, iterable: Iterable, limit: int, total: int | None, what: str,
                 bound: bool):
        self.iterable, self.limit, self.what, self.bound = iterable, limit, what, bound
        self.full = total if total is not None else _length(iterable)

    def __len__(self) -> int:  # for tqdm's bar
        return self.limit if self.full is None else min(self.limit, self.full)

    def __iter__(self) -> Iterator:
        frame = _Frame(self.full, self.what, self.bound)
        _active.append(frame)
        items = iter(self.iterable)
        try:
            for k in range(self.limit):
                frame.iteration = k
                start = time.perf_counter()  # the next item (a batch) is part of the update
                try:
                    item = next(items)
                except StopIteration:
                    return
                yield item
                frame.seconds.append(time.perf_counter() - start)
        finally:
            _active.pop()
            _finish(frame)


def _finish(frame: _Frame) -> None:
    """Hand what a finished loop ran to the loop around it, or record it if outermost.

    An innermost loop is a loop of updates (or evaluations). A loop around others only
    multiplies: what ran inside its first iteration stands for every one of its
    iterations (the same inner loops run again each time), so a nested loop is counted
    once, times the outer loop's full length, however many outer iterations the dry run
    made.
    """
    if not frame.has_inner:
        loops = [_Loop(frame.what, frame.full, frame.seconds, frame.bound)]
    else:
        loops = [_Loop(inner.what,
                       None if frame.full is None or inner.full is None
                       else frame.full * inner.full,
                       inner.seconds, inner.bound or frame.bound)
                 for inner in frame.inner]
    if _active:
        parent = _active[-1]
        parent.has_inner = True
        if parent.iteration == 0:
            parent.inner.extend(loops)
        return
    for loop in loops:
        _record(loop)


def _length(iterable: Iterable) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _record(loop: _Loop) -> None:
    from helpers import results

    timed = loop.seconds[1:] or loop.seconds  # the first iteration warms up
    results._emit({
        "kind": "dry_loop",
        "name": f"loop_{next(_recorded)}",
        "what": loop.what,
        "iterations_run": len(loop.seconds),
        "full_iterations": loop.full,
        "upper_bound": loop.bound,
        "seconds_per_iteration": statistics.median(timed) if timed else None,
    })


def capped(iterable: Iterable, *, total: int | None = None, what: What = "updates",
           may_stop_early: bool = False):
    """``iterable`` itself, or in a dry run its first few items, timed (module docstring).

    ``total`` is the length of the full loop where ``len(iterable)`` cannot tell it.
    ``may_stop_early``: the full run may leave the loop before its end (early stopping),
    so its length, and every count it multiplies, is an upper bound ("at most").
    """
    limit = iterations()
    if limit is None:
        return iterable
    return _Capped(iterable, limit, total, what, may_stop_early)


# ----------------------------------------------------------------------------- the command


@dataclass
class Row:
    name: str
    status: str
    detail: str
    wall_s: float
    peak_rss: int | None
    updates: int | None = 0
    seconds_per_update: float | None = None
    training_s: float | None = 0.0
    evaluation_s: float | None = 0.0
    capped_loops: int = 0  # none: the notebook ran whole, as at full scale
    upper_bound: bool = False  # the counts are upper bounds (a loop may stop early)


def summarize(name: str, status: str, detail: str, wall_s: float, peak_rss: int | None,
              records: list[dict[str, Any]]) -> Row:
    """One notebook's row from its dry-loop records (None where a loop's length is unknown)."""
    row = Row(name, status, detail, wall_s, peak_rss)
    for entry in (e for e in records if e["kind"] == "dry_loop"):
        row.capped_loops += 1
        row.upper_bound |= bool(entry.get("upper_bound"))
        full, each = entry["full_iterations"], entry["seconds_per_iteration"]
        cost = None if full is None or each is None else full * each
        if entry["what"] == "updates":
            row.updates = None if full is None or row.updates is None else row.updates + full
            row.training_s = None if cost is None or row.training_s is None else (
                row.training_s + cost)
        else:
            row.evaluation_s = None if cost is None or row.evaluation_s is None else (
                row.evaluation_s + cost)
    if row.updates and row.training_s is not None:
        row.seconds_per_update = row.training_s / row.updates
    return row


def table(rows: list[Row]) -> str:
    """The dry run's table, in Markdown (the README and the issue notes paste it)."""
    from helpers.pages import format_bytes, format_duration

    def duration(seconds: float | None) -> str:
        return "unknown" if seconds is None else format_duration(seconds)

    lines = [
        "| Notebook | Updates at full scale | Seconds per update (this CPU) "
        "| Training at full scale (this CPU) | Capped evaluations (this CPU) "
        "| Peak memory | Dry run |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        updates = ("runs whole" if not r.capped_loops
                   else "unknown" if r.updates is None
                   else f"at most {r.updates:,}" if r.upper_bound else f"{r.updates:,}")
        training, evaluations = duration(r.training_s), duration(r.evaluation_s)
        if r.upper_bound and r.training_s is not None:
            training = f"at most {training}"
        if not r.capped_loops:  # it ran whole: nothing to extrapolate
            training = evaluations = "–"
        per = "–" if r.seconds_per_update is None else f"{r.seconds_per_update:.3g}"
        status = r.status if not r.detail else f"{r.status}: {r.detail}"
        lines.append(f"| {r.name} | {updates} | {per} | {training} "
                     f"| {evaluations} | {format_bytes(r.peak_rss)} "
                     f"| {status} ({r.wall_s:.0f} s) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from helpers import run as runner
    from helpers.structure import (
        BookError,
        find_root,
        notebook_name,
        results_path,
        source_notebooks,
    )

    parser = argparse.ArgumentParser(prog="python -m helpers.dryrun", description=__doc__
                                     .split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK")
    parser.add_argument("--updates", type=int, default=DEFAULT_ITERATIONS,
                        help=f"iterations per capped loop (default {DEFAULT_ITERATIONS})")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a papermill parameter, as for run")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds per notebook (default 900)")
    args = parser.parse_args(argv)
    if args.updates < 1:
        parser.error("--updates must be at least 1")
    try:
        root = find_root(Path.cwd())
        sources = ([p for n in args.notebooks for p in runner.resolve_notebooks(root, n)]
                   or source_notebooks(root))
        parameters = runner.checked_parameters(sources, args.parameter)  # as the runner does
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ.update({DRY_RUN_ENV: str(args.updates), "PYTHONOPTIMIZE": "1",
                       "NB_DEVICE": os.environ.get("NB_DEVICE", "cpu")})
    rows = []
    with tempfile.TemporaryDirectory(prefix="dryrun-") as scratch:
        plan = runner.Plan(root, Path(scratch) / "out", Path(scratch) / "results",
                           Path(scratch) / "logs", "gpu", parameters, args.timeout,
                           args.timeout)
        for source in sources:
            name = notebook_name(root, source)
            outcome = runner.execute(source, plan)  # each gets the -p values it declares
            try:
                provenance = runner.recorded_provenance(
                    results_path(root, name, plan.results_dir))
            except (OSError, ValueError):  # it failed before writing one: the row says so
                provenance = {}
            rows.append(summarize(name, outcome.status, outcome.detail, outcome.wall_time_s,
                                  provenance.get("peak_rss_bytes"), outcome.results))
    print(table(rows))
    return 0 if all(r.status == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
