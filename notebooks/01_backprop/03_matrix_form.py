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
# # Backpropagation in matrix form
#
# Writing every partial derivative separately does not scale past a handful of parameters.
# This section derives the gradients of a network with a hidden layer for a whole mini-batch
# at once, as a few matrix products, and learns to place every transpose by looking at
# shapes. It then trains the network on a small regression set with those gradients alone.

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
from IPython.display import Markdown, display

from helpers import data, plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import FD_TOL, ROUNDING_TOL, numerical_gradient, relative_error

run = profiles.setup(
    profile,
    seed=14,
    check_trials=(3, 100, 300),  # random points at which the gradients are checked
    tanh_epochs=(2, 15, 15),  # 003 P1(d) asks for 15 epochs
)
run

# %% [markdown]
# ## The network
#
# Problem 1 of 003 is a network with a hidden layer of 20 tanh units,
#
# $$
# \hat y = \mathbf{w}_2^\top \tanh(\mathbf{W}_1 \mathbf{x} + \mathbf{b}_1) + b_2,
# \qquad
# J = \frac{1}{N} \sum_{i=1}^N \ln \cosh\bigl(\hat y^{(i)} - y^{(i)}\bigr),
# $$ (bp-tanh-model)
#
# with $\mathbf{x} \in \mathbb{R}^{d}$, $\mathbf{W}_1 \in \mathbb{R}^{H \times d}$,
# $\mathbf{b}_1, \mathbf{w}_2 \in \mathbb{R}^{H}$ and a scalar $b_2$ ($H = 20$, $d = 10$).
# The source writes the bias as a bold $\mathbf{b}_2$, but $\hat y$ is a scalar, so $b_2$ is
# one number; and its "$\mathbf{W}$ is $20 \times 10$" names $\mathbf{W}_1$. The log-cosh
# loss behaves like $r^2/2$ for a small residual $r$ and like $|r| - \ln 2$ for a large one:
# squared error near the fit, robust to outliers far from it. Its derivative is $\tanh r$.
#
# ## One example, node by node
#
# Name the intermediate values $\mathbf{z} = \mathbf{W}_1\mathbf{x} + \mathbf{b}_1$,
# $\mathbf{a} = \tanh \mathbf{z}$, $r = \hat y - y$, and go backwards from the loss. The
# example's loss is $\frac1N \ln\cosh r$, so $e := \partial J / \partial \hat y =
# \frac1N \tanh r$. Then $\hat y = \mathbf{w}_2^\top \mathbf{a} + b_2$ gives
# $\partial J/\partial b_2 = e$, $\partial J/\partial \mathbf{w}_2 = e\,\mathbf{a}$ and
# $\partial J/\partial \mathbf{a} = e\,\mathbf{w}_2$. The tanh acts entry by entry with
# $\tanh' = 1 - \tanh^2$, so $\boldsymbol\delta := \partial J/\partial \mathbf{z} =
# e\, \mathbf{w}_2 \odot (1 - \mathbf{a} \odot \mathbf{a})$. Finally $z_j = \sum_k W_{1,jk}
# x_k + b_{1,j}$, so $\partial J/\partial W_{1,jk} = \delta_j x_k$, which is the outer
# product $\boldsymbol\delta \mathbf{x}^\top$, while $\partial J/\partial \mathbf{b}_1 =
# \boldsymbol\delta$ and $\partial J / \partial \mathbf{x} = \mathbf{W}_1^\top
# \boldsymbol\delta$.
#
# ## The whole batch
#
# Stack the $N$ inputs as the rows of $\mathbf{X} \in \mathbb{R}^{N\times d}$. The forward
# pass is $\mathbf{Z} = \mathbf{X}\mathbf{W}_1^\top + \mathbf{1}\mathbf{b}_1^\top$,
# $\mathbf{A} = \tanh \mathbf{Z}$, $\hat{\mathbf{y}} = \mathbf{A}\mathbf{w}_2 + b_2
# \mathbf{1}$. $J$ is a sum over examples, so its gradient with respect to a shared parameter
# is the sum of the per-example gradients, and the sums over $i$ become matrix products:
#
# $$
# \begin{aligned}
# \mathbf{e} &= \tfrac{1}{N}\tanh(\hat{\mathbf{y}} - \mathbf{y}) \in \mathbb{R}^N, &
# \boldsymbol\Delta &= (\mathbf{e}\,\mathbf{w}_2^\top) \odot (1 - \mathbf{A} \odot \mathbf{A})
#   \in \mathbb{R}^{N \times H},\\
# \frac{\partial J}{\partial b_2} &= \mathbf{1}^\top \mathbf{e}, &
# \frac{\partial J}{\partial \mathbf{w}_2} &= \mathbf{A}^\top \mathbf{e},\\
# \frac{\partial J}{\partial \mathbf{b}_1} &= \boldsymbol\Delta^\top \mathbf{1}, &
# \frac{\partial J}{\partial \mathbf{W}_1} &= \boldsymbol\Delta^\top \mathbf{X},\\
# \frac{\partial J}{\partial \mathbf{X}} &= \boldsymbol\Delta\, \mathbf{W}_1 .
# \end{aligned}
# $$ (bp-tanh-grads)
#
# A useful habit: **a gradient has the shape of its variable**, and that alone often fixes
# where the transposes go. $\partial J/\partial \mathbf{W}_1$ must be $H \times d$, and the
# only product of $\boldsymbol\Delta$ ($N \times H$) and $\mathbf{X}$ ($N \times d$) with
# that shape is $\boldsymbol\Delta^\top\mathbf{X}$. Row $i$ of $\partial J/\partial
# \mathbf{X}$ is the gradient with respect to the input $\mathbf{x}^{(i)}$; the source asks
# for "$\partial J/\partial x$" of a cost averaged over $N$ examples, which we read as this
# per-input gradient (it carries the factor $1/N$).
#
# The implementation uses plain tensors, as the source asks: no `nn.Module`, and the
# parameters in a dictionary. `log_cosh` is written as $|r| + \ln(1 + e^{-2|r|}) - \ln 2$,
# the same function, because $\cosh r$ itself overflows for $|r| > 710$.

# %% tags=["save"]
import math

import torch

F64 = torch.float64


def tanh_net_forward(P: dict, X: torch.Tensor):
    """Eq. (bp-tanh-model) for a batch: y_hat (N,) and the activations A (N, H)."""
    A = torch.tanh(X @ P["W1"].T + P["b1"])
    return A @ P["w2"] + P["b2"], A


def log_cosh(r: torch.Tensor) -> torch.Tensor:
    r = r.abs()
    return r + torch.log1p(torch.exp(-2 * r)) - math.log(2.0)


def tanh_net_loss(P: dict, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    y_hat, _ = tanh_net_forward(P, X)
    return log_cosh(y_hat - y).mean()


def tanh_net_grads(P: dict, X: torch.Tensor, y: torch.Tensor) -> dict:
    """Eq. (bp-tanh-grads): the gradient of J with respect to W1, b1, w2, b2 and X."""
    y_hat, A = tanh_net_forward(P, X)
    e = torch.tanh(y_hat - y) / len(y)  # dJ/dy_hat
    Delta = torch.outer(e, P["w2"]) * (1 - A**2)  # dJ/dZ
    return {"W1": Delta.T @ X, "b1": Delta.sum(0), "w2": A.T @ e, "b2": e.sum(),
            "X": Delta @ P["W1"]}


def tanh_net_init(d: int, H: int, gen: torch.Generator) -> dict:
    """Weights with variance 1/fan-in, biases zero.

    The variance 1/fan-in makes tanh start in its linear range.
    """
    return {"W1": torch.randn(H, d, generator=gen, dtype=F64) / math.sqrt(d),
            "b1": torch.zeros(H, dtype=F64),
            "w2": torch.randn(H, generator=gen, dtype=F64) / math.sqrt(H),
            "b2": torch.zeros((), dtype=F64)}


# %% [markdown]
# ## Checks
#
# At random points (Gaussian weights scaled as at initialisation, Gaussian biases, and a
# batch of $N = 8$ Gaussian inputs and targets) we compare all five gradients with autograd
# and with finite differences (`helpers.gradcheck`, the tested version of the
# {doc}`previous section's <02_gradient_checking>` checker), and assert that each has the
# shape of its variable. The tolerances are those of `helpers.gradcheck`, argued in
# sections 1 and 2: $10^{-10}$ against autograd (`ROUNDING_TOL`, rounding only) and
# $10^{-6}$ against finite differences (`FD_TOL`).

# %%
def tanh_net_grads_autograd(P: dict, X: torch.Tensor, y: torch.Tensor) -> dict:
    # detach() makes new leaves that share the data (no copy); their .grad is their own
    leaves = {k: v.detach().requires_grad_() for k, v in {**P, "X": X}.items()}
    tanh_net_loss(leaves, leaves["X"], y).backward()
    return {k: v.grad for k, v in leaves.items()}


def tanh_net_grads_fd(P: dict, X: torch.Tensor, y: torch.Tensor) -> dict:
    variables = {k: v.clone() for k, v in {**P, "X": X}.items()}  # perturbed in place

    def loss():
        return tanh_net_loss(variables, variables["X"], y)

    return {k: numerical_gradient(loss, v) for k, v in variables.items()}


def random_tanh_point(gen: torch.Generator, N: int = 8, d: int = 10, H: int = 20):
    def normal(*shape):
        return torch.randn(shape, generator=gen, dtype=F64)

    # weights at the scale of an initialised network (unit-variance pre-activations)
    P = {"W1": normal(H, d) / math.sqrt(d), "b1": normal(H),
         "w2": normal(H) / math.sqrt(H), "b2": normal()}
    return P, normal(N, d), normal(N)


gen = torch.Generator().manual_seed(run.seed)
err_autograd, err_fd = {}, {}
for _ in range(run.check_trials):
    P, X, y = random_tanh_point(gen)
    hand = tanh_net_grads(P, X, y)
    auto, fd = tanh_net_grads_autograd(P, X, y), tanh_net_grads_fd(P, X, y)
    for name, grad in hand.items():
        variable = X if name == "X" else P[name]
        assert grad.shape == variable.shape, (name, grad.shape, variable.shape)
        err_autograd[name] = max(err_autograd.get(name, 0.0),
                                 relative_error(grad, auto[name]))
        err_fd[name] = max(err_fd.get(name, 0.0), relative_error(grad, fd[name]))
assert max(err_autograd.values()) < ROUNDING_TOL, err_autograd
assert max(err_fd.values()) < FD_TOL / 10, err_fd

# %% tags=["hide-input"]
display(Markdown(
    "| gradient | shape | vs autograd | vs finite differences |\n|---|---|---|---|\n"
    + "\n".join(f"| $\\partial J/\\partial {name}$ | {tuple(hand[name].shape)} | "
                f"{err_autograd[name]:.1e} | {err_fd[name]:.1e} |" for name in hand)))
results.record("tanh_autograd_max_rel_err", max(err_autograd.values()),
               description="tanh network: hand gradients vs autograd, max relative error")
results.record("tanh_fd_max_rel_err", max(err_fd.values()),
               description="tanh network: hand gradients vs centred differences, max rel. error")
glue("check_points", run.check_trials, display=False)

# %% [markdown]
# The table gives, for each gradient, the largest relative error over the
# {glue:text}`check_points` random points: all five formulas of {eq}`bp-tanh-grads` agree
# with autograd to {glue:text}`tanh_autograd_max_rel_err:.0e` and with finite differences to
# {glue:text}`tanh_fd_max_rel_err:.0e`.
#
# The classic mistake in this derivation is to differentiate the activation at the wrong
# place: to write $1 - \mathbf{Z}\odot\mathbf{Z}$ (the pre-activation) instead of
# $1 - \mathbf{A}\odot\mathbf{A}$ with $\mathbf{A} = \tanh \mathbf{Z}$. The shapes are
# identical, so only the numbers can catch it, and they do:

# %%
def tanh_net_grads_buggy(P: dict, X: torch.Tensor, y: torch.Tensor) -> dict:
    Z = X @ P["W1"].T + P["b1"]
    y_hat, A = tanh_net_forward(P, X)
    e = torch.tanh(y_hat - y) / len(y)
    # BUG: tanh' evaluated at Z, not tanh(Z)
    Delta = torch.outer(e, P["w2"]) * (1 - Z**2)
    return {"W1": Delta.T @ X}


P, X, y = random_tanh_point(gen)
err_bug = relative_error(tanh_net_grads_buggy(P, X, y)["W1"],
                         tanh_net_grads_fd(P, X, y)["W1"])
assert err_bug > 1e4 * FD_TOL, "the check missed the wrong activation derivative"

# %% tags=["hide-input"]
glue("tanh_bug_err", err_bug, display=False)

# %% [markdown]
# The relative error is {glue:text}`tanh_bug_err:.1f`, against a tolerance of $10^{-6}$.
#
# ## Training on a regression set
#
# Part (d) of the problem trains the network on scikit-learn's Boston house-prices data.
# That data set was removed from scikit-learn in version 1.2 (its construction encoded a
# racial variable, and its maintainers withdrew it), so we substitute the other regression
# set bundled with scikit-learn, **diabetes**: 442 patients, 10 features (age, sex, body mass
# index, blood pressure and six blood serum measurements), and a measure of disease
# progression one year later. Its 10 features happen to fit the source's
# $\mathbf{W}_1 \in \mathbb{R}^{20\times 10}$ without resizing it.
#
# A fixed, seeded 20% of the patients is the test set, and features and target are
# standardised with the *training* rows' means and standard deviations only
# (`data.diabetes_split`), so nothing about the test set leaks into training. Mean squared
# errors below are in units of the training target's variance: an MSE of 1 is what
# predicting the training mean achieves.
#
# The optimiser is plain mini-batch SGD, driven by our own `tanh_net_grads` (the source
# allows any optimiser; using our gradients is the point): batches of 16, step $0.03$,
# {glue:text}`tanh_epochs` epochs, and the initialisation of `tanh_net_init`. The step is
# fixed in advance: nothing here tunes it, and the test set plays no part in it.

# %%
split = data.diabetes_split()
X_tr, y_tr = torch.tensor(split.X_train), torch.tensor(split.y_train)
X_te, y_te = torch.tensor(split.X_test), torch.tensor(split.y_test)


def mse(P: dict, X: torch.Tensor, y: torch.Tensor) -> float:
    return float(((tanh_net_forward(P, X)[0] - y) ** 2).mean())


def train_tanh_net(grads_fn, lr: float = 0.03, batch: int = 16):
    gen = torch.Generator().manual_seed(run.seed)
    P = tanh_net_init(X_tr.shape[1], 20, gen)
    history = [(mse(P, X_tr, y_tr), mse(P, X_te, y_te))]
    for _ in range(run.tanh_epochs):
        order = torch.randperm(len(y_tr), generator=gen)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            grads = grads_fn(P, X_tr[idx], y_tr[idx])
            P = {k: v - lr * grads[k] for k, v in P.items()}
        history.append((mse(P, X_tr, y_tr), mse(P, X_te, y_te)))
    return P, history


P_tanh, history = train_tanh_net(tanh_net_grads)
P_tanh_auto, _ = train_tanh_net(tanh_net_grads_autograd)
err_training = max(relative_error(P_tanh[k], P_tanh_auto[k]) for k in P_tanh)
assert err_training < 1e-9, err_training  # the same arithmetic up to rounding

# %% [markdown]
# As for the mini CNN, training with autograd's gradients instead of ours ends at the same
# parameters, to {glue:text}`tanh_training_err:.0e`. For scale, we also fit the best *linear*
# model $\hat y = \mathbf{w}^\top\mathbf{x} + c$ by least squares, the problem that
# {doc}`section 7 <07_least_squares>` solves with gradient descent.

# %%
design_tr = torch.cat([X_tr, torch.ones(len(y_tr), 1, dtype=F64)], 1)
design_te = torch.cat([X_te, torch.ones(len(y_te), 1, dtype=F64)], 1)
w_lin = torch.linalg.lstsq(design_tr, y_tr.unsqueeze(1)).solution.squeeze(1)
lin_train_mse = float(((design_tr @ w_lin - y_tr) ** 2).mean())
lin_test_mse = float(((design_te @ w_lin - y_te) ** 2).mean())

# %% tags=["hide-input"]
fig, ax = plots.figure(width=6.0, height=3.6)
ax.plot([tr for tr, _ in history], "o-", label="tanh network, train")
ax.plot([te for _, te in history], "s--", label="tanh network, test")
ax.axhline(lin_test_mse, color="gray", ls=":", label="linear least squares, test")
ax.set(xlabel="epoch", ylabel="MSE (training target variance)", ylim=(0, None))
ax.legend()
plots.glue_figure("fig_tanh_training", fig)

tanh_train_mse, tanh_test_mse = history[-1]
results.record("tanh_train_mse", tanh_train_mse, unit="target variance",
               description="tanh network on diabetes: final train MSE (standardised target)")
results.record("tanh_test_mse", tanh_test_mse, unit="target variance",
               description="tanh network on diabetes: final test MSE (standardised target)")
results.record("linear_test_mse", lin_test_mse, unit="target variance",
               description="linear least squares on diabetes: test MSE (standardised target)")
for name, value in {
    "tanh_epochs": run.tanh_epochs, "tanh_training_err": err_training,
    "linear_train_mse": lin_train_mse, "tanh_explained_pct": 100 * (1 - tanh_test_mse),
    "tanh_test_rmse_original": math.sqrt(tanh_test_mse) * split.y_std,
    "diabetes_y_std": split.y_std, "diabetes_n_train": len(y_tr), "diabetes_n_test": len(y_te),
}.items():
    glue(name, value, display=False)

# %% [markdown]
# ```{glue:figure} fig_tanh_training
# ---
# name: fig-bp-tanh-training
# alt: >-
#   Train and test mean squared error of the tanh network over the epochs, both falling
#   quickly to level off near the dotted test error of a linear least-squares fit.
# ---
# Mean squared error of the tanh network on the diabetes set, trained by SGD with the
# hand-derived gradients. The dotted line is the test error of the best linear model.
# ```
#
# After {glue:text}`tanh_epochs` epochs the network's MSE is
# {glue:text}`tanh_train_mse:.3f` on the {glue:text}`diabetes_n_train` training patients and
# {glue:text}`tanh_test_mse:.3f` on the {glue:text}`diabetes_n_test` test patients: it
# explains {glue:text}`tanh_explained_pct:.0f`% of the test set's variance (in the original
# units, a test root-mean-squared error of {glue:text}`tanh_test_rmse_original:.0f`, against a
# target standard deviation of {glue:text}`diabetes_y_std:.0f`). The linear model does about
# as well ({glue:text}`linear_train_mse:.3f` train, {glue:text}`linear_test_mse:.3f` test):
# on this small data set the relation between the features and the target is close to
# linear, and 241 parameters learned from a few hundred noisy examples cannot find much more.
# With a test set of under a hundred patients, differences of a few hundredths in test MSE
# are within noise. What the experiment shows is that hand-written backpropagation trains
# the network exactly as autograd does, not that the network beats a linear fit.
# {doc}`Chapter 2 <../02_autodiff/04_mlp_costs>` times the two backward passes against
# each other.
#
# ## What this section showed
#
# For a batch, backpropagation is a handful of matrix products, one per edge of the graph,
# each the transpose of the forward product it undoes; the shape of each variable fixes where
# the transposes go. The five gradients of the tanh network agree with autograd to rounding
# and with finite differences far below the tolerance, and a derivative taken at the wrong
# node, invisible to the shapes, fails the check by orders of magnitude.
#
# ## Exercises
#
# 1. **Squared error.** Replace log-cosh by $J = \frac{1}{2N}\sum_i (\hat y^{(i)} -
#    y^{(i)})^2$. Which line of `tanh_net_grads` changes, and how? Check your version.
#
#    :::{dropdown} Answer
#    Only $\mathbf{e}$: it becomes $(\hat{\mathbf{y}} - \mathbf{y})/N$ instead of
#    $\tanh(\hat{\mathbf{y}} - \mathbf{y})/N$. Everything below the output is unchanged,
#    which is the point of backpropagation: each node only needs the gradient arriving
#    from above.
#    :::
#
# 2. **A second hidden layer.** Add $\mathbf{A}_2 = \tanh(\mathbf{A}\mathbf{W}_2^\top +
#    \mathbf{1}\mathbf{b}_2^\top)$ before the read-out. Write the backward pass with shapes
#    only: what is $\partial J/\partial \mathbf{A}$ now, and what shape does each factor have?
#
#    :::{dropdown} Hint
#    Write $\boldsymbol\Delta_2$ for $\partial J/\partial \mathbf{Z}_2$ ($N \times H_2$).
#    Then $\partial J/\partial \mathbf{A} = \boldsymbol\Delta_2 \mathbf{W}_2$ ($N \times H$),
#    and the layer below repeats the pattern with $\boldsymbol\Delta = (\partial J/\partial
#    \mathbf{A}) \odot (1 - \mathbf{A} \odot \mathbf{A})$.
#    :::
#
# 3. **Why divide by the step taken?** `numerical_gradient` from `helpers.gradcheck` divides
#    by $2\varepsilon$. For which parameter values would that make a visible difference in
#    float64, with $\varepsilon = 10^{-6}$?
#
#    :::{dropdown} Answer
#    The relative difference is at most $u|\theta|/\varepsilon \approx 10^{-10}|\theta|$, so
#    it reaches the $10^{-6}$ tolerance only for $|\theta|$ near $10^{4}$: never for
#    weights at the scale of an initialised network.
#    :::
