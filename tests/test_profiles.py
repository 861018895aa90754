"""Profiles: resolution order, errors that list the valid names, scale tables, seeding."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, TESTS_DIR, environment

from helpers import profiles, results


@pytest.fixture(autouse=True)
def no_env_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NB_PROFILE", raising=False)
    monkeypatch.delenv("NB_DEVICE", raising=False)
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)


def test_environment_wins_over_parameter_which_wins_over_auto(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auto = "gpu" if torch.cuda.is_available() else "cpu"
    assert profiles.resolve_profile(None) == auto
    assert profiles.resolve_profile("auto") == auto
    assert profiles.resolve_profile("cpu") == "cpu"
    monkeypatch.setenv("NB_PROFILE", "smoke")
    assert profiles.resolve_profile("cpu") == "smoke"
    assert profiles.requested_profile("cpu") == ("smoke", "NB_PROFILE")


@pytest.mark.parametrize("origin", ["parameter", "environment"])
def test_unknown_profile_lists_the_valid_names(
    monkeypatch: pytest.MonkeyPatch, origin: str
) -> None:
    if origin == "environment":
        monkeypatch.setenv("NB_PROFILE", "fast")
    with pytest.raises(profiles.ProfileError) as error:
        profiles.resolve_profile(None if origin == "environment" else "fast")
    message = str(error.value)
    assert "'fast'" in message and "smoke, cpu, gpu, auto" in message
    assert ("NB_PROFILE" in message) == (origin == "environment")


def test_a_misspelled_parameter_fails_even_when_the_environment_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the test suite sets NB_PROFILE=smoke for every notebook: a typo must not hide behind it
    monkeypatch.setenv("NB_PROFILE", "smoke")
    assert profiles.resolve_profile("gpu") == "smoke"
    with pytest.raises(profiles.ProfileError, match="'gpuu'.*parameter"):
        profiles.resolve_profile("gpuu")


def test_gpu_profile_refuses_a_machine_without_accelerator() -> None:
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        assert profiles.pick_device("gpu").type in ("cuda", "mps")
    else:
        with pytest.raises(profiles.ProfileError, match="needs a CUDA or MPS device") as error:
            profiles.pick_device("gpu")
        assert "NB_DEVICE=cpu" in str(error.value)
        assert profiles.pick_device("cpu") == torch.device("cpu")


def test_nb_device_names_the_device_and_never_falls_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NB_DEVICE", "cpu")
    # Asked for on purpose, the full scale may run on the CPU, even where CUDA exists.
    assert profiles.pick_device("gpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("NB_DEVICE", "cuda")
        with pytest.raises(profiles.ProfileError, match="has 0 CUDA device"):
            profiles.pick_device("cpu")
    monkeypatch.setenv("NB_DEVICE", "gpu")
    with pytest.raises(profiles.ProfileError, match="NB_DEVICE='gpu' is not a device name"):
        profiles.pick_device("cpu")


def test_setup_picks_the_profile_column_and_records_the_run() -> None:
    run = profiles.setup("smoke", seed=3, n_train=(10, 100, 1000), lr=(0.1, 0.1, 0.05))
    assert (run.profile, run.n_train, run.lr, run.seed) == ("smoke", 10, 0.1, 3)
    assert run.values == {"n_train": 10, "lr": 0.1}
    with pytest.raises(AttributeError, match="no setting 'epochs'"):
        _ = run.epochs
    (entry,) = [r for r in results.recorded() if r["kind"] == "run"]
    assert entry["profile"] == "smoke" and entry["seed"] == 3
    assert entry["settings"] == {"n_train": 10, "lr": 0.1}
    table = run._repr_markdown_()
    assert "| `n_train` | **10** | 100 | 1000 |" in table
    assert "**smoke** (this run)" in table


def test_value_in_reads_another_profiles_column() -> None:
    run = profiles.setup("smoke", seed=0, n_train=(10, 100, 1000))
    assert [run.value_in("n_train", p) for p in profiles.PROFILES] == [10, 100, 1000]
    with pytest.raises(AttributeError, match="no setting 'epochs'"):
        run.value_in("epochs", "cpu")
    with pytest.raises(profiles.ProfileError, match="unknown profile 'auto'"):
        run.value_in("n_train", "auto")


@pytest.mark.parametrize(
    ("scales", "message"),
    [
        ({"n": (1, 2)}, "needs one per profile"),
        ({"n": 5}, "triple"),
        ({"n": "abc"}, "triple"),
        ({"device": (1, 2, 3)}, "clashes"),
        ({"table": (1, 2, 3)}, "clashes"),
    ],
)
def test_malformed_scale_tables_are_errors(scales: dict, message: str) -> None:
    with pytest.raises(profiles.ProfileError, match=message):
        profiles.setup("smoke", seed=0, **scales)


def test_seeding_makes_every_generator_repeat() -> None:
    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    profiles.seed_everything(11)
    first = draw()
    profiles.seed_everything(11)
    assert draw() == first
    profiles.seed_everything(12)
    assert draw() != first


def _pytest_probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(TESTS_DIR / "profile_probe.py")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_plain_pytest_runs_notebooks_at_the_smoke_profile() -> None:
    """`pytest --nbval` as a reader types it: the kernels inherit pytest's environment, in
    which the repository's conftest.py has put NB_PROFILE=smoke unless it was set."""
    done = _pytest_probe(environment())
    assert done.returncode == 0, done.stdout + done.stderr
    done = _pytest_probe(environment(NB_PROFILE="cpu"))
    assert done.returncode == 1 and "'cpu'" in done.stdout, done.stdout
