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
# # Gradient descent on least squares in closed form
#
# For one loss the whole trajectory of gradient descent can be written down: least squares,
# whose gradient is affine in the weights. This section solves the recursion (problem 5 of
# 003), proves the formula, and checks it against gradient descent actually run, step by
# step, at three step sizes. The formula also says how fast the iterates converge, and why
# a badly conditioned problem is slow;
# {doc}`chapter 4 <../../chapters/04_convex_optimization>` takes that story further.

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
import torch

from helpers import data, profiles, results
from helpers.glue import glue
from helpers.gradcheck import relative_error

F64 = torch.float64
run = profiles.setup(
    profile,
    seed=18,
    gd_steps=(300, 10000, 10000),  # iterations of each run that the theorem must match
)
torch.set_num_threads(1)  # small tensors: a second thread only waits on a busy machine
run

# %% [markdown]
# ## The recursion
#
# For a data matrix $\mathbf{X}\in\mathbb{R}^{N\times D}$ and targets
# $\mathbf{y}\in\mathbb{R}^N$, the squared loss and its gradient are
#
# $$
# \mathcal{L}(\mathbf{w}) = \tfrac12 \lVert \mathbf{X}\mathbf{w} - \mathbf{y} \rVert^2,
# \qquad
# \nabla \mathcal{L}(\mathbf{w}) = \mathbf{X}^\top(\mathbf{X}\mathbf{w} - \mathbf{y}).
# $$ (bp-ls-grad)
#
# (The source's statement of the loss has lost the minus sign inside the norm.) Setting the
# gradient to zero gives the normal equations $\mathbf{X}^\top\mathbf{X}\mathbf{w} =
# \mathbf{X}^\top\mathbf{y}$; when $\mathbf{X}$ has full column rank,
# $\mathbf{X}^\top\mathbf{X}$ is invertible and the unique minimiser is
# $\mathbf{w}^\star = (\mathbf{X}^\top\mathbf{X})^{-1}\mathbf{X}^\top\mathbf{y}$ (the loss is
# convex, so a stationary point is a minimum). Gradient descent with step $\alpha$ is an
# affine recursion,
#
# $$
# \mathbf{w}_{k+1} = \mathbf{w}_k - \alpha\mathbf{X}^\top(\mathbf{X}\mathbf{w}_k - \mathbf{y})
#   = \mathbf{M}\mathbf{w}_k + \alpha\mathbf{X}^\top\mathbf{y},
# \qquad \mathbf{M} := \mathbf{I} - \alpha\mathbf{X}^\top\mathbf{X},
# $$ (bp-gd-step)
#
# so $\mathbf{w}_1 = \mathbf{M}\mathbf{w}_0 + \alpha\mathbf{X}^\top\mathbf{y}$ and
# $\mathbf{w}_2 = \mathbf{M}^2\mathbf{w}_0 + (\mathbf{I} + \mathbf{M})\,\alpha
# \mathbf{X}^\top\mathbf{y}$.
#
# ```{prf:theorem} Gradient-descent iterates for least squares
# :label: bp-thm-gd-closed-form
#
# For every $k \ge 0$,
#
# $$
# \mathbf{w}_k = \mathbf{M}^k\mathbf{w}_0 + \sum_{j=0}^{k-1}\mathbf{M}^j\,
#   \alpha\mathbf{X}^\top\mathbf{y}.
# $$
#
# If moreover $\mathbf{X}^\top\mathbf{X}$ is invertible, then
# $\mathbf{w}_k = \mathbf{w}^\star + \mathbf{M}^k(\mathbf{w}_0 - \mathbf{w}^\star)$.
# ```
#
# ```{prf:proof}
# By induction on $k$. For $k = 0$ both formulas give $\mathbf{w}_0$. If the first holds
# for $k$, then by {eq}`bp-gd-step`
# $\mathbf{w}_{k+1} = \mathbf{M}^{k+1}\mathbf{w}_0 + \sum_{j=0}^{k-1}\mathbf{M}^{j+1}\alpha
# \mathbf{X}^\top\mathbf{y} + \alpha\mathbf{X}^\top\mathbf{y}$, which is the formula for
# $k + 1$. For the second, $\mathbf{w}^\star$ is a fixed point of {eq}`bp-gd-step`, since
# $\mathbf{M}\mathbf{w}^\star + \alpha\mathbf{X}^\top\mathbf{y} = \mathbf{w}^\star -
# \alpha(\mathbf{X}^\top\mathbf{X}\mathbf{w}^\star - \mathbf{X}^\top\mathbf{y}) =
# \mathbf{w}^\star$. Subtracting the fixed-point equation from {eq}`bp-gd-step` gives
# $\mathbf{w}_{k+1} - \mathbf{w}^\star = \mathbf{M}(\mathbf{w}_k - \mathbf{w}^\star)$, and
# induction gives the claim.
# ```
#
# ## What the formula says about convergence
#
# Diagonalising $\mathbf{X}^\top\mathbf{X} = \mathbf{Q}\boldsymbol\Lambda\mathbf{Q}^\top$
# makes the theorem concrete: along the eigenvector $\mathbf{q}_j$, the error
# $\mathbf{w}_k - \mathbf{w}^\star$ is multiplied by $1 - \alpha\lambda_j$ at every step.
# Gradient descent converges from every start if and only if $|1 - \alpha\lambda_j| < 1$ for
# all $j$, that is $0 < \alpha < 2/\lambda_{\max}$, and the error then decays like
# $\rho(\alpha)^k$ with $\rho(\alpha) = \max_j |1 - \alpha\lambda_j|$. The slowest direction
# is set by $\lambda_{\min}$ for small steps and by $\lambda_{\max}$ near the limit; the best
# compromise is $\alpha^\star = 2/(\lambda_{\min} + \lambda_{\max})$, with
# $\rho = (\kappa - 1)/(\kappa + 1)$ for the condition number
# $\kappa = \lambda_{\max}/\lambda_{\min}$. The number of iterations grows with $\kappa$.
# {doc}`Chapter 4 <../04_convex_optimization/02_least_squares>` runs gradient descent on
# the data below and watches the error follow these rates, including a step just past
# $2/\lambda_{\max}$ that diverges along $\mathbf{q}_{\max}$.
#
# ## The theorem, checked
#
# The data are the standardised diabetes training set of
# {doc}`section 3 <03_matrix_form>` (features and target centred, so no intercept is
# needed). We run gradient descent from a random start $\mathbf{w}_0$ (from zero, the term
# $\mathbf{M}^k\mathbf{w}_0$ would vanish and go unchecked) with three steps: $1/\lambda_{\max}$,
# $\alpha^\star$, and $2.05/\lambda_{\max}$, just past the limit. The iterates must agree
# with both forms of the theorem: the first at a few $k$, with explicit matrix powers and
# sums; the second at every $k$, through the eigendecomposition. And $\mathbf{w}^\star$ must
# agree with a library least-squares solver.

# %%
split = data.diabetes_split()
X, y = torch.tensor(split.X_train), torch.tensor(split.y_train)
XtX, Xty = X.T @ X, X.T @ y
lam, Q = torch.linalg.eigh(XtX)  # eigenvalues in ascending order
lam_min, lam_max = float(lam[0]), float(lam[-1])
w_star = torch.linalg.solve(XtX, Xty)
# normal equations vs QR-based lstsq: kappa ~ 500 costs at most ~3 of the 16 digits
w_lstsq = torch.linalg.lstsq(X, y.unsqueeze(1)).solution.squeeze(1)
assert relative_error(w_star, w_lstsq) < 1e-10
w0 = torch.randn(X.shape[1], generator=torch.Generator().manual_seed(run.seed),
                 dtype=F64)


def gd_iterates(alpha: float, steps: int) -> torch.Tensor:
    """Eq. (bp-gd-step), run: the iterates w_0..w_steps as rows."""
    ws = [w0]
    for _ in range(steps):
        ws.append(ws[-1] - alpha * X.T @ (X @ ws[-1] - y))
    return torch.stack(ws)


def gd_closed_form(alpha: float, k: torch.Tensor) -> torch.Tensor:
    """w* + M^k (w0 - w*) via M = Q diag(1 - alpha lambda) Q^T, for every k at once."""
    factors = (1 - alpha * lam)[None, :] ** k[:, None].to(F64)  # (len(k), D)
    return w_star + (factors * ((w0 - w_star) @ Q)) @ Q.T


# %%
step_sizes = {"1/lambda_max": 1 / lam_max, "alpha*": 2 / (lam_min + lam_max),
              "2.05/lambda_max": 2.05 / lam_max}
err_gd = {}
for name, alpha in step_sizes.items():
    n_steps = run.gd_steps if alpha < 2 / lam_max else min(run.gd_steps, 400)
    ws = gd_iterates(alpha, n_steps)
    M = torch.eye(len(w0), dtype=F64) - alpha * XtX
    explicit = max(  # first form of the theorem: explicit powers and sum
        relative_error(ws[k], torch.linalg.matrix_power(M, k) @ w0 + sum(
            torch.linalg.matrix_power(M, j) @ (alpha * Xty) for j in range(k)))
        for k in (1, 2, 10, 50))
    closed = gd_closed_form(alpha, torch.arange(n_steps + 1))
    # relative to |w_k|, at least 1
    scale = torch.maximum(ws.norm(dim=1), torch.tensor(1.0))
    err_gd[name] = max(explicit, float(((ws - closed).norm(dim=1) / scale).max()))
assert max(err_gd.values()) < 1e-9, err_gd

# %% tags=["hide-input"]
results.record("gd_closed_form_max_rel_err", max(err_gd.values()),
               description="least squares: GD iterates vs closed form, max relative error")
results.record("diabetes_condition_number", lam_max / lam_min,
               description="condition number of X^T X, standardised diabetes training set")
glue("gd_steps", run.gd_steps, display=False)
glue("gd_lambda_min", lam_min, display=False)
glue("gd_lambda_max", lam_max, display=False)

# %% [markdown]
# Over every step of the three runs ({glue:text}`gd_steps:,` steps for the two that
# converge, 400 for the one that diverges), iterating {eq}`bp-gd-step` and evaluating the
# theorem agree to {glue:text}`gd_closed_form_max_rel_err:.0e`, relative to the size of the
# iterate, which for the diverging run becomes large. The eigenvalues of
# $\mathbf{X}^\top\mathbf{X}$ run from {glue:text}`gd_lambda_min:.2f` to
# {glue:text}`gd_lambda_max:.0f`: a condition number of
# {glue:text}`diabetes_condition_number:.0f`, large enough that gradient descent needs
# thousands of steps on a ten-dimensional problem.
#
# ## What this section showed
#
# Gradient descent on least squares is an affine recursion, so its iterates have a closed
# form: the error is multiplied by $\mathbf{M} = \mathbf{I} - \alpha\mathbf{X}^\top\mathbf{X}$
# at every step. Along each eigenvector that is a factor $1 - \alpha\lambda_j$, which gives
# the condition for convergence, the best fixed step and the rate $(\kappa - 1)/(\kappa +
# 1)$. The formula agrees with gradient descent run step by step to rounding, for steps that
# converge and for one that does not.
#
# ## Exercises
#
# 1. **The best step.** Prove that $\alpha^\star = 2/(\lambda_{\min} + \lambda_{\max})$
#    minimises $\rho(\alpha) = \max_j |1 - \alpha\lambda_j|$ and that
#    $\rho(\alpha^\star) = (\kappa - 1)/(\kappa + 1)$.
#
#    :::{dropdown} Hint
#    $\rho(\alpha) = \max(|1 - \alpha\lambda_{\min}|, |1 - \alpha\lambda_{\max}|)$: the
#    first term falls with $\alpha$ and the second rises once $\alpha > 1/\lambda_{\max}$.
#    The maximum is smallest where they are equal, $1 - \alpha\lambda_{\min} =
#    \alpha\lambda_{\max} - 1$.
#    :::
#
# 2. **Early stopping as a filter.** Start from $\mathbf{w}_0 = \mathbf{0}$. Show that the
#    component of $\mathbf{w}_k$ along $\mathbf{q}_j$ is $(1 - (1 - \alpha\lambda_j)^k)$
#    times that of $\mathbf{w}^\star$. Which directions has gradient descent fitted after
#    $k$ steps, and which not yet? Compare with ridge regression, whose factor is
#    $\lambda_j / (\lambda_j + \mu)$.
#
#    :::{dropdown} Answer
#    With $\mathbf{w}_0 = \mathbf{0}$ the theorem gives $\mathbf{w}_k = (\mathbf{I} -
#    \mathbf{M}^k)\mathbf{w}^\star$. Directions with $\alpha\lambda_j k \gg 1$ are fitted;
#    those with small $\lambda_j$ are still near zero. Stopping early shrinks the
#    poorly determined directions, as ridge regression does with $\mu \approx 1/(\alpha k)$.
#    :::
#
# 3. **A singular problem.** Duplicate one feature column, so that $\mathbf{X}^\top\mathbf{X}$
#    is singular. Where does gradient descent from $\mathbf{w}_0 = \mathbf{0}$ converge, and
#    which part of the theorem fails?
#
#    :::{dropdown} Answer
#    The second form needs an inverse and fails; the first still holds. Along the null
#    space of $\mathbf{X}$ the factor is $1 - \alpha \cdot 0 = 1$, so that component never
#    moves from its start, zero: the iterates converge to the minimum-norm solution
#    $\mathbf{X}^{+}\mathbf{y}$.
#    :::
