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
# # Logistic regression: its condition number computed, not guessed
#
# The theory of {doc}`section 1 <01_smoothness_convexity>` speaks of two constants, $L$ and
# $m$. On most problems they are unknown and one tunes a step size instead. This section
# builds a problem where both can be computed exactly: L2-regularized logistic regression on
# the MNIST zeros and ones of 000 P4. We write its gradient and Hessian, check both with
# finite differences, solve it to machine precision with Newton's method, choose $\lambda$ on
# a validation split, and read $L$, $m$ and $\kappa$ off the Hessian's spectrum. The next
# three sections run their optimizers on this problem.


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
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import FD_TOL, ROUNDING_TOL, numerical_gradient, relative_error

run = profiles.setup(
    profile,
    seed=4,
    n_train=(2_000, 12_665, 12_665),  # training images of digits 0 and 1 (all: 12,665)
)
run

# %% [markdown]
# ## The data
#
# 000 P4 selects the MNIST images of zeros and ones, labels a zero $y = +1$ and a one
# $y = -1$, and shrinks the images to $14 \times 14$. We shrink by averaging each
# $2 \times 2$ block of pixels (average pooling), scale pixel values to $[0, 1]$, and append a
# constant 1 to every image, so that the bias $w_0$ is the last coordinate of
# $\tilde w = (w, w_0) \in \mathbb{R}^{197}$.
#
# ```{note}
# 000 asks for a "validation set of the MNIST dataset". MNIST has only a training and a test
# split. We use the zeros and ones of the test split as the validation set that picks
# $\lambda$, and report no separate test number.
# ```

# %% tags=["save"]
import math

import numpy as np

from helpers import data


def load_zeros_and_ones(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Digits 0 and 1 pooled to 14x14, flattened, with a bias column; labels +-1."""
    images, labels = data.load_mnist(split)
    keep = labels <= 1
    pixels = images[keep].astype(np.float64) / 255.0
    pooled = pixels.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))  # 2x2 average pooling
    X = np.hstack([pooled.reshape(-1, 196), np.ones((keep.sum(), 1))])
    y = np.where(labels[keep] == 0, 1.0, -1.0)  # 000 P4: zero -> +1, one -> -1
    return X, y


# %%
X_all, y_all = load_zeros_and_ones("train")
X_val, y_val = load_zeros_and_ones("test")
subset = np.random.default_rng(run.seed).permutation(len(y_all))[: run.n_train]
X, y = X_all[subset], y_all[subset]
n, d = X.shape
dead_pixels = int(np.sum(np.all(X[:, :196] == 0, axis=0)))  # zero in every image

# %% tags=["hide-input"]
glue("n_train", n, display=False)
glue("n_val", len(y_val), display=False)
glue("n_train_all", len(y_all), display=False)
glue("dead_pixels", dead_pixels, display=False)

# %% [markdown]
# We train on {glue:text}`n_train:,` images (the training split holds
# {glue:text}`n_train_all:,` zeros and ones) and validate on {glue:text}`n_val:,`. One fact
# about these images will matter in every section that follows: {glue:text}`dead_pixels` of
# the 196 pooled pixels, near the borders, are zero in *every* training image.
#
# ## The loss and its derivatives
#
# 000's equation (1), with $\tilde x_i = (x_i, 1)$ and the margin
# $z_i = y_i \tilde x_i^\top \tilde w$, is
#
# $$
# f(\tilde w) = \frac1n \sum_{i=1}^n \ln\bigl(1 + e^{-z_i}\bigr)
#   + \frac{\lambda}{2}\|\tilde w\|^2 .
# $$ (eq-logistic)
#
# It regularizes the bias too, which is what makes $f$ strongly convex on all of
# $\mathbb{R}^{197}$. With $\sigma(z) = 1/(1 + e^{-z})$, $\tfrac{d}{dz}\ln(1 + e^{-z}) =
# -\sigma(-z)$ and $\sigma' = \sigma(z)\sigma(-z)$, the chain rule gives
#
# $$
# \nabla f(\tilde w) = -\frac1n \sum_i y_i\, \sigma(-z_i)\, \tilde x_i + \lambda \tilde w ,
# \qquad
# \nabla^2 f(\tilde w) = \frac1n \sum_i \sigma(z_i)\sigma(-z_i)\, \tilde x_i \tilde x_i^\top
#   + \lambda I ,
# $$ (eq-logistic-derivatives)
#
# where $y_i^2 = 1$ removed the labels from the Hessian. In matrix form, with the rows
# $\tilde x_i^\top$ stacked in $X$ and $D = \operatorname{diag}(\sigma(z_i)\sigma(-z_i))$, the
# Hessian is $\tfrac1n X^\top D X + \lambda I$. A Hessian-vector product needs no
# $197 \times 197$ matrix: $X^\top\bigl(D(Xv)\bigr)/n + \lambda v$ is two matrix-vector
# products.

# %% tags=["save"]
def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # equal to 1/(1+e^-z), without overflow


def loss(w: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float) -> float:
    """Regularized logistic loss, eq. (eq-logistic); logaddexp(0, -z) = ln(1 + e^-z)."""
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * (w @ w))


def gradient(w: np.ndarray, X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    margins = y * (X @ w)
    return -(X.T @ (y * sigmoid(-margins))) / len(y) + lam * w


def curvatures(w: np.ndarray, X: np.ndarray) -> np.ndarray:
    """sigma(z) sigma(-z) per example: the weights of the Hessian (labels drop out)."""
    z = X @ w
    return sigmoid(z) * sigmoid(-z)


def hessian(w: np.ndarray, X: np.ndarray, lam: float) -> np.ndarray:
    return (X.T * curvatures(w, X)) @ X / len(X) + lam * np.eye(X.shape[1])


def hessian_vector(w: np.ndarray, v: np.ndarray, X: np.ndarray,
                   lam: float) -> np.ndarray:
    """H v without forming H: two matrix-vector products, O(n d) instead of O(n d^2)."""
    return X.T @ (curvatures(w, X) * (X @ v)) / len(X) + lam * v


# %% [markdown]
# ## Checking the gradient and the Hessian
#
# The gradient is checked against centred differences of the loss with `helpers.gradcheck`
# ({doc}`Chapter 1 <../01_backprop/02_gradient_checking>`), in float64 and with the book's
# tolerance `FD_TOL` $= 10^{-6}$ on the relative error. The Hessian is checked through
# Hessian-vector products: $\nabla^2 f(\tilde w)\, v$ must match the centred difference of
# *gradients* $(\nabla f(\tilde w + \epsilon v) - \nabla f(\tilde w - \epsilon v)) /
# 2\epsilon$. Its error is $O(\epsilon^2)$ truncation plus about $10^{-16}/\epsilon$
# rounding, and $\epsilon = 10^{-5}$ keeps both near $10^{-10}$, so the same tolerance leaves
# four orders of magnitude of room. We check at a random point, not at the optimum, where the
# gradient is zero and a relative error would mean nothing.

# %%
LAM_CHECK = 1e-2
rng_check = np.random.default_rng((run.seed, 1))
w_check = rng_check.normal(0.0, 0.1, d)
fd_gradient = numerical_gradient(lambda: loss(w_check, X, y, LAM_CHECK), w_check)
grad_error = relative_error(gradient(w_check, X, y, LAM_CHECK), fd_gradient)
assert grad_error < FD_TOL, grad_error


def hvp_by_differences(w, v, X, y, lam, eps=1e-5):
    up, down = gradient(w + eps * v, X, y, lam), gradient(w - eps * v, X, y, lam)
    return (up - down) / (2 * eps)


directions = rng_check.normal(size=(5, d))
fd_hvps = [hvp_by_differences(w_check, v, X, y, LAM_CHECK) for v in directions]
hvp_errors = [relative_error(hessian_vector(w_check, v, X, LAM_CHECK), fd_hvp)
              for v, fd_hvp in zip(directions, fd_hvps, strict=True)]
assert max(hvp_errors) < FD_TOL, hvp_errors
# the full matrix against the products: the same sums in another order, rounding only
H_check = hessian(w_check, X, LAM_CHECK)
assert all(relative_error(H_check @ v, hessian_vector(w_check, v, X, LAM_CHECK))
           < ROUNDING_TOL for v in directions)

# %% tags=["hide-input"]
results.record("gradient_check_rel_err", grad_error,
               description="logistic loss: analytic vs finite-difference gradient, float64")
results.record("hessian_check_rel_err", max(hvp_errors),
               description="Hessian-vector products vs differences of gradients (max of 5)")

# %% [markdown]
# The gradient agrees with finite differences to a relative error of
# {glue:text}`gradient_check_rel_err:.1e`, the Hessian-vector products agree with
# differences of gradients to {glue:text}`hessian_check_rel_err:.1e`, and the full Hessian
# agrees with the products to rounding. The check has teeth: forgetting the regularizer's
# $\lambda I$ in the Hessian, or the minus sign of the gradient, is caught far above the
# tolerance.

# %%
def hessian_vector_without_lam(w, v, X, lam):  # deliberately wrong: drops lambda * v
    return X.T @ (curvatures(w, X) * (X @ v)) / len(X)


def gradient_flipped(w, X, y, lam):  # deliberately wrong: the data term's sign
    return (X.T @ (y * sigmoid(-y * (X @ w)))) / len(y) + lam * w


bug_hessian = max(
    relative_error(hessian_vector_without_lam(w_check, v, X, LAM_CHECK), hv)
    for v, hv in zip(directions, fd_hvps, strict=True))
bug_gradient = relative_error(gradient_flipped(w_check, X, y, LAM_CHECK), fd_gradient)
assert min(bug_hessian, bug_gradient) > 1e3 * FD_TOL, (bug_hessian, bug_gradient)

# %% tags=["hide-input"]
glue("bug_hessian", bug_hessian, display=False)
glue("bug_gradient", bug_gradient, display=False)

# %% [markdown]
# Dropping $\lambda I$ gives a relative error of {glue:text}`bug_hessian:.2f`, flipping the
# sign of the data term {glue:text}`bug_gradient:.2f`: both more than a thousand times the
# tolerance (asserted).
#
# ## The exact minimum, by Newton's method
#
# The next sections plot $f - f^\star$ down to $10^{-13}$. The $f^\star$ they measure against
# must not come from the run being plotted (the last value of a run would make its own gap
# zero at the end and bend its tail), and it must be accurate far below $10^{-13}$. Newton's
# method, $\tilde w \leftarrow \tilde w - (\nabla^2 f)^{-1}\nabla f$, uses the
# $197 \times 197$ Hessian we just checked and converges quadratically. We stop it when the
# norm of the gradient is below $10^{-12}$; by $f - f^\star \le \|\nabla f\|^2/2m$ (from the
# proof of {prf:ref}`thm-gd-rate`, with $m = \lambda$), its answer is then within
# $10^{-24}/2\lambda$ of $f^\star$, far below the rounding error of $f$ itself (about
# $10^{-16}$).

# %% tags=["save"]
def newton_solve(X, y, lam, tol=1e-12, max_iter=50):
    """Minimizer of the regularized logistic loss by Newton's method, and its steps.

    Undamped: it converges from 0 on this problem, and the assert checks that it did."""
    w, iterations = np.zeros(X.shape[1]), 0
    while np.linalg.norm(gradient(w, X, y, lam)) >= tol:
        assert iterations < max_iter, "Newton's method did not converge"
        w -= np.linalg.solve(hessian(w, X, lam), gradient(w, X, y, lam))
        iterations += 1
    return w, iterations


def error_rate(w, X, y):
    return float(np.mean(np.sign(X @ w) != y))


# %% [markdown]
# ## Choosing $\lambda$ on the validation split
#
# We solve {eq}`eq-logistic` exactly for four values of $\lambda$ and count validation
# mistakes. Mistakes are rare, and a rare count is close to a Poisson count, whose standard
# error is about its square root. As a heuristic we apply the *one-standard-error rule*:
# among the values whose number of mistakes is within one standard error of the fewest, take
# the most regularized.

# %% tags=["save"]
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1)


def one_standard_error_choice(mistakes: dict) -> float:
    """The largest lambda whose mistakes are within sqrt(fewest) of the fewest."""
    fewest = min(mistakes.values())
    return max(lam for lam in mistakes if mistakes[lam] <= fewest + math.sqrt(fewest))


# %%
solutions, newton_steps = {}, {}
for lam_ in LAMBDAS:
    solutions[lam_], newton_steps[lam_] = newton_solve(X, y, lam_)
mistakes = {lam_: round(error_rate(solutions[lam_], X_val, y_val) * len(y_val))
            for lam_ in LAMBDAS}
lam = one_standard_error_choice(mistakes)
val_log_loss = {lam_: loss(solutions[lam_], X_val, y_val, 0.0) for lam_ in LAMBDAS}

# %% tags=["hide-input"]
gram = X.T @ X / (4 * n)  # the data part of the Hessian at w = 0 (used below)
top_gram = float(np.linalg.eigvalsh(gram)[-1])
display(Markdown(
    "| $\\lambda$ | Newton steps | $f^\\star$ | train error (%) | validation mistakes "
    "| validation log-loss | $1/\\kappa$ |\n|---|---|---|---|---|---|---|\n" + "\n".join(
        f"| {lam_:g} | {newton_steps[lam_]} | {loss(solutions[lam_], X, y, lam_):.4f} | "
        f"{100 * error_rate(solutions[lam_], X, y):.2f} | {mistakes[lam_]} | "
        f"{val_log_loss[lam_]:.4f} | {lam_ / (top_gram + lam_):.1e} |" for lam_ in LAMBDAS)))
results.record("lambda", lam, description="regularization chosen on validation (one-SE rule)")
results.record("val_error_pct", 100 * mistakes[lam] / len(y_val), unit="%",
               description="validation error of the chosen lambda")
glue("val_fewest", min(mistakes.values()), display=False)
glue("val_standard_error", math.sqrt(min(mistakes.values())), display=False)
glue("newton_most_steps", max(newton_steps.values()), display=False)
if run.profile != "smoke":  # the prose: the log-loss prefers the smallest lambda
    assert min(val_log_loss, key=val_log_loss.get) == min(LAMBDAS)

# %% [markdown]
# Newton's method needs at most {glue:text}`newton_most_steps` steps from $\tilde w = 0$ for
# any of the four values (the table). All four separate zeros from ones almost perfectly: the
# fewest mistakes, {glue:text}`val_fewest` out of {glue:text}`n_val:,` images, carry a
# standard error of about {glue:text}`val_standard_error:.1f`, so differences of one or two
# mistakes are no clear evidence for one value over another. (That is the noise of a single
# count. Two classifiers tested on the same images tend to fail on the same ones, so the
# noise of the *difference* of their counts is another number, which we do not estimate.)
# The rule picks $\lambda$ = {glue:text}`lambda:g`, a validation error of
# {glue:text}`val_error_pct:.2f` %. The validation log-loss prefers the smallest $\lambda$,
# because a less regularized model is more confident on the many easy images; 000 asks for
# the classification error, where a smaller $\lambda$ brings no clear gain. The last column
# foreshadows the rest of the chapter: $1/\kappa$ shrinks roughly in proportion to
# $\lambda$, and gradient descent slows down with it.
#
# ## $L$, $m$ and $\kappa$ from the Hessian
#
# 000 P4(c) asks whether the problem is strongly convex "without assuming any special
# conditions about the dataset", and for the best constant. From
# {eq}`eq-logistic-derivatives`, the weights $\sigma(z_i)\sigma(-z_i)$ lie in
# $(0, \tfrac14]$:
#
# - **The best global $m$ is exactly $\lambda$.** The data term is positive semi-definite,
#   so $\nabla^2 f \succeq \lambda I$ everywhere. No larger constant works for every dataset:
#   along $\tilde w = s\,(0, \dots, 0, 1)$ (bias only) every $z_i = \pm s$ and every weight
#   $\sigma(s)\sigma(-s) \to 0$ as $s \to \infty$, so $\lambda_{\min}(\nabla^2 f) \to
#   \lambda$. Here $\lambda$ is even *attained*: a pixel that is zero in every image is a
#   direction $e_j$ with $X e_j = 0$, so $\nabla^2 f\, e_j = \lambda e_j$ at every
#   $\tilde w$.
# - **The best global $L$.** $\sigma(z)\sigma(-z) \le \tfrac14$ with equality at $z = 0$, so
#   $\nabla^2 f \preceq B := \tfrac{1}{4n}X^\top X + \lambda I$, with equality at
#   $\tilde w = 0$: $L = \lambda_{\max}(B)$ is the smallest valid constant.
# - **The local constants** at the optimum, $\mu^\star = \lambda_{\min}(H^\star)$ and
#   $L^\star = \lambda_{\max}(H^\star)$ with $H^\star = \nabla^2 f(\tilde w^\star)$, govern
#   the final rate {eq}`eq-local-slope`.
#
# The matrix $B$, the Hessian at $\tilde w = 0$, will come back in
# {doc}`section 6 <06_preconditioning_adam>` as a preconditioner. We check
# {prf:ref}`thm-hessian-bounds` at the optimum, where nothing forces the computed spectrum
# into $[m, L]$ but the algebra above.

# %%
w_star = solutions[lam]
f_star = loss(w_star, X, y, lam)
eig_star = np.linalg.eigvalsh(hessian(w_star, X, lam))
L = float(np.linalg.eigvalsh(gram)[-1] + lam)  # global smoothness constant
m = lam  # global strong convexity constant
kappa = L / m
# thm-hessian-bounds at w*, up to the rounding of an eigensolver (1e-9 relative)
assert eig_star[0] >= m * (1 - 1e-9) and eig_star[-1] <= L * (1 + 1e-9)
assert abs(eig_star[0] / m - 1) < 1e-9  # attained: the dead pixels are eigenvectors

# %% tags=["hide-input"]
results.record("kappa", kappa, description="condition number L/m of the training loss")
results.record("global_smoothness", L, description="global smoothness constant (max eig of B)")
results.record("local_mu_star", eig_star[0], description="smallest Hessian eigenvalue at w*")
results.record("local_l_star", eig_star[-1], description="largest Hessian eigenvalue at w*")
glue("local_kappa", float(eig_star[-1] / eig_star[0]), display=False)
glue("f_star", f_star, display=False)
near_floor = int(np.sum(eig_star < 2 * m))
glue("near_floor", near_floor, display=False)
if run.profile != "smoke":
    assert near_floor > len(eig_star) / 2  # "most" in the caption
fig, ax = plots.figure(width=6.0, height=3.6)
ax.semilogy(eig_star, ".", label=r"eigenvalues of $\nabla^2 f(\tilde w^\star)$")
ax.axhline(L, color="C3", ls="--", label=r"global $L$")
ax.axhline(m, color="C2", ls=":", label=r"global $m = \lambda$")
ax.set(xlabel="index (ascending)", ylabel="eigenvalue (nats per unit weight²)")
ax.legend(fontsize=8)
plots.glue_figure("fig_spectrum", fig)

# %% [markdown]
# ```{glue:figure} fig_spectrum
# ---
# name: fig-co-spectrum
# alt: >-
#   The 197 eigenvalues of the Hessian at the optimum on a log scale, most of them on the
#   floor lambda, a few dozen rising towards but staying well below the global L.
# ---
# The eigenvalues of the Hessian at the optimum, in ascending order, between the global
# constants $m = \lambda$ (dotted) and $L$ (dashed). Most sit on or just above the floor
# $\lambda$; only the last few rise far above it, and even the largest is far below $L$.
# ```
#
# With $\lambda$ = {glue:text}`lambda:g` the global constants are $L$ =
# {glue:text}`global_smoothness:.4f` and $m = \lambda$, so $\kappa$ = {glue:text}`kappa:.1f`.
# At the optimum the Hessian is much flatter than at $\tilde w = 0$: confident margins $z_i$
# have small weights $\sigma(z_i)\sigma(-z_i)$, so $L^\star$ =
# {glue:text}`local_l_star:.4f`, while $\mu^\star$ = {glue:text}`local_mu_star:.4f` equals
# $\lambda$ because of the dead pixels (both asserted above), a local condition number of
# {glue:text}`local_kappa:.1f`. {numref}`fig-co-spectrum` shows where the rest of the
# spectrum lies: {glue:text}`near_floor` of the 197 eigenvalues are below $2\lambda$,
# exactly on the floor for the dead pixels and barely above it for the many directions that
# only a few confidently classified images touch. Only a handful of directions have a
# curvature well above the floor.
#
# The later sections need this problem again. One call rebuilds it, with the same data, the
# same choice of $\lambda$ and the same $\tilde w^\star$:

# %% tags=["save"]
from types import SimpleNamespace


def logistic_problem(n_train: int, seed: int) -> SimpleNamespace:
    """This section's problem: data, lambda chosen on validation, the exact optimum
    and the constants L, m, kappa; plus the start w0 of the chapter's optimizers."""
    X_all, y_all = load_zeros_and_ones("train")
    X_val, y_val = load_zeros_and_ones("test")
    subset = np.random.default_rng(seed).permutation(len(y_all))[:n_train]
    X, y = X_all[subset], y_all[subset]
    solutions = {lam: newton_solve(X, y, lam)[0] for lam in LAMBDAS}
    mistakes = {lam: round(error_rate(w, X_val, y_val) * len(y_val))
                for lam, w in solutions.items()}
    lam = one_standard_error_choice(mistakes)
    w_star = solutions[lam]
    gram = X.T @ X / (4 * len(y))  # B = gram + lam I bounds the Hessian everywhere
    L = float(np.linalg.eigvalsh(gram)[-1] + lam)
    return SimpleNamespace(
        X=X, y=y, X_val=X_val, y_val=y_val, lam=lam, w_star=w_star,
        f_star=loss(w_star, X, y, lam), H_star=hessian(w_star, X, lam),
        eig_star=np.linalg.eigvalsh(hessian(w_star, X, lam)), gram=gram, L=L, m=lam,
        kappa=L / lam, mistakes=mistakes[lam],
        w0=np.random.default_rng((seed, 2)).normal(0.0, 0.1, X.shape[1]))


# %% [markdown]
# ## What this section showed
#
# L2-regularized logistic regression has a gradient and a Hessian we can write and check
# (both pass the finite-difference check far below its tolerance, and two plausible bugs fail
# it far above). Its constants are known exactly: $m = \lambda$, attained along the dead
# pixels, and $L = \lambda_{\max}(\tfrac{1}{4n}X^\top X) + \lambda$, attained at
# $\tilde w = 0$; Newton's method gives $f^\star$ to far better than the precision of $f$.
# Near the optimum the curvature is much smaller than $L$ in every direction, which the
# next sections will exploit.
#
# ## Exercises
#
# 1. **Unregularized bias.** Drop $w_0^2$ from the regularizer of {eq}`eq-logistic`. Show
#    that the problem is no longer strongly convex on $\mathbb{R}^{197}$, compute
#    $\mu^\star$ at the new optimum, and predict the gradient-descent slope of
#    {eq}`eq-local-slope`.
#
#    :::{dropdown} Hint
#    Without $\lambda w_0$ the bias direction $e_{197}$ has curvature
#    $\tfrac1n\sum_i \sigma(z_i)\sigma(-z_i) > 0$ at every finite $\tilde w$ but tending to 0
#    as the margins grow: no global $m > 0$ exists along it. At the optimum it is some
#    positive number; compute $\lambda_{\min}$ of the new $H^\star$, which the dead pixels
#    still hold at $\lambda$ unless the bias direction is flatter.
#    :::
#
# 2. **A different pooling.** Pool with $2 \times 2$ maxima instead of averages. Which of
#    $L$, $m$ and $\kappa$ change, and which do not?
#
#    :::{dropdown} Answer
#    $m = \lambda$ does not change (the dead pixels stay dead: a maximum of zeros is zero).
#    Maxima are brighter than averages, so $X^\top X$ and with it $L$ grows, and $\kappa$
#    with it; gradient descent with step $1/L$ becomes slower.
#    :::
#
# 3. **How many Newton steps?** Newton's method converges quadratically only near the
#    optimum. Record $\|\nabla f\|$ after each step for $\lambda = 10^{-4}$ and find the step
#    where the number of correct digits starts to double.
#
#    :::{dropdown} Hint
#    Print `np.linalg.norm(gradient(w, X, y, lam))` inside the loop of `newton_solve`. The
#    doubling shows up as the exponent of the norm roughly doubling from one step to the next.
#    :::
