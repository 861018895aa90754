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
# # Networks by hand
#
# An MLP is a sum of simple pieces, and small ones can be designed rather than trained (003,
# problem 3). This section builds three ReLU networks by hand, a tent, a soft threshold and
# XNOR, checks each against its definition on a dense grid, and ends with the recipe behind
# all three: every continuous piecewise linear function of one variable is a one-hidden-layer
# ReLU network with one unit per kink.

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
import numpy as np

from helpers import plots, profiles

run = profiles.setup(
    profile,
    seed=3,
    grid_points=(4_001, 40_001, 40_001),  # points of [-2, 2] where each network is checked
)
run

# %% [markdown]
# ## One ramp per kink
#
# The tool is the ReLU: $\operatorname{relu}(x - c)$ is a ramp with a kink at $c$, and a
# weighted sum of ramps is a continuous piecewise linear function whose slope changes by
# the ramp's weight at each kink. So, for a function that is constant far to the left:
# *put a hidden unit at every kink, and give it the change of slope there as its output
# weight.*
#
# **Tent.** $f(x) = 2x$ on $[0, \tfrac12]$, $2(1 - x)$ on $[\tfrac12, 1]$, $0$ elsewhere.
# The slope is $0$, then $2$, then $-2$, then $0$, changing by $+2$ at $0$, $-4$ at
# $\tfrac12$ and $+2$ at $1$, so one hidden layer of three units suffices:
#
# $$
# f(x) = 2\operatorname{relu}(x) - 4\operatorname{relu}(x - \tfrac12)
#   + 2\operatorname{relu}(x - 1).
# $$ (eq-tent)
#
# Left of $0$ all ramps are zero; right of $1$ the slopes cancel ($2 - 4 + 2 = 0$) and the
# value is $2 - 2 + 0 = 0$.
#
# **Soft threshold.** $f(x) = \operatorname{sign}(x)\max(|x| - \lambda, 0)$ for
# $\lambda \ge 0$ is zero on $[-\lambda, \lambda]$ and has slope 1 outside: a ramp to the
# right of $\lambda$ and a mirrored ramp to the left of $-\lambda$, two hidden units:
#
# $$
# f(x) = \operatorname{relu}(x - \lambda) - \operatorname{relu}(-x - \lambda).
# $$ (eq-soft-threshold)
#
# We write each network as weight matrices and evaluate it on a grid of 40,001 points of
# $[-2, 2]$. In float64 each output is a short sum of products of numbers of order one,
# exact up to roundings of order $10^{-16}$ each; the tolerance $10^{-12}$ allows for those
# and for nothing else.

# %%
def relu_net(x, W1, b1, w2, b2=0.0):
    """One hidden ReLU layer: x (N, d) -> (N,)."""
    hidden = np.maximum(0.0, x @ np.asarray(W1, float).T + b1)
    return hidden @ np.asarray(w2, float) + b2


lam = 0.3  # the threshold lambda of eq-soft-threshold
grid = np.linspace(-2, 2, run.grid_points)[:, None]
x = grid[:, 0]
tent = relu_net(grid, [[1], [1], [1]], np.array([0, -0.5, -1]), [2, -4, 2])
tent_true = np.where((x >= 0) & (x <= 1), np.minimum(2 * x, 2 * (1 - x)), 0.0)
soft = relu_net(grid, [[1], [-1]], np.array([-lam, -lam]), [1, -1])
soft_true = np.sign(x) * np.maximum(np.abs(x) - lam, 0)
assert np.abs(tent - tent_true).max() < 1e-12
assert np.abs(soft - soft_true).max() < 1e-12

# %% tags=["hide-input"]
fig, axes = plots.figure(ncols=2, height=2.8)
for ax, net, true, label in ((axes[0], tent, tent_true, "eq. tent, 3 units"),
                             (axes[1], soft, soft_true, f"soft threshold, λ = {lam}")):
    ax.plot(x, net, label=f"network ({label})")
    every = (run.grid_points - 1) // 20  # 21 dots
    ax.plot(x[::every], true[::every], "o", ms=4, label="definition")
    ax.set(xlabel="x", ylabel="f(x)")
    ax.legend(fontsize=7)
plots.glue_figure("fig_tent_soft", fig)

# %% [markdown]
# ```{glue:figure} fig_tent_soft
# ---
# name: fig-mlp-tent-soft
# alt: >-
#   Left: the tent network's output, zero outside [0, 1] and peaking at 1 at x = 1/2.
#   Right: the soft-threshold network, zero on [-0.3, 0.3] and slope one outside.
# ---
# The tent {eq}`eq-tent` (left, three ReLU units) and the soft threshold
# {eq}`eq-soft-threshold` (right, two units), with the definitions at 21 evenly spaced
# points. The dots sit on the lines: the two agree to $10^{-12}$ everywhere on the grid.
# ```
#
# ## XNOR
#
# On $x \in \{0,1\}^2$, XNOR is 1 when the bits agree. With $q = x_1 + x_2 \in
# \{0, 1, 2\}$, the bits agree exactly when $q \ne 1$, and $|q - 1|$ is 1 at $q = 0, 2$ and
# 0 at $q = 1$. The absolute value is two ramps, so
#
# $$
# \operatorname{xnor}(x_1, x_2) = \operatorname{relu}(x_1 + x_2 - 1)
#   + \operatorname{relu}(1 - x_1 - x_2)
# $$ (eq-xnor)
#
# on the four corners: the first unit is an AND (1 only at $(1,1)$), the second a NOR (1
# only at $(0,0)$). A single linear threshold cannot do this (XNOR is not linearly
# separable); one hidden layer of two units can. On the whole square the network computes
# $|x_1 + x_2 - 1|$, which the check below compares on a $401 \times 401$ grid; at the
# corners the outputs are integers, computed exactly, and must equal the truth table.

# %%
u = np.linspace(0, 1, 401)
square = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
xnor_weights = ([[1, 1], [-1, -1]], np.array([-1.0, 1.0]), [1, 1])
xnor = relu_net(square, *xnor_weights)
assert np.abs(xnor - np.abs(square.sum(1) - 1)).max() < 1e-12
corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
corner_out = relu_net(corners, *xnor_weights)
assert np.array_equal(corner_out, [1.0, 0.0, 0.0, 1.0])  # the XNOR truth table

# %% tags=["hide-input"]
fig, ax = plots.figure(width=4.6, height=3.6)
image = ax.imshow(xnor.reshape(len(u), len(u)), origin="lower", extent=(0, 1, 0, 1),
                  cmap="viridis")
ax.scatter(corners[:, 0], corners[:, 1], c="red", s=40, clip_on=False, zorder=3)
for (x1, x2), value in zip(corners, corner_out, strict=True):  # label each corner, inward
    ax.annotate(f"({x1:.0f}, {x2:.0f}): {value:.0f}", (x1, x2), textcoords="offset points",
                xytext=(8 - 16 * x1, 8 - 16 * x2), ha="right" if x1 else "left",
                va="top" if x2 else "bottom", fontsize=8,
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
ax.set(xlabel="$x_1$", ylabel="$x_2$")
fig.colorbar(image, ax=ax, label="network output")
plots.glue_figure("fig_xnor", fig)

# %% [markdown]
# ```{glue:figure} fig_xnor
# ---
# name: fig-mlp-xnor
# alt: >-
#   Heat map of the XNOR network's output on the unit square: zero along the diagonal
#   x1 + x2 = 1, rising to one at the corners (0, 0) and (1, 1).
# ---
# The XNOR network {eq}`eq-xnor` on the unit square, with each corner labelled by its
# input and the network's output. The output is $|x_1 + x_2 - 1|$: thresholding it at
# $\tfrac12$ classifies each point like XNOR of its rounded coordinates, except in the band
# where $x_1 + x_2$ is within $\tfrac12$ of 1.
# ```
#
# ## Every piecewise linear function
#
# Sigmoid units would do as well, approximately: $\sigma(k(x - c))$ is a smoothed step,
# and a large $k$ makes the error small but never zero. ReLUs give exact, finite
# constructions for every continuous piecewise linear function of one variable. Let it have
# kinks $c_1 < \dots < c_k$, slopes $a_0$ left of $c_1$ and $a_1$ right of it, and a change
# of slope $\Delta_i$ at $c_i$. Then
#
# $$
# f(x) = f(c_1) - a_0 \operatorname{relu}(c_1 - x) + a_1 \operatorname{relu}(x - c_1)
#   + \sum_{i=2}^{k} \Delta_i \operatorname{relu}(x - c_i):
# $$ (eq-pwl)
#
# left of $c_1$ only the mirrored ramp is active and gives the line of slope $a_0$ through
# $f(c_1)$; right of $c_1$ the ramps add up the slopes as before. That is one unit per
# kink, plus one for a nonzero slope far to the left: the tent ($a_0 = 0$) needs three
# units for three kinks, while $|x|$, and the XNOR's $|q - 1|$, need two for their single
# kink. (A line without kinks needs two as well,
# $x = \operatorname{relu}(x) - \operatorname{relu}(-x)$.) A check of {eq}`eq-pwl` on a
# random function with five kinks, to the same tolerance:

# %%
rng = np.random.default_rng(run.seed)
kinks = np.sort(rng.uniform(-1.5, 1.5, 5))  # c_1 < ... < c_5
slopes = rng.normal(size=len(kinks) + 1)  # slopes[0] = a_0 left of c_1, ..., slopes[5]
at_kinks = 0.3 + np.concatenate([[0.0], np.cumsum(slopes[1:-1] * np.diff(kinks))])
pwl_true = (np.interp(x, kinks, at_kinks)  # linear between the kinks, constant outside,
            + np.minimum(x - kinks[0], 0) * slopes[0]  # plus the line on the left
            + np.maximum(x - kinks[-1], 0) * slopes[-1])  # and the line on the right
pwl_net = relu_net(grid, [[-1.0]] + [[1.0]] * len(kinks),  # eq-pwl: k + 1 units
                   np.concatenate([[kinks[0]], -kinks]),
                   np.concatenate([[-slopes[0], slopes[1]], np.diff(slopes)[1:]]),
                   at_kinks[0])
assert np.abs(pwl_net - pwl_true).max() < 1e-12

# %% [markdown]
# ## What this section showed
#
# A one-hidden-layer ReLU network is a continuous piecewise linear function, and every such
# function of one variable is one: a unit at each kink, weighted by the change of slope
# there, plus one unit for the slope on the far left. The tent, the soft threshold and the
# XNOR of two bits follow from that recipe with three, two and two units, and each agrees
# with its definition to rounding. XNOR, which no single linear threshold computes, needs
# only the one hidden layer.
#
# ## Exercises
#
# 1. **Sigmoid networks by hand.** Build XNOR with sigmoid units and a steepness $k$:
#    replace each ReLU of {eq}`eq-xnor` by a step $\sigma(k(\cdot))$ placed between the
#    corners. Derive the worst error on the four corners as a function of $k$ and check it
#    numerically.
#
#    :::{dropdown} Hint
#    Use $h_1 = \sigma(k(x_1 + x_2 - \tfrac32))$ (AND) and
#    $h_2 = \sigma(k(\tfrac12 - x_1 - x_2))$ (NOR), output $h_1 + h_2$. At each corner the
#    arguments are $\pm k/2$ or $\pm 3k/2$, so the worst error is about
#    $\sigma(-k/2) \approx e^{-k/2}$: small for large $k$, never zero.
#    :::
#
# 2. **Two variables.** Is every continuous piecewise linear function of two variables a
#    one-hidden-layer ReLU network? Try $\max(x_1, x_2, 0)$.
#
#    :::{dropdown} Answer
#    No. Each unit $\operatorname{relu}(w^\top x + b)$ is kinked along a whole line, and a
#    sum of such units can only be kinked along whole lines (a kink cannot cancel on part of
#    a line and not on the rest). $\max(x_1, x_2) = x_2 + \operatorname{relu}(x_1 - x_2)$ is
#    fine, but $\max(x_1, x_2, 0)$ is kinked along three half-lines that meet at the
#    origin, so one hidden layer cannot compute it; two can,
#    $\max(x_1, x_2, 0) = \operatorname{relu}(x_2 + \operatorname{relu}(x_1 - x_2))$, with
#    $x_2$ written as $\operatorname{relu}(x_2) - \operatorname{relu}(-x_2)$.
#    :::
