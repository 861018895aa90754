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
# # Least squares: the rate, exactly
#
# On a quadratic the linearization behind {eq}`eq-local-slope` of
# {doc}`section 1 <01_smoothness_convexity>` is no approximation: the Hessian is the same at
# every point, and the rate holds from the first step. This section uses that to predict,
# on real data, how many steps gradient descent needs, how the best fixed step halves that
# number, and how a step just past $2/L$ diverges; and it traces a large condition number
# back to the features that cause it.


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

from helpers import data, plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import ROUNDING_TOL, relative_error

run = profiles.setup(
    profile,
    seed=4,
    n_steps=(10_000, 10_000, 10_000),  # steps of the converging runs (cheap at any scale)
)
run

# %% [markdown]
# ## The closed form, and what it predicts
#
# Chapter 1 solved gradient descent on least squares, $\tfrac12\|\mathbf{X}\mathbf{w} -
# \mathbf{y}\|^2$, in closed form, in {doc}`Gradient descent on least squares
# <../01_backprop/07_least_squares>`. With step $\eta$ (Chapter 1 calls it $\alpha$),
# every iteration {eq}`bp-gd-step` multiplies the error by the same matrix, and
# $\mathbf{w}_k - \mathbf{w}^\star = (\mathbf{I} - \eta\mathbf{X}^\top\mathbf{X})^k
# (\mathbf{w}_0 - \mathbf{w}^\star)$ ({prf:ref}`bp-thm-gd-closed-form`). Write the Hessian
# as $\mathbf{X}^\top\mathbf{X} = \sum_j h_j \mathbf{q}_j\mathbf{q}_j^\top$, with $m =
# h_{\min} > 0$ and $L = h_{\max}$. Along each eigenvector $\mathbf{q}_j$ the error is
# multiplied by $1 - \eta h_j$ at every step, and that gives the whole picture:
#
# - Gradient descent converges from every start if and only if $0 < \eta < 2/L$. The error
#   then shrinks at least as fast as $\rho^k$, with $\rho = \max_j |1 - \eta h_j|$, and in the
#   long run exactly that fast, unless the start has no component along the slowest
#   directions.
# - With $\eta = 1/L$, $\rho = 1 - 1/\kappa$: the rate of {prf:ref}`thm-gd-rate`, here for the
#   error itself. The gap $f - f^\star = \tfrac12\|\mathbf{X}(\mathbf{w}_k -
#   \mathbf{w}^\star)\|^2$ falls like $\rho^{2k}$, the slope $2\ln\rho$ of
#   {eq}`eq-local-slope`.
# - The best fixed step balances the two ends of the spectrum: $\eta^\star = 2/(m + L)$ makes
#   $1 - \eta^\star m = -(1 - \eta^\star L) = (\kappa - 1)/(\kappa + 1) \approx 1 - 2/\kappa$,
#   so it needs about half as many steps as $1/L$ (exercise 2 of
#   {doc}`section 4 <04_gd_nesterov>` shows that no fixed step does better).
# - Past $2/L$ the factor along $\mathbf{q}_{\max}$, $|1 - \eta L|$, exceeds one. That
#   component grows geometrically while every other one shrinks (as long as
#   $|1 - \eta h_j| < 1$ for the rest of the spectrum), so the error turns towards
#   $\mathbf{q}_{\max}$.
#
# We check these readings on Chapter 1's regression data, the diabetes set: 442 patients,
# ten features (age, sex, body mass index, blood pressure and six blood serum
# measurements) and a measure of disease progression. We use its training split,
# standardized, so that features and target are centred and the model needs no intercept.
# The three steps are $1/L$, $\eta^\star$ and $2.05/L$, just past the limit, all from the
# same random start, which has a component along every eigenvector. The runs are cheap, so
# they are the same at every scale. The minimizer comes from the normal equations, checked
# against a QR-based solver: both are float64 solutions of the same problem, so they may
# differ only by rounding, which a condition number of a few hundred magnifies by a few
# hundred (hence `ROUNDING_TOL`, $10^{-10}$, a million times the unit roundoff).

# %%
split = data.diabetes_split()  # Chapter 1's split, standardized on the training rows
X_ls, y_ls = split.X_train, split.y_train
H_ls = X_ls.T @ X_ls  # the Hessian of the least-squares loss, the same at every w
# eigenvalues in ascending order, eigenvectors as columns
h_ls, Q_ls = np.linalg.eigh(H_ls)
m_ls, L_ls = h_ls[0], h_ls[-1]
w_star_ls = np.linalg.solve(H_ls, X_ls.T @ y_ls)  # the normal equations
w_qr = np.linalg.lstsq(X_ls, y_ls, rcond=None)[0]  # QR-based
assert relative_error(w_star_ls, w_qr) < ROUNDING_TOL
w0_ls = np.random.default_rng((run.seed, 5)).normal(size=X_ls.shape[1])


def gd_least_squares(step: float, n_steps: int) -> np.ndarray:
    """Gradient descent on 1/2 |X w - y|^2, eq. (bp-gd-step): w_0..w_n as rows."""
    ws = [w0_ls]
    for _ in range(n_steps):
        ws.append(ws[-1] - step * X_ls.T @ (X_ls @ ws[-1] - y_ls))
    return np.array(ws)


ls_steps = {"1/L": 1 / L_ls, "best": 2 / (m_ls + L_ls), "2.05/L": 2.05 / L_ls}
# 10,000 steps take the step 1/L well past a 10^6 reduction; the diverging run stops at
# 400,
# where its error has grown by 1.05^400 ~ 3e8, far from overflow
ls_runs = {name: gd_least_squares(step, 400 if name == "2.05/L" else run.n_steps)
           for name, step in ls_steps.items()}

# %% [markdown]
# For the two converging steps we count the steps until the error is $10^6$ times smaller
# than at the start, and predict that count twice. The rate alone says
# $\ln 10^{-6} / \ln\rho$ steps, and since $\mathbf{I} - \eta\mathbf{X}^\top\mathbf{X}$ is
# symmetric, its norm is $\rho$, so the run can never need more. But the error starts with
# only part of its length along the slowest directions, and once the faster directions have
# died out only that part is left: counted from it, the prediction is
# $\ln(10^{-6}/s) / \ln\rho$, where $s$ is the share of the start's error along the slowest
# directions ($\mathbf{q}_{\min}$ for $1/L$; $\mathbf{q}_{\min}$ and $\mathbf{q}_{\max}$
# together for $\eta^\star$, whose two factors have the same size).

# %%
coefficients0 = Q_ls.T @ (w0_ls - w_star_ls)  # the start's error along each eigenvector
ls_counts = {}
for name in ("1/L", "best"):
    factors = 1 - ls_steps[name] * h_ls
    rho = np.abs(factors).max()
    errors = np.linalg.norm(ls_runs[name] - w_star_ls, axis=1)
    measured = int(np.argmax(errors <= 1e-6 * errors[0]))  # the first step 10^6 closer
    assert errors[measured] <= 1e-6 * errors[0]  # reached within the run
    by_rate = math.log(1e-6) / math.log(rho)
    slowest = np.isclose(np.abs(factors), rho, rtol=1e-9)
    share = float(np.linalg.norm(coefficients0[slowest])
                  / np.linalg.norm(coefficients0))
    by_share = math.log(1e-6 / share) / math.log(rho)
    assert measured <= by_rate + 1  # the norm bound: never later than the rate says
    # the slowest part alone needs by_share steps; the rest adds to the error, so the
    # run
    # cannot be earlier, nor a step later once the faster directions are negligible
    assert by_share - 1e-9 <= measured < by_share + 1, (name, measured, by_share)
    ls_counts[name] = dict(rho=rho, errors=errors, measured=measured, by_rate=by_rate,
                           share=share, by_share=by_share)

# %% [markdown]
# For the step $2.05/L$ we follow the direction of the error, through the cosine of its
# angle with $\mathbf{q}_{\max}$, and its growth per step.

# %%
step_div = ls_steps["2.05/L"]
errors_div = ls_runs["2.05/L"] - w_star_ls
growth_predicted = abs(1 - step_div * L_ls)
assert np.abs(1 - step_div * h_ls[:-1]).max() < 1 < growth_predicted  # only q_max grows
cosine = np.abs(errors_div @ Q_ls[:, -1]) / np.linalg.norm(errors_div, axis=1)
lengths = np.linalg.norm(errors_div, axis=1)
growth = lengths[1:] / lengths[:-1]
# every other component shrinks relative to q_max's by a constant factor per step:
# after a few hundred steps the error lies along q_max up to rounding
assert 1 - cosine[-1] < 1e-6, cosine[-1]
assert abs(growth[-1] / growth_predicted - 1) < 1e-6, (growth[-1], growth_predicted)

# %% tags=["hide-input"]
ls_labels = {"1/L": r"$\eta = 1/L$", "best": r"$\eta^\star = 2/(m + L)$",
             "2.05/L": r"$\eta = 2.05/L$"}
EARLY = 200
fig, (ax_all, ax_early) = plots.figure(ncols=2)
for i, (name, ws) in enumerate(ls_runs.items()):
    errors = np.linalg.norm(ws - w_star_ls, axis=1)
    rho = np.abs(1 - ls_steps[name] * h_ls).max()
    predicted = errors[0] * rho ** np.arange(len(errors))
    axes = (ax_early,) if name == "2.05/L" else (ax_all, ax_early)
    for ax in axes:
        last = EARLY + 1 if ax is ax_early else len(errors)
        ax.semilogy(errors[:last], color=f"C{i}", label=ls_labels[name])
        ax.semilogy(predicted[:last], ":", color=f"C{i}", lw=1)
for ax, title in ((ax_all, "all steps"), (ax_early, f"the first {EARLY} steps")):
    ax.plot([], [], "k:", lw=1, label=r"$\rho^k\,\|w_0 - w^\star\|$")
    ax.set(xlabel="iteration $k$", ylabel=r"$\|w_k - w^\star\|$ (standardized units)",
           title=title)
ax_all.set_ylim(1e-15, None)
ax_early.legend(fontsize=8)
plots.glue_figure("fig_ls_gd_errors", fig)

fig, (ax_cos, ax_growth) = plots.figure(ncols=2)
ax_cos.plot(cosine, color="C2")
ax_cos.set(xlabel="iteration $k$", ylim=(0, 1.05), title="direction",
           ylabel=r"$|\cos\angle(w_k - w^\star, q_{\max})|$")
ax_growth.plot(np.arange(1, len(growth) + 1), growth, color="C2", label="measured")
ax_growth.axhline(growth_predicted, color="k", ls="--", lw=1,
                  label=r"$|1 - \eta L|$")
ax_growth.set(xlabel="iteration $k$", title="growth per step",
              ylabel=r"$\|e_k\| / \|e_{k-1}\|$ (ratio)")
ax_growth.legend(fontsize=8)
plots.glue_figure("fig_ls_gd_diverge", fig)

# %% [markdown]
# Finally, the condition number, and where it comes from. Standardizing makes every diagonal
# entry of $\mathbf{X}^\top\mathbf{X}$ equal to the number of training patients, so the
# eigenvalues average to that number, and a small one is a combination of features that
# barely varies from patient to patient. We look at which features $\mathbf{q}_{\min}$
# combines, and at the most strongly correlated pair of features.

# %%
FEATURES = {"age": "age", "sex": "sex", "bmi": "body mass index",
            "bp": "blood pressure", "s1": "total serum cholesterol",
            "s2": "LDL cholesterol", "s3": "HDL cholesterol",
            "s4": "total over HDL cholesterol", "s5": "log of the serum triglycerides",
            "s6": "blood sugar"}  # the columns, in scikit-learn's order
names = list(FEATURES)
correlation = np.corrcoef(X_ls, rowvar=False) - np.eye(len(names))
i, j = np.unravel_index(np.abs(correlation).argmax(), correlation.shape)
q_min = Q_ls[:, 0]
by_weight = np.argsort(-(q_min**2))
n_main = int(np.searchsorted(np.cumsum(q_min[by_weight] ** 2), 0.95)) + 1
main_features = {names[k] for k in by_weight[:n_main]}  # 95% of its squared length
assert main_features == {"s1", "s2", "s3", "s5"}, main_features  # the prose names them
# the prose names them
assert {names[i], names[j]} == {"s1", "s2"}, (names[i], names[j])

# %% tags=["hide-input"]
results.record("diabetes_condition_number", L_ls / m_ls,
               description="condition number of X^T X, standardized diabetes training split")
results.record("ls_steps_one_over_l", ls_counts["1/L"]["measured"],
               description="least squares, step 1/L: steps to reduce the error 10^6-fold")
results.record("ls_steps_best", ls_counts["best"]["measured"],
               description="least squares, step 2/(m + L): steps to reduce the error 10^6-fold")
for name, key in (("1/L", "small"), ("best", "best")):
    for quantity in ("by_rate", "by_share", "share"):
        glue(f"ls_{quantity}_{key}", ls_counts[name][quantity], display=False)
    glue(f"ls_measured_{key}", ls_counts[name]["measured"], display=False)
glue("ls_h_min", float(m_ls), display=False)
glue("ls_h_max", float(L_ls), display=False)
glue("ls_diverge_steps", len(errors_div) - 1, display=False)
glue("ls_cos_099", int(np.argmax(cosine > 0.99)), display=False)
glue("ls_one_minus_cos", float(abs(1 - cosine[-1])), display=False)  # rounding may make it < 0
glue("ls_growth", float(growth[-1]), display=False)
glue("ls_growth_predicted", float(growth_predicted), display=False)
glue("ls_pair_correlation", float(correlation[i, j]), display=False)
glue("ls_qmin_share", float(np.sum(q_min[by_weight[:n_main]] ** 2)), display=False)
glue("ls_qmin_variance", float(m_ls / np.trace(H_ls)), display=False)

# %% [markdown]
# ```{glue:figure} fig_ls_gd_errors
# :name: fig-ls-gd-errors
# :alt: Distance to the solution on a log scale against the iteration, for three step sizes
#
# Distance $\|\mathbf{w}_k - \mathbf{w}^\star\|$ of gradient descent on least squares
# (diabetes), with the prediction $\rho^k\|\mathbf{w}_0 - \mathbf{w}^\star\|$ dotted in the
# same colour. Left: the two converging steps over the whole run; the faster one levels off
# at the rounding error. Right: the first steps of all three, the diverging one included.
# ```
#
# The spectrum of $\mathbf{X}^\top\mathbf{X}$ runs from $m$ = {glue:text}`ls_h_min:.2f` to
# $L$ = {glue:text}`ls_h_max:.0f`, a condition number of
# {glue:text}`diabetes_condition_number:.0f`. In {numref}`fig-ls-gd-errors` every curve
# stays at or below its dotted line and, once the faster directions have died out, runs
# parallel to it. By the rate alone, a $10^6$-fold reduction takes
# {glue:text}`ls_by_rate_small:.0f` steps at $1/L$ and {glue:text}`ls_by_rate_best:.0f` at
# $\eta^\star$, about half as many. The runs got there sooner, in
# {glue:text}`ls_measured_small` and {glue:text}`ls_measured_best` steps: the rate counts
# from the whole error, but only part of it lies along the slowest directions, a share of
# {glue:text}`ls_share_small:.0%` of its length for $1/L$ and
# {glue:text}`ls_share_best:.0%` for $\eta^\star$. Counted from those shares, the
# predictions are {glue:text}`ls_by_share_small:.1f` and {glue:text}`ls_by_share_best:.1f`
# steps, within one step of the measurements (asserted).
#
# ```{glue:figure} fig_ls_gd_diverge
# :name: fig-ls-gd-diverge
# :alt: The diverging run's cosine with the top eigenvector rising to 1, and its growth
#
# The diverging run, $\eta = 2.05/L$. Left: $|\cos|$ of the angle between the error
# $\mathbf{e}_k = \mathbf{w}_k - \mathbf{w}^\star$ and $\mathbf{q}_{\max}$. Right: the
# growth of the error per step, approaching the predicted factor $|1 - \eta L|$ (dashed).
# ```
#
# The step $2.05/L$ diverges, and {numref}`fig-ls-gd-diverge` shows how. The error turns
# towards $\mathbf{q}_{\max}$: $|\cos|$ passes 0.99 at step {glue:text}`ls_cos_099` and,
# after {glue:text}`ls_diverge_steps` steps, is within {glue:text}`ls_one_minus_cos:.0e`
# of 1 (asserted below $10^{-6}$). Its length then grows by a factor of
# {glue:text}`ls_growth:.6f` per step, the predicted $|1 - \eta L|$ =
# {glue:text}`ls_growth_predicted:.6f` (asserted to $10^{-6}$). Every other factor $|1 -
# \eta h_j|$ is below one (asserted): a step too long for the stiffest direction ruins the
# run through that direction alone.
#
# Where does a condition number of {glue:text}`diabetes_condition_number:.0f` come from,
# with ten standardized features? The eigenvector $\mathbf{q}_{\min}$ puts
# {glue:text}`ls_qmin_share:.0%` of its squared length on four blood-lipid measurements
# (asserted): s1, s2, s3 and s5, the total, LDL and HDL cholesterol and the logarithm of
# the triglycerides. Only {glue:text}`ls_qmin_variance:.2%` of the features' total
# variance lies along it: these measurements nearly determine one another, as one expects
# from the laboratory rule that total cholesterol is about LDL plus HDL plus a fifth of
# the triglycerides. The most correlated pair of features is s1 and s2, total and LDL
# cholesterol (correlation {glue:text}`ls_pair_correlation:.2f`). The number of steps
# grows in proportion to $\kappa$; Nesterov's method ({doc}`section 4 <04_gd_nesterov>`)
# and preconditioning ({doc}`section 6 <06_preconditioning_adam>`) attack exactly that.
#
# ## What this section showed
#
# On least squares, gradient descent multiplies the error along each eigenvector of
# $\mathbf{X}^\top\mathbf{X}$ by $1 - \eta h_j$ at every step. That predicts the whole run:
# the number of steps to a $10^6$-fold reduction to within one step, once the start's share
# along the slowest directions is counted; the halving of that number by the step
# $2/(m + L)$; and, past $2/L$, a divergence along $\mathbf{q}_{\max}$ at exactly the factor
# $|1 - \eta L|$. On the diabetes data the condition number comes from four blood-lipid
# measurements that nearly determine one another.
#
# ## Exercises
#
# 1. **Remove a feature.** Drop s1 (total cholesterol) from the features and recompute
#    $\kappa$. How many steps does the step $1/L$ now need for a $10^6$-fold reduction?
#
#    :::{dropdown} Hint
#    `X_ls[:, [k for k in range(10) if k != 4]]`. The smallest eigenvalue can only grow
#    (the eigenvalues of a principal submatrix interlace with those of the whole), and it
#    grows a lot if the near relation among the lipids needed s1; the steps fall in
#    proportion to $\kappa$.
#    :::
#
# 2. **A start without the slow direction.** Start from
#    $\mathbf{w}_0 = \mathbf{w}^\star + \mathbf{q}_{\max}$. What does each of the three
#    steps do?
#
#    :::{dropdown} Answer
#    Only the factor $1 - \eta L$ acts. With $\eta = 1/L$ it is 0: one step lands on
#    $\mathbf{w}^\star$ (up to rounding, which then seeds the other directions). With
#    $\eta^\star$ the error shrinks by $(\kappa - 1)/(\kappa + 1)$ per step, as before, and
#    with $2.05/L$ it grows by $1.05$ per step from the first.
#    :::
#
# 3. **A squared condition number.** Compare $\kappa$ of
#    $\mathbf{X}^\top\mathbf{X}$ with the square of the condition number of $\mathbf{X}$
#    (`np.linalg.cond(X_ls)`). Why are they equal, and why does that make the normal
#    equations less accurate than a QR-based solver?
#
#    :::{dropdown} Answer
#    The singular values of $\mathbf{X}$ are the square roots of the eigenvalues of
#    $\mathbf{X}^\top\mathbf{X}$, so $\kappa(\mathbf{X}^\top\mathbf{X}) =
#    \operatorname{cond}(\mathbf{X})^2$. Solving with $\mathbf{X}^\top\mathbf{X}$ loses
#    digits in proportion to its condition number, QR in proportion to that of $\mathbf{X}$.
#    :::

