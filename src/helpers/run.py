"""The runner: execute notebooks with papermill into the book, stamped with their provenance.

    python -m helpers.run [--profile P] [--all] [--timeout S] [-p NAME VALUE] [NOTEBOOK ...]

With no NOTEBOOK it looks at every source notebook (``notebooks/**/*.ipynb``: the sections
of a chapter sit in its folder, see :mod:`helpers.structure`) and re-executes only those
whose executed copy in ``book/notebooks/`` is missing, failed or stale (its source hash
differs from the notebook's current source, it ran with another profile than the one
asked for, or its results file is not that run's); ``--all`` re-executes every one. Named
notebooks (``01_backprop/05_bptt``, a file name that is unique such as ``05_bptt``, or a
path to the ``.ipynb`` or its ``.py`` twin) always run.

Each notebook runs in its own papermill process with a wall-clock timeout, so one that
hangs or fails does not stop the others. The executed copy (also a failed one, so the
traceback can be read) carries a ``provenance`` block in its metadata: profile, device,
wall time, peak memory, date, git commit, package versions, the hash of the source it ran
and the status. The notebook's recorded results (see :mod:`helpers.results`) are gathered into
``book/results/<notebook>.json``; the Status and Reproduction pages are then regenerated.
A summary table is printed at the end; the exit status is 1 if any notebook failed, 2 if
the arguments were refused (before anything ran), 130/143/129 if it was interrupted.

Under faults (see the README, "Running notebooks"): an interrupt or a kill stops the whole
process tree of the run (papermill runs under :mod:`helpers.guard`, which cleans up if this
process dies); every file is replaced atomically (:mod:`helpers.files`); a notebook's copy
and results are written together under a lock on their folders, so runs at the same time
never pair one run's copy with another's results; each run has its own log.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import hashlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import yaml

from helpers import pages, profiles
from helpers.files import locked, write_atomically
from helpers.guard import stop_tree
from helpers.results import RESULTS_ENV, read_records
from helpers.structure import (
    NOTEBOOKS_DIR,
    OUTPUT_DIR,
    RESULTS_DIR,
    BookError,
    executed_path,
    find_root,
    notebook_name,
    results_path,
    source_notebooks,
)

LOG_DIR = Path("_build") / "logs"
# Exit statuses of an interrupted run, as a shell reports a process stopped by the signal.
INTERRUPTED_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
DEFAULT_TIMEOUT_S = {"smoke": 600, "cpu": 3600, "gpu": 3600, "auto": 3600}
# Without --timeout, a notebook gets the larger of its profile's default and this many times
# its last published run at that profile: room for a slower or busier machine, while a
# notebook that hangs is still stopped within a few times its usual length.
TIMEOUT_MARGIN = 3
PROVENANCE_KEY = "provenance"
# Packages whose versions change what a notebook computes or how it renders.
TRACKED_PACKAGES = (
    "torch", "numpy", "matplotlib", "tokenizers", "tqdm", "papermill", "nbclient",
    "ipykernel", "jupytext", "myst-nb", "dl-notes-helpers",
)


class RunnerError(BookError):
    """A mistake in how the runner was called: a bad name, profile or parameter."""


# ----------------------------------------------------------------------------- sources


def source_hash(path: str | os.PathLike[str]) -> str:
    """A hash of what a notebook says (cell types and sources), not of outputs or metadata.

    The ``.py`` twin and the ``.ipynb`` give the same hash when jupytext keeps them in sync,
    and a cell papermill injected (``injected-parameters``) is left out, so the hash of an
    executed copy's input can be recomputed from the source alone.
    """
    notebook = jupytext.read(path)
    cells = [
        [cell.cell_type, cell.source.strip()]
        for cell in notebook.cells
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]
    digest = hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode("utf-8"))
    return "sha256:" + digest.hexdigest()


def resolve_notebooks(root: Path, name: str) -> list[Path]:
    """The notebooks ``name`` stands for: a chapter's folder (``06_rnn_attention`` or its
    path) stands for its sections, in order; anything else for one notebook."""
    folder = root / NOTEBOOKS_DIR
    for candidate in (folder / name, Path(name)):
        if candidate.is_dir() and candidate.resolve().parent == folder.resolve():
            sections = sorted(candidate.glob("*.ipynb"))
            if sections:
                return [path.resolve() for path in sections]
    return [resolve_notebook(root, name)]


def resolve_notebook(root: Path, name: str) -> Path:
    """A notebook named by name (``01_backprop/01_chain_rule``), by its file name alone when
    that is unique (``01_chain_rule``), or by path; the ``.py`` twin maps to its ``.ipynb``."""
    folder = (root / NOTEBOOKS_DIR).resolve()
    candidates = [Path(name), root / NOTEBOOKS_DIR / name, root / NOTEBOOKS_DIR / f"{name}.ipynb"]
    for candidate in candidates:
        if candidate.suffix == ".py":
            candidate = candidate.with_suffix(".ipynb")
        if candidate.suffix == ".ipynb" and candidate.is_file():
            if not candidate.resolve().is_relative_to(folder):
                # e.g. an executed copy in book/notebooks: papermill would overwrite its input
                raise RunnerError(f"{name!r} is not a source notebook: sources are in "
                                  f"{NOTEBOOKS_DIR}/ (run {candidate.stem!r} by its name)")
            return candidate.resolve()
    known = {notebook_name(root, path): path for path in source_notebooks(root)}
    by_stem = [path for known_name, path in known.items() if Path(known_name).name == name]
    if len(by_stem) == 1:
        return by_stem[0].resolve()
    if len(by_stem) > 1:
        raise RunnerError(f"{name!r} is ambiguous: "
                          + ", ".join(notebook_name(root, p) for p in by_stem))
    close = difflib.get_close_matches(name, list(known), n=3) or difflib.get_close_matches(
        name, [Path(k).name for k in known], n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    listing = ", ".join(known) if known else "(none)"
    raise RunnerError(f"no notebook {name!r}.{hint} Notebooks in {NOTEBOOKS_DIR}/: {listing}")


@dataclass(frozen=True)
class Parameter:
    """A name the notebook's cell tagged ``parameters`` assigns, with what it accepts.

    The accepted values come from an annotation when there is one (``n: int = 3``,
    ``part: Literal["sample", "full"] | None = None``), else from the default: a value of
    the default's type (an integer also serves where the default is a float), and for a
    default of None a string, which is how the notebooks name a choice.
    """

    name: str
    default: ast.expr | None
    annotation: ast.expr | None = None

    def check(self, text: str) -> Any:
        """The value of ``-p NAME TEXT``, read as YAML; RunnerError if the notebook would
        not take it."""
        option = f"-p {self.name} {text}"
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise RunnerError(f"{option}: the value is not valid YAML "
                              f"({str(error).splitlines()[0]})") from None
        types, choices, wanted = self._accepted()
        fits = any(type(value) is kind for kind in types) or (
            float in types and type(value) is int)
        if fits and (choices is None or value in choices):
            return value
        read_as = _yaml_reading(value)
        hint = (f"; to pass the text, quote it: -p {self.name} \"'{text}'\""
                if str in types and not isinstance(value, str) else "")
        raise RunnerError(f"{option}: YAML reads the value as {read_as}, but {self.name} "
                          f"takes {wanted}{hint}")

    def _accepted(self) -> tuple[tuple[type, ...], tuple[Any, ...] | None, str]:
        if self.annotation is not None:
            types, choices = _from_annotation(self.annotation, self.name)
            declared = ast.unparse(self.annotation)
            if choices is not None:
                listed = ", ".join(repr(choice) for choice in choices)
                return types, choices, f"one of {listed} (it is declared {declared})"
            return types, None, f"{declared} (its annotation)"
        try:
            default = ast.literal_eval(self.default) if self.default is not None else None
        except ValueError:
            raise RunnerError(
                f"{self.name}'s default is not a plain value, so the runner cannot tell what "
                f"it takes: annotate it in the parameters cell (e.g. `{self.name}: int = ...`)"
            ) from None
        if default is None:
            return (str, type(None)), None, "a string (its default is None)"
        kind = type(default)
        return (kind,), None, f"{_TYPE_WORDS.get(kind, kind.__name__)} (its default is {default!r})"


_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}
_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "a mapping"}


def _from_annotation(node: ast.expr, name: str) -> tuple[tuple[type, ...], tuple[Any, ...] | None]:
    """The types (and for ``Literal[...]`` the values) an annotation allows."""
    if isinstance(node, ast.Constant) and node.value is None:
        return (type(None),), (None,)
    if isinstance(node, ast.Name) and node.id in _TYPES:
        return (_TYPES[node.id],), None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, left_choices = _from_annotation(node.left, name)
        right, right_choices = _from_annotation(node.right, name)
        if left_choices is None or right_choices is None:  # `str | None`: any string, or None
            return left + right, None
        return left + right, left_choices + right_choices  # `Literal["a", "b"] | None`
    if isinstance(node, ast.Subscript):
        base = ast.unparse(node.value).removeprefix("typing.")
        if base == "Literal":
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            values = tuple(ast.literal_eval(item) for item in items)
            return tuple({type(value) for value in values}), values
        if base == "Optional":
            types, choices = _from_annotation(node.slice, name)
            return types + (type(None),), None if choices is None else choices + (None,)
    raise RunnerError(f"the runner cannot read the annotation of {name} "
                      f"({ast.unparse(node)}): use str, int, float, bool, Literal[...] or X | None")


def _yaml_reading(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    kind = type(value)
    return f"{_TYPE_WORDS.get(kind, 'a ' + kind.__name__)} ({value!r})"


def notebook_parameters(path: Path) -> dict[str, Parameter]:
    """The names assigned in the notebook's cell tagged ``parameters`` (papermill's rule)."""
    notebook = nbformat.read(path, as_version=4)
    found: dict[str, Parameter] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            found[target.id] = Parameter(target.id, node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    found[node.target.id] = Parameter(node.target.id, node.value,
                                                      node.annotation)
    return found


# -------------------------------------------------------------------------- provenance


def git_state(root: Path) -> tuple[str, bool]:
    """The commit the book is at and whether the tracked files a notebook can run (all but
    ``book/``) differ from it.

    ``book/`` holds what runs produce (executed copies, results, generated pages) and the
    prose pages, none of which a notebook executes: a run that rewrites them, or the runs
    before it in one invocation, does not make the next one "modified". Outside a git
    checkout the commit is taken from ``NB_GIT_COMMIT`` when set.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
             ":(exclude)book"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        # e.g. a copy of the working tree on a GPU machine: the caller may say the commit
        stated = os.environ.get("NB_GIT_COMMIT", "").strip()
        return (stated, False) if stated else ("unknown (not a git checkout)", False)
    return commit, bool(dirty)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance block of an executed copy; None if there is no copy, it has no block,
    or it cannot be read (e.g. left truncated by a crash of an older runner): each of these
    makes the copy stale."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError):  # missing, unreadable, not JSON, not a notebook
        return None
    provenance = notebook.metadata.get(PROVENANCE_KEY)
    return provenance if isinstance(provenance, dict) else None


# Everything on a line up to a carriage return that more text follows: what a terminal or
# Jupyter overwrites (progress bars redraw their line with "\r").
_OVERWRITTEN = re.compile(r"[^\n]*\r(?=[^\n])")


def tidy_streams(notebook: nbformat.NotebookNode) -> None:
    """Keep of each cell's printed text what a Jupyter front end would show, in place.

    The kernel sends every redraw of a progress bar as its own stream output (thousands in a
    long training cell), and a static page would print every one of them. Consecutive
    outputs of the same stream are joined, text overwritten by a carriage return is dropped,
    and what is left blank (a bar that erased itself) is removed. Figures, tables and errors
    are untouched, and so is the order of the outputs.
    """
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs: list[nbformat.NotebookNode] = []
        for output in cell.get("outputs", []):
            last = outputs[-1] if outputs else None
            if (output.output_type == "stream" and last is not None
                    and last.output_type == "stream" and last.name == output.name):
                last.text += output.text
            else:
                outputs.append(output)
        for output in outputs:
            if output.output_type == "stream":
                output.text = _OVERWRITTEN.sub("", output.text)
        cell.outputs = [output for output in outputs
                        if output.output_type != "stream" or output.text.strip(" \r\n")]


def first_error(notebook: nbformat.NotebookNode) -> dict[str, Any] | None:
    """Where and why an executed notebook stopped: the first cell with an error output."""
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for number, cell in enumerate(code_cells, 1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return {"code_cell": number, "ename": output.get("ename", ""),
                        "evalue": output.get("evalue", "")}
    return None


# ----------------------------------------------------------------------------- running


@dataclass
class Outcome:
    """One row of the runner's summary."""

    name: str
    action: str  # "ran" or "reused"
    status: str  # "ok", "failed" or "timeout"
    profile: str = "?"
    device: str = "?"
    wall_time_s: float = 0.0
    detail: str = ""
    log: Path | None = None
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Plan:
    root: Path
    output_dir: Path
    results_dir: Path
    log_dir: Path
    profile: str | None  # the --profile given, None to let the notebook resolve it
    parameters: dict[str, Any]
    timeout_s: float | None  # --timeout; None to derive each notebook's (timeout_for)
    default_timeout_s: float  # the profile's default
    started: str = field(default_factory=lambda: time.strftime("%Y%m%dT%H%M%S"))

    def log_path(self, name: str) -> Path:
        """This run's log of a notebook: named by the run, so runs at once never share one."""
        return self.log_dir / f"{name}.{self.started}.{os.getpid()}.log"

    def timeout_for(self, name: str) -> float:
        """The wall-clock limit of one notebook: --timeout if given, else the profile's
        default or TIMEOUT_MARGIN times the notebook's last published run, the larger."""
        if self.timeout_s is not None:
            return self.timeout_s
        last = last_run_time(results_path(self.root, name), self.profile)
        return max(self.default_timeout_s, TIMEOUT_MARGIN * last) if last else (
            self.default_timeout_s)


def recorded_provenance(results: Path) -> dict[str, Any]:
    """The provenance a results file records; OSError if it cannot be read, ValueError if it
    is not a results file (not JSON, or not an object)."""
    summary = json.loads(results.read_text("utf-8"))
    if not isinstance(summary, dict):
        raise ValueError(f"{results} holds no JSON object")
    return summary.get("provenance", {})


def _ran_at(provenance: dict[str, Any], profile: str | None) -> bool:
    """Whether a run counts as one at the requested ``profile`` (None or auto: any)."""
    return profile in (None, profiles.AUTO) or provenance.get("profile") == profile


def last_run_time(results: Path, profile: str | None) -> float | None:
    """The wall time of the passing run a results file records, if it ran at ``profile``
    (any profile when None or auto); None if there is none."""
    try:
        provenance = recorded_provenance(results)
    except (OSError, ValueError):
        return None
    if provenance.get("status") != "ok" or not _ran_at(provenance, profile):
        return None
    wall = provenance.get("wall_time_s")
    return float(wall) if isinstance(wall, int | float) and wall > 0 else None


# What identifies a run: a results file belongs to the executed copy that agrees on these.
RUN_IDENTITY = ("started", "wall_time_s", "source_hash", "profile", "status", "git_commit")


def results_mismatch(provenance: dict[str, Any], results: Path) -> str | None:
    """Why the results file does not belong to the run whose copy has ``provenance`` (None
    if it does): it is missing, unreadable, or from another run."""
    try:
        recorded = recorded_provenance(results)
    except FileNotFoundError:
        return "it has no results file"
    except (OSError, ValueError) as error:
        return f"its results file cannot be read ({type(error).__name__})"
    differing = [key for key in RUN_IDENTITY if recorded.get(key) != provenance.get(key)]
    if differing:
        return ("its results file is from another run ("
                + ", ".join(f"{key} {recorded.get(key)!r} there, {provenance.get(key)!r} here"
                            for key in differing) + ")")
    return None


def is_fresh(source: Path, executed: Path, results: Path, profile: str | None) -> bool:
    """True if ``executed`` ran the current ``source`` successfully (with ``profile``) and
    ``results`` holds that run's results."""
    provenance = read_provenance(executed)
    if not provenance or provenance.get("status") != "ok":
        return False
    if provenance.get("source_hash") != source_hash(source):
        return False
    if results_mismatch(provenance, results) is not None:
        return False
    return _ran_at(provenance, profile)


def parameters_for(source: Path, plan: Plan) -> dict[str, Any]:
    """The -p values this notebook declares (a chapter's sections need not all take one)."""
    declared = notebook_parameters(source)
    return {name: value for name, value in plan.parameters.items() if name in declared}


def _papermill_command(source: Path, output: Path, scratch: Path, plan: Plan) -> list[str]:
    """Papermill, under :mod:`helpers.guard`: it stops the kernel and removes ``scratch``
    if this process dies without doing so."""
    command = [
        sys.executable, "-m", "helpers.guard", str(os.getpid()), str(scratch),
        str(source), str(output),
        "--cwd", str(source.parent), "--kernel", "python3", "--language", "python",
        "--log-output", "--no-progress-bar",
    ]
    if parameters := parameters_for(source, plan):
        command += ["-y", yaml.safe_dump(parameters)]
    return command


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> tuple[int | None, int | None]:
    """Papermill's exit status (None past ``timeout_s``) and the peak resident memory, in bytes,
    of papermill and the processes it waited for: the kernel that ran the notebook.

    ``os.wait4`` reports the peak of a child and of the children it reaped, which
    ``Popen.wait`` throws away; the kernel, papermill's child, is reaped at shutdown.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must know
            unit = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
            return process.returncode, usage.ru_maxrss * unit
        if time.monotonic() > deadline:
            return None, None
        time.sleep(0.1)


def _run_papermill(command: list[str], env: dict[str, str], log_path: Path,
                   timeout_s: float) -> tuple[int | None, int | None]:
    """Papermill's exit status (None if it ran past ``timeout_s`` and was stopped) and the
    peak resident memory of the run in bytes (None when it was stopped).

    Papermill runs in a session of its own, so a Ctrl-C in the terminal reaches only this
    process; whatever ends the wait (the timeout, an interrupt, an error) stops papermill
    and the kernel with it before this returns or raises.
    """
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        try:
            returncode, peak = _wait(process, timeout_s)
        except BaseException:
            stop_tree(process.pid)
            raise
        if returncode is None:
            stop_tree(process.pid)
        return returncode, peak


def execute(source: Path, plan: Plan) -> Outcome:
    """Run one notebook with papermill; stamp provenance; write its results file."""
    name = notebook_name(plan.root, source)
    output = executed_path(plan.root, name, plan.output_dir)
    results_path_ = results_path(plan.root, name, plan.results_dir)
    log_path = plan.log_path(name)
    timeout = plan.timeout_for(name)
    print(f"running {name} (timeout {timeout:.0f} s, log: {log_path})", flush=True)
    for folder in (output.parent, results_path_.parent, log_path.parent):
        folder.mkdir(parents=True, exist_ok=True)
    hashed = source_hash(source)
    commit, dirty = git_state(plan.root)

    with tempfile.TemporaryDirectory(prefix="nbrun-") as scratch:
        results_file = Path(scratch) / "results.jsonl"
        results_file.touch()
        partial = Path(scratch) / source.name  # papermill's output, stamped below
        env = {**os.environ, RESULTS_ENV: str(results_file), "PYTHONUNBUFFERED": "1"}
        if plan.profile not in (None, profiles.AUTO):
            # Through the environment, not as an injected parameter: the executed copy then
            # has no `profile = "cpu"` cell, so opened on Colab it resolves its own profile.
            env[profiles.ENV_VAR] = plan.profile
        started = datetime.now(timezone.utc)
        clock = time.perf_counter()
        command = _papermill_command(source, partial, Path(scratch), plan)
        returncode, peak_rss = _run_papermill(command, env, log_path, timeout)
        wall = time.perf_counter() - clock
        records = read_records(results_file)

        if partial.is_file():
            notebook = nbformat.read(partial, as_version=4)
        else:  # papermill died before writing anything (e.g. a bad kernel or parameters)
            notebook = nbformat.v4.new_notebook(cells=jupytext.read(source).cells)
        tidy_streams(notebook)
        error = first_error(notebook)
        if returncode is None:
            status, detail = "timeout", f"stopped after the {timeout:.0f} s timeout"
        elif returncode == 0:
            status, detail = "ok", ""
        else:
            status = "failed"
            detail = (
                f"code cell {error['code_cell']}: {error['ename']}: {error['evalue']}"
                if error else f"papermill exited with status {returncode}: {_last_line(log_path)}"
            )
        run_info = next((entry for entry in records if entry["kind"] == "run"), {})
        peak_cuda = next((entry["cuda_max_allocated_bytes"] for entry in records
                          if entry["kind"] == "peak"), None)
        provenance = {
            "status": status,
            "detail": detail,
            "profile": run_info.get("profile", plan.profile or "unknown (no profiles.setup)"),
            "profile_requested": plan.profile or profiles.AUTO,
            "device": run_info.get("device", "unknown (no profiles.setup)"),
            "seed": run_info.get("seed"),
            "wall_time_s": round(wall, 2),
            # the kernel's peak resident memory, and on a GPU the most CUDA memory allocated
            "peak_rss_bytes": peak_rss,
            "peak_cuda_bytes": peak_cuda,
            "started": started.isoformat(timespec="seconds"),
            "date": started.date().isoformat(),
            "git_commit": commit,
            "git_dirty": dirty,
            "source": source.relative_to(plan.root).as_posix()
            if source.is_relative_to(plan.root) else str(source),
            "source_hash": hashed,
            "parameters": parameters_for(source, plan),
            "host": platform.node(),
            "packages": package_versions(),
        }
        notebook.metadata[PROVENANCE_KEY] = provenance

    summary = {
        "notebook": name,
        "title": notebook_title(notebook) or name,
        "provenance": {k: v for k, v in provenance.items() if k != "packages"},
        "values": [entry for entry in records if entry["kind"] == "value"],
        "comparisons": [entry for entry in records if entry["kind"] == "comparison"],
    }
    # The pair is written under the lock of both folders, each file atomically, so a reader
    # never sees half a file, and a copy is never paired with another run's results.
    waiting = "waiting for another runner writing to {folder}"
    copy_text = nbformat.writes(notebook)
    results_text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    with locked(output.parent, results_path_.parent, waiting=waiting), _signals_deferred():
        write_atomically(output, copy_text)
        write_atomically(results_path_, results_text)
    return Outcome(name, "ran", status, provenance["profile"], provenance["device"], wall,
                   detail, log_path, records)


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(empty log)"


def notebook_title(notebook: nbformat.NotebookNode) -> str | None:
    """The text of the first Markdown heading, for the Status page."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def reused(name: str, executed: Path) -> Outcome:
    provenance = read_provenance(executed) or {}
    return Outcome(name, "reused", provenance.get("status", "?"),
                   provenance.get("profile", "?"), provenance.get("device", "?"),
                   provenance.get("wall_time_s", 0.0), f"executed {provenance.get('date', '?')}")


def summary_table(outcomes: list[Outcome]) -> str:
    headers = ("notebook", "action", "profile", "device", "wall time", "status")
    rows = [
        (o.name, o.action, o.profile, o.device, f"{o.wall_time_s:.1f} s", o.status)
        for o in outcomes
    ]
    widths = [max(len(str(row[i])) for row in (headers, *rows)) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    for outcome in outcomes:
        if outcome.status != "ok":
            out.append(f"{outcome.name}: {outcome.status}: {outcome.detail} (log: {outcome.log})")
    return "\n".join(out)


# --------------------------------------------------------------------------------- CLI


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.run",
        description="Execute notebooks with papermill into the book, with provenance.",
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                        help="names (03_mlps/01_numpy_mlp), chapters (03_mlps: every "
                        "section) or paths; default: every stale or missing one")
    parser.add_argument("--profile", help=f"one of {', '.join(profiles.VALID_NAMES)} "
                        "(default: NB_PROFILE if set, else auto)")
    parser.add_argument("--all", action="store_true",
                        help="re-execute every notebook, fresh or not")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="wall-clock limit per notebook, in seconds > 0 (default: 600 "
                        f"smoke, 3600 cpu/gpu, or {TIMEOUT_MARGIN} times the notebook's last "
                        "published run if longer)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="another papermill parameter (VALUE is read as YAML)")
    parser.add_argument("--output-dir", type=Path, help=f"default: {OUTPUT_DIR}")
    parser.add_argument("--results-dir", type=Path, help=f"default: {RESULTS_DIR}")
    return parser.parse_args(argv)


def _requested_profile(flag: str | None) -> str | None:
    """The --profile flag checked against NB_PROFILE: they must not disagree."""
    env = os.environ.get(profiles.ENV_VAR, "").strip()
    if flag is not None:
        profiles.check_name(flag, origin="--profile")
    if env:
        profiles.check_name(env, origin=f"environment variable {profiles.ENV_VAR}")
        if flag is not None and flag != env:
            raise RunnerError(
                f"--profile {flag} contradicts {profiles.ENV_VAR}={env}; "
                "the environment variable would win inside the notebook: unset one of them"
            )
        return env
    return flag


class Interrupted(BaseException):
    """The runner was asked to stop (SIGINT, SIGTERM or SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back while the block runs (the pair of files being
    written); one that arrives meanwhile is acted on when the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _check_folders(root: Path, folders: dict[str, Path]) -> None:
    """Refuse an output or results folder that holds the sources or sits among them."""
    sources = (root / NOTEBOOKS_DIR).resolve()
    for option, folder in folders.items():
        if folder.is_relative_to(sources) or sources.is_relative_to(folder):
            raise RunnerError(f"{option} {folder} would write among the source notebooks "
                              f"({sources}): choose a folder outside it")


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise RunnerError(f"--timeout {timeout:g}: give a positive number of seconds "
                          "(leave it out for the profile's default)")


def checked_parameters(selected: list[Path], given: list[tuple[str, str]]) -> dict[str, Any]:
    """The -p values, each checked by every selected notebook that declares it. An error if
    a notebook has no `profile` parameter, or if no selected notebook declares a name."""
    parameters: dict[str, Any] = {}
    for source in selected:
        declared = notebook_parameters(source)
        if "profile" not in declared:
            raise RunnerError(
                f"{source.name} has no `profile = None` in a cell tagged 'parameters'; "
                "every notebook needs one (see the README)"
            )
        for name, text in given:
            if name in declared:
                parameters[name] = declared[name].check(text)
    unknown = sorted({name for name, _ in given} - set(parameters))
    if unknown and len(selected) == 1:
        raise RunnerError(
            f"{selected[0].name} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(notebook_parameters(selected[0]))}"
        )
    if unknown:  # a chapter's -p reaches the sections that declare it, but one must
        raise RunnerError(f"no notebook selected has a parameter {', '.join(map(repr, unknown))}")
    return parameters


def plan_runs(args: argparse.Namespace, root: Path) -> tuple[Plan, list[Path], list[Path]]:
    """Check every input before anything runs; return the plan, what to run, what to reuse."""
    profile = _requested_profile(args.profile)
    output_dir = (args.output_dir or root / OUTPUT_DIR).resolve()
    results_dir = (args.results_dir or root / RESULTS_DIR).resolve()
    _check_folders(root, {"--output-dir": output_dir, "--results-dir": results_dir})
    concrete = profiles.resolve_profile(profile) if profile is not None else None
    into_book = [option for option, folder, book in (
        ("--output-dir", output_dir, root / OUTPUT_DIR),
        ("--results-dir", results_dir, root / RESULTS_DIR)) if folder == book.resolve()]
    if concrete == "smoke" and into_book:
        raise RunnerError(
            "smoke runs are not written into the book (they would publish toy numbers): "
            "use --profile cpu or gpu, or pass scratch folders for both --output-dir and "
            f"--results-dir (the book's is used for {' and '.join(into_book)})"
        )
    _check_timeout(args.timeout)
    if any(name == "profile" for name, _ in args.parameter):
        raise RunnerError("give the profile with --profile, not -p profile")

    selected = [path for name in args.notebooks for path in resolve_notebooks(root, name)]
    if not selected:
        selected = source_notebooks(root)
    parameters = checked_parameters(selected, args.parameter)
    plan = Plan(root, output_dir, results_dir, root / LOG_DIR, profile, parameters,
                args.timeout, DEFAULT_TIMEOUT_S[concrete or profiles.AUTO])
    if args.notebooks or args.all:
        return plan, selected, []
    to_run, to_reuse = [], []
    for source in selected:
        name = notebook_name(root, source)
        fresh = is_fresh(source, executed_path(root, name, output_dir),
                         results_path(root, name, results_dir), profile)
        (to_reuse if fresh else to_run).append(source)
    return plan, to_run, to_reuse


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        root = find_root()
        plan, to_run, to_reuse = plan_runs(args, root)
    except (BookError, profiles.ProfileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    outcomes = []
    for source in to_reuse:
        name = notebook_name(root, source)
        outcomes.append(reused(name, executed_path(root, name, plan.output_dir)))
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in STOP_SIGNALS}
    interrupted, name = None, ""
    try:
        for source in to_run:
            name = notebook_name(root, source)
            outcomes.append(execute(source, plan))
    except Interrupted as stop:
        interrupted = stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    outcomes.sort(key=lambda outcome: outcome.name)

    if plan.results_dir == (root / RESULTS_DIR).resolve():
        with _signals_deferred():
            pages.write_pages(root)
    if interrupted is not None:
        print(f"interrupted ({interrupted}) while running {name}: it was stopped, kernel "
              "included, and kept the executed copy and results it had", file=sys.stderr)
        if outcomes:
            print(summary_table(outcomes))
        return INTERRUPTED_STATUS.get(interrupted.signum, 128 + interrupted.signum)
    print(summary_table(outcomes) if outcomes else "no notebooks to run")
    return 0 if all(outcome.status == "ok" for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
