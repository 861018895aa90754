"""helpers.gradcheck: right gradients pass, a wrong sign or transpose fails, float32 refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.gradcheck import (
    FD_TOL,
    ROUNDING_TOL,
    GradientCheckError,
    check_gradients,
    numerical_gradient,
    relative_error,
)


def test_numerical_gradient_of_a_quadratic_form_is_exact_to_rounding() -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(4, 4))
    x = rng.normal(size=4)
    x_before = x.copy()
    numeric = numerical_gradient(lambda: x @ A @ x, x)
    # centred differences are exact for quadratics: only rounding error, ~1e-10 relative
    assert relative_error(numeric, (A + A.T) @ x) < 1e-8
    assert np.array_equal(x, x_before)  # x is restored, bit for bit


def test_a_linear_layer_passes_and_its_broken_variants_fail() -> None:
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    b = torch.randn(3, dtype=torch.float64, generator=gen)
    x = torch.randn(8, 5, dtype=torch.float64, generator=gen)

    def loss() -> torch.Tensor:
        return torch.tanh(x @ W.T + b).square().sum()

    h = torch.tanh(x @ W.T + b)
    delta = 2 * h * (1 - h**2)  # dL/d(pre-activation)
    right = {"W": delta.T @ x, "b": delta.sum(0)}
    errors = check_gradients(loss, {"W": W, "b": b}, right)
    assert max(errors.values()) < 1e-7  # rounding only: float64 with eps = 1e-6

    with pytest.raises(GradientCheckError, match="W: relative error"):
        check_gradients(loss, {"W": W, "b": b}, {"W": -right["W"], "b": right["b"]})
    wrong_layout = (x.T @ delta).T.reshape(5, 3).T  # right shape, entries in the wrong places
    with pytest.raises(GradientCheckError, match="worst entry"):
        check_gradients(loss, {"W": W}, {"W": wrong_layout})


def test_sampled_entries_and_requires_grad_leaves() -> None:
    # entries in [1, 2): gradients 3 W^2 >= 3, never tiny next to the loss's rounding error
    gen = torch.Generator().manual_seed(1)
    W = (1 + torch.rand(10, 8, dtype=torch.float64, generator=gen)).requires_grad_()
    loss = lambda: (W**3).sum()  # noqa: E731
    loss().backward()
    errors = check_gradients(loss, {"W": W}, {"W": W.grad}, samples=20)
    assert errors["W"] < 1e-7
    sampled = numerical_gradient(loss, W, indices=[(0, 0), (3, 7)])
    assert np.isnan(sampled).sum() == 10 * 8 - 2


def test_bad_input_is_refused() -> None:
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: 0.0, np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="scalar"):
        x = torch.zeros(2, dtype=torch.float64)
        numerical_gradient(lambda: x * 2, x)
    with pytest.raises(ValueError, match="shape"):
        check_gradients(lambda: 0.0, {"a": np.zeros(2)}, {"a": np.zeros(3)})
    with pytest.raises(ValueError, match="different things"):
        check_gradients(lambda: 0.0, {"a": np.zeros(2)}, {"b": np.zeros(2)})


def test_relative_error_is_normwise_scale_free_and_floored() -> None:
    assert relative_error([1e-12], [0.0]) == pytest.approx(1e-4)  # floor 1e-8
    assert relative_error([1e6], [1e6 * (1 + 1e-9)]) == pytest.approx(1e-9, rel=1e-3)
    assert relative_error([0.0, 2.0], [0.0, 1.0]) == pytest.approx(0.5)
    # a near-zero entry off by rounding noise does not dominate: ||(1e-10, 0)|| / ||(1, 1e-10)||
    assert relative_error([1.0, 1e-10], [1.0, 0.0]) == pytest.approx(1e-10)


def test_a_loss_that_raises_leaves_x_as_it_was() -> None:
    x = np.array([1.0, 2.0])
    calls = []

    def loss() -> float:
        calls.append(1)
        if len(calls) == 2:  # the second evaluation: x[0] is at 1 - eps
            raise RuntimeError("boom")
        return float(x.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(loss, x)
    assert np.array_equal(x, [1.0, 2.0])


def test_rounding_tolerance_separates_reordered_sums_from_a_wrong_formula() -> None:
    # the same float64 quantity in two orders of rounding: far below ROUNDING_TOL ...
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(200, 300)), rng.normal(size=(300, 50))
    by_rows = np.array([[sum(A[i, k] * B[k, j] for k in range(300)) for j in range(3)]
                        for i in range(3)])
    assert relative_error(by_rows, (A @ B)[:3, :3]) < ROUNDING_TOL / 1e3
    # ... and a missing transpose (square, so the shapes fit) far above it
    C = rng.normal(size=(50, 50))
    g = rng.normal(size=(4, 50))
    assert relative_error(g @ C, g @ C.T) > 1e8 * ROUNDING_TOL
    assert FD_TOL > 1e3 * ROUNDING_TOL  # finite differences carry truncation and rounding
