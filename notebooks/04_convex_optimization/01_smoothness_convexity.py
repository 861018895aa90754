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
# # Smoothness, strong convexity and the rate of gradient descent
#
# How fast can gradient descent go? For a convex loss the answer is one number, the
# *condition number* $\kappa$: the ratio between the largest and the smallest curvature of
# the loss. This section defines the two curvature constants, proves the inequalities that
# connect them (000 P3), shows that L2 regularization makes a convex loss strongly convex
# (004 §1.2), and derives the rate of gradient descent and the slope it predicts for a plot.
# Along the way, a numerical check puts the co-coercivity inequality to the test on a convex
# function and on one that is not convex. The rest of the chapter measures these predictions.


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

from helpers import profiles
from helpers.glue import glue

run = profiles.setup(
    profile,
    seed=4,
    pairs=(1_000, 100_000, 100_000),  # random pairs of points in the co-coercivity check
)
run

# %% [markdown]
# ## Smoothness, strong convexity and the condition number
#
# Throughout, $f : \mathbb{R}^d \to \mathbb{R}$ is differentiable and $\|\cdot\|$ is the
# Euclidean norm. Two constants describe how curved $f$ is.
#
# ```{prf:definition} Smoothness and strong convexity
# :label: def-smooth-strong
#
# $f$ is **$L$-smooth** when its gradient is $L$-Lipschitz,
# $\|\nabla f(x) - \nabla f(y)\| \le L\|x - y\|$ for all $x, y$.
# $f$ is **$m$-strongly convex** ($m > 0$) when for all $x, y$
#
# $$
# f(y) \ge f(x) + \langle \nabla f(x), y - x \rangle + \tfrac{m}{2}\|y - x\|^2 .
# $$ (eq-strong)
#
# With $m = 0$ this is plain convexity. When both hold, the **condition number** is
# $\kappa = L / m \ge 1$.
# ```
#
# Adding {eq}`eq-strong` for the pair $(x, y)$ to the same inequality for $(y, x)$ gives the
# *monotonicity* form of strong convexity,
# $\langle \nabla f(x) - \nabla f(y), x - y\rangle \ge m\|x - y\|^2$, which we use below.
# Smoothness bounds $f$ from above by a quadratic:
#
# ```{prf:lemma} Descent lemma
# :label: lem-descent
#
# If $f$ is $L$-smooth, then
# $f(y) \le f(x) + \langle \nabla f(x), y - x\rangle + \tfrac{L}{2}\|y - x\|^2$ for all $x, y$.
# ```
#
# ```{prf:proof}
# By the fundamental theorem of calculus along the segment $x + s(y - x)$,
# $f(y) - f(x) - \langle \nabla f(x), y - x\rangle
#  = \int_0^1 \langle \nabla f(x + s(y - x)) - \nabla f(x), y - x\rangle\, ds$.
# By Cauchy-Schwarz and smoothness the integrand is at most
# $L s \|y - x\|^2$, and $\int_0^1 L s\, ds = L/2$.
# ```
#
# ### Co-coercivity and Lipschitz gradients
#
# The gradient of $f$ is **co-coercive** with constant $1/L$ when
#
# $$
# \langle \nabla f(x) - \nabla f(y), x - y\rangle \ge \tfrac{1}{L}\|\nabla f(x) - \nabla f(y)\|^2
# \quad \text{for all } x, y.
# $$ (eq-cocoercive)
#
# 000 P3 asks to show that for convex $f$ this is equivalent to $L$-smoothness.
#
# ```{prf:theorem} Co-coercive implies Lipschitz
# :label: thm-cocoercive-lipschitz
#
# If $\nabla f$ satisfies {eq}`eq-cocoercive`, then $f$ is $L$-smooth.
# ```
#
# ```{prf:proof}
# Fix $x, y$ and write $g = \nabla f(x) - \nabla f(y)$. If $g = 0$ there is nothing to show.
# Otherwise {eq}`eq-cocoercive` and the Cauchy-Schwarz inequality give
# $\tfrac{1}{L}\|g\|^2 \le \langle g, x - y\rangle \le \|g\|\,\|x - y\|$; dividing by
# $\|g\|/L > 0$ gives $\|g\| \le L\|x - y\|$.
# ```
#
# This direction does not use convexity at all. The converse does:
# $f(x) = -x^2/2$ on $\mathbb{R}$ has a 1-Lipschitz gradient, but
# $\langle \nabla f(x) - \nabla f(y), x - y\rangle = -(x - y)^2 < 0$, so it is not co-coercive.
#
# ```{prf:theorem} Lipschitz implies co-coercive, for convex $f$
# :label: thm-lipschitz-cocoercive
#
# If $f$ is convex and $L$-smooth, then $\nabla f$ satisfies {eq}`eq-cocoercive`.
# ```
#
# ```{prf:proof}
# Fix $x$ and let $\phi(z) = f(z) - \langle \nabla f(x), z\rangle$. It is convex, it is
# $L$-smooth (its gradient $\nabla f(z) - \nabla f(x)$ differs from $\nabla f$ by a constant),
# and $\nabla\phi(x) = 0$, so by convexity $x$ minimizes $\phi$. Apply
# {prf:ref}`lem-descent` to $\phi$ at any $y$ with the step $z = y - \tfrac{1}{L}\nabla\phi(y)$:
#
# $$
# \phi(x) \le \phi(z) \le \phi(y) - \tfrac{1}{L}\|\nabla\phi(y)\|^2
#   + \tfrac{1}{2L}\|\nabla\phi(y)\|^2 = \phi(y) - \tfrac{1}{2L}\|\nabla\phi(y)\|^2 .
# $$
#
# Written out with $\nabla\phi(y) = \nabla f(y) - \nabla f(x)$, this is
#
# $$
# f(y) \ge f(x) + \langle \nabla f(x), y - x\rangle
#   + \tfrac{1}{2L}\|\nabla f(y) - \nabla f(x)\|^2 .
# $$
#
# The same inequality with $x$ and $y$ exchanged, added to this one, cancels $f(x) + f(y)$ and
# leaves exactly {eq}`eq-cocoercive`.
# ```
#
# ### Co-coercivity, checked on random pairs
#
# Both theorems are easy to test with numbers. Take the convex function
# $f(x) = \sum_i \ln(1 + e^{a_i^\top x})$ on $\mathbb{R}^5$, a sum of softplus functions of
# random linear maps. Its gradient is $A^\top\sigma(Ax)$ and its Hessian
# $A^\top \operatorname{diag}(\sigma'(Ax)) A \preceq \tfrac14 A^\top A$, since
# $\sigma' \le \tfrac14$, so $L = \tfrac14\lambda_{\max}(A^\top A)$ is a valid smoothness
# constant. Over many random pairs $(x, y)$ we compute the co-coercivity ratio
# $\langle g, x - y\rangle / \|g\|^2$, with $g = \nabla f(x) - \nabla f(y)$, and the
# Lipschitz ratio $\|g\|/\|x - y\|$. The theorems say the first is at least $1/L$ and the
# second at most $L$; rounding can move a ratio by a few units in the last place, so we allow
# a relative $10^{-9}$. The same test on $f(x) = -\tfrac12\|x\|^2$ (1-Lipschitz gradient,
# not convex) must fail.

# %%
rng = np.random.default_rng(run.seed)
A = rng.normal(size=(20, 5))
L_soft = np.linalg.eigvalsh(A.T @ A)[-1] / 4


def grad_softplus_sum(x):  # x holds one point per row
    return 0.5 * (1 + np.tanh(0.5 * x @ A.T)) @ A  # sigma(Ax) @ A, without overflow


def ratios(grad, x, y):
    g, dx = grad(x) - grad(y), x - y
    cocoercive = np.sum(g * dx, axis=1) / np.sum(g * g, axis=1)
    lipschitz = np.linalg.norm(g, axis=1) / np.linalg.norm(dx, axis=1)
    return cocoercive, lipschitz


x, y = rng.normal(size=(2, run.pairs, 5)) * rng.lognormal(0, 1, size=(2, run.pairs, 1))
co_soft, lip_soft = ratios(grad_softplus_sum, x, y)
assert co_soft.min() >= (1 - 1e-9) / L_soft and lip_soft.max() <= (1 + 1e-9) * L_soft
co_concave, lip_concave = ratios(lambda x: -x, x, y)  # f(x) = -|x|^2 / 2
# Lipschitz, not co-coercive
assert lip_concave.max() <= 1 + 1e-9 and co_concave.max() < 0

# %% tags=["hide-input"]
glue("n_pairs", run.pairs, display=False)
glue("co_soft_min_times_l", float(co_soft.min() * L_soft), display=False)
glue("lip_soft_max_over_l", float(lip_soft.max() / L_soft), display=False)

# %% [markdown]
# Over {glue:text}`n_pairs:,` random pairs at scales from close to far, the smallest
# co-coercivity ratio of the softplus sum is {glue:text}`co_soft_min_times_l:.2f` times $1/L$
# and the largest Lipschitz ratio {glue:text}`lip_soft_max_over_l:.2f` times $L$: both
# inequalities hold, and nearly tightly. A pair sees an average of the curvature between
# its two points, and pairs of points near the origin, where every $\sigma'$ is close to
# $\tfrac14$, see almost all of $L$. For $-\tfrac12\|x\|^2$ the gradient is exactly
# 1-Lipschitz and the co-coercivity ratio is $-1$ for every pair: without convexity the
# converse fails.
#
# ### The Hessian lies between $m I$ and $L I$
#
# ```{prf:theorem} Hessian bounds
# :label: thm-hessian-bounds
#
# If $f$ is twice differentiable, $m$-strongly convex and $L$-smooth, then for every $x$
# the (symmetric) Hessian satisfies $m I \preceq \nabla^2 f(x) \preceq L I$: every eigenvalue
# of $\nabla^2 f(x)$ lies in $[m, L]$.
# ```
#
# ```{prf:proof}
# Fix $x$, a unit vector $v$ and $t > 0$, and let
# $g(t) = \langle \nabla f(x + t v) - \nabla f(x), v\rangle$. The monotonicity form of
# strong convexity applied to $x + tv$ and $x$ gives $t\, g(t) \ge m t^2$, so $g(t)/t \ge m$.
# Cauchy-Schwarz and smoothness give $g(t) \le \|\nabla f(x + tv) - \nabla f(x)\| \le L t$, so
# $g(t)/t \le L$. Since $\nabla f$ is differentiable at $x$,
# $g(t)/t \to \langle \nabla^2 f(x) v, v\rangle$ as $t \to 0$ (this is the mean-value argument
# of the source's hint, on the line through $x$ in direction $v$). Hence
# $m \le v^\top \nabla^2 f(x)\, v \le L$ for every unit $v$, and by the Rayleigh quotient the
# smallest and largest eigenvalues lie in $[m, L]$.
# ```
#
# ```{note}
# 000 P3(c) states the result as $m \le \|\nabla^2 f(x)\|_2 \le L$. The spectral norm of a
# positive semi-definite matrix is its *largest* eigenvalue, so the upper bound is the right
# statement, but the lower bound $\|\nabla^2 f(x)\|_2 \ge m$ is much weaker than what strong
# convexity gives: it says that *some* direction has curvature at least $m$, while the
# theorem says that *every* direction does, $\lambda_{\min}(\nabla^2 f(x)) \ge m$. The
# matrix inequality $m I \preceq \nabla^2 f(x) \preceq L I$ is the statement to remember; the
# rates below need the smallest eigenvalue.
# ```
#
# ### L2 regularization makes a convex loss strongly convex
#
# 004 (section 1.2) asks whether adding $\tfrac{\lambda}{2}\|w\|^2$ to a convex loss makes it
# strongly convex. It does, with $m = \lambda$: if $\ell$ is convex,
# $\ell(y) \ge \ell(x) + \langle\nabla \ell(x), y - x\rangle$, and the regularizer satisfies
# {eq}`eq-strong` with equality,
#
# $$
# \tfrac{\lambda}{2}\|y\|^2 = \tfrac{\lambda}{2}\|x\|^2 + \langle \lambda x, y - x\rangle
#   + \tfrac{\lambda}{2}\|y - x\|^2 .
# $$
#
# Adding the two gives {eq}`eq-strong` for $\ell + \tfrac{\lambda}{2}\|\cdot\|^2$ with
# $m = \lambda$.
#
# ## Why gradient descent converges at rate $1 - 1/\kappa$
#
# Gradient descent with step $\eta$ iterates $x_{t+1} = x_t - \eta \nabla f(x_t)$. Let
# $f^\star = \min f$, attained at $x^\star$.
#
# ```{prf:theorem} Linear convergence of gradient descent
# :label: thm-gd-rate
#
# If $f$ is $L$-smooth and $m$-strongly convex, gradient descent with $\eta = 1/L$ satisfies
#
# $$
# \begin{aligned}
# f(x_{t+1}) - f^\star &\le \Bigl(1 - \frac{1}{\kappa}\Bigr)\bigl(f(x_t) - f^\star\bigr),
# \quad\text{so} \\
# f(x_t) - f^\star &\le \Bigl(1 - \frac{1}{\kappa}\Bigr)^t \bigl(f(x_0) - f^\star\bigr).
# \end{aligned}
# $$ (eq-gd-rate)
# ```
#
# ```{prf:proof}
# {prf:ref}`lem-descent` with $y = x_t - \nabla f(x_t)/L$ gives
# $f(x_{t+1}) \le f(x_t) - \tfrac{1}{2L}\|\nabla f(x_t)\|^2$. Minimizing the right-hand side of
# {eq}`eq-strong` over $y$ (the minimizer is $y = x - \nabla f(x)/m$) gives
# $f^\star \ge f(x) - \tfrac{1}{2m}\|\nabla f(x)\|^2$, that is
# $\|\nabla f(x_t)\|^2 \ge 2m\,(f(x_t) - f^\star)$. Substituting,
# $f(x_{t+1}) - f^\star \le (f(x_t) - f^\star) - \tfrac{m}{L}(f(x_t) - f^\star)$.
# ```
#
# **What it predicts for a plot.** Taking logarithms,
# $\ln(f(x_t) - f^\star) \le t \ln(1 - 1/\kappa) + \text{const}$: on a semi-log plot
# (logarithmic $y$-axis) of $f - f^\star$ against the number of updates, the curve lies below a
# straight line of slope $\ln(1 - 1/\kappa) \approx -1/\kappa$ per update (in natural log; on
# a base-10 axis divide by $\ln 10$). We quote every slope in this chapter in natural log per
# update.
#
# The theorem is a worst-case bound. Near $x^\star$ we can say exactly what happens. With
# $H^\star = \nabla^2 f(x^\star)$ and the error $e_t = x_t - x^\star$, the iteration is, to
# first order, $e_{t+1} = (I - \eta H^\star)\, e_t$, and $f(x_t) - f^\star \approx \tfrac12
# e_t^\top H^\star e_t$. In the eigenbasis of $H^\star$ (eigenvalues $h_i$) each component of
# the error shrinks by $|1 - \eta h_i|$ per step and $f - f^\star$ by its square, so
# eventually the slowest component dominates and
#
# $$
# \text{slope of } \ln(f - f^\star) \;\to\; 2 \ln \rho, \qquad
# \rho = \max_i |1 - \eta h_i| ,
# $$ (eq-local-slope)
#
# as long as the starting point has a component along the slowest eigenvector. With
# $\eta = 1/L$ and $h_{\min} = m$ this is $2\ln(1 - 1/\kappa) \approx -2/\kappa$: twice as
# steep as the bound, because $f - f^\star$ is *quadratic* in the error. {eq}`eq-local-slope`
# is the prediction we test; the bound {eq}`eq-gd-rate` must also hold.
#
# ```{note}
# 000 P4(b) says the slope "should be about $-\kappa^{-1}$". That is the bound
# {eq}`eq-gd-rate`; the slope actually observed at step $1/L$ is about $-2/\kappa$ when the
# slowest direction has curvature exactly $m$, as it will be in
# {doc}`section 4 <04_gd_nesterov>`, which also plots the training loss itself next to
# $f - f^\star$, as 000 asks.
# ```
#
# ## The two-point quadratic of 004
#
# 004 (section 4.2) fits $\ell(w) = \tfrac1n\sum_i (y_i - x_i^\top w)^2$ with $n = d = 2$,
# $x_1 = e_1$, $x_2 = e_2$, $y = (2, -4)$. Its Hessian is the constant
# $\tfrac{2}{n}\sum_i x_i x_i^\top = I$, so $L = m = 1$ and $\kappa = 1$: every direction
# has the same curvature, and gradient descent with $\eta = 1/L$ lands on the minimizer in
# one step, since $e_1 = (1 - \eta \cdot 1)e_0 = 0$ along every eigenvector. The cell below
# is a demonstration of that arithmetic, not a test.

# %%
X_quad, y_quad = np.eye(2), np.array([2.0, -4.0])
hessian_quad = 2 / len(y_quad) * X_quad.T @ X_quad  # the identity
w_quad = np.zeros(2)
# one step, eta = 1/L = 1
w_quad -= 2 / len(y_quad) * X_quad.T @ (X_quad @ w_quad - y_quad)
hessian_quad, w_quad

# %% [markdown]
# The same 004 problem also contains a typo in its L1 norm; it is discussed where that
# problem's backward pass is, in {doc}`Chapter 2's reverse-mode section
# <../02_autodiff/01_reverse_mode>` ("A typo in the source").
#
# ## What this section showed
#
# For a convex $f$, an $L$-Lipschitz gradient and a $1/L$-co-coercive gradient are the same
# thing ({prf:ref}`thm-cocoercive-lipschitz`, {prf:ref}`thm-lipschitz-cocoercive`); without
# convexity only one direction holds, and a numerical check on random pairs sees both facts.
# For twice-differentiable $f$, $m I \preceq \nabla^2 f \preceq L I$
# ({prf:ref}`thm-hessian-bounds`): the lower bound is on the *smallest* eigenvalue. An L2
# term $\tfrac\lambda2\|w\|^2$ makes a convex loss $\lambda$-strongly convex. Gradient
# descent with step $1/L$ contracts $f - f^\star$ by at least $1 - 1/\kappa$ per step
# ({prf:ref}`thm-gd-rate`), and near the optimum the semi-log slope is $2\ln\rho$
# {eq}`eq-local-slope`, about twice as steep as the bound.
#
# ## Exercises
#
# 1. **Strong convexity from the Hessian.** Show the converse of
#    {prf:ref}`thm-hessian-bounds`: if $\nabla^2 f(x) \succeq m I$ for every $x$, then $f$ is
#    $m$-strongly convex.
#
#    :::{dropdown} Hint
#    Taylor's theorem with the integral remainder along $x + s(y - x)$:
#    $f(y) = f(x) + \langle\nabla f(x), y - x\rangle + \int_0^1 (1 - s)\,(y - x)^\top
#    \nabla^2 f(x + s(y - x))(y - x)\, ds$, and $\int_0^1 (1 - s)\,ds = \tfrac12$.
#    :::
#
# 2. **The tightest pairs.** In the numerical check, the smallest ratio came within a few
#    percent of $1/L$. Which pairs come closest? Try pairs $y = x + t v$ with $x$ near 0,
#    small $t$ and $v$ the top eigenvector of $A^\top A$.
#
#    :::{dropdown} Answer
#    Near $x = 0$ every $\sigma'(a_i^\top x)$ is close to $\tfrac14$, so the Hessian there is
#    close to $\tfrac14 A^\top A$; along its top eigenvector, for small $t$, the ratio tends
#    to $1/L$ exactly.
#    :::
#
# 3. **Rates for a convex, not strongly convex $f$.** With $m = 0$, {prf:ref}`thm-gd-rate`
#    says nothing. Show from {prf:ref}`lem-descent` and convexity that gradient descent with
#    step $1/L$ still gives $f(x_t) - f^\star \le L\|x_0 - x^\star\|^2/(2t)$.
#
#    :::{dropdown} Hint
#    Combine $f(x_{t+1}) \le f(x_t) - \tfrac{1}{2L}\|\nabla f(x_t)\|^2$ with convexity,
#    $f(x_t) - f^\star \le \langle\nabla f(x_t), x_t - x^\star\rangle$, to get
#    $f(x_{t+1}) - f^\star \le \tfrac L2(\|x_t - x^\star\|^2 - \|x_{t+1} - x^\star\|^2)$,
#    then sum over $t$ (the sum telescopes) and use that $f(x_t)$ decreases.
#    :::
