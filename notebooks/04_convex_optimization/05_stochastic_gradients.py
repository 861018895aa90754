# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# # Stochastic gradients and their noise floor
#
# 000 P4(e) replaces the full gradient of the logistic-regression problem of {doc}`section
# 3 <03_logistic_regression>` by the gradient on a mini-batch of $b$ images, with and
# without Nesterov's momentum, and asks whether momentum still helps. A constant step no
# longer converges: each run falls and then stalls at a *noise floor*. This section
# measures the floors, derives their size for a linear model of the dynamics near the
# optimum, and finds out why the measured floors depart from that model.


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
import math

import numpy as np
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.convex_optimization import (
    gradient,
    logistic_problem,
    loss,
    momentum_for,
    optimize,
    sigmoid,
)

run = profiles.setup(
    profile,
    seed=4,
    n_train=(2_000, 12_665, 12_665),  # training images of digits 0 and 1 (all: 12,665)
    sgd_updates=(400, 3_000, 3_000),  # parameter updates of every stochastic run
)
threadpool_limits(limits=1)  # one BLAS thread: faster than two on a shared 2-core machine
run

# %% [markdown]
# The problem of section 3 in one call, and the step and momentum of the full-batch runs
# of {doc}`section 4 <04_gd_nesterov>`: $\eta = 1/L$ and $\beta = (\sqrt\kappa -
# 1)/(\sqrt\kappa + 1)$.

# %%
problem = logistic_problem(run.n_train, run.seed)
X, y, lam, f_star, w0 = problem.X, problem.y, problem.lam, problem.f_star, problem.w0
n = len(y)
step, beta = 1 / problem.L, momentum_for(problem.L, problem.m)


def gap(w):
    return loss(w, X, y, lam) - f_star


# %% [markdown]
# ## Mini-batches, reshuffled every epoch
#
# As the source asks, the mini-batches are drawn without replacement: the training set is
# shuffled, cut into batches of $b$, and reshuffled when it runs out (an *epoch*). The
# $x$-axis counts parameter updates; a mini-batch update costs $b/n$ of a full one. Each run
# records $f - f^\star$ on the full training set every ten updates and never stops early.

# %% tags=["save"]
def minibatch_oracle(X, y, lam, batch, seed):
    """grad_fn(w, t) for `optimize`: the gradient on the next mini-batch of a shuffled
    order of the examples, reshuffled whenever it runs out (one epoch)."""
    rng = np.random.default_rng(seed)
    order, position = np.array([], dtype=int), 0

    def oracle(w, t):
        nonlocal order, position
        if position + batch > len(order):
            order, position = rng.permutation(len(y)), 0
        rows = order[position: position + batch]
        position += batch
        return gradient(w, X[rows], y[rows], lam)

    return oracle


# %%
EVERY = 10
BATCHES = (128, 64, 8)
sgd_runs = {}
for batch in BATCHES:
    for momentum in (0.0, beta):
        oracle = minibatch_oracle(X, y, lam, batch, (run.seed, batch))
        sgd_runs[batch, momentum > 0] = optimize(oracle, w0, step, gap, momentum,
                                                 n_steps=run.sgd_updates, every=EVERY,
                                                 stop=0.0)
tail = slice(-len(sgd_runs[128, False][0]) // 5, None)  # the last fifth of each run
floor = {key: float(np.median(gaps[tail])) for key, (steps, gaps) in sgd_runs.items()}


def updates_to(steps, gaps, level=1e-2):
    """First recorded update at which f - f* < level (how fast the transient is)."""
    below = gaps < level
    return int(steps[np.argmax(below)]) if below.any() else math.inf


# %% tags=["hide-input"]
for b in BATCHES:
    results.record(f"sgd_floor_b{b}", floor[b, False], unit="nats",
                   description=f"SGD b={b}: median f - f* over the last fifth")
    results.record(f"sgd_nesterov_floor_b{b}", floor[b, True], unit="nats",
                   description=f"SGD+Nesterov b={b}: median f - f* over the last fifth")
momentum_factor = {b: floor[b, True] / floor[b, False] for b in BATCHES}
display(Markdown(
    "| batch $b$ | updates to $10^{-2}$, plain | with Nesterov | floor, plain | "
    "floor, Nesterov | ratio of floors |\n|---|---|---|---|---|---|\n" + "\n".join(
        f"| {b} | {updates_to(*sgd_runs[b, False])} | {updates_to(*sgd_runs[b, True])} | "
        f"{floor[b, False]:.1e} | {floor[b, True]:.1e} | {momentum_factor[b]:.1f} |"
        for b in BATCHES).replace("inf", "never")))
floor_ratio = floor[8, False] / floor[128, False]
glue("sgd_updates", run.sgd_updates, display=False)
glue("sgd_floor_ratio", floor_ratio, display=False)
glue("momentum_rule_of_thumb", 1 / (1 - beta), display=False)
glue("momentum_factor_min", min(momentum_factor.values()), display=False)
glue("momentum_factor_max", max(momentum_factor.values()), display=False)
if run.profile != "smoke":  # what the text below says about these runs
    assert all(updates_to(*sgd_runs[b, True]) < updates_to(*sgd_runs[b, False])
               for b in BATCHES)  # momentum is faster in the transient
    assert floor[8, False] > floor[64, False] > floor[128, False]  # smaller b, higher floor
    assert min(momentum_factor.values()) > 1  # momentum raises the floor

# %% [markdown]
# The table gives, for each batch size, the number of updates until $f - f^\star$ first
# falls below $10^{-2}$, and the median of $f - f^\star$ over the last fifth of the
# {glue:text}`sgd_updates:,` updates: our estimate of the floor. The left panel of
# {numref}`fig-co-sgd` shows the runs: each falls fast and then stalls. The mini-batch
# gradient does not vanish at $\tilde w^\star$, so a constant step keeps the iterate
# jittering around it.
#
# **Is SGD with Nesterov faster than plain SGD?** At first, yes: with momentum $f -
# f^\star$ falls below $10^{-2}$ in fewer updates at every batch size, as in the
# full-batch case. But it does not converge to a better point: momentum *raises* the
# floor, here by factors of {glue:text}`momentum_factor_min:.1f` to
# {glue:text}`momentum_factor_max:.1f` (last column). A rule of thumb says why: with
# momentum $\beta$ the effective step is $\eta/(1 - \beta)$, so the same gradient noise is
# amplified by about $1/(1 - \beta)$ = {glue:text}`momentum_rule_of_thumb:.1f`. The
# measured factors are larger than that, and a smaller batch raises the floor
# ({glue:text}`sgd_floor_ratio:.0f`-fold from $b = 128$ to $b = 8$), more than the 16-fold
# a noise variance proportional to $1/b$ suggests. Both numbers need a better model.
#
# ## The floor of a linear model, exactly
#
# Near $\tilde w^\star$ the mini-batch gradient is, to first order,
# $H^\star(\tilde w - \tilde w^\star) + \xi_t$, where the noise $\xi_t$ has mean zero and,
# for a batch of $b$ of the $n$ examples drawn without replacement, covariance
# $C_b = \frac{n - b}{b(n - 1)}\Sigma$, with $\Sigma$ the covariance of the $n$
# per-example gradients at $\tilde w^\star$. Along an eigenvector $q$ of $H^\star$ with
# curvature $h$, write $a = \eta h$, $s^2 = q^\top C_b q$ and $e_t$ for the component of the
# error. Nesterov's iteration {eq}`eq-nesterov` becomes
#
# $$
# e_{t+1} = (1 - a)\bigl((1 + \beta)e_t - \beta e_{t-1}\bigr) - \eta\,\xi_t ,
# $$
#
# a second-order autoregression $e_{t+1} = \phi_1 e_t + \phi_2 e_{t-1} + \text{noise}$ with
# $\phi_1 = (1 - a)(1 + \beta)$ and $\phi_2 = -(1 - a)\beta$. If the $\xi_t$ of different
# steps are independent, its stationary variance is (the Yule-Walker equations)
#
# $$
# \operatorname{Var} e = \frac{\eta^2 s^2\,(1 - \phi_2)}
#   {(1 + \phi_2)\bigl((1 - \phi_2)^2 - \phi_1^2\bigr)}
# = \frac{\eta^2 s^2\,\bigl(1 + (1 - a)\beta\bigr)}
#   {a\,\bigl(1 - (1 - a)\beta\bigr)\bigl(2 + 2\beta - a(1 + 2\beta)\bigr)} ,
# $$ (eq-ar2-variance)
#
# using $1 - \phi_1 - \phi_2 = a$. With $\beta = 0$ it is $\eta^2 s^2/(a(2 - a))$. The
# expected floor is $\tfrac12\sum_j h_j \operatorname{Var} e_j$ over the eigenvectors, and
# momentum multiplies the variance along one of them by
#
# $$
# F(a, \beta) = \frac{(2 - a)\bigl(1 + (1 - a)\beta\bigr)}
#   {\bigl(1 - (1 - a)\beta\bigr)\bigl(2 + 2\beta - a(1 + 2\beta)\bigr)} .
# $$ (eq-momentum-factor)
#
# As $a \to 0$, $F \to 1/(1 - \beta)$: the rule of thumb is the limit of a direction with
# no curvature. $F$ falls as $a$ grows (for our $\beta$ it is
# {glue:text}`factor_a_small:.2f` at $a = 10^{-3}$ and {glue:text}`factor_a_large:.1f` at
# $a = 0.05$), so the rule of thumb is an upper bound, never reached. For the whole floor
# the factor is an average of $F(a_j, \beta)$ weighted by each direction's part of the
# plain floor, $\tfrac12 h_j \operatorname{Var} e_j = \eta s_j^2/(2(2 - a_j))$, which puts
# the weight where the noise is. We compute it from the spectrum and the per-example
# gradients at $\tilde w^\star$.

# %%
def ar2_variance(a, beta, noise_var, step):
    """Stationary variance of e_{t+1} = (1-a)((1+beta) e_t - beta e_{t-1}) - step xi_t,
    eq. (eq-ar2-variance)."""
    phi1, phi2 = (1 - a) * (1 + beta), -(1 - a) * beta
    return step**2 * noise_var * (1 - phi2) / ((1 + phi2) * ((1 - phi2) ** 2 - phi1**2))


margins = y * (X @ problem.w_star)
per_example = -(y * sigmoid(-margins))[:, None] * X  # data terms (lam w* is common)
Sigma = np.cov(per_example, rowvar=False, bias=True)
h, Q = np.linalg.eigh(problem.H_star)
noise_along = np.einsum("ji,jk,ki->i", Q, Sigma, Q)  # q_j' Sigma q_j


def model_floor(batch, momentum):
    """Expected f - f* of the linear model at stationarity: 1/2 sum_j h_j Var e_j."""
    c_b = (n - batch) / (batch * (n - 1))
    variances = ar2_variance(step * h, momentum, c_b * noise_along, step)
    return 0.5 * float(np.sum(h * variances))


model_factor = model_floor(128, beta) / model_floor(128, 0.0)  # the same for every b
per_direction = ar2_variance(step * h, beta, 1, 1) / ar2_variance(step * h, 0.0, 1, 1)
assert per_direction.max() < 1 / (1 - beta)  # F < 1/(1 - beta) wherever a > 0
assert model_factor < 1 / (1 - beta)

# %% [markdown]
# Two departures of the measurement from the model can be switched off one at a time. The
# table above takes *medians* of $f - f^\star$, while the model predicts its *mean*; and
# the batches are reshuffled every epoch, so within an epoch the noise of different steps
# is not independent: the batches of one epoch cover every example once (all but a
# remainder smaller than a batch), and at $\tilde w^\star$ the gradients of all examples sum
# to zero, so the noise of an epoch nearly cancels. We rerun $b = 128$ and $b = 8$ with
# *independent* batches (each drawn afresh, without replacement inside the batch, as $C_b$
# assumes) and compare means.

# %%
def independent_oracle(batch, seed):
    rng = np.random.default_rng(seed)

    def oracle(w, t):
        # a fresh batch, whatever came before
        rows = rng.choice(n, batch, replace=False)
        return gradient(w, X[rows], y[rows], lam)

    return oracle


iid_runs = {}
for batch in (128, 8):
    for momentum in (0.0, beta):
        iid_runs[batch, momentum > 0] = optimize(
            independent_oracle(batch, (run.seed, batch, 1)), w0, step, gap, momentum,
            n_steps=run.sgd_updates, every=EVERY, stop=0.0)

mean_floor = {("reshuffled", *key): float(gaps[tail].mean())
              for key, (steps, gaps) in sgd_runs.items() if key[0] in (128, 8)}
mean_floor |= {("independent", *key): float(gaps[tail].mean())
               for key, (steps, gaps) in iid_runs.items()}
mean_floor |= {("model", b, mom): model_floor(b, beta if mom else 0.0)
               for b in (128, 8) for mom in (False, True)}

# %% [markdown]
# The checks below ask the independent-batch means to agree with the model within a factor
# of 1.5, for each floor and for the factor momentum adds. That margin is for the tail's
# sixty records: the slowest noisy directions decorrelate only over hundreds of updates, so
# the tail holds few independent samples of them. The reshuffled medians must exceed the
# model's factor: that is the discrepancy we are explaining.

# %%
if run.profile != "smoke":
    for b in (128, 8):
        for mom in (False, True):
            ratio = mean_floor["independent", b, mom] / mean_floor["model", b, mom]
            assert 1 / 1.5 < ratio < 1.5, (b, mom, ratio)
        iid_factor = (mean_floor["independent", b, True]
                      / mean_floor["independent", b, False])
        assert 1 / 1.5 < iid_factor / model_factor < 1.5, (b, iid_factor, model_factor)
    # the reshuffled medians exceed it
    assert min(momentum_factor.values()) > model_factor

# %% tags=["hide-input"]
LABELS = {"reshuffled": "reshuffled each epoch (measured)",
          "independent": "independent batches (measured)",
          "model": "linear model, eq. (eq-ar2-variance)"}
display(Markdown(
    "| batch $b$ | mini-batches | mean floor, plain | mean floor, Nesterov | ratio |\n"
    "|---|---|---|---|---|\n" + "\n".join(
        f"| {b} | {LABELS[kind]} | {mean_floor[kind, b, False]:.1e} | "
        f"{mean_floor[kind, b, True]:.1e} | "
        f"{mean_floor[kind, b, True] / mean_floor[kind, b, False]:.1f} |"
        for b in (128, 8) for kind in LABELS)))
results.record("momentum_floor_factor_model", model_factor,
               description="factor by which Nesterov raises the SGD floor, linear model")
iid_factors = [mean_floor["independent", b, True] / mean_floor["independent", b, False]
               for b in (128, 8)]
resh_mean_factors = [mean_floor["reshuffled", b, True] / mean_floor["reshuffled", b, False]
                     for b in (128, 8)]
for name, value in {
    "excess_min": min(momentum_factor.values()) / model_factor,
    "excess_max": max(momentum_factor.values()) / model_factor,
    "resh_mean_factor_min": min(resh_mean_factors),
    "resh_mean_factor_max": max(resh_mean_factors),
    "iid_factor_min": min(iid_factors), "iid_factor_max": max(iid_factors),
    "iid_batch_ratio": mean_floor["independent", 8, False]
    / mean_floor["independent", 128, False],
    "model_batch_ratio": model_floor(8, 0.0) / model_floor(128, 0.0),
    "resh_plain_lowered": mean_floor["independent", 128, False]
    / mean_floor["reshuffled", 128, False],
    "epoch_128": n / 128, "epoch_8": n / 8,
    "factor_a_small": ar2_variance(1e-3, beta, 1, 1) / ar2_variance(1e-3, 0.0, 1, 1),
    "factor_a_large": ar2_variance(0.05, beta, 1, 1) / ar2_variance(0.05, 0.0, 1, 1),
}.items():
    glue(name, float(value), display=False)

fig, (ax_source, ax_iid) = plots.figure(ncols=2, sharey=True)
for ax, runs, batches, title in ((ax_source, sgd_runs, BATCHES, "reshuffled each epoch"),
                                 (ax_iid, iid_runs, (128, 8), "independent batches")):
    for b in batches:
        color = f"C{BATCHES.index(b)}"
        for mom, style in ((False, ":"), (True, "-")):
            steps, gaps = runs[b, mom]
            ax.semilogy(steps, gaps, style, color=color, lw=1,
                        label=f"$b$ = {b}" + (", Nesterov" if mom else ", plain"))
    ax.set(xlabel="parameter updates", title=title, xlim=(0, run.sgd_updates))
for b in (128, 8):
    for mom in (False, True):
        ax_iid.axhline(mean_floor["model", b, mom], color="k", lw=0.8, ls="--")
ax_source.set_ylabel(r"$f - f^\star$ (nats)")
ax_source.legend(fontsize=7, ncol=1)
plots.glue_figure("fig_sgd", fig)

# %% [markdown]
# ```{glue:figure} fig_sgd
# ---
# name: fig-co-sgd
# alt: >-
#   Two panels of f minus f star on a log scale against updates for mini-batch SGD with and
#   without momentum; every curve falls and then fluctuates around a level, higher for
#   smaller batches and with momentum; dashed lines in the right panel mark the model's
#   levels.
# ---
# Mini-batch SGD with step $1/L$, plain (dotted) and with Nesterov's momentum (solid). Left:
# the source's runs, reshuffled every epoch, for three batch sizes. Right: $b = 128$ and
# $b = 8$ with independent batches; the dashed lines are the model's mean floors. Look at how
# each curve settles on its floor, and at how close the right panel's runs fluctuate around
# the dashed lines.
# ```
#
# The model's factor, the weighted average of {eq}`eq-momentum-factor`, is
# {glue:text}`momentum_floor_factor_model:.1f`, below the rule of thumb's
# {glue:text}`momentum_rule_of_thumb:.1f` as it must be (asserted). The measured ratios of
# medians exceed it by {glue:text}`excess_min:.1f` to {glue:text}`excess_max:.1f` times. The
# second table takes that apart:
#
# - **Medians against means.** The distribution of $f - f^\star$ on the floor is skewed: a
#   sum of squares of a few slowly varying components, with rare high excursions. Taken as
#   means, the reshuffled runs' factors fall to {glue:text}`resh_mean_factor_min:.1f` and
#   {glue:text}`resh_mean_factor_max:.1f`.
# - **Reshuffling.** With independent batches the factors fall further, to
#   {glue:text}`iid_factor_min:.1f` and {glue:text}`iid_factor_max:.1f`, and every mean
#   floor is within a factor of 1.5 of the model's (asserted); what remains is of the size
#   the tail's few independent samples allow. The largest effect of reshuffling is on
#   plain SGD at $b = 128$, whose floor it lowers {glue:text}`resh_plain_lowered:.2f`
#   times: an epoch is only {glue:text}`epoch_128:.0f` updates, shorter than the hundreds
#   of updates over which plain SGD accumulates noise in its slow directions, and the
#   noise of a whole epoch nearly cancels. At $b = 8$ an epoch lasts
#   {glue:text}`epoch_8:,.0f` updates, and with momentum the error forgets its past
#   faster; in both cases that cancellation has less to act on.
#
# The same two effects explain the batch-size ratio. With independent batches and means
# the floor rises {glue:text}`iid_batch_ratio:.1f`-fold from $b = 128$ to $b = 8$, against
# the model's {glue:text}`model_batch_ratio:.1f` (the factor $(n - b)/(b(n - 1))$, a
# little more than 16); the reshuffled medians' {glue:text}`sgd_floor_ratio:.0f`-fold
# comes from the medians and from the lowered floor at $b = 128$. Momentum accelerates the
# deterministic part of the dynamics (the $\kappa$ problem), not the noise (the $n$
# problem); to go below the floor one must shrink the step or grow the batch. Full-batch
# Nesterov, meanwhile, goes straight down to $10^{-13}$, but each of its updates costs
# $n/b$ mini-batch updates.
#
# ## What this section showed
#
# With a constant step, mini-batch SGD stalls at a noise floor. Nesterov's momentum shortens
# the transient but raises the floor. For a linear model with independent noise, the factor
# is exactly {eq}`eq-momentum-factor` along each eigenvector, below the rule of thumb
# $1/(1 - \beta)$ that it tends to for vanishing curvature; averaged over the spectrum and
# the noise of this problem it predicts the mean floors of independent-batch runs within a
# factor of 1.5. The larger factors measured on the source's runs come from taking medians
# and from reshuffling, which cancels part of plain SGD's noise over an epoch.
#
# ## Exercises
#
# 1. **Decreasing steps.** Run SGD with $b = 8$ and steps $\eta_t = \eta_0/(1 + t/t_0)$.
#    Does $f - f^\star$ keep decreasing? At what rate in $t$?
#
#    :::{dropdown} Hint
#    By {eq}`eq-ar2-variance` with $\beta = 0$ the floor is about
#    $\tfrac{\eta}{4}\operatorname{tr} C_b$ for small $\eta h$: it is proportional to the
#    step. With $\eta_t \propto 1/t$ and $\eta_0 h_{\min} > 1$ the classical result is
#    $f - f^\star = O(1/t)$; plot $t\,(f - f^\star)$ to see it level off.
#    :::
#
# 2. **The floor's formula.** Show that for $\beta = 0$ and $a_j \ll 1$ the model floor is
#    $\tfrac{\eta}{4}\operatorname{tr} C_b$, and compute it for $b = 128$. How far is it
#    from the independent-batch measurement?
#
#    :::{dropdown} Answer
#    $\tfrac12 h_j \eta^2 s_j^2/(a_j(2 - a_j)) = \eta s_j^2/(2(2 - a_j)) \approx \eta
#    s_j^2/4$, and $\sum_j s_j^2 = \operatorname{tr} C_b$. It is
#    `step / 4 * (n - 128) / (128 * (n - 1)) * np.trace(Sigma)`, slightly below the exact
#    model floor of the table, which keeps the $a_j$.
#    :::
#
# 3. **Momentum with a smaller step.** Keep $\beta$ and take $\eta(1 - \beta)$ instead of
#    $\eta$, so that the effective step $\eta/(1-\beta)$ equals plain SGD's. Predict the
#    floor with `model_floor` (change its step) and measure it.
#
#    :::{dropdown} Hint
#    The variance {eq}`eq-ar2-variance` is proportional to $\eta^2$ and depends on $\eta$
#    through $a$ as well; for small $a$ the floor of momentum with step $\eta(1-\beta)$ is
#    about that of plain SGD with step $\eta$.
#    :::
