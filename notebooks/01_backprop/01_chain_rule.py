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
# # The chain rule on a mini CNN
#
# A convolutional network reduced to its bones has four parameters, few enough to write every
# partial derivative by hand. This section derives them, checks them against PyTorch's
# autograd, and trains the network with stochastic gradient descent driven by nothing but the
# hand-written gradient. Two ideas carry over to every network: a weight used in several
# places collects the gradient of every use, and a unit that is switched off passes no
# gradient at all.

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

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import ROUNDING_TOL

run = profiles.setup(
    profile,
    seed=12,
    check_trials=(3, 100, 300),  # random points at which the gradient is checked
    cnn_train=(200, 1000, 1000),  # training examples (the test set is as large)
    cnn_epochs=(10, 30, 30),
    starts=(10, 10, 20),  # random starts of SGD
)
run

# %% [markdown]
# ## The network and its loss
#
# Problem 2 of 001 takes an input $\mathbf{x} = (x_1, x_2, x_3)$, one filter with two taps
# $(w_1, w_2)$ that slides over it, a ReLU, and a linear read-out $(v_1, v_2)$. A label
# $y \in \{-1, +1\}$ is scored with the logistic loss:
#
# $$
# \begin{aligned}
# a_1 &= w_1 x_1 + w_2 x_2, & a_2 &= w_1 x_2 + w_2 x_3,\\
# o_1 &= \max(0, a_1), & o_2 &= \max(0, a_2),\\
# \hat y &= v_1 o_1 + v_2 o_2, & \ell &= \ln\bigl(1 + e^{-y \hat y}\bigr).
# \end{aligned}
# $$ (bp-cnn-forward)
#
# The loss depends on the output $\hat y$ only through the margin $y \hat y$, and each
# filter weight is *used twice*, once at each position of the filter.
#
# ## The backward pass, one node at a time
#
# **The loss.** Write $\sigma(z) = 1 / (1 + e^{-z})$ and use $1 - \sigma(z) = \sigma(-z)$:
#
# $$
# \delta := \frac{\partial \ell}{\partial \hat y}
#   = \frac{-y\, e^{-y\hat y}}{1 + e^{-y\hat y}}
#   = -y\, \sigma(-y \hat y) = y\,\bigl(\sigma(y\hat y) - 1\bigr).
# $$ (bp-cnn-delta)
#
# It is negative for $y = +1$ (raising $\hat y$ lowers the loss) and positive for
# $y = -1$, and its size $\sigma(-y\hat y)$ is the probability the model gives to the wrong
# label: an example classified right with confidence contributes almost nothing.
#
# **The read-out.** $\hat y$ is linear in $v_k$ with coefficient $o_k$, so
#
# $$
# \frac{\partial \ell}{\partial v_k} = \frac{\partial \ell}{\partial \hat y}
#   \frac{\partial \hat y}{\partial v_k} = \delta\, o_k, \qquad k = 1, 2.
# $$ (bp-cnn-dv)
#
# **Through the ReLU.** $o_k = \max(0, a_k)$ has derivative $H(a_k) = \mathbb{1}[a_k > 0]$.
# At the kink $a_k = 0$ we take $0$, which is a valid subgradient and PyTorch's choice too;
# for continuous inputs the kink is hit with probability zero. Hence
#
# $$
# \frac{\partial \ell}{\partial a_k} = \delta\, v_k\, H(a_k).
# $$ (bp-cnn-da)
#
# **The filter.** $w_1$ reaches the loss along two paths, through $a_1$ (where it multiplies
# $x_1$) and through $a_2$ (where it multiplies $x_2$). The multivariable chain rule adds the
# paths:
#
# $$
# \begin{aligned}
# \frac{\partial \ell}{\partial w_1}
#   &= \frac{\partial \ell}{\partial a_1}\frac{\partial a_1}{\partial w_1}
#    + \frac{\partial \ell}{\partial a_2}\frac{\partial a_2}{\partial w_1}
#    = \delta\,\bigl(v_1 H(a_1)\, x_1 + v_2 H(a_2)\, x_2\bigr),\\
# \frac{\partial \ell}{\partial w_2}
#   &= \frac{\partial \ell}{\partial a_1}\frac{\partial a_1}{\partial w_2}
#    + \frac{\partial \ell}{\partial a_2}\frac{\partial a_2}{\partial w_2}
#    = \delta\,\bigl(v_1 H(a_1)\, x_2 + v_2 H(a_2)\, x_3\bigr).
# \end{aligned}
# $$ (bp-cnn-dw)
#
# This sum over positions is what parameter sharing means for the backward pass: a shared
# weight collects the gradient of every place it is used. Section 4 meets it again in matrix
# form, when a convolution becomes a matrix.
#
# ## The code
#
# The functions below transcribe {eq}`bp-cnn-forward` to {eq}`bp-cnn-dw` on plain Python
# floats. Two helpers compute $\sigma$ and $\ln(1 + e^{z})$ without overflow when $|z|$ is
# large. Later sections reuse these functions (the cells are saved to the book's `helpers`
# package), so they are written once, here.

# %% tags=["save"]
import math

import numpy as np
import torch
import torch.nn.functional as F

from helpers.gradcheck import relative_error

F64 = torch.float64


def sigmoid(z: float) -> float:
    """sigma(z) = 1 / (1 + e^-z), never exponentiating a large positive number."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def softplus(z: float) -> float:
    """ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|), stable: e^-|z| never overflows."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def cnn_forward(p, x):
    """Eq. (bp-cnn-forward). p = (w1, w2, v1, v2); returns a1, a2, o1, o2, y_hat."""
    w1, w2, v1, v2 = p
    a1 = w1 * x[0] + w2 * x[1]
    a2 = w1 * x[1] + w2 * x[2]
    o1, o2 = max(0.0, a1), max(0.0, a2)
    return a1, a2, o1, o2, v1 * o1 + v2 * o2


def cnn_loss(p, x, y: float) -> float:
    *_, y_hat = cnn_forward(p, x)
    return softplus(-y * y_hat)


def cnn_grad(p, x, y: float) -> np.ndarray:
    """(dl/dw1, dl/dw2, dl/dv1, dl/dv2) from eqs. (bp-cnn-delta) to (bp-cnn-dw)."""
    w1, w2, v1, v2 = p
    a1, a2, o1, o2, y_hat = cnn_forward(p, x)
    delta = y * (sigmoid(y * y_hat) - 1.0)
    h1, h2 = float(a1 > 0), float(a2 > 0)
    return np.array([
        delta * (v1 * h1 * x[0] + v2 * h2 * x[1]),
        delta * (v1 * h1 * x[1] + v2 * h2 * x[2]),
        delta * o1,
        delta * o2,
    ])


# %% [markdown]
# ## A check against autograd
#
# The referee builds the same network from PyTorch's own operations, with `F.conv1d` for the
# filter (so the two positions come from PyTorch's convolution, not from our indexing), and
# lets autograd differentiate it. We compare the two gradients with the *relative error*
# $\lVert \mathbf{a} - \mathbf{b} \rVert / \max(\lVert \mathbf{a} \rVert,
# \lVert \mathbf{b} \rVert)$, separately for the filter $(w_1, w_2)$ and the read-out
# $(v_1, v_2)$, so that an error in one cannot hide behind a larger other. Both sides are
# exact formulas evaluated in float64 in different orders, so they may differ only by
# rounding, a few units in the sixteenth digit. We ask for a relative error below
# $10^{-10}$: a million times looser than rounding, and still far below what any real
# mistake produces. The book uses this one measure and this tolerance, `ROUNDING_TOL` in
# `helpers.gradcheck`, for every comparison of two exact computations.

# %% tags=["save"]
def cnn_loss_torch(p: torch.Tensor, x: torch.Tensor, y: float) -> torch.Tensor:
    """The mini CNN in PyTorch operations; p = (w1, w2, v1, v2) as one tensor."""
    a = F.conv1d(x.view(1, 1, 3), p[:2].view(1, 1, 2)).view(2)  # (a1, a2)
    y_hat = p[2:] @ torch.relu(a)
    return F.softplus(-y * y_hat)


def cnn_grad_autograd(p, x, y: float) -> np.ndarray:
    p = torch.tensor(p, dtype=F64, requires_grad=True)
    cnn_loss_torch(p, torch.tensor(x, dtype=F64), y).backward()
    return p.grad.numpy()


def random_cnn_point(rng: np.random.Generator, margin: float = 1e-3):
    """Random parameters, input and label, kept `margin` away from the ReLU kinks."""
    while True:
        p, x, y = rng.normal(size=4), rng.normal(size=3), float(rng.choice([-1.0, 1.0]))
        a1, a2, *_ = cnn_forward(p, x)
        if min(abs(a1), abs(a2)) > margin:
            return p, x, y


def cnn_relative_error(g, h) -> float:
    """The worse relative error of the filter (w1, w2) and of the read-out (v1, v2)."""
    return max(relative_error(g[:2], h[:2]), relative_error(g[2:], h[2:]))


# %%
rng = np.random.default_rng(run.seed)
points = [random_cnn_point(rng) for _ in range(run.check_trials)]
err_cnn_autograd = max(cnn_relative_error(cnn_grad(*pt), cnn_grad_autograd(*pt))
                       for pt in points)
assert err_cnn_autograd < ROUNDING_TOL, err_cnn_autograd  # 1e-10

# %% tags=["hide-input"]
results.record("cnn_autograd_max_rel_err", err_cnn_autograd,
               description="mini CNN: hand gradient vs autograd, max relative error")
glue("check_points", len(points), display=False)

# %% [markdown]
# Over {glue:text}`check_points` random points, the largest relative difference between
# the hand-derived gradient and autograd's is {glue:text}`cnn_autograd_max_rel_err:.1e`:
# agreement to rounding. Agreement with autograd is reassuring, but autograd is itself a
# program; {doc}`the next section <02_gradient_checking>` builds a referee that uses nothing
# but the loss function.
#
# ## Training with SGD
#
# With a gradient we trust, training is stochastic gradient descent
# {cite:p}`robbins1951stochastic`: pick an example, compute all four partial derivatives at
# the current parameters, and step against them.
#
# ```{prf:algorithm} SGD for the mini CNN
# :label: bp-alg-cnn-sgd
#
# **Inputs** training set $(\mathbf{x}_1, y_1), \dots, (\mathbf{x}_n, y_n)$, step $\eta > 0$
#
# **Output** parameters $w_1, w_2, v_1, v_2$
#
# 1. Initialise $w_1, w_2, v_1, v_2$ at random.
# 2. Repeat for each epoch, over the examples in a fresh random order $i$:
#    1. Forward: $a_1, a_2, o_1, o_2, \hat y$ from {eq}`bp-cnn-forward` with
#       $\mathbf{x} = \mathbf{x}_i$.
#    2. Backward: $\delta = y_i(\sigma(y_i \hat y) - 1)$ and the four partials
#       {eq}`bp-cnn-dv`, {eq}`bp-cnn-dw`, all at the *current* parameters.
#    3. Update all four at once: $\theta \leftarrow \theta - \eta\, \partial\ell/\partial\theta$.
# ```
#
# Two details of the source's version deserve a note. Its loop picks an example
# $(\mathbf{x}_i, y_i)$ but then indexes the inputs as $x_{n1}, x_{n2}, x_{n3}$ and the label
# as $y_n$: the same example is meant, and we write $i$ throughout. And the update is
# simultaneous: $w_1, w_2$ must be updated with the values of $v_1, v_2$ from the forward
# pass, not with freshly updated ones (the source's grading notes say the same); our code
# computes the whole gradient before changing anything.
#
# **The task.** A *teacher* network of the same shape, with filter $(1, -1)$ (a difference,
# that is, an edge detector) and read-out $(1, -1)$, labels Gaussian inputs: $y = +1$ when
# $\operatorname{relu}(x_1 - x_2) \ge \operatorname{relu}(x_2 - x_3)$, when the first drop
# is at least the second. The network has no bias, so when both ReLUs are off it outputs
# exactly $\hat y = 0$; we predict $+1$ when $\hat y \ge 0$, and the teacher's labels use the
# same rule. The student can represent the teacher exactly. Whether SGD finds it is another
# matter: the loss is not convex in the four weights, so we train the student from
# {glue:text}`n_starts` random starts and watch where each one ends.

# %%
def teacher_labels(X: np.ndarray) -> np.ndarray:
    teacher = (1.0, -1.0, 1.0, -1.0)
    return np.array([1.0 if cnn_forward(teacher, x)[-1] >= 0 else -1.0 for x in X])


X_train = rng.normal(size=(run.cnn_train, 3))
X_test = rng.normal(size=(run.cnn_train, 3))
y_train, y_test = teacher_labels(X_train), teacher_labels(X_test)
ETA = 0.1


def evaluate(p, X, y):
    """Mean loss, accuracy, and share of examples with both ReLUs off (y_hat = 0)."""
    outputs = [cnn_forward(p, x) for x in X]
    y_hat = np.array([out[-1] for out in outputs])
    loss = np.mean([softplus(-label * out)
                    for label, out in zip(y, y_hat, strict=True)])
    accuracy = np.mean(np.where(y_hat >= 0, 1.0, -1.0) == y)
    dead = np.mean([out[0] <= 0 and out[1] <= 0 for out in outputs])
    return float(loss), float(accuracy), float(dead)


def train(p, grad_fn, orders, steps=None):
    """Algorithm bp-alg-cnn-sgd.

    Returns the parameters and the test metrics of each epoch.
    """
    p = np.array(p, dtype=np.float64)
    history = [evaluate(p, X_test, y_test)]
    taken = 0
    for order in orders:
        for i in order:
            if steps is not None and taken == steps:
                return p, history
            p = p - ETA * grad_fn(p, X_train[i], y_train[i])  # all four at once
            taken += 1
        history.append(evaluate(p, X_test, y_test))
    return p, history


starts = [rng.normal(scale=0.5, size=4) for _ in range(run.starts)]
orders = [[rng.permutation(run.cnn_train) for _ in range(run.cnn_epochs)]
          for _ in starts]
trained = [train(p0, cnn_grad, order) for p0, order in zip(starts, orders, strict=True)]

# %% [markdown]
# Before looking at the result, one more check, of the training loop this time: the same
# number of SGD steps from the same start, in the same order, but with autograd's gradient in
# place of ours, must end at the same parameters. Rounding differences could in principle be
# amplified from step to step; over a few hundred steps of this small, stable problem they
# stay at the level of rounding, and we allow $10^{-9}$.

# %%
n_steps = min(300, run.cnn_train)
p_hand, _ = train(starts[0], cnn_grad, orders[0], steps=n_steps)
p_auto, _ = train(starts[0], cnn_grad_autograd, orders[0], steps=n_steps)
err_trajectory = cnn_relative_error(p_hand, p_auto)
assert err_trajectory < 1e-9, err_trajectory

# %% [markdown]
# Where did the starts end? A filter is a direction and a length, and the direction decides
# which inputs switch the units on. We compare each learned filter's direction with the
# teacher's, $(1, -1)/\sqrt 2$, by the cosine of the angle between them.

# %%
teacher_direction = np.array([1.0, -1.0]) / math.sqrt(2)
cosines = np.array([p[:2] @ teacher_direction / np.hypot(*p[:2]) for p, _ in trained])
# each run's accuracy: the median of its last five epochs, so that a one-epoch spike
# (visible in the figure below) does not decide it
accuracy = np.array([np.median([h[1] for h in history[-5:]]) for _, history in trained])
found = cosines > 0  # the filter points the teacher's way
# Two outcomes, whatever the share of each: filters that point the teacher's way end
# within 13 degrees of it (cos > 0.975), the others point against it; the teacher's are
# better.
assert np.all(cosines[found] > 0.975), cosines
assert found.any() and (~found).any(), cosines
assert accuracy[found].min() > accuracy[~found].max(), (accuracy, found)
# the reversed filter farthest from (-1, 1): its cosine is the closest to zero
reversed_angle = float(np.degrees(np.arccos(-cosines[~found].max())))

# %% tags=["hide-input"]
colours = {True: "C0", False: "C1"}
fig, (ax_loss, ax_acc) = plots.figure(ncols=2)
for (_, history), ok in zip(trained, found, strict=True):
    epochs = np.arange(len(history))
    ax_loss.plot(epochs, [h[0] for h in history], color=colours[ok], lw=1)
    ax_acc.plot(epochs, [100 * h[1] for h in history], color=colours[ok], lw=1)
best = int(np.argmax(np.where(found, accuracy, -1)))
p_best, history_best = trained[best]
_, _, dead_best = history_best[-1]
ax_loss.axhline(dead_best * math.log(2), color="gray", ls=":", label="floor")
for ok, label in ((True, "filter along (1, -1)"), (False, "filter along (-1, 1)")):
    ax_acc.plot([], [], color=colours[ok], label=label)
ax_loss.set(xlabel="epoch", ylabel="test loss (nats)", title="loss")
ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
ax_loss.legend()
ax_acc.legend(loc="lower right")
plots.glue_figure("fig_cnn_training", fig)

results.record("cnn_test_accuracy", float(accuracy[best]), unit="fraction",
               description="mini CNN trained by hand-written SGD: best test accuracy")
results.record("cnn_teacher_found", int(found.sum()),
               description=f"starts (of {run.starts}) whose filter points the teacher's way")
for name, value in {
    "n_starts": run.starts, "cnn_trajectory_steps": n_steps,
    "cnn_trajectory_err": err_trajectory, "cnn_found": int(found.sum()),
    "cnn_missed": int((~found).sum()), "cnn_reversed_angle": reversed_angle,
    "cnn_found_acc_min": float(100 * accuracy[found].min()),
    "cnn_found_acc_max": float(100 * accuracy[found].max()),
    "cnn_missed_acc_min": float(100 * accuracy[~found].min()),
    "cnn_missed_acc_max": float(100 * accuracy[~found].max()),
    "cnn_w_ratio": float(p_best[1] / p_best[0]), "cnn_v_ratio": float(p_best[3] / p_best[2]),
    "cnn_w_norm": float(np.hypot(p_best[0], p_best[1])),
    "cnn_dead_pct": float(100 * dead_best), "cnn_floor": float(dead_best * math.log(2)),
}.items():
    glue(name, value, display=False)

# %% [markdown]
# ```{glue:figure} fig_cnn_training
# ---
# name: fig-bp-cnn-training
# alt: >-
#   Test loss and test accuracy over the epochs for every random start; the runs split into
#   two groups, blue ones near 99 percent accuracy and orange ones lower.
# ---
# The mini CNN trained by hand-written SGD from several random starts, on the test set. The
# runs split into two groups: blue, whose filter ends along the teacher's $(1, -1)$, and
# orange, whose filter ends reversed, near $(-1, 1)$. The dotted line is the loss floor of the best
# blue run. The occasional one-epoch spikes are single steps that knock a run off course,
# likely because each layer's gradient scales with the other layer's weights, so that with a
# fixed step size the effective step grows as the weights do.
# ```
#
# Hand-written SGD, after {glue:text}`cnn_trajectory_steps` steps, agrees with
# autograd-driven SGD to {glue:text}`cnn_trajectory_err:.0e`. Of the
# {glue:text}`n_starts` starts, {glue:text}`cnn_found` end with a filter along the teacher's
# $(1, -1)$ and reach {glue:text}`cnn_found_acc_min:.1f`% to
# {glue:text}`cnn_found_acc_max:.1f`% test accuracy (the median of each run's last five
# epochs); the other {glue:text}`cnn_missed` end
# with the filter reversed, within {glue:text}`cnn_reversed_angle:.0f` degrees of
# $(-1, 1)$, at {glue:text}`cnn_missed_acc_min:.1f`% to
# {glue:text}`cnn_missed_acc_max:.1f`% ({numref}`fig-bp-cnn-training`). How many land in
# each group depends on the random starts; that there are two groups, and that the teacher's
# is the better one, held in every run (asserted above). A reversed filter detects rises
# instead of drops, and the read-out cannot turn rises into drops: those runs settle in a
# different valley of the loss. The chain rule computes the gradient exactly; which valley
# the descent ends in is decided by where it starts.
#
# The best run has found the teacher up to scale: the ratio $w_2 / w_1$ of its filter is
# {glue:text}`cnn_w_ratio:.2f` and the ratio $v_2 / v_1$ of its read-out
# {glue:text}`cnn_v_ratio:.2f`, against $-1$ and $-1$ for the teacher. The scale itself is not
# identifiable, since $\operatorname{relu}(c a) = c \operatorname{relu}(a)$ for $c > 0$ lets
# the filter grow while the read-out shrinks; the weights keep growing (the filter's norm is
# {glue:text}`cnn_w_norm:.1f`) because the logistic loss rewards ever larger margins.
#
# Its loss, though, stalls well above zero, and the backward pass explains why. On
# {glue:text}`cnn_dead_pct:.1f`% of the test inputs both ReLUs are off: for a filter along
# $(1, -1)$ these are the inputs that increase, $x_1 \le x_2 \le x_3$ (one in six of all
# Gaussian inputs). On them $\hat y = 0$, and the loss is $\ln 2$ whatever the read-out
# weights. There every partial derivative in {eq}`bp-cnn-dv` and {eq}`bp-cnn-dw` vanishes
# ($o_k = 0$ and $H(a_k) = 0$): the examples are classified correctly by the tie rule, but
# they teach the network nothing and set a floor of {glue:text}`cnn_floor:.3f` nats under
# the test loss (the dotted line). A bias term would remove the floor; the first exercise
# asks you to add one.


# %% [markdown]
# ## What this section showed
#
# The chain rule, applied node by node from the loss backwards, gives every partial
# derivative of the mini CNN; a weight shared between two positions adds up the gradient of
# both uses. The hand-written gradient agrees with autograd to rounding, and it trains the
# network as well as autograd does, step for step. The backward pass also explains what the
# training curve shows: inputs on which every ReLU is off produce no gradient, so the network
# cannot learn from them. And an exact gradient does not make the loss convex: from random
# starts, SGD ends in one of two solutions, and only one of them is the teacher's.
#
# ## Exercises
#
# 1. **A bias for the mini CNN.** Add a bias $c$ to both positions of the filter,
#    $a_k = w_1 x_k + w_2 x_{k+1} + c$, and a bias $b$ to the read-out. Derive
#    $\partial\ell/\partial c$ and $\partial\ell/\partial b$, extend `cnn_grad`, and check it
#    against autograd. Retrain: does the loss floor disappear?
#
#    :::{dropdown} Hint
#    The filter's bias is shared like its weights: $\partial\ell/\partial c = \delta\,(v_1
#    H(a_1) + v_2 H(a_2))$, one term per position, and $\partial\ell/\partial b = \delta$.
#    With $c > 0$ an increasing input no longer switches both units off, so its gradient is no
#    longer zero and the floor goes.
#    :::
#
# 2. **Where the loss stops teaching.** Show that $|\delta| = \sigma(-y\hat y)$ and use it to
#    explain why the loss keeps falling slowly while the accuracy no longer changes. Plot the
#    mean margin $y \hat y$ over the correctly classified training examples, epoch by epoch.
#
#    :::{dropdown} Hint
#    A correctly classified example with margin $m > 0$ still contributes a gradient of size
#    $\sigma(-m) \approx e^{-m}$, which pushes the margin up; the mean margin grows roughly
#    like the logarithm of the number of steps.
#    :::
#
# 3. **A kink on purpose.** Evaluate `cnn_grad` and autograd at a point with $a_1 = 0$
#    exactly (choose $\mathbf{x}$ and $\mathbf{w}$ to make it so). Do they agree? What do the
#    one-sided derivatives of the loss in $w_1$ say there?
#
#    :::{dropdown} Answer
#    Both use $H(0) = 0$, so they agree. The loss has a kink in $w_1$ at that point: the
#    derivative from the side where $a_1 > 0$ includes the term $\delta\, v_1 x_1$, the other
#    side does not. Any value between the two one-sided derivatives is a subgradient.
#    :::
