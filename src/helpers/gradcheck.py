"""Finite-difference gradient checks: the tested tool behind the idea chapter 1 teaches.

Chapter 1 derives why a centred difference ``(f(x + h) - f(x - h)) / 2h`` approximates a
partial derivative with error O(h^2), and why it must be computed in float64: the rounding
error of the difference is about ``eps_machine * |f| / h``, which for float32
(eps ~ 1e-7) and h = 1e-3 is already ~1e-4, while float64 (eps ~ 1e-16) with h = 1e-6
leaves both errors near 1e-10. Later chapters call this module instead of rewriting it.

A check compares an analytic gradient with the numerical one, one variable at a time,
through the normwise relative error ``||a - n|| / max(||a||, ||n||, floor)``: scale-free,
so one tolerance serves gradients of any size. It is normwise, not entrywise, because the
finite differences carry an absolute rounding noise of ~1e-10 in every entry: an entry
that is nearly zero (terms that cancel, a saturated tanh) would show a large entrywise
relative error although the gradient is right (chapter 1 works the numbers: rounding noise
of a few 1e-10 on an entry of 1e-7 is an entrywise error of ~1e-3, a false alarm). In
float64 a correct gradient gives ~1e-8 normwise, a wrong sign or transpose ~1e-1 or more;
the default tolerance 1e-6 sits between the two with room on each side. Kinks such as
ReLU's at 0 can land inside the difference interval: keep inputs away from them.

The same relative error is the book's one measure for every other comparison of two
gradients (or of any two arrays meant to be equal), with one of two tolerances:

- :data:`FD_TOL` (1e-6) against finite differences, for the reason above;
- :data:`ROUNDING_TOL` (1e-10) between two float64 computations of the same quantity that
  differ only in the order of their roundings (a hand-written formula against autograd, an
  engine against PyTorch). Each rounding has a relative error of at most u = 2^-53 ~ 1.1e-16,
  and a sum of k terms errs by at most about k u times the sum of their magnitudes; for the
  graphs of this book (sums of up to ~1e5 terms, mild cancellation) that is ~1e-12 at worst,
  and measured errors are ~1e-16 to 1e-14. 1e-10 leaves a hundredfold margin above that bound,
  and sits eight orders of magnitude below the error of a wrong sign or a missing transpose
  (~1e-2 or more), so it neither fails a right formula nor passes a wrong one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

FLOOR = 1e-8
#: Tolerance of a comparison with finite differences in float64 (see the module docstring).
FD_TOL = 1e-6
#: Tolerance of a comparison of two float64 computations that differ only in rounding.
ROUNDING_TOL = 1e-10


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with finite differences beyond the tolerance."""


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().astype(np.float64)
    return np.asarray(value, dtype=np.float64)


def _scalar(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"loss() must return a scalar, got a tensor of shape "
                             f"{tuple(value.shape)}")
        return float(value.detach())
    return float(value)


def numerical_gradient(
    loss: Callable[[], Any], x: np.ndarray | torch.Tensor, *, eps: float = 1e-6,
    indices: list[tuple[int, ...]] | None = None,
) -> np.ndarray:
    """Centred differences of ``loss()`` with respect to ``x``, which is perturbed in place.

    ``x`` must be float64 (see the module docstring). Only ``indices`` are computed when
    given (the other entries are NaN), for parameters too large to check entry by entry.
    Each entry of ``x`` is restored exactly after its two evaluations.
    """
    if x.dtype not in (np.float64, torch.float64):
        raise TypeError(f"x must be float64 for a meaningful finite-difference check, "
                        f"got {x.dtype}")
    shape = tuple(x.shape)
    grad = np.full(shape, np.nan) if indices is not None else np.empty(shape)
    with torch.no_grad():  # perturbing a leaf tensor that requires grad is allowed here
        for index in indices if indices is not None else np.ndindex(shape):
            original = x[index].item()
            try:
                x[index] = original + eps
                plus = _scalar(loss())
                x[index] = original - eps
                minus = _scalar(loss())
            finally:  # a loss that raises must not leave x perturbed
                x[index] = original
            grad[index] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a: Any, b: Any, *, floor: float = FLOOR) -> float:
    """||a - b|| / max(||a||, ||b||, floor) in the Euclidean norm; NaN entries are skipped."""
    a, b = _as_numpy(a), _as_numpy(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    if not keep.any():
        raise ValueError("no entries to compare")
    a, b = a[keep], b[keep]
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)), floor)
    return float(np.linalg.norm(a - b)) / scale


def check_gradients(
    loss: Callable[[], Any],
    params: Mapping[str, np.ndarray | torch.Tensor],
    grads: Mapping[str, Any],
    *,
    eps: float = 1e-6,
    tol: float = FD_TOL,
    samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Compare each analytic ``grads[name]`` with finite differences on ``params[name]``.

    ``samples``: check that many randomly chosen entries per parameter instead of all.
    Returns the relative error of each name (normwise over the entries checked, as in
    :func:`relative_error`); raises `GradientCheckError` naming every
    parameter over ``tol`` and its worst entry.
    """
    if set(params) != set(grads):
        raise ValueError(f"params and grads name different things: {sorted(params)} vs "
                         f"{sorted(grads)}")
    rng = np.random.default_rng(seed)
    errors, failures = {}, []
    for name, x in params.items():
        analytic = _as_numpy(grads[name])
        if analytic.shape != tuple(x.shape):
            raise ValueError(f"grads[{name!r}] has shape {analytic.shape}, "
                             f"params[{name!r}] {tuple(x.shape)}")
        indices = None
        size = int(np.prod(x.shape))
        if samples is not None and samples < size:
            flat = rng.choice(size, size=samples, replace=False)
            indices = [tuple(int(i) for i in np.unravel_index(f, x.shape)) for f in flat]
        numeric = numerical_gradient(loss, x, eps=eps, indices=indices)
        if indices is not None:
            mask = np.isnan(numeric)
            analytic = np.where(mask, np.nan, analytic)
        errors[name] = relative_error(analytic, numeric)
        if errors[name] > tol:
            diff = np.abs(np.nan_to_num(analytic - numeric))
            worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
            failures.append(f"{name}: relative error {errors[name]:.3e} > {tol:.0e}; worst entry "
                            f"{tuple(int(i) for i in worst)}: analytic {analytic[worst]:.6g}, "
                            f"numerical {numeric[worst]:.6g}")
    if failures:
        raise GradientCheckError("gradient check failed:\n  " + "\n  ".join(failures))
    return errors
