# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Gradient checking with finite differences
#
# Autograd is a good referee, but it is a program too, and it cannot check a formula for
# something it cannot differentiate. The derivative is a limit of difference quotients, so
# it can be estimated with nothing but the loss function. This section builds that estimate,
# measures how accurate it can be and why, and turns it into a check with a tolerance chosen
# for a reason: one that passes every correct gradient of this chapter and fails every wrong
# one we tried.

# %% tags=["remove-cell"]
# On Colab (or wherever this book's helpers are missing), install them from the repository.
try:
    import helpers
except ImportError:
    import importlib
    import subprocess
    import sys

    package = "dl-notes-helpers @ git+https://github.com/executable-dl/lecture-notes"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)
    importlib.invalidate_caches()
    import helpers

# %% tags=["parameters", "remove-cell"]
profile = None

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.backprop import (
    cnn_forward,
    cnn_grad,
    cnn_loss,
    cnn_loss_torch,
    cnn_relative_error,
    random_cnn_point,
    sigmoid,
)

run = profiles.setup(
    profile,
    seed=13,
    check_trials=(3, 100, 300),  # random points at which each gradient is checked
)
torch.set_num_threads(1)  # small tensors: a second thread only waits on a busy machine
run

# %% [markdown]
# The mini CNN of {doc}`the previous section <01_chain_rule>` is the example throughout; its
# functions (`cnn_forward`, `cnn_loss`, `cnn_grad` and the autograd version
# `cnn_loss_torch`) come from there.
#
# ## Truncation and rounding
#
# For a function $f$ of a vector $\boldsymbol\theta$ and the unit vector $\mathbf{e}_k$,
# Taylor's theorem gives
#
# $$
# \frac{f(\boldsymbol\theta + \varepsilon \mathbf{e}_k) - f(\boldsymbol\theta
#   - \varepsilon \mathbf{e}_k)}{2\varepsilon}
#   = \frac{\partial f}{\partial \theta_k}
#   + \frac{\varepsilon^2}{6} \frac{\partial^3 f}{\partial \theta_k^3}
#   + O(\varepsilon^4),
# $$ (bp-centred)
#
# because the even-order terms cancel between the two evaluations. The one-sided quotient
# $(f(\boldsymbol\theta + \varepsilon\mathbf{e}_k) - f(\boldsymbol\theta))/\varepsilon$ keeps
# the second-order term and is only accurate to $O(\varepsilon)$. Truncation is not the only
# error, though. Each evaluation of $f$ is rounded to a relative precision $u$ (the unit
# roundoff, $2^{-53} \approx 1.1\times 10^{-16}$ in float64 and
# $2^{-24} \approx 6\times 10^{-8}$ in float32), and the difference of two nearly equal
# numbers keeps that absolute error while the division by $2\varepsilon$ magnifies it. With
# $M$ a bound on the third derivative, the total error is about
#
# $$
# E(\varepsilon) \approx \frac{M \varepsilon^2}{6} + \frac{u\, |f|}{\varepsilon},
# $$ (bp-fd-error)
#
# which is smallest at $\varepsilon^\star = (3 u |f| / M)^{1/3} \sim u^{1/3}$, where
# $E \sim u^{2/3}$. In float64 that is a step near $5 \times 10^{-6}$ and about eleven
# correct digits of the derivative; in float32, a step near $4 \times 10^{-3}$ and about
# five. That is why gradient checks run in float64: in float32, a derivative off by one part
# in $10^{5}$, the size of a subtle bug, is indistinguishable from a correct one.
#
# The checker is a loop over the entries of the variable. It perturbs the variable in place,
# so the loss is a function of no arguments that reads the variable, and restores each entry
# before moving on. One refinement: $\theta_k + \varepsilon$ is itself rounded, so we divide
# by the step actually taken, not by the $2\varepsilon$ we asked for.

# %%
def numerical_gradient(loss, x, eps: float = 1e-6) -> np.ndarray:
    """Centred differences of the scalar loss() with respect to every entry of x.

    x (a NumPy array or a torch tensor) is perturbed in place and restored.
    """
    grad = np.zeros(tuple(x.shape))
    for idx in np.ndindex(grad.shape):
        old = float(x[idx])
        x[idx] = old + eps
        up, loss_up = float(x[idx]), float(loss())
        x[idx] = old - eps
        down, loss_down = float(x[idx]), float(loss())
        x[idx] = old  # restore: the check must not move the point it checks
        if up == down:
            msg = f"step {eps:g} vanishes: x +- eps rounds to x in {x.dtype}"
            raise ValueError(msg)
        grad[idx] = (loss_up - loss_down) / (up - down)  # the step actually taken
    return grad


# %% [markdown]
# ## The step size, measured
#
# Equation {eq}`bp-fd-error` predicts a V-shaped error curve: rounding on the left,
# truncation on the right. We measure it on the mini CNN, estimating
# $\partial \ell / \partial w_1$ at a fixed point (chosen with both $|a_k| > 0.5$, so no step
# below $0.1$ crosses a ReLU kink) in float64 and in float32, for steps from $10^{-13}$ to
# $10^{-1}$. The reference is the hand gradient in float64 at the same (float32-rounded)
# point.

# %%
p_demo = np.array([0.5, -0.8, 1.2, -0.7])
x_demo, y_demo = np.array([1.0, -0.6, 0.3]), 1.0
steps = np.logspace(-13, -1, 49)


def fd_error_curve(dtype: torch.dtype) -> np.ndarray:
    """Relative error of the centred-difference dl/dw1 at p_demo.

    One error for every step in `steps`.
    """
    p_t, x_t = torch.tensor(p_demo, dtype=dtype), torch.tensor(x_demo, dtype=dtype)
    exact = cnn_grad(p_t.double().numpy(), x_t.double().numpy(), y_demo)[0]
    w1 = p_t[:1]  # a view of w1 alone: only w1 is perturbed (in place, inside p_t)
    errors = []
    for h in steps:
        try:
            estimate = numerical_gradient(lambda: cnn_loss_torch(p_t, x_t, y_demo),
                                          w1, h)[0]
        except ValueError:
            # float32 steps below half the float spacing near w1 = 0.5 vanish
            estimate = np.nan
        errors.append(abs(estimate - exact) / abs(exact))
    return np.array(errors)


fd_errors = {dtype: fd_error_curve(dtype) for dtype in (torch.float64, torch.float32)}
best = {d: float(np.nanmin(fd_errors[d])) for d in fd_errors}
assert best[torch.float64] < 1e-9 and best[torch.float32] > 1e-7, best

# %% tags=["hide-input"]
fig, ax = plots.figure(width=6.0, height=4.0)
for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
    u = torch.finfo(dtype).eps / 2
    line, = ax.loglog(steps, fd_errors[dtype], "o-", ms=3, label=f"{name} (measured)")
    ax.axvline(u ** (1 / 3), color=line.get_color(), ls=":", lw=1,
               label=rf"{name}: $u^{{1/3}}$ = {u ** (1 / 3):.0e}")
ax.loglog(steps, steps**2 / 10, "k--", lw=1, label=r"slope 2 (truncation, $\varepsilon^2$)")
ax.loglog(steps, 1e-16 / steps, "k-.", lw=1, label=r"slope $-1$ (rounding, $u/\varepsilon$)")
ax.set_ylim(1e-13, 10)
ax.set_xlabel(r"finite-difference step $\varepsilon$ (parameter units)")
ax.set_ylabel(r"relative error of $\partial\ell/\partial w_1$")
ax.legend(fontsize=8, loc="lower left")
plots.glue_figure("fig_fd_steps", fig)

EPS = 1e-6  # the step of every check below
best_step = {d: float(steps[np.nanargmin(fd_errors[d])]) for d in fd_errors}
results.record("fd_best_rel_err_float64", best[torch.float64],
               description="best relative error of a centred difference, float64")
results.record("fd_best_rel_err_float32", best[torch.float32],
               description="best relative error of a centred difference, float32")
v1_32 = float(np.float32(p_demo[2]))  # v1 as float32 stores it; the checker's arithmetic:
for name, value in {
    "fd_best_step_float64": best_step[torch.float64],
    "fd_best_step_float32": best_step[torch.float32],
    "fd_err_at_eps": float(fd_errors[torch.float64][np.argmin(abs(steps - EPS))]),
    "fd_smallest_step_float32": float(steps[~np.isnan(fd_errors[torch.float32])].min()),
    "fd_smallest_step_float32_v1": float(min(
        h for h in steps if np.float32(v1_32 + h) != np.float32(v1_32 - h))),
}.items():
    glue(name, value, display=False)

# %% [markdown]
# ```{glue:figure} fig_fd_steps
# ---
# name: fig-bp-fd-steps
# alt: >-
#   Log-log plot of the relative error of a centred difference against the step, for float64
#   and float32; both curves are V-shaped, the float64 one reaching far lower.
# ---
# The relative error of a centred difference of $\partial\ell/\partial w_1$ against its step
# $\varepsilon$. Each curve falls with slope $-1$ while rounding dominates and rises with
# slope $2$ once truncation does; the dotted verticals mark $u^{1/3}$ for each precision.
# ```
#
# The curves of {numref}`fig-bp-fd-steps` have the predicted V shape. In float64 the best
# step, {glue:text}`fd_best_step_float64:.0e`, gives a relative error of
# {glue:text}`fd_best_rel_err_float64:.1e`; in float32 the best the method can do is
# {glue:text}`fd_best_rel_err_float32:.1e`, at a step of
# {glue:text}`fd_best_step_float32:.0e`. Left of the minimum the error grows like
# $1/\varepsilon$, right of it like $\varepsilon^2$, as {eq}`bp-fd-error` says. The exact
# position of each minimum depends on $f'''$ at the point, which is why the measured best
# steps match $u^{1/3}$ only roughly. In float32, steps below
# {glue:text}`fd_smallest_step_float32:.0e` do not even register: both $w_1 + \varepsilon$
# and $w_1 - \varepsilon$ round back to $w_1 = 0.5$, and the checker refuses to divide by
# zero. Floats are spaced in proportion to their size, so a larger parameter stops
# registering at a larger step: for $v_1 = 1.2$ the smallest step of the grid that still
# registers in float32 is {glue:text}`fd_smallest_step_float32_v1:.0e`.
#
# ## The step and the tolerance
#
# From now on every check uses float64 and $\varepsilon = 10^{-6}$, a little left of the
# float64 minimum (the error there is {glue:text}`fd_err_at_eps:.0e` in this example). We stay
# on the rounding side on purpose: rounding noise is predictable, about $u$ times the size of
# the numbers summed inside the loss divided by $\varepsilon$, a few times $10^{-10}$ in
# absolute terms for the networks of this chapter, whereas truncation error depends on third
# derivatives, which can be large ({doc}`section 5 <05_bptt>` shows it happening for a
# recurrent network).
#
# The rounding noise is *absolute*: it is the same for a large entry of the gradient as for
# a tiny one. That is why we compare gradients by norm, with the relative error
# $\lVert \mathbf{a} - \mathbf{b} \rVert / \max(\lVert \mathbf{a} \rVert,
# \lVert \mathbf{b} \rVert)$. An entry that is nearly zero because two contributions almost
# cancel (a sum over the examples of a batch, a saturated tanh unit) might be $10^{-7}$;
# compared entry by entry, the noise alone would make its relative error $10^{-3}$, a false
# alarm. Measured against the norm of the whole gradient, the noise is negligible. The price
# is that a mistake confined to such tiny entries could go unnoticed, which is why each
# variable is checked on its own.
#
# We call a gradient **correct when its relative error is below $10^{-6}$**. A correct
# gradient lands far below that, and a wrong one (a flipped sign, a missing term, a
# transposed matrix) is typically wrong by tens of percent or more: the threshold sits in a
# wide empty gap between the two populations, and each check below asserts both sides of it.
# The one place the method itself breaks is a kink: if $\theta_k \pm \varepsilon$ straddles
# a point where a ReLU switches, the quotient averages two different slopes.
# `random_cnn_point` therefore keeps every $|a_k|$ above $10^{-3}$, a thousand steps away
# from a kink.

# %%
# float64, eps = 1e-6: correct gradients fall below FD_TOL / 10 (asserted)
FD_TOL = 1e-6


def cnn_grad_fd(p, x, y: float) -> np.ndarray:
    p = np.array(p, dtype=np.float64)  # a copy, perturbed in place by the checker
    return numerical_gradient(lambda: cnn_loss(p, x, y), p, EPS)


rng = np.random.default_rng(run.seed)
points = [random_cnn_point(rng) for _ in range(run.check_trials)]
err_cnn_fd = max(cnn_relative_error(cnn_grad(*pt), cnn_grad_fd(*pt)) for pt in points)
assert err_cnn_fd < FD_TOL / 10, err_cnn_fd

# %% tags=["hide-input"]
results.record("cnn_fd_max_rel_err", err_cnn_fd,
               description="mini CNN: hand gradient vs centred differences, max relative error")
glue("check_points", len(points), display=False)

# %% [markdown]
# The hand gradient of the previous section agrees with finite differences to
# {glue:text}`cnn_fd_max_rel_err:.1e` at the worst of {glue:text}`check_points` random
# points, more than ten times below the tolerance.
#
# ## Does the check have teeth?
#
# A test that cannot fail proves nothing. Here are two mistakes one could plausibly make in
# {eq}`bp-cnn-delta` and {eq}`bp-cnn-dw`: dropping the minus sign of
# $\partial\ell/\partial\hat y$ (writing $y\,\sigma(-y\hat y)$), and shifting the inputs of
# $\partial \ell/\partial w_2$ by one position (using $x_1, x_2$, the inputs of $w_1$). The
# check must report each far above the tolerance.

# %%
def cnn_grad_buggy(p, x, y: float, bug: str) -> np.ndarray:
    """cnn_grad with one deliberate mistake: bug = 'sign' or 'shift'."""
    grad = cnn_grad(p, x, y)
    w1, w2, v1, v2 = p
    a1, a2, o1, o2, y_hat = cnn_forward(p, x)
    if bug == "sign":
        # delta = y * sigma(-y y_hat): the minus sign of eq. (bp-cnn-delta) lost
        return -grad
    delta = y * (sigmoid(y * y_hat) - 1.0)
    # x1, x2 instead of x2, x3
    grad[1] = delta * (v1 * (a1 > 0) * x[0] + v2 * (a2 > 0) * x[1])
    return grad


bug_errors = {bug: max(cnn_relative_error(cnn_grad_buggy(*pt, bug), cnn_grad_fd(*pt))
                       for pt in points) for bug in ("sign", "shift")}
# caught, with four orders to spare
assert min(bug_errors.values()) > 1e4 * FD_TOL, bug_errors

# %% tags=["hide-input"]
glue("cnn_bug_sign_err", bug_errors["sign"], display=False)
glue("cnn_bug_shift_err", bug_errors["shift"], display=False)
glue("cnn_bug_orders", float(np.log10(min(bug_errors.values()) / FD_TOL)), display=False)

# %% [markdown]
# The sign bug gives a relative error of {glue:text}`cnn_bug_sign_err:.2f` (every component
# is exactly negated, so $\lVert g - (-g) \rVert / \lVert g \rVert = 2$), the shift bug
# {glue:text}`cnn_bug_shift_err:.2f`: the smaller of the two is
# {glue:text}`cnn_bug_orders:.1f` orders of magnitude above the tolerance.
#
# ## The tested version in `helpers`
#
# The same centred-difference idea, tested, and with sampling for large tensors, lives in
# `helpers.gradcheck`, which later sections and chapters use instead of repeating these
# lines. It differs from ours in one detail: it divides by the $2\varepsilon$ it asked for,
# not by the step actually taken. Both evaluate the loss at the same two points, so the two
# estimates differ only by the ratio of their denominators. Rounding moves each of
# $\theta_k \pm \varepsilon$ by at most $u|\theta_k|$, so the step taken differs from
# $2\varepsilon$ by at most $2u|\theta_k|$: a relative difference of at most
# $u|\theta_k|/\varepsilon$, about $10^{-10}$ for parameters of order one. That bound,
# doubled for the few roundings of the divisions themselves, is the tolerance below.

# %%
from helpers.gradcheck import numerical_gradient as tested_numerical_gradient

p_check, x_check, y_check = points[0]
p_copy = p_check.copy()
ours = numerical_gradient(lambda: cnn_loss(p_copy, x_check, y_check), p_copy, EPS)
theirs = tested_numerical_gradient(lambda: cnn_loss(p_copy, x_check, y_check),
                                   p_copy, eps=EPS)
# u max|theta|/eps
step_bound = float(np.finfo(np.float64).eps / 2 * np.abs(p_check).max() / EPS)
helper_difference = cnn_relative_error(ours, theirs)
assert helper_difference <= 2 * step_bound, (helper_difference, step_bound)

# %% tags=["hide-input"]
glue("fd_helper_difference", helper_difference, display=False)
glue("fd_helper_bound", step_bound, display=False)

# %% [markdown]
# At this point the largest parameter gives a bound of {glue:text}`fd_helper_bound:.1e`, and
# the two estimates differ by {glue:text}`fd_helper_difference:.1e`.
#
# ## What this section showed
#
# A centred difference estimates a derivative with an error that is the sum of truncation,
# growing like $\varepsilon^2$, and rounding, growing like $u/\varepsilon$; the best step is
# near $u^{1/3}$, and only float64 leaves enough digits for a meaningful check. With
# $\varepsilon = 10^{-6}$, comparing each variable's gradient by norm, a tolerance of
# $10^{-6}$ separates right from wrong with orders of magnitude to spare on both sides: the
# mini CNN's hand gradient passes far below it, and a lost sign or a shifted index fails far
# above it.
#
# ## Exercises
#
# 1. **One-sided differences.** Replace the centred quotient by the one-sided
#    $(f(\boldsymbol\theta + \varepsilon\mathbf{e}_k) - f(\boldsymbol\theta))/\varepsilon$ and
#    redraw {numref}`fig-bp-fd-steps`. What are the two slopes now, where is the minimum, and
#    how many digits does float64 give?
#
#    :::{dropdown} Answer
#    Truncation is now $O(\varepsilon)$ (slope 1), rounding still $u/\varepsilon$; the
#    minimum moves to $\varepsilon \sim u^{1/2} \approx 10^{-8}$ with an error near
#    $10^{-8}$: about eight digits instead of eleven.
#    :::
#
# 2. **Complex steps.** For a function that is real-analytic and written with operations
#    that accept complex numbers, $\operatorname{Im} f(\theta + i\varepsilon)/\varepsilon$
#    approximates $f'(\theta)$ with no subtraction at all. Try it on `cnn_loss` with
#    $\varepsilon = 10^{-20}$. Why does it fail at the ReLU, and what does that tell you
#    about where finite differences can be trusted?
#
#    :::{dropdown} Hint
#    With no difference of nearly equal numbers there is no cancellation, so the step can be
#    tiny and the error is at the level of $u$. But `max(0, a)` is not analytic and is not
#    even defined for complex $a$: a complex step needs every operation to be analytic, and
#    at a kink no derivative exists for any method to find.
#    :::
#
# 3. **A subtler bug.** Make a mistake that changes the gradient by about one part in a
#    million, for instance multiply $\partial\ell/\partial v_1$ by $1 + 10^{-6}$. Does the
#    check catch it in float64? In float32, with the best step of the figure?
#
#    :::{dropdown} Answer
#    A relative change of $10^{-6}$ in one entry gives a relative error just below
#    $10^{-6}$, on the tolerance itself: it is not reliably caught in float64 at this
#    tolerance, and far below the float32 floor of {numref}`fig-bp-fd-steps`. A finite-
#    difference check catches mistakes in the formula, not rounding-sized discrepancies.
#    :::
