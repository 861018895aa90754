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
# # An MLP in NumPy, and two checks of its gradient
#
# Chapters 1 and 2 computed gradients; this chapter uses them to train networks. This section
# writes a two-layer perceptron in NumPy, with its forward and backward passes for a whole
# mini-batch, for the Fashion-MNIST problem of 001 (problem 3.1). Before any training, two
# checks: a sampled finite-difference check of every gradient, and the source's cheaper
# *magnitude check*, which compares gradient norms across batch sizes. Each catches a bug the
# other misses, and we show one of each.

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
from threadpoolctl import threadpool_limits

from helpers import profiles, results
from helpers.glue import glue
from helpers.gradcheck import check_gradients

run = profiles.setup(
    profile,
    seed=3,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (the source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    hidden=(32, 256, 256),  # hidden units of the NumPy MLP
    check_samples=(5, 30, 100),  # sampled entries per parameter in the gradient check
)
_ = threadpool_limits(limits=1)  # one thread, as in the rest of the chapter
run

# %% [markdown]
# ## The data: Fashion-MNIST with the source's split
#
# Fashion-MNIST {cite:p}`xiao2017fashion` has 60,000 training and 10,000 test images of
# clothing, $28\times28$ grey levels, in ten classes. The source (001, 3) uses 10,000 images
# for training, 2,000 for validation and 10,000 for testing. We draw the first two from the
# official training set with a seeded permutation, so they are disjoint, and take the test
# images from the official test set. Pixels are scaled to $[0, 1]$ and each image is
# flattened to a vector of $d = 784$ numbers. The later sections load the same split with
# the function below.

# %% tags=["save"]
import math
import time

import numpy as np

from helpers import data


def flatten(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 784) with values in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def fashion_split(n_train: int, n_val: int, n_test: int, seed: int) -> dict:
    """name -> (images (N, 784) float32, labels (N,) int64): train, val, test."""
    train, test = data.load_fashion_mnist("train"), data.load_fashion_mnist("test")
    order = np.random.default_rng(seed).permutation(len(train.labels))
    rows = {"train": order[:n_train], "val": order[n_train : n_train + n_val]}
    split = {name: (flatten(train.images[r]), train.labels[r])
             for name, r in rows.items()}
    split["test"] = (flatten(test.images[:n_test]), test.labels[:n_test])
    return {name: (x, y.astype(np.int64)) for name, (x, y) in split.items()}


# %%
fm = fashion_split(run.n_train, run.n_val, run.n_test, seed=run.seed)
{name: x.shape for name, (x, _) in fm.items()}

# %% [markdown]
# ## Forward and backward, one layer at a time
#
# The network of the source maps an image $x \in \mathbb R^d$ to class probabilities through
# a linear layer with $M$ outputs, a ReLU, a second linear layer with $K = 10$ outputs and a
# softmax. We process a mini-batch of $B$ images at once, stacked as the rows of
# $X \in \mathbb R^{B\times d}$, and keep the source's orientation of the weights,
# $W^{(1)} \in \mathbb R^{M\times d}$ and $W^{(2)} \in \mathbb R^{K\times M}$; a row vector
# $x^\top$ then maps to $x^\top W^\top$:
#
# $$
# U = X W^{(1)\top} + \mathbf 1 b^{(1)\top}, \qquad H = \max(0, U), \qquad
# A = H W^{(2)\top} + \mathbf 1 b^{(2)\top}, \qquad
# \ell = -\frac1B \sum_{i=1}^B \log \frac{e^{A_{i y_i}}}{\sum_k e^{A_{ik}}} .
# $$ (eq-mlp)
#
# The backward pass is Chapter 1's matrix-form backpropagation. Write $\bar Z$ for
# $\partial\ell/\partial Z$, an array of the shape of $Z$. For the softmax cross-entropy,
# with $P$ the matrix of softmax probabilities and $Y$ the one-hot labels,
#
# $$
# \bar A = \frac{1}{B}\,(P - Y).
# $$ (eq-softmax-ce-grad)
#
# (For one example, $\partial(-a_y + \log\sum_k e^{a_k})/\partial a_j = p_j - [j = y]$; the
# $1/B$ comes from the mean.) A linear layer $V = Z W^\top + \mathbf 1 b^\top$ passes back
#
# $$
# \bar W = \bar V^\top Z, \qquad \bar b = \bar V^\top \mathbf 1, \qquad \bar Z = \bar V W,
# $$ (eq-linear-grad)
#
# where the shapes decide the order of the factors ($\bar W$ is $M\times d$, that is
# $(M\times B)(B\times d)$), and the bias gradient sums over the batch because the bias was
# added to every row. The ReLU passes the gradient where its input was positive:
# $\bar U = \bar H \odot [U > 0]$. Each layer keeps what its backward pass needs from the
# forward pass: the linear layer its input, the ReLU its mask. That memory, one activation
# per layer and example, is the price of reverse mode (Chapter 2).

# %% tags=["save"]
class Linear:
    """V = Z W^T + b for the rows Z of a batch; W is (n_out, n_in), as in eq-mlp."""

    def __init__(self, n_in: int, n_out: int, rng, std: float = 0.1, dtype=np.float32):
        # The source's initialization: every weight and bias ~ N(0, 0.1^2).
        self.W = rng.normal(0.0, std, (n_out, n_in)).astype(dtype)
        self.b = rng.normal(0.0, std, n_out).astype(dtype)
        self.dW, self.db = np.zeros_like(self.W), np.zeros_like(self.b)

    def forward(self, Z):
        self.Z = Z
        return Z @ self.W.T + self.b

    def backward(self, G, input_grad: bool = True):
        self.dW = G.T @ self.Z  # eq-linear-grad
        self.db = G.sum(axis=0)
        return G @ self.W if input_grad else None


class ReLU:
    def forward(self, U):
        self.mask = U > 0
        return U * self.mask

    def backward(self, G, input_grad: bool = True):
        return G * self.mask


class SoftmaxCrossEntropy:
    def forward(self, A, y):
        A = A - A.max(axis=1, keepdims=True)  # same softmax; exp cannot overflow
        log_p = A - np.log(np.exp(A).sum(axis=1, keepdims=True))
        self.P, self.y = np.exp(log_p), y
        return -log_p[np.arange(len(y)), y].mean()

    def backward(self):
        G = self.P.copy()
        G[np.arange(len(self.y)), self.y] -= 1.0  # P - Y, eq-softmax-ce-grad
        return G / len(self.y)


# %% [markdown]
# The model chains the layers. Its backward pass visits them in reverse order and does not
# compute the gradient with respect to the images, which nothing needs (it would cost as
# much as the first layer's forward pass). SGD then moves every parameter against its
# gradient, $\theta \leftarrow \theta - \eta\,\bar\theta$. The rest is bookkeeping, in a
# base class (collapsed below): the parameters and gradients by name, a copy of the state
# and the accuracy on a data set.

# %% tags=["save", "hide-input"]
class Bookkeeping:
    """What an MLP needs besides its forward and backward passes."""

    @property
    def linears(self):
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    def params(self) -> dict:
        """The parameter arrays themselves (not copies): W1, b1, W2, b2."""
        return {f"{n}{i}": getattr(lin, n)
                for i, lin in enumerate(self.linears, 1) for n in "Wb"}

    def grads(self) -> dict:
        return {f"{n}{i}": getattr(lin, "d" + n)
                for i, lin in enumerate(self.linears, 1) for n in "Wb"}

    def state(self) -> dict:
        return {name: p.copy() for name, p in self.params().items()}

    def load(self, state: dict):
        for name, p in self.params().items():
            p[...] = state[name]

    def accuracy(self, X, y, chunk: int = 5_000) -> float:
        hits = sum(int((self.logits(X[i : i + chunk]).argmax(1)
                        == y[i : i + chunk]).sum())
                   for i in range(0, len(y), chunk))
        return hits / len(y)


# %% tags=["save"]
class MLP(Bookkeeping):
    """Linear -> ReLU -> Linear, trained with softmax cross-entropy (eq-mlp)."""

    def __init__(self, n_in: int, n_hidden: int, n_classes: int, rng, dtype=np.float32):
        self.layers = [
            Linear(n_in, n_hidden, rng, dtype=dtype),
            ReLU(),
            Linear(n_hidden, n_classes, rng, dtype=dtype),
        ]
        self.criterion = SoftmaxCrossEntropy()

    def logits(self, X):
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def loss(self, X, y) -> float:
        return float(self.criterion.forward(self.logits(X), y))

    def backward(self):
        G = self.criterion.backward()
        for i, layer in reversed(list(enumerate(self.layers))):
            G = layer.backward(G, input_grad=i > 0)

    def sgd_step(self, lr: float):
        for lin in self.linears:
            lin.W -= lr * lin.dW
            lin.b -= lr * lin.db


def mlp_like(state: dict, dtype) -> MLP:
    """A fresh MLP holding the parameters `state`, converted to `dtype`."""
    n_hidden, n_in = state["W1"].shape
    rng = np.random.default_rng(0)  # any: the weights are overwritten
    model = MLP(n_in, n_hidden, state["W2"].shape[0], rng, dtype=dtype)
    model.load({k: v.astype(dtype) for k, v in state.items()})
    return model


# %%
init_state = MLP(784, run.hidden, 10, np.random.default_rng(run.seed)).state()
{name: p.shape for name, p in init_state.items()}

# %% [markdown]
# ## The gradient check
#
# Chapter 1's gradient check compares the backward pass with centred differences. Here the
# network has {glue:text}`n_params_mlp:,` parameters, and a centred difference costs two
# forward passes per parameter, so, as the source does, we check *sampled entries*:
# `check_samples` random entries of each of $W^{(1)}, b^{(1)}, W^{(2)}, b^{(2)}$, compared
# with the normwise relative error of `helpers.gradcheck`, on a batch of 16 training images.
# The check runs on a float64 copy of the network: in float32 a centred difference keeps
# only about half of its seven digits (Chapter 1 shows the curve), and could not tell a
# correct gradient from one wrong in the fourth digit. In float64 the error of a correct
# gradient is of order $10^{-8}$ or smaller, and `check_gradients` raises an error if any
# exceeds its tolerance $10^{-6}$, far above that and far below any real bug.

# %%
check_rows = np.random.default_rng(run.seed + 1).choice(run.n_train, size=16,
                                                        replace=False)
X_check = fm["train"][0][check_rows].astype(np.float64)
y_check = fm["train"][1][check_rows]


def gradient_check(model: MLP, tol: float = 1e-6) -> dict:
    """Sampled check of the model's backward pass on the check batch (float64)."""
    model.loss(X_check, y_check)
    model.backward()
    return check_gradients(lambda: model.loss(X_check, y_check), model.params(),
                           {k: g.copy() for k, g in model.grads().items()},
                           samples=run.check_samples, tol=tol)


grad_errors = gradient_check(mlp_like(init_state, np.float64))  # raises if one is wrong
grad_errors

# %% tags=["hide-input"]
for name, err in grad_errors.items():
    results.record(f"gradcheck_rel_err_{name.lower()}", err,
                   description=f"sampled gradient check of {name} (float64)")
glue("n_params_mlp", sum(p.size for p in init_state.values()), display=False)
glue("grad_err_max", max(grad_errors.values()), display=False)

# %% [markdown]
# The largest of the four relative errors is {glue:text}`grad_err_max:.1e`, far below
# $10^{-6}$.
#
# A classic bug is a ReLU whose backward pass forgets the mask and passes the gradient
# through everywhere, as if the layer were the identity. The forward pass is unchanged,
# training still lowers the loss for a while, and nothing looks wrong, except the gradient
# check (run here with an infinite tolerance, so that it reports instead of raising):

# %%
class LeakyBugReLU(ReLU):
    def backward(self, G, input_grad: bool = True):
        return G  # the bug: the mask [U > 0] is missing


broken = mlp_like(init_state, np.float64)
broken.layers[1] = LeakyBugReLU()
broken_errors = gradient_check(broken, tol=math.inf)
assert broken_errors["W1"] > 1e-6 and broken_errors["b1"] > 1e-6
assert broken_errors["W2"] < 1e-6  # layer 2's gradient is computed before the bug

# %% tags=["hide-input"]
glue("broken_rel_err_w1", float(broken_errors["W1"]), display=False)

# %% [markdown]
# The first layer's gradient is now off by a relative error of
# {glue:text}`broken_rel_err_w1:.2f`, while the second layer's still passes: the check also
# says *where* the bug is, since only the layers below the faulty backward pass are wrong.
#
# ## The magnitude check
#
# The source adds a second, cheaper test. A mini-batch gradient is an unbiased estimate of
# the gradient over the whole training set, so the gradient of $W^{(1)}$ on a batch of 50
# should be of the same size as on a batch of 5,000. (The source says it compares the
# $\ell_1$-norm of $W^{(1)}$ itself; $W^{(1)}$ does not depend on the batch, so it must mean
# the gradient of $W^{(1)}$, which is what we compare.) "The same size" can be made precise.
# Let $g_i$ be the gradient of example $i$'s loss, $g$ their mean over the $N$ training
# examples and $\Sigma = \frac1N \sum_i (g_i - g)(g_i - g)^\top$ their covariance. A batch of
# $B$ distinct examples drawn at random gives the mean $g_B$ of its $B$ gradients, with
# $\mathbb E\, g_B = g$ and, by the variance of a sample mean drawn without replacement,
#
# $$
# \mathbb E\,\|g_B\|_2^2 = \|g\|_2^2 + \frac{\operatorname{tr}\Sigma}{B}\,\frac{N - B}{N - 1}.
# $$ (eq-batch-norm)
#
# The last factor is the *finite-population correction*: close to 1 for a batch much
# smaller than the training set (0.995 for 50 of 10,000), 0.5 for a batch of half of it,
# and 0 for the whole set, whose mean gradient is $g$ without noise. So a small batch gives
# a *larger* norm on average, by the noise term. We average $\|\bar W^{(1)}\|_1$, the
# source's norm, over 20 random batches of 50 and 3 of 5,000, and call the check passed
# when their ratio is within a factor of 2.
#
# {eq}`eq-batch-norm` is about the squared $\ell_2$ norm, for which the noise adds up
# exactly; for the $\ell_1$ norm there is no such identity, only the same tendency. To check
# the formula itself we also average $\|\bar W^{(1)}\|_2^2$ and compare it with the
# right-hand side, computed exactly on the whole training set: the gradient of $W^{(1)}$ for
# example $i$ is the outer product $\delta_i x_i^\top$ of its backpropagated signal
# $\delta_i = \bar u_i$ and its image, so $\|g_i\|_2^2 = \|\delta_i\|^2 \|x_i\|^2$ and
# $\operatorname{tr}\Sigma = \frac1N\sum_i \|g_i\|_2^2 - \|g\|_2^2$. The tolerance comes
# from the spread of $\|g_B\|_2^2$ from batch to batch, which we measure: its relative
# standard deviation over single batches of 50, divided by $\sqrt{20}$, is the standard
# error of the mean of 20 batches (a few percent), and at $B = 5{,}000$ the spread is far
# smaller. We allow 20%, and the code checks that this is at least two standard errors.

# %%
def mean_grad_norms(model: MLP, batch_size: int, n_batches: int, rng):
    """Over random batches (without replacement): the mean of ||dW1||_1, the mean of
    ||dW1||_2^2 and the standard error of the latter, relative to it."""
    X, y = fm["train"]
    l1, l2sq = [], []
    for _ in range(n_batches):
        rows = rng.choice(len(y), size=min(batch_size, len(y)), replace=False)
        model.loss(X[rows], y[rows])
        model.backward()
        l1.append(np.abs(model.linears[0].dW).sum())
        l2sq.append((model.linears[0].dW ** 2).sum())
    rel_se = np.std(l2sq) / np.mean(l2sq) / math.sqrt(n_batches)
    return float(np.mean(l1)), float(np.mean(l2sq)), float(rel_se)


def magnitude_ratio(model: MLP, seed: int) -> float:
    """The source's check: mean ||dW1||_1 on batches of 50 over batches of 5,000."""
    rng = np.random.default_rng(seed)
    small = mean_grad_norms(model, 50, 20, rng)[0]
    return small / mean_grad_norms(model, 5_000, 3, rng)[0]


rng_mag = np.random.default_rng(run.seed + 2)
magnitude_model = mlp_like(init_state, np.float64)
l1_small, l2sq_small, se_small = mean_grad_norms(magnitude_model, 50, 20, rng_mag)
l1_large, l2sq_large, _ = mean_grad_norms(magnitude_model, 5_000, 3, rng_mag)
assert 0.5 < l1_small / l1_large < 2.0  # the source's check: the same magnitude
assert l1_small > l1_large  # the noise term of eq-batch-norm, in the l1 norm too

# %% [markdown]
# And {eq}`eq-batch-norm` itself, for the squared $\ell_2$ norm, with the exact moments of
# the whole training set:

# %%
def w1_gradient_moments(model: MLP) -> tuple[float, float]:
    """||g||_2^2 and tr(Sigma) of eq-batch-norm for W1, over the whole training set."""
    X, y = fm["train"]
    X = X.astype(model.linears[0].W.dtype)
    model.loss(X, y)  # forward pass over all N images, kept for backward
    G = len(y) * model.criterion.backward()  # row i: gradient of example i's loss
    delta = model.layers[1].backward(model.layers[2].backward(G))  # row i: delta_i
    g_sq = float(((delta.T @ X / len(y)) ** 2).sum())  # ||full-batch gradient||^2
    # ||delta_i x_i^T||^2 = ||delta_i||^2 ||x_i||^2
    per_example_sq = (delta**2).sum(1) * (X**2).sum(1)
    return g_sq, float(per_example_sq.mean()) - g_sq


assert se_small < 0.1, se_small  # so that 20% is at least two standard errors
n_full = len(fm["train"][1])
g_sq, tr_sigma = w1_gradient_moments(magnitude_model)
predicted = {}
for B, measured in ((50, l2sq_small), (5_000, l2sq_large)):
    B_eff = min(B, n_full)
    predicted[B] = g_sq + tr_sigma / B_eff * (n_full - B_eff) / (n_full - 1)
    assert abs(measured / predicted[B] - 1) < 0.2, (B, measured, predicted[B])

# %% tags=["hide-input"]
results.record("magnitude_l1_batch50", l1_small, description="mean l1 norm of dW1, batch 50")
results.record("magnitude_l1_batch5000", l1_large,
               description="mean l1 norm of dW1, batch 5000")
results.record("magnitude_ratio", l1_small / l1_large, description="batch-50 / batch-5000 norm")
for name, value in {
    "magnitude_l2sq_pred_small": predicted[50], "magnitude_l2sq_meas_small": l2sq_small,
    "magnitude_l2sq_pred_large": predicted[5_000], "magnitude_l2sq_meas_large": l2sq_large,
    "magnitude_l2sq_full": g_sq, "magnitude_se_pct": 100 * se_small,
    "magnitude_noise_50": tr_sigma / 50 * (n_full - 50) / (n_full - 1),
}.items():
    glue(name, float(value), display=False)

# %% [markdown]
# The $\ell_1$-norm of the gradient of $W^{(1)}$ is {glue:text}`magnitude_l1_batch50:,.0f`
# on batches of 50 and {glue:text}`magnitude_l1_batch5000:,.0f` on batches of 5,000: a ratio
# of {glue:text}`magnitude_ratio:.2f`, the same magnitude, and larger for the small batch.
# For the squared $\ell_2$ norm the formula predicts
# {glue:text}`magnitude_l2sq_pred_small:.2f` at $B = 50$ ($\|g\|_2^2 =$
# {glue:text}`magnitude_l2sq_full:.2f` plus a noise term of
# {glue:text}`magnitude_noise_50:.2f`) and the 20 batches give
# {glue:text}`magnitude_l2sq_meas_small:.2f` on average, with a standard error of
# {glue:text}`magnitude_se_pct:.1f`%; at $B = 5{,}000$ it predicts
# {glue:text}`magnitude_l2sq_pred_large:.2f` and the batches give
# {glue:text}`magnitude_l2sq_meas_large:.2f`.
#
# ## What each check catches
#
# The magnitude check compares one gradient with another *of the same code*, so it only
# sees errors that change with the batch size. A gradient wrong by a constant factor, 2
# say, is wrong by the same factor at $B = 50$ and at $B = 5{,}000$: the ratio is
# unchanged and the check passes. The gradient check catches that at once. Conversely, the
# gradient check differentiates the loss *as the code computes it*, so it cannot notice a
# loss that is itself wrong, as long as the backward pass is faithful to it. The classic
# case is a loss that sums over the batch instead of averaging, with a backward pass
# without the $1/B$ of {eq}`eq-softmax-ce-grad` to match: the gradient is the exact
# gradient of the wrong loss, and it grows in proportion to $B$. Training with it would
# make the learning rate act $B$ times larger, so that no rate suits two batch sizes. The
# magnitude check sees the ratio fall to about $50/5{,}000$ times the correct one.

# %%
class SumCrossEntropy(SoftmaxCrossEntropy):
    """Bug 1: the loss sums over the batch, and backward matches it (no 1/B)."""

    def forward(self, A, y):
        return len(y) * super().forward(A, y)

    def backward(self):
        return len(self.y) * super().backward()


class DoubledCrossEntropy(SoftmaxCrossEntropy):
    """Bug 2: backward returns twice the gradient of the loss forward computes."""

    def backward(self):
        return 2 * super().backward()


bug_report = {}
for bug, criterion in (("sum, not mean", SumCrossEntropy()),
                       ("gradient doubled", DoubledCrossEntropy())):
    model = mlp_like(init_state, np.float64)
    model.criterion = criterion
    bug_report[bug] = (max(gradient_check(model, tol=math.inf).values()),
                       magnitude_ratio(model, seed=run.seed + 2))

(sum_grad, sum_ratio), (dbl_grad, dbl_ratio) = bug_report.values()
assert sum_grad < 1e-6 and not 0.5 < sum_ratio < 2  # passes one check, fails the other
assert dbl_grad > 1e-6 and 0.5 < dbl_ratio < 2  # ... and the other way round

# %% tags=["hide-input"]
display(Markdown(
    "| bug | gradient check: largest relative error | magnitude check: ratio of norms |\n"
    "|---|---|---|\n" + "\n".join(f"| {bug} | {g:.1e} | {r:.3f} |"
                                  for bug, (g, r) in bug_report.items())))
glue("bug_sum_ratio", sum_ratio, display=False)
glue("bug_double_grad", dbl_grad, display=False)

# %% [markdown]
# The table shows the two blind spots. The summed loss passes the gradient check, whose
# errors stay at the level of a correct gradient, and fails the magnitude check with a ratio
# of {glue:text}`bug_sum_ratio:.3f`, the correct ratio divided by 100. The doubled gradient
# fails the gradient check with a relative error of {glue:text}`bug_double_grad:.2f` (the
# normwise error of $2g$ against $g$ is exactly $\tfrac12$) and passes the magnitude check
# with the same ratio as the correct code. (Both readings follow from how each bug scales,
# so the two asserts above are demonstrations, not tests: multiplying every gradient by $B$
# multiplies the ratio by $50/5{,}000$, and doubling every gradient leaves it unchanged.)
# Run both checks.
#
# ## What this section showed
#
# A two-layer MLP is three small layers, each with a forward pass that keeps what its
# backward pass needs and a backward pass of one or two matrix products. A sampled
# finite-difference check in float64 confirms every gradient to about $10^{-8}$ and points
# at the layer where a bug sits. The source's magnitude check is cheaper and weaker: it
# only sees errors that scale with the batch size, but that is exactly the class the
# gradient check is blind to, a loss computed wrongly and differentiated faithfully. Its
# reading is also a small theorem, {eq}`eq-batch-norm`: smaller batches give larger
# gradient norms, by a noise term that the run matches within a few percent.
#
# ## Exercises
#
# 1. **A wrong transpose.** In `Linear.backward`, replace `G @ self.W` by `G @ self.W.T`
#    for a square hidden layer (add a second hidden layer of the same width). Does the
#    gradient check catch it? Does the magnitude check?
#
#    :::{dropdown} Answer
#    The gradient check does: the transposed matrix sends the gradient to the wrong units,
#    a relative error of order one in every layer below. The magnitude check does not: the
#    wrong gradient is wrong in the same way at every batch size, and $W$ and $W^\top$ have
#    the same norms.
#    :::
#
# 2. **The factor of the finite-population correction.** Repeat the magnitude check with
#    batches of 5,000 drawn *with* replacement. Which term of {eq}`eq-batch-norm` changes,
#    and by how much at $B = 5{,}000$, $N = 10{,}000$?
#
#    :::{dropdown} Answer
#    With replacement the factor $(N - B)/(N - 1)$ becomes 1, so the noise term doubles
#    (from about $\tfrac12 \operatorname{tr}\Sigma / B$ to $\operatorname{tr}\Sigma / B$).
#    At $B = 50$ nothing measurable changes.
#    :::
#
# 3. **Where the check samples.** The gradient check draws `check_samples` entries per
#    parameter. With 100 of the {glue:text}`n_params_mlp:,` entries, what is the chance of
#    missing a bug confined to one hidden unit's row of $W^{(1)}$ (784 entries)? What does
#    that suggest about how to sample?
#
#    :::{dropdown} Hint
#    Each sampled entry of $W^{(1)}$ lands in a given row with probability $1/M$; with
#    $M = 256$ and 100 samples the row is missed with probability about
#    $(1 - 1/256)^{100} \approx 0.68$. Sample per row (or per unit), or check a few whole
#    rows as well.
#    :::
