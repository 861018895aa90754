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
# # A reverse-mode engine on a tape
#
# Chapter 1 computed gradients by hand: one chain-rule step per layer, written out and checked
# against finite differences. This section turns that procedure into a program. We build a
# small reverse-mode engine that records the forward pass on a *tape* and replays it
# backwards, and use it to reproduce a backward pass that an exam writes out by hand
# (004, §4). Then we make sure that the comparison we rely on would catch a real mistake.

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
import torch

from helpers import profiles
from helpers.glue import glue
from helpers.gradcheck import ROUNDING_TOL, check_gradients, relative_error

run = profiles.setup(
    profile,
    seed=2,
    check_trials=(3, 20, 20),  # random problems on which the five gradients are compared
)
rng = np.random.default_rng(run.seed)
run

# %% [markdown]
# ## The idea
#
# A program that computes a scalar loss $\ell$ is a sequence of primitive operations
# $v = \phi(u_1, \dots, u_k)$, each reading earlier values and writing a new one. The
# *adjoint* of a value $u$ is $\bar u = \partial \ell / \partial u$, an array of the same shape
# as $u$. If $u$ is read by several operations (its *consumers*) $v_1, \dots, v_m$, the chain
# rule sums over them:
#
# $$
# \bar u \;=\; \sum_{j=1}^{m} \left(\frac{\partial v_j}{\partial u}\right)^{\!\top} \bar v_j .
# $$ (eq-adjoint)
#
# Each term is a *vector-Jacobian product* (VJP): the adjoint of the output pulled back through
# one operation. The Jacobian $\partial v_j / \partial u$ is never formed; every primitive
# knows how to apply its transpose to an adjoint directly. For the eight primitives of our
# engine, with $\bar v$ the incoming adjoint, $\odot$ the elementwise product and $N$ the
# number of entries of $a$:
#
# | operation $v$ | VJP for $a$ | VJP for $b$ |
# |---|---|---|
# | $a + b$ | $\bar v$ | $\bar v$ |
# | $a \odot b$ | $\bar v \odot b$ | $\bar v \odot a$ |
# | $A B$ (matrix product) | $\bar V B^\top$ | $A^\top \bar V$ |
# | $\sum_i a_i$ | $\bar v\,\mathbf 1$ (broadcast) | |
# | $\frac1N \sum_i a_i$ | $\frac{\bar v}{N}\,\mathbf 1$ | |
# | $\lvert a \rvert$ | $\bar v \odot \operatorname{sign}(a)$ | |
# | $\tanh a$ | $\bar v \odot (1 - v \odot v)$ | |
# | $\operatorname{relu} a$ | $\bar v \odot [a > 0]$ | |
#
# The matrix-product row is the one with transposes in it:
#
# $$
# V = AB \quad\Longrightarrow\quad \bar A = \bar V B^\top, \qquad \bar B = A^\top \bar V,
# $$ (eq-matmul-vjp)
#
# and the shapes force it: $\bar A$ must have the shape of $A$, $(m \times n)$, and
# $\bar V B^\top$ is $(m \times p)(p \times n)$. We also need subtraction, whose VJP for $b$ is
# $-\bar v$, and broadcasting: when $b$ was stretched to the shape of $a$ (a bias added to every
# row), its adjoint is summed back over the stretched axes.
#
# The derivatives of $\lvert a\rvert$ at 0 and of relu at 0 do not exist; like PyTorch we use
# $\operatorname{sign}(0) = 0$ and $[0 > 0] = 0$, valid subgradients. The checks below keep
# inputs away from 0, where it would matter.
#
# ## The tape
#
# Reverse mode needs the operations in an order in which every node comes *after all its
# consumers*, so that its adjoint {eq}`eq-adjoint` is complete before it is passed on. The
# forward pass provides such an order for free: every operation is executed after its inputs
# exist. So each operation, when executed, is pushed on a list, the *tape*; the backward pass
# pops it, last in first out.
#
# :::{prf:proposition} The tape read as a stack is a reverse topological order
# :label: prop-stack
#
# If every operation is pushed on the tape when it is executed, then popping the tape visits
# each node after all of its consumers. Hence, when a node is popped, its adjoint
# {eq}`eq-adjoint` has received every term of its sum.
# :::
#
# :::{prf:proof}
# A consumer $v$ of $u$ reads the value of $u$, so it is executed, and pushed, after $u$; a
# stack pops what was pushed later first, so $v$ is popped before $u$. Every consumer of $u$
# has therefore been popped, and has added its term $(\partial v/\partial u)^\top \bar v$ to
# $\bar u$, by the time $u$ is popped. Nothing popped after $u$ can add to $\bar u$: it was
# pushed before $u$ and so cannot have read $u$. Finally $\bar v$ was itself complete when $v$
# sent its term, by the same argument applied to $v$ (induction on the pop order, starting
# from the loss, whose adjoint is $\bar\ell = 1$).
# :::
#
# {doc}`The next section <02_tape_order>` tries a queue instead, and watches it fail.
#
# ## The engine
#
# We write the engine on NumPy float64 arrays. NumPy has no automatic differentiation at all,
# so every derivative the engine produces visibly comes from the rules in the table above.
# Three pieces: the node class `Var`, the backward driver, and the primitives. Each primitive
# also reports the floating point operations it performs to a counter, `FLOPS`, which
# {doc}`section 3 <03_counting>` uses and explains (its cell is hidden here: a dictionary of
# two counts, forward and backward, and the convention for sums). The later sections of this
# chapter import the engine from here.

# %% tags=["save", "hide-input"]
import numpy as np


class FlopCounter:
    """FLOPs of the forward and of the backward pass, counted apart."""

    def __init__(self):
        self.exact_sums = False  # False: 004's convention, a sum of k numbers costs k
        self.reset()

    def reset(self):
        self.counts, self.phase = {"forward": 0, "backward": 0}, "forward"

    def add(self, flops: int):
        self.counts[self.phase] += int(flops)

    def additions(self, k: int) -> int:
        """Additions to sum k numbers: k by 004's convention, k - 1 exactly."""
        return k - 1 if self.exact_sums else k


FLOPS = FlopCounter()

# %% tags=["save"]
TAPE: list = []  # the operations of the current graph, in the order they were executed


class Var:
    """A node of the graph: a float64 array, its adjoint `grad`, its inputs and VJPs."""

    def __init__(self, value, parents=(), requires_grad=False):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = parents  # pairs (input node, rule: adjoint -> (term, FLOPs))
        self.requires_grad = requires_grad or any(p.requires_grad for p, _ in parents)
        self.grad = None
        if parents:
            TAPE.append(self)  # push: an operation goes on the tape when executed

    @property
    def shape(self):
        return self.value.shape


def lift(x):
    """Wrap a constant (a number, an array) as a leaf that needs no gradient."""
    return x if isinstance(x, Var) else Var(x)


def new_graph():
    """Start recording a new forward pass: an empty tape, FLOP counts at zero."""
    TAPE.clear()
    FLOPS.reset()


# %% [markdown]
# `Var` also has the operators `+ - * @` and the methods `sum mean abs tanh relu` of a torch
# tensor, each a one-line call of the primitive of that name defined below (the cell is
# hidden), so that a function written for torch tensors runs unchanged on `Var`s.

# %% tags=["save", "hide-input"]
# The operators and methods of a torch tensor, so that the same code runs on both.
Var.__add__ = lambda self, other: add(self, lift(other))
Var.__radd__ = lambda self, other: add(lift(other), self)
Var.__sub__ = lambda self, other: sub(self, lift(other))
Var.__mul__ = lambda self, other: mul(self, lift(other))
Var.__rmul__ = lambda self, other: mul(lift(other), self)
Var.__matmul__ = lambda self, other: matmul(self, lift(other))
Var.sum = lambda self: vsum(self)
Var.mean = lambda self: vmean(self)
Var.abs = lambda self: vabs(self)
Var.tanh = lambda self: vtanh(self)
Var.relu = lambda self: vrelu(self)


# %% [markdown]
# The backward driver seeds the loss's adjoint with 1 and visits the nodes in an order it is
# given, by default the stack's. At each node it applies the VJP of every input that needs a
# gradient, sums the adjoint back over broadcast axes, and adds the term to the input's
# adjoint {eq}`eq-adjoint`. The shape assertion in `accumulate` turns most transposition
# mistakes into an immediate error.

# %% tags=["save"]
def unbroadcast(g, shape):
    """Sum an adjoint over the axes that broadcasting added or stretched."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1)
    out = g.sum(axis=axes).reshape(shape)
    FLOPS.add(out.size * FLOPS.additions(g.size // out.size))
    return out


def accumulate(node, contribution):
    """Add one term of the sum (eq-adjoint) to a node's adjoint."""
    assert contribution.shape == node.shape, "a VJP gave an adjoint of the wrong shape"
    if node.grad is None:
        node.grad = contribution  # the first term: nothing to add it to
    else:
        node.grad = node.grad + contribution
        FLOPS.add(contribution.size)


def stack_order(loss):
    """Pop the tape: last in, first out (a reverse topological order)."""
    tape = list(TAPE)  # a copy, so that the same graph can be differentiated again
    while tape:
        yield tape.pop()


def backward(loss, order=stack_order):
    """Reverse mode: seed the loss's adjoint with 1, visit the nodes, apply the VJPs."""
    for node in TAPE:  # forget the adjoints of an earlier backward pass over this graph
        node.grad = None
        for parent, _ in node.parents:
            parent.grad = None
    FLOPS.phase = "backward"
    loss.grad = np.ones_like(loss.value)
    for node in order(loss):
        if node.grad is None:
            continue  # no adjoint has reached this node: nothing to send back
        for parent, vjp in node.parents:
            if parent.requires_grad:
                contribution, flops = vjp(node.grad)
                FLOPS.add(flops)
                accumulate(parent, unbroadcast(np.asarray(contribution), parent.shape))
    FLOPS.phase = "forward"


# %% [markdown]
# The primitives. Each one computes its value, declares how many FLOPs that took, and gives,
# for each input, a rule mapping the output's adjoint to the input's term of {eq}`eq-adjoint`
# together with the FLOPs that rule costs. The rules are the table above, line by line.

# %% tags=["save"]
def op(value, flops, *parents):
    """Record one executed primitive: its value, its FLOPs, its (input, VJP) pairs."""
    FLOPS.add(flops)
    return Var(value, parents)


def add(a, b):
    size = np.broadcast(a.value, b.value).size
    return op(a.value + b.value, size, (a, lambda g: (g, 0)), (b, lambda g: (g, 0)))


def sub(a, b):
    size = np.broadcast(a.value, b.value).size
    return op(a.value - b.value, size,
              (a, lambda g: (g, 0)), (b, lambda g: (-g, g.size)))


def mul(a, b):
    size = np.broadcast(a.value, b.value).size
    return op(a.value * b.value, size,
              (a, lambda g: (g * b.value, g.size)),
              (b, lambda g: (g * a.value, g.size)))


def matmul(a, b):
    """(m, n) @ (n, p), or (m, n) @ (n,) with the vector as a one-column matrix."""
    A, B = a.value, b.value.reshape(len(b.value), -1)
    (m, n), p = A.shape, B.shape[1]

    def dot(k):  # FLOPs of one dot product of length k: k products and their sum
        return k + FLOPS.additions(k)

    return op(a.value @ b.value, m * p * dot(n),
              (a, lambda g: (g.reshape(m, p) @ B.T, m * n * dot(p))),  # eq-matmul-vjp
              (b, lambda g: ((A.T @ g.reshape(m, p)).reshape(b.shape), n * p * dot(m))))


def vsum(a):
    return op(a.value.sum(), FLOPS.additions(a.value.size),
              (a, lambda g: (np.broadcast_to(g, a.shape), 0)))


def vmean(a):
    size = a.value.size
    return op(a.value.mean(), FLOPS.additions(size) + 1,
              (a, lambda g: (np.broadcast_to(g / size, a.shape), 1)))


def vabs(a):
    return op(np.abs(a.value), a.value.size,
              (a, lambda g: (g * np.sign(a.value), 2 * g.size)))  # sign, product


def vtanh(a):
    t = np.tanh(a.value)
    return op(t, t.size,
              (a, lambda g: (g * (1 - t * t), 3 * g.size)))  # t*t, 1 - ., g * .


def vrelu(a):
    return op(np.maximum(a.value, 0), a.value.size,
              (a, lambda g: (g * (a.value > 0), 2 * g.size)))  # comparison, product


# %% [markdown]
# That is the whole engine, FLOP counting included. Because `Var` has the operators and
# methods of a torch tensor, we can feed the *same* code to our engine and to PyTorch and
# compare.
#
# ## Reproducing a backward pass by hand: squared loss with L1 (004 §4)
#
# The exam's loss: data $X \in \mathbb R^{n\times d}$ ($n$ examples $x_i^\top$ as rows, $d$
# features), labels $y \in \{-1, 1\}^n$, weights $w \in \mathbb R^d$ and $\lambda \ge 0$,
#
# $$
# \ell(w) = \frac1n \sum_{i=1}^n \left(y_i - x_i^\top w\right)^2 + \lambda \|w\|_1,
# \qquad \|w\|_1 = \sum_{j=1}^{d} |w_j| ,
# $$ (eq-lydia-loss)
#
# with gradient
#
# $$
# \nabla \ell(w) = \frac2n X^\top (Xw - y) + \lambda \operatorname{sign}(w).
# $$ (eq-lydia-grad)
#
# ```{note}
# **A typo in the source.** 004 writes the $\ell_1$ norm as $\sum_{i=1}^{n} |w_i|$; the sum
# runs over the $d$ entries of $w$, not over the $n$ examples, as in {eq}`eq-lydia-loss`.
# ```
#
# The function below is the exam's PyTorch code in our own words: one primitive per line, so
# that the graph is the one whose backward pass the exam writes out. It runs on torch tensors
# and on our `Var`s alike.

# %% tags=["save"]
def lydia_loss(w, X, Y, lam):
    """Mean squared residual plus lam * ||w||_1, one primitive per line (004 §4)."""
    Xw = X @ w
    residual = Xw - Y
    squared = residual * residual
    square_loss = squared.mean()
    w_abs = w.abs()
    l1 = w_abs.sum()
    penalty = lam * l1
    return square_loss + penalty


# %% [markdown]
# First a case small enough to do in one's head: 004's own toy data, $x_1 = (1, 0)$,
# $x_2 = (0, 1)$, $y = (2, -4)$, $\lambda = 0$, at $w = 0$. The loss is
# $\frac12(2^2 + 4^2) = 10$ and {eq}`eq-lydia-grad` gives
# $\nabla\ell(0) = \frac22\bigl(-(2, -4)\bigr) = (-2, 4)$. Every intermediate is a small
# binary fraction, so the engine must reproduce these numbers *exactly*.

# %%
new_graph()
w = Var(np.zeros(2), requires_grad=True)
loss = lydia_loss(w, Var(np.eye(2)), Var([2.0, -4.0]), 0.0)
backward(loss)
assert loss.value == 10.0 and np.array_equal(w.grad, [-2.0, 4.0]), (loss.value, w.grad)

# %% [markdown]
# Now random data, with $\lambda > 0$. We compute the gradient five ways:
#
# 1. the closed form {eq}`eq-lydia-grad`;
# 2. a backward pass written by hand, one adjoint per intermediate in reverse order: this is
#    what 004 §4.4 asks the student to fill in (our code, with our names; $\bar u$ is written
#    `u_bar`);
# 3. our engine;
# 4. PyTorch's autograd, on the same function;
# 5. finite differences (`helpers.gradcheck`), which know nothing about derivatives.

# %%
def lydia_gradient_by_hand(w, X, Y, lam):
    """The backward pass of lydia_loss by hand: each line undoes one forward line."""
    n = len(Y)
    residual = X @ w - Y  # the forward values the backward pass needs
    loss_bar = 1.0
    square_loss_bar = loss_bar  # loss = square_loss + penalty
    penalty_bar = loss_bar
    l1_bar = lam * penalty_bar  # penalty = lam * l1
    w_abs_bar = np.full_like(w, l1_bar)  # l1 = sum(w_abs): the adjoint is broadcast
    w_bar = w_abs_bar * np.sign(w)  # w_abs = |w|: first path into w
    squared_bar = np.full(n, square_loss_bar / n)  # square_loss = mean(squared)
    residual_bar = 2 * squared_bar * residual  # squared = residual * residual
    Xw_bar = residual_bar  # residual = Xw - Y
    return w_bar + X.T @ Xw_bar  # Xw = X @ w: second path into w, added (eq-adjoint)


def five_gradients(n=50, d=8, lam=0.1):
    """Relative errors of four gradients against the closed form, on random data."""
    X = rng.standard_normal((n, d))
    Y = np.sign(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n))  # +-1
    w0 = rng.standard_normal(d)
    assert np.abs(w0).min() > 1e-3  # |w| has a kink at 0: keep the steps (1e-6) off

    closed_form = 2 / n * X.T @ (X @ w0 - Y) + lam * np.sign(w0)
    by_hand = lydia_gradient_by_hand(w0, X, Y, lam)
    new_graph()
    w = Var(w0, requires_grad=True)
    backward(lydia_loss(w, Var(X), Var(Y), lam))
    w_torch = torch.tensor(w0, requires_grad=True)
    lydia_loss(w_torch, torch.tensor(X), torch.tensor(Y), lam).backward()

    def loss_value():  # reads w0, which check_gradients perturbs in place
        new_graph()
        return lydia_loss(Var(w0), Var(X), Var(Y), lam).value

    fd = check_gradients(loss_value, {"w": w0}, {"w": w.grad})["w"]  # at FD_TOL
    return {"by hand": relative_error(by_hand, closed_form),
            "engine": relative_error(w.grad, closed_form),
            "torch": relative_error(w_torch.grad, closed_form),
            "finite differences": fd}


trials = [five_gradients() for _ in range(run.check_trials)]
exact_error = max(t[k] for t in trials for k in ("by hand", "engine", "torch"))
assert exact_error < ROUNDING_TOL, exact_error  # float64 rounding only

# %% tags=["hide-input"]
glue("lydia_exact_error", exact_error, display=False)
glue("lydia_fd_error", max(t["finite differences"] for t in trials), display=False)
glue("lydia_trials", run.check_trials, display=False)

# %% [markdown]
# All five agree, on each of {glue:text}`lydia_trials` random problems. The four exact
# computations differ by at most {glue:text}`lydia_exact_error:.0e` in relative error, the
# same quantity rounded in different
# orders; the book compares such computations with one measure, the normwise relative error
# $\lVert a - b\rVert / \max(\lVert a\rVert, \lVert b\rVert)$ of `helpers.gradcheck`, at a
# tolerance of $10^{-10}$ (its documentation says why: a hundred times the worst rounding
# error of the sums in this book, eight orders of magnitude below a wrong formula). Finite
# differences agree to {glue:text}`lydia_fd_error:.1e`, far inside their tolerance of
# $10^{-6}$ ({doc}`Chapter 1 <../01_backprop/02_gradient_checking>` derives it), and that
# error is rounding alone: the loss is quadratic in $w$ plus $\lambda\lVert w\rVert_1$, which
# is linear between its kinks, and every $|w_j|$ is more than $10^{-3}$ from its kink, far
# beyond the step of $10^{-6}$; a centred difference of a quadratic or a linear function has no
# truncation error (its error term involves the third derivative, zero here).
#
# The hand-written backward pass and the engine do the same thing; the engine just does it for
# any function composed of its primitives. Note the last line of the hand-written pass: $w$ is
# read twice in the forward pass (by $Xw$ and by $|w|$), so its adjoint is a sum of two terms,
# exactly {eq}`eq-adjoint`.
#
# ## A check with teeth: the missing transpose
#
# A gradient check is only worth something if it fails when the gradient is wrong. Here is a
# plausible bug: the VJP of a matrix product for its left factor written as $\bar V B$ instead
# of $\bar V B^\top$ {eq}`eq-matmul-vjp`. If $B$ is square, the shapes still fit and nothing
# crashes, so only the numbers can catch it. We differentiate
# $\ell = \operatorname{mean}\,\tanh\!\bigl(\tanh(X W_1) W_2\bigr)$ with square $W_1, W_2$
# through the correct and the broken product, against PyTorch.

# %%
def matmul_missing_transpose(a, b):
    """A broken copy of matmul on purpose: the left factor's VJP lacks the transpose."""
    out = matmul(a, b)
    B = b.value
    broken = (a, lambda g: (g @ B, g.size * B.shape[1] * 2))  # the bug: B, not B.T
    out.parents = (broken,) + out.parents[1:]
    return out


def two_layer_loss(X, W1, W2, mm=matmul):
    return mm(mm(X, W1).tanh(), W2).tanh().mean()


K = 12
X0, W1_0, W2_0 = (rng.standard_normal(shape) / np.sqrt(K)
                  for shape in [(20, K), (K, K), (K, K)])
W1_t = torch.tensor(W1_0, requires_grad=True)
W2_t = torch.tensor(W2_0, requires_grad=True)
torch.tanh(torch.tanh(torch.tensor(X0) @ W1_t) @ W2_t).mean().backward()

transpose_errors = {}
for mm in [matmul, matmul_missing_transpose]:
    new_graph()
    W1, W2 = Var(W1_0, requires_grad=True), Var(W2_0, requires_grad=True)
    backward(two_layer_loss(Var(X0), W1, W2, mm))
    transpose_errors[mm.__name__] = (relative_error(W1.grad, W1_t.grad),
                                     relative_error(W2.grad, W2_t.grad))

assert max(transpose_errors["matmul"]) < ROUNDING_TOL  # the correct rule: rounding only
broken_w1, broken_w2 = transpose_errors["matmul_missing_transpose"]
assert broken_w1 > 1e-2  # the check catches the bug ...
assert broken_w2 < ROUNDING_TOL  # ... in W1 only: W2's adjoint never uses the bad rule

# %% tags=["hide-input"]
glue("broken_w1_error", broken_w1, display=False)

# %% [markdown]
# With the missing transpose, the gradient of $W_1$ is off by a relative error of
# {glue:text}`broken_w1_error:.2f`, eight or more orders of magnitude above the tolerance, so
# the comparison fails as it should. Two lessons hide in the details. The gradient of $W_2$ is
# still exact: the broken rule is the one for the *left* factor, which only matters for what
# lies before the product, so a check must cover every parameter. And the bug would be
# invisible if $B$ were symmetric ($B = B^\top$), while with a non-square $B$ it would have
# raised a shape error at once: test with random, non-symmetric matrices, and keep the shape
# assertion in `accumulate`.
#
# ## What this section showed
#
# Reverse mode is the chain rule {eq}`eq-adjoint` applied node by node, each node pulling its
# adjoint back through its inputs with a vector-Jacobian product. Eight primitives, a tape and
# a backward driver are a working engine: it reproduced 004's backward pass exactly on the
# exam's toy data, matched the closed form, a hand-written pass and PyTorch to rounding on
# random data, and finite differences within their tolerance. The comparison has teeth: a
# missing transpose was caught, but only in the parameters upstream of it, and it would have
# been invisible with symmetric test matrices.
#
# ## Exercises
#
# 1. **Two more primitives.** Add `exp` and `log` to the engine, with their VJPs and FLOP
#    counts, and use them to write the softmax cross-entropy of a batch of logits. Check the
#    gradient against `torch.nn.functional.cross_entropy` with `relative_error` at
#    `ROUNDING_TOL`, and against finite differences with `check_gradients`. Then make the
#    check fail on purpose by dropping the max-subtraction that keeps `exp` from overflowing:
#    at which logit size does it fail, and how?
#
#    :::{dropdown} Hint
#    The VJPs are $\bar v \odot v$ for $v = e^{a}$ and $\bar v / a$ for $v = \ln a$. Without
#    the max-subtraction, $e^{a}$ overflows to `inf` in float64 once $a > 709.78$
#    ($\ln$ of the largest float64), and the loss becomes `nan`, so the check fails with
#    `nan` errors rather than with a large number.
#    :::
#
# 2. **Zero buffers.** The exam's backward pseudocode (004 §4.4) allocates every adjoint as
#    zeros and adds each term with `+=`. Count the FLOPs of that backward pass under 004's
#    conventions ({doc}`section 3 <03_counting>`) and compare with the engine's count. Which
#    additions does our engine avoid, and why is it allowed to?
#
#    :::{dropdown} Answer
#    Adding the first term to a buffer of zeros costs one addition per entry, for every
#    adjoint: $d$ for $\bar w$'s first path, $n$ for each of the $n$-vectors, and so on. The
#    engine's `accumulate` stores the first term instead, and pays an addition only when a
#    second term arrives, which is exact because $0 + x = x$ in floating point too.
#    :::
#
# 3. **A symmetric blind spot.** Rerun the missing-transpose check with $W_2$ replaced by
#    $(W_2 + W_2^\top)/2$. What does the check report, and why?
#
#    :::{dropdown} Answer
#    Both errors are at rounding level: for a symmetric $B$, $\bar V B = \bar V B^\top$, so the
#    broken rule computes the right numbers. A check is only as good as its test inputs.
#    :::
