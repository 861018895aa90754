"""Headline numbers of a notebook, and their comparison with the sources' reference numbers.

A notebook calls :func:`record` for the numbers its prose talks about (an accuracy, a
fitted slope, a timing) and :func:`compare` for the numbers a source problem gives a
reference for. Both also ``glue`` the value under its name, so the prose cites it with
``{glue:text}`name:.3f``` and never types a number by hand.

When the runner (``python -m helpers.run``) executes a notebook, it points the environment
variable ``NB_RESULTS_FILE`` at a file; every record is appended there as one JSON line the
moment it is made (so a notebook that fails half-way still leaves what it measured), and
the runner gathers them into ``book/results/<notebook>.json`` for the Status and
Reproduction pages. Outside the runner (Jupyter, Colab, nbval) the records stay in memory.
Recording a name again replaces the earlier value, as re-running a cell should.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

RESULTS_ENV = "NB_RESULTS_FILE"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
Rule = Literal["within", "at_least", "at_most", "beside"]
RULES: tuple[str, ...] = ("within", "at_least", "at_most", "beside")

_recorded: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class Comparison:
    """Our number beside a source's reference number, and whether it holds.

    ``within``: |ours - reference| <= tolerance. ``at_least``: ours >= reference - tolerance.
    ``at_most``: ours <= reference + tolerance. ``beside``: no verdict (``holds`` is None): the
    two numbers are not measured alike (another tokenizer, another scale or hardware), so the
    reference is shown beside ours for orientation and the description must say why.
    """

    name: str
    ours: float
    reference: float
    tolerance: float
    rule: str
    source: str
    unit: str = ""
    description: str = ""
    note: str = ""

    @property
    def difference(self) -> float:
        return self.ours - self.reference

    @property
    def holds(self) -> bool | None:
        if self.rule == "beside":
            return None
        if self.rule == "within":
            return abs(self.difference) <= self.tolerance
        if self.rule == "at_least":
            return self.ours >= self.reference - self.tolerance
        return self.ours <= self.reference + self.tolerance


def _plain(value: Any, name: str) -> Any:
    """Turn NumPy/torch scalars into JSON-ready Python values; refuse anything else."""
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"result {name!r} is {value}: a headline number must be finite")
        return value
    raise TypeError(
        f"result {name!r} must be a number or a string, got {type(value).__name__}; "
        "record arrays as a summary number (a mean, a slope) instead"
    )


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"result name {name!r} must be lower_snake_case (letters, digits, underscores): "
            "it becomes a glue key and a column in book/results"
        )


def _emit(entry: dict[str, Any]) -> None:
    key = entry["kind"] + ":" + entry.get("name", "")
    _recorded[key] = entry
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps(entry) + "\n")


def _glue(name: str, value: Any) -> None:
    from helpers.glue import glue

    glue(name, value, display=False)


def _unmeasured_in_dry_run(value: Any) -> bool:
    """A NaN in a dry run (``helpers.dryrun``): a capped sweep measured only its first
    points and left the others NaN, and so are the numbers drawn from them. In a real run
    a NaN is an error (``_plain``)."""
    try:
        if not math.isnan(value):
            return False
    except TypeError:  # a string, or something _plain refuses
        return False
    from helpers import dryrun

    return dryrun.iterations() is not None


def record(name: str, value: Any, *, unit: str = "", description: str = "") -> None:
    """Record a headline number (and glue it as ``name``).

    In a dry run, a number left NaN by a capped sweep is not recorded. It returns nothing,
    so that a cell ending in a ``record`` call shows no stray number in the rendered page."""
    _check_name(name)
    if _unmeasured_in_dry_run(value):
        return
    plain = _plain(value, name)
    _emit({"kind": "value", "name": name, "value": plain, "unit": unit,
           "description": description})
    _glue(name, plain)


def compare(
    name: str,
    ours: float,
    reference: float,
    *,
    tolerance: float,
    source: str,
    rule: Rule = "within",
    unit: str = "",
    description: str = "",
    note: str = "",
) -> Comparison:
    """Record our number next to a source's reference number; glue ours as ``name``.

    ``description`` names the quantity in a few words (the Reproduction page's Quantity
    column); ``note``, optional, says how it was measured where the source differs (the row's
    footnote). Nothing is asserted here: a miss is reported on the Reproduction page and the prose
    must say by how much and why. Use ``assert`` in the notebook for what must hold.
    """
    _check_name(name)
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; valid rules: {', '.join(RULES)}")
    if not (isinstance(tolerance, int | float) and tolerance >= 0):
        raise ValueError(f"tolerance of {name!r} must be a number >= 0, got {tolerance!r}")
    if not source:
        raise ValueError(f"comparison {name!r} must name its source (e.g. '001 P3.5')")
    comparison = Comparison(
        name=name,
        ours=float(_plain(ours, name)),
        reference=float(_plain(reference, name)),
        tolerance=float(tolerance),
        rule=rule,
        source=source,
        unit=unit,
        description=description,
        note=note,
    )
    _emit({"kind": "comparison", **asdict(comparison), "holds": comparison.holds})
    _glue(name, comparison.ours)
    return comparison


def record_run(**info: Any) -> None:
    """Record how this run was configured (profile, device, seed, settings): see profiles."""
    _emit({"kind": "run", **info})


def record_peak_memory(**peaks: int) -> None:
    """Record a run's peak memory figures (e.g. ``cuda_max_allocated_bytes``): see profiles."""
    _emit({"kind": "peak", **peaks})


def recorded() -> list[dict[str, Any]]:
    """Everything recorded in this kernel so far (latest value per name)."""
    return list(_recorded.values())


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Parse a results file written during a run; a later record of a name replaces earlier."""
    latest: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON record ({error})") from error
            latest[entry["kind"] + ":" + entry.get("name", "")] = entry
    return list(latest.values())
