"""Profiles: how big a notebook run is, and where it runs.

Every notebook runs at one of three scales:

- ``smoke``: CI and tests. Tiny data, few steps, every assert still runs.
- ``cpu``: a laptop or a 2-core machine. Real results in minutes.
- ``gpu``: Colab or a data-centre GPU. The full scale of the source problem.

The profile is resolved in this order: the environment variable ``NB_PROFILE`` (so CI can
force ``smoke`` on every notebook), then the notebook's papermill parameter ``profile``,
then ``auto`` (``gpu`` when CUDA is available, else ``cpu``). A notebook states its scale
for the three profiles side by side, so a reader sees at once what each run does::

    run = profiles.setup(
        profile,
        seed=546,
        n_train=(1_000, 10_000, 60_000),  # smoke, cpu, gpu
        epochs=(1, 5, 30),
    )
    run.n_train, run.epochs, run.device

``setup`` seeds every generator, picks the device (CUDA, then Apple MPS, then CPU; the
environment variable ``NB_DEVICE`` names one instead) and records the resolved profile and
device so that the runner can stamp them into the executed notebook's provenance.
"""

from __future__ import annotations

import atexit
import os
import platform
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
"""The three scales, in the order every scale table lists them."""

AUTO = "auto"
VALID_NAMES: tuple[str, ...] = (*PROFILES, AUTO)
ENV_VAR = "NB_PROFILE"
DEVICE_ENV_VAR = "NB_DEVICE"


class ProfileError(ValueError):
    """An unknown profile name, a malformed scale table, or a profile this machine can't run."""


def check_name(name: str, *, origin: str = "profile") -> str:
    """Return ``name`` if it is a valid profile name, else raise listing the valid ones."""
    if name not in VALID_NAMES:
        raise ProfileError(
            f"unknown profile {name!r} (from {origin}); valid profiles: {', '.join(VALID_NAMES)}"
        )
    return name


def requested_profile(parameter: str | None = None) -> tuple[str, str]:
    """The profile asked for, before ``auto`` is resolved, and where the request came from.

    ``NB_PROFILE`` wins over the papermill parameter, which wins over ``auto``.
    """
    if parameter is not None:  # a misspelled parameter is an error even when NB_PROFILE wins
        check_name(parameter, origin="the notebook's `profile` parameter")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return check_name(env, origin=f"environment variable {ENV_VAR}"), ENV_VAR
    if parameter is not None:
        return parameter, "parameter"  # checked above
    return AUTO, AUTO


def resolve_profile(parameter: str | None = None) -> str:
    """The concrete profile (``smoke``, ``cpu`` or ``gpu``) for this run."""
    name, _ = requested_profile(parameter)
    if name == AUTO:
        return "gpu" if torch.cuda.is_available() else "cpu"
    return name


def pick_device(profile: str) -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless ``NB_DEVICE`` names one.

    The ``gpu`` profile refuses to fall back to the CPU by itself: it trains at the scale
    of the source problems, which takes hours on a CPU, so reaching it by accident is
    almost certainly a mistake. ``NB_DEVICE=cpu`` asks for that on purpose (a reproduction
    at full scale on a machine without an accelerator); a device it names that this
    machine lacks is an error, never a silent fallback.
    """
    wanted = os.environ.get(DEVICE_ENV_VAR, "").strip()
    if wanted:
        return _named_device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    if profile == "gpu":
        raise ProfileError(
            "profile 'gpu' needs a CUDA or MPS device and this machine has none; "
            "use profile 'cpu' (or unset NB_PROFILE to let 'auto' choose), or set "
            f"{DEVICE_ENV_VAR}=cpu to run the full scale on the CPU on purpose (hours)"
        )
    return torch.device("cpu")


def _named_device(wanted: str) -> torch.device:
    """The device ``NB_DEVICE`` names, checked to exist on this machine."""
    origin = f"environment variable {DEVICE_ENV_VAR}={wanted!r}"
    try:
        device = torch.device(wanted)
    except RuntimeError as error:
        raise ProfileError(f"{origin} is not a device name (cpu, cuda, cuda:1, mps)") from error
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ProfileError(f"{origin}, but this machine has {count} CUDA device(s)")
    elif device.type == "mps":
        if not _mps_available():
            raise ProfileError(f"{origin}, but Apple MPS is not available on this machine")
    elif device.type != "cpu":
        raise ProfileError(f"{origin}: only cpu, cuda and mps are supported")
    return device


def _mps_available() -> bool:
    """Apple's Metal backend, where this build of torch has it at all."""
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def device_name(device: torch.device) -> str:
    """A human-readable name for the provenance record, e.g. 'NVIDIA H100 80GB HBM3'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    return f"CPU: {_cpu_model()} ({os.cpu_count()} logical cores)"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all CUDA devices included)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@dataclass(frozen=True)
class Run:
    """The resolved configuration of one notebook run: profile, device, seed, scale values."""

    profile: str
    device: torch.device
    seed: int
    scales: dict[str, tuple[Any, Any, Any]] = field(repr=False)

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not fields: the scale settings.
        if name in self.__dict__.get("scales", {}):
            return self.value_in(name, self.profile)
        raise AttributeError(f"no setting {name!r} in this notebook's scale table")

    def value_in(self, name: str, profile: str) -> Any:
        """The setting ``name`` as profile ``profile`` has it, e.g. to compare cpu with gpu."""
        if name not in self.scales:
            raise AttributeError(f"no setting {name!r} in this notebook's scale table")
        if profile not in PROFILES:
            raise ProfileError(f"unknown profile {profile!r}; the scales are {', '.join(PROFILES)}")
        return self.scales[name][PROFILES.index(profile)]

    @property
    def values(self) -> dict[str, Any]:
        """The settings of the active profile."""
        return {name: getattr(self, name) for name in self.scales}

    def table(self) -> str:
        """The scale table in Markdown, the active profile in bold."""
        active = PROFILES.index(self.profile)
        header = "| setting | " + " | ".join(
            f"**{p}** (this run)" if i == active else p for i, p in enumerate(PROFILES)
        )
        rows = [header + " |", "|---" * (len(PROFILES) + 1) + "|"]
        for name, values in self.scales.items():
            cells = [f"**{v!r}**" if i == active else repr(v) for i, v in enumerate(values)]
            rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def _repr_markdown_(self) -> str:
        """The scale table, folded in a dropdown: readers open it when they want the sizes."""
        from helpers.pages import short_device  # the Status page's short device names

        return (
            f":::{{dropdown}} Settings of this run: the {self.profile} profile, on "
            f"{short_device(device_name(self.device))}\n"
            f"Seed {self.seed}. Each row is one setting at the three scales (profiles) the "
            f"notebook can run at; the column in bold is this run's (see the setup page).\n\n"
            + self.table() + "\n:::\n"
        )


def setup(profile: str | None, *, seed: int, **scales: Sequence[Any]) -> Run:
    """Resolve the profile, seed everything, pick the device and record them.

    Each keyword is one row of the scale table: a (smoke, cpu, gpu) triple.
    """
    for name, values in scales.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ProfileError(f"scale {name!r} must be a (smoke, cpu, gpu) triple, got {values!r}")
        if len(values) != len(PROFILES):
            raise ProfileError(
                f"scale {name!r} has {len(values)} values; it needs one per profile "
                f"({', '.join(PROFILES)})"
            )
        if name in Run.__dataclass_fields__ or name in ("values", "table"):
            raise ProfileError(f"scale name {name!r} clashes with a Run attribute; rename it")
    resolved = resolve_profile(profile)
    seed_everything(seed)
    device = pick_device(resolved)
    run = Run(resolved, device, seed, {k: tuple(v) for k, v in scales.items()})

    from helpers import results  # imported here: results does not need torch

    results.record_run(
        profile=resolved, device=device_name(device), seed=seed, settings=run.values
    )
    if device.type == "cuda":
        # The most GPU memory the run allocated, read when the kernel exits (after the last
        # cell); the runner puts it in the provenance beside the process's peak RSS.
        atexit.register(_record_cuda_peak, device)
    return run


def _record_cuda_peak(device: torch.device) -> None:
    from helpers import results

    results.record_peak_memory(cuda_max_allocated_bytes=torch.cuda.max_memory_allocated(device))
