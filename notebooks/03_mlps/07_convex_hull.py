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
# # Generalization inside the convex hull
#
# A network with more parameters than training points can fit its data exactly, so why does
# it predict anything sensible between the points? The experiment of 000, problem 2 looks at
# *where* it does. We fit a hundred small ReLU networks to samples of a fast-oscillating
# function, from 10 to 1,000 points each, and measure their worst error inside the interval
# the data covers and outside it. The answer is sharp: inside, the error falls with the
# amount of data; outside, it does not fall at all, and every network is wrong there by at
# least the size of the function itself.

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
import time

import numpy as np
import torch
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.mlps import (
    f_star,
    hull_datasets,
    hull_predict,
    train_hull_batched,
    train_hull_one,
)

run = profiles.setup(
    profile,
    seed=3,
    hull_sizes=(4, 20, 20),  # number of dataset sizes n between 10 and 1000
    hull_reps=(2, 5, 5),  # datasets per size
    hull_steps=(200, 20_000, 40_000),  # optimizer steps per regression network
    hull_seq_models=(2, 5, 3),  # models also trained alone (compared, timed)
)
torch.set_num_threads(1)  # one thread, as in the rest of the chapter
run

# %% [markdown]
# ## The question
#
# The target is $f^*(x) = \sin(10\pi x^4)$ on $[0, 1]$, which oscillates faster and faster
# as $x \to 1$. A dataset $D_n$ holds $n$ inputs $x_i \sim \mathcal U[0, 1]$ with
# $y_i = f^*(x_i)$. We fit a small MLP $f_w(\cdot; n)$ to it and measure the worst error
# inside the interval the data covers (its convex hull, up to the gaps at the ends) and on a
# longer interval that reaches outside it:
#
# $$
# \delta f_{\text{in}}(n) = \max_{x \in [0, 1]} |f_w(x; n) - f^*(x)|, \qquad
# \delta f_{\text{out}}(n) = \max_{x \in [0, 1.5]} |f_w(x; n) - f^*(x)|,
# $$ (eq-delta)
#
# each maximum taken over a grid of 1,000 (resp. 1,500) equally spaced points. With
# {glue:text}`hull_sizes` sizes $n$ log-spaced from 10 to 1,000 and
# {glue:text}`hull_reps` datasets per size, that is {glue:text}`hull_n_models` networks,
# trained together by the batched code of {doc}`the previous section <06_many_networks>`:
# two hidden ReLU layers of widths 128 and 32 with batch normalization, Adam for
# {glue:text}`hull_steps:,` steps on the squared error, the first layer's bends started
# evenly over the data.

# %%
sizes, X_hull, Y_hull, hull_init = hull_datasets(run.hull_sizes, run.hull_reps,
                                                 run.seed)
n_models = len(sizes)
start = time.perf_counter()
p, bn = train_hull_batched(hull_init, X_hull, Y_hull, sizes, run.hull_steps,
                           torch.Generator().manual_seed(1))
batched_seconds = time.perf_counter() - start
x_in, x_out = torch.linspace(0, 1, 1_000), torch.linspace(0, 1.5, 1_500)
err_in = (hull_predict(p, bn, x_in.expand(n_models, -1)) - f_star(x_in)).abs()
pred_out = hull_predict(p, bn, x_out.expand(n_models, -1))
err_out = (pred_out - f_star(x_out)).abs()
delta_in, delta_out = err_in.max(1).values.numpy(), err_out.max(1).values.numpy()
delta_beyond = err_out[:, x_out > 1].max(1).values.numpy()  # strictly outside the data
mae_in = err_in.mean(1).numpy()  # typical, not worst, errors
mae_beyond = err_out[:, x_out > 1].mean(1).numpy()

# %% tags=["hide-input"]
hull_ns = np.unique(sizes.numpy())
shape = (run.hull_sizes, run.hull_reps)
log_in, log_out = np.log10(delta_in).reshape(shape), np.log10(delta_out).reshape(shape)
log_beyond = np.log10(delta_beyond).reshape(shape)
log_mae_in = np.log10(mae_in).reshape(shape)
log_mae_beyond = np.log10(mae_beyond).reshape(shape)
fig, (ax, ax_mae) = plots.figure(ncols=2, height=3.6)
# delta_out is wide and pale: where it equals the max over (1, 1.5], the dotted curve
# covers it.
for logs, label, style in ((log_in, r"$\delta f_{in}$ on [0, 1]", {}),
                           (log_out, r"$\delta f_{out}$ on [0, 1.5]",
                            {"lw": 6, "alpha": 0.35, "marker": "s", "ms": 9}),
                           (log_beyond, "on (1, 1.5] only",
                            {"ls": ":", "marker": "x", "ms": 6})):
    ax.errorbar(hull_ns, logs.mean(1), yerr=logs.std(1), capsize=3,
                **({"marker": "o", "ms": 4} | style), label=label)
ax.set(xscale="log", xlabel="training set size n", ylabel="log10 worst error")
ax.legend(fontsize=7)
for logs, label in ((log_mae_in, "inside, [0, 1]"), (log_mae_beyond, "outside, (1, 1.5]")):
    ax_mae.errorbar(hull_ns, logs.mean(1), yerr=logs.std(1), marker="o", ms=4, capsize=3,
                    label=label)
ax_mae.set(xscale="log", xlabel="training set size n", ylabel="log10 mean error")
ax_mae.legend(fontsize=7)
plots.glue_figure("fig_hull_errors", fig)

fig, ax = plots.figure(width=6.0, height=3.4)
ax.plot(x_out, f_star(x_out), color="black", lw=1, label="f*(x)")
for m in (0, n_models // 2, n_models - 1):
    ax.plot(x_out, pred_out[m], label=f"fit, n = {int(sizes[m])}")
ax.axvline(1.0, color="grey", ls="--", label="edge of the data")
ax.set(xlabel="x", ylabel="f(x)", ylim=(-3, 3))
ax.legend(fontsize=7)
plots.glue_figure("fig_hull_fits", fig)

# %% [markdown]
# ## The result
#
# ```{glue:figure} fig_hull_errors
# ---
# name: fig-mlp-hull-errors
# alt: >-
#   Two log-log panels against the training set size: the worst and the typical error
#   inside [0, 1] fall with n, while the errors outside the data stay large or grow.
# ---
# The error of the {glue:text}`hull_n_models` fitted networks against the size $n$ of their
# training set (mean and standard deviation of $\log_{10}$ over the datasets of each size).
# Left: worst errors {eq}`eq-delta`, with the maximum over $(1, 1.5]$ alone dotted. Right:
# mean absolute errors inside and outside the data. Look at the opposite trends inside and
# outside.
# ```
#
# Inside the data's range, the error falls with the amount of data. The worst error
# $\delta f_{\text{in}}$ ({numref}`fig-mlp-hull-errors`, left) has a geometric mean of
# {glue:text}`hull_delta_in_small_n:.2f` over the smallest quarter of the sizes and
# {glue:text}`hull_delta_in_large_n:.2f` over the largest (a slope of
# {glue:text}`hull_slope_in:.2f` in $\log_{10}\delta$ against $\log_{10} n$); the typical
# error (right) falls faster, from {glue:text}`hull_mae_in_small_n:.2f` to
# {glue:text}`hull_mae_in_large_n:.3f` (slope {glue:text}`hull_slope_mae_in:.2f`).
#
# Outside the data the picture is different. First an ambiguity of the source's definition
# {eq}`eq-delta`: $[0, 1.5]$ contains $[0, 1]$, so
# $\delta f_{\text{out}} \ge \delta f_{\text{in}}$ by construction. The dotted curve takes
# the maximum over $(1, 1.5]$ only, strictly outside the data, and it is there that
# $\delta f_{\text{out}}$ is attained for a fraction {glue:text}`hull_frac_out_beyond:.2f`
# of the networks; for those the two are equal, and the wide pale curve shows only where
# they differ. The error outside does not fall with $n$: its geometric mean is
# {glue:text}`hull_delta_beyond_small_n:.1f` over the smallest quarter of the sizes and
# {glue:text}`hull_delta_beyond_large_n:.1f` over the largest, a fitted slope of
# {glue:text}`hull_slope_beyond:.2f` against {glue:text}`hull_slope_in:.2f` inside. Compare
# with the trivial prediction $f \equiv 0$, whose mean absolute error is the mean of
# $|f^*|$: {glue:text}`hull_zero_mae_in:.2f` on $[0, 1]$ and
# {glue:text}`hull_zero_mae_beyond:.2f` on $(1, 1.5]$ (there $f^*$ oscillates so fast that
# this is the $2/\pi$ of a sine). Inside, the networks of the largest datasets beat it by a
# factor of {glue:text}`hull_zero_over_mae_in:.0f`; outside, their mean error is
# {glue:text}`hull_mae_beyond_large_n:.1f`, worse than predicting nothing at all. The worst
# error outside is at least {glue:text}`hull_delta_beyond_min:.2f` for every one of the
# {glue:text}`hull_n_models` networks.

# %%
log_n = np.log10(sizes.numpy())  # the size of each model's dataset
slope = {name: np.polyfit(log_n, np.log10(values), 1)[0] for name, values in (
    ("in", delta_in), ("out", delta_out), ("beyond", delta_beyond),
    ("mae_in", mae_in), ("mae_beyond", mae_beyond))}
large = slice(-max(1, run.hull_sizes // 4), None)  # the largest quarter of the sizes
zero_mae_in = f_star(x_in).abs().mean().item()  # the error of predicting f = 0
zero_mae_beyond = f_star(x_out[x_out > 1]).abs().mean().item()
if run.profile != "smoke":
    assert slope["in"] < -0.2  # delta_in falls with n ...
    assert slope["mae_in"] < slope["in"]  # ... the typical error faster than the worst
    assert slope["beyond"] > -0.1 and slope["out"] > -0.1  # outside: no fall
    assert delta_beyond.min() > 0.5  # ... and an error of order one for every network
    assert 10 ** log_mae_in[large].mean() < zero_mae_in / 3  # inside: beats f = 0
    assert 10 ** log_mae_beyond[large].mean() > zero_mae_beyond  # outside: worse than 0

# %% tags=["hide-input"]
small = slice(0, max(1, run.hull_sizes // 4))
for name, value in {
    "hull_delta_in_small_n": 10 ** log_in[small].mean(),
    "hull_delta_in_large_n": 10 ** log_in[large].mean(),
    "hull_delta_out_small_n": 10 ** log_out[small].mean(),
    "hull_delta_out_large_n": 10 ** log_out[large].mean(),
    "hull_delta_beyond_small_n": 10 ** log_beyond[small].mean(),
    "hull_delta_beyond_large_n": 10 ** log_beyond[large].mean(),
    "hull_delta_beyond_min": delta_beyond.min(),
    "hull_mae_in_large_n": 10 ** log_mae_in[large].mean(),
    "hull_mae_in_small_n": 10 ** log_mae_in[small].mean(),
    "hull_mae_beyond_large_n": 10 ** log_mae_beyond[large].mean(),
    **{f"hull_slope_{k}": v for k, v in slope.items()},
}.items():
    results.record(name, float(value))
glue("hull_frac_out_beyond", float(np.mean(delta_beyond >= delta_in)), display=False)
glue("hull_zero_mae_in", zero_mae_in, display=False)
glue("hull_zero_mae_beyond", zero_mae_beyond, display=False)
glue("hull_zero_over_mae_in", float(zero_mae_in / 10 ** log_mae_in[large].mean()),
     display=False)
glue("hull_n_models", n_models, display=False)
glue("hull_sizes", run.hull_sizes, display=False)
glue("hull_reps", run.hull_reps, display=False)
glue("hull_steps", run.hull_steps, display=False)

# %% [markdown]
# ## Why: a straight line out of the data
#
# ```{glue:figure} fig_hull_fits
# ---
# name: fig-mlp-hull-fits
# alt: >-
#   The target sin(10 pi x^4) on [0, 1.5] with three fitted networks; inside [0, 1] they
#   follow it, beyond x = 1 each leaves on a straight line.
# ---
# Three of the fitted networks, for the smallest, a middle and the largest $n$, against
# $f^*$. Left of the dashed line they follow the target; right of it each continues on a
# straight line, steeper for the larger datasets.
# ```
#
# A ReLU network is piecewise linear, and beyond its last kink it continues on a straight
# line, whatever the target does there ({numref}`fig-mlp-hull-fits`). The data on $[0, 1]$
# carries no information about $[1, 1.5]$, where $\sin(10\pi x^4)$ keeps oscillating faster
# and faster, and a straight line is at distance at least about 1 from a function that
# swings between $-1$ and $1$. More data does not help outside; if anything it makes the
# exit steeper: on $[1.4, 1.5]$ the fits of the smallest datasets climb or fall with a
# median slope of {glue:text}`hull_exit_slope_small_n:.0f`, those of the largest with
# {glue:text}`hull_exit_slope_large_n:.0f`, because to follow the fast oscillations just
# before $x = 1$ they have built steep pieces, and the last one goes on forever. Between
# training points, on the other hand, the network interpolates, and the denser the points,
# the smaller the gaps it has to bridge. This is the sense in which an over-parameterized
# network generalizes: inside the convex hull of its data, at a rate set by how densely the
# data fills it, and not outside.

# %%
i14 = int(torch.searchsorted(x_out, torch.tensor(1.4)))  # first grid point >= 1.4
exit_slope = (pred_out[:, -1] - pred_out[:, i14]) / (x_out[-1] - x_out[i14])
exit_slope = exit_slope.abs().numpy().reshape(shape)
if run.profile != "smoke":
    # the steeper exit of the larger datasets
    assert np.median(exit_slope[large]) > np.median(exit_slope[small])

# %% tags=["hide-input"]
results.record("hull_exit_slope_small_n", float(np.median(exit_slope[small])),
               description="median |slope| of the fit on [1.4, 1.5], smallest quarter")
results.record("hull_exit_slope_large_n", float(np.median(exit_slope[large])))

# %% [markdown]
# ## How close are the fits?
#
# The source asks for a training error of nearly zero. We measure the training MSE of every
# network on its own $n$ points, against the variance of $f^*$ (the error of predicting its
# mean), and where the remaining error sits.

# %%
mask = torch.arange(X_hull.shape[1])[None] < sizes[:, None]  # each model's own points
sq_err = (hull_predict(p, bn, X_hull) - Y_hull) ** 2 * mask
train_mse = sq_err.sum(1) / sizes
f_variance = f_star(torch.linspace(0, 1, 100_001, dtype=torch.float64)).var().item()
resid_last = float((sq_err * (X_hull > 0.9)).sum() / sq_err.sum())  # share from x > 0.9
if run.profile != "smoke":
    assert train_mse.median() < 0.02 * f_variance  # close fits: R^2 above 0.98 for most
    assert resid_last > 0.5  # most of the remaining error sits in the last tenth

# %% tags=["hide-input"]
results.record("hull_train_mse_median", train_mse.median().item(),
               description="median training MSE of the regression MLPs")
results.record("hull_train_mse_max", train_mse.max().item())
results.record("hull_target_variance", f_variance,
               description="variance of f*(x), x ~ U[0, 1]")
results.record("hull_train_r2_median", 1 - train_mse.median().item() / f_variance,
               description="1 - median training MSE / variance of f*")
glue("hull_resid_frac_last", resid_last, display=False)

# %% [markdown]
# The median training MSE of the {glue:text}`hull_n_models` networks is
# {glue:text}`hull_train_mse_median:.1e`, against a variance of $f^*$ of
# {glue:text}`hull_target_variance:.3f`, so the median network explains a fraction
# {glue:text}`hull_train_r2_median:.3f` of it ($R^2$); the worst fit has a training MSE of
# {glue:text}`hull_train_mse_max:.1e`. Most of what remains sits at the last oscillations
# before $x = 1$: the points with $x > 0.9$, a tenth of the interval, carry a fraction
# {glue:text}`hull_resid_frac_last:.2f` of the squared training error summed over all the
# networks. There the period of $f^*$ falls to $0.05$, which needs the steepest pieces, and
# gradient methods build those last (the *spectral bias* of neural networks: low
# frequencies are learned first), which is also why the worst error $\delta f_{\text{in}}$
# falls more slowly than the typical one.
#
# ## The batched run against the loop
#
# The previous section checked the batched code over 25 steps in float64. Over the full
# {glue:text}`hull_steps:,` float32 steps, rounding differences grow chaotically, so a
# network trained alone and its slice of the batched run end as different networks; the
# question is whether they are equally good. We train {glue:text}`hull_seq_models` of the
# networks alone, spread over the sizes, from their slices of the initial parameters and
# with the same mini-batches, and time them.

# %%
check_models = [int(m) for m in
                np.linspace(0, n_models - 1, run.hull_seq_models).round()]
start = time.perf_counter()
alone = [train_hull_one(hull_init, m, X_hull, Y_hull, sizes, run.hull_steps,
                        torch.Generator().manual_seed(1)) for m in check_models]
alone_seconds = time.perf_counter() - start
with torch.no_grad():
    seq_diff = max((net(x_out[:, None])[:, 0] - pred_out[m]).abs().max().item()
                   for m, net in zip(check_models, alone, strict=True))
    seq_delta_in = np.mean([(net(x_in[:, None])[:, 0] - f_star(x_in)).abs().max().item()
                            for net in alone])
quality_ratio = seq_delta_in / delta_in[check_models].mean()
if run.profile != "smoke":  # three networks: "equally good" within a factor of 1.5
    assert 2 / 3 < quality_ratio < 3 / 2, quality_ratio

# %% tags=["hide-input"]
per_model = alone_seconds / len(check_models)
results.record("hull_batched_vs_single_max_diff", seq_diff,
               description="max |prediction difference|, batched vs alone, full float32 runs")
results.record("hull_batched_seconds", batched_seconds, unit="s",
               description=f"{n_models} regression MLPs trained at once")
results.record("hull_sequential_seconds_per_model", per_model, unit="s")
results.record("hull_speedup", per_model * n_models / batched_seconds,
               description="sequential time (extrapolated to all models) / batched time")
glue("hull_seq_delta_in", float(seq_delta_in), display=False)
glue("hull_batched_delta_in_same", float(delta_in[check_models].mean()), display=False)
glue("hull_seq_models", len(check_models), display=False)
glue("hull_check_sizes", ", ".join(f"{int(sizes[m]):,}" for m in check_models),
     display=False)
S = run.hull_steps
display(Markdown(
    f"| {S:,} steps, one thread | seconds |\n|---|---|\n"
    f"| all {n_models} networks at once | {batched_seconds:.1f} |\n"
    f"| one network alone, mean of {len(check_models)} | {per_model:.2f} |\n"
    f"| the loop over all {n_models}, extrapolated | {per_model * n_models:,.0f} |\n"
    f"| loop time / batched time | {per_model * n_models / batched_seconds:.1f} |"))

# %% [markdown]
# The predictions of the networks trained alone and of their slices differ by up to
# {glue:text}`hull_batched_vs_single_max_diff:.1f` (on $[0, 1.5]$, where the exits of
# {numref}`fig-mlp-hull-fits` magnify any difference), and they are about equally good: the
# mean $\delta f_{\text{in}}$ of the networks trained alone ($n =$
# {glue:text}`hull_check_sizes`) is {glue:text}`hull_seq_delta_in:.2f`, that of the same
# networks in the batched run {glue:text}`hull_batched_delta_in_same:.2f`. The table gives
# the times of the full run: the model axis pays for itself here by the ratio in its last
# line.
#
# ## What this section showed
#
# A hundred over-parameterized networks, each fitted closely to its data, generalize in the
# way interpolation does: inside the interval the data covers their error falls with $n$,
# the typical error faster than the worst, and outside it they continue on straight lines
# that are wrong by the size of the function, worse than predicting zero, whatever $n$. More
# data makes the exit steeper, not better. The remaining training error sits where the
# target oscillates fastest, where gradient training builds its steepest pieces last.
#
# ## Exercises
#
# 1. **Outside the hull in the other direction.** Measure $\delta f$ on $[-0.5, 0]$, where
#    $f^*(x) = \sin(10\pi x^4)$ varies slowly. Is the error there as large as on
#    $[1, 1.5]$? Why?
#
#    :::{dropdown} Hint
#    Near 0, $f^*$ is almost flat ($f^*(x) \approx 10\pi x^4$), and the fits leave the data
#    on the left on a nearly flat line too, so the error grows slowly, like $x^4$ at first.
#    It still grows without bound as $x \to -\infty$, where $f^*$ oscillates again: the
#    straight line is right only as long as the target happens to be nearly straight.
#    :::
#
# 2. **A smoother target.** Repeat the sweep with $f^*(x) = \sin(2\pi x)$. Which of the
#    slopes of {numref}`fig-mlp-hull-errors` change?
#
#    :::{dropdown} Hint
#    Inside, the errors fall faster and the residual no longer piles up near $x = 1$;
#    outside, the fits still leave on straight lines, so the error on $(1, 1.5]$ is still of
#    order one and does not fall with $n$.
#    :::
