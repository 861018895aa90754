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
# # Automatic differentiation: tapes, modes and what they cost
#
# Chapter 1 computed gradients by hand: one chain-rule step per layer, written out and checked
# against finite differences. This chapter turns that procedure into a program. We build a
# reverse-mode engine of about 120 lines that records the forward pass on a *tape* and
# replays it backwards, use it to reproduce a backward pass written out by hand in an exam
# (004, section 4), count its floating point operations, and then ask what the two directions
# of automatic differentiation, reverse and forward, cost when the object we want is a whole
# Jacobian rather than a gradient (003, problem 2).
#
# **Learning goals.** After this chapter you can
#
# - write the vector-Jacobian product (VJP) of the primitives of a small engine (add, multiply,
#   matrix product, sum, mean, absolute value, tanh, ReLU) and assemble them into reverse mode;
# - explain why the tape is a *stack*: a node's adjoint must be complete before it is passed on,
#   so nodes must be visited in reverse topological order, and show a queue getting it wrong;
# - count the FLOPs of a forward and a backward pass and say why a backward pass costs between
#   one and two forward passes;
# - measure what autograd's bookkeeping costs against a backward pass written by hand, and say
#   when it matters;
# - compute a Jacobian by reverse mode and by forward mode, predict from matrix shapes which is
#   cheaper, and find the crossover by measurement;
# - reason about the memory of an MLP's weights and about what its nonlinearities are for.
#
# Prerequisites: the chain rule and backpropagation by hand from Chapter 1, matrix calculus
# with shapes, a little PyTorch. For the theory in full, see {cite:t}`griewank2008evaluating`;
# for automatic differentiation as machine learning uses it, the survey of
# {cite:t}`baydin2018automatic`.

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

# %% tags=["parameters"]
profile = None

# %% [markdown]
# The scale of this run. Everything in the chapter runs in every profile; the profiles differ
# in problem sizes for the timings, in how often each timing is repeated (the median of the
# repeats is reported), and in the widths used to find the crossover between the two modes.

# %%
from helpers import profiles, results

run = profiles.setup(
    profile,
    seed=2,
    lydia_n=(500, 100_000, 100_000),  # examples in the timed squared-loss + L1 graph
    lydia_d=(20, 100, 200),  # features in that graph
    mlp_batch=(16, 256, 1024),  # batch of the timed MLP gradient
    autograd_rows=(512, 8192, 65536),  # large batch of the hand-written vs autograd timing
    autograd_rounds=(3, 24, 24),  # alternating rounds of that timing, one run of each per round
    repeat=(3, 21, 31),  # timed runs per measurement (median reported)
    jac_repeat=(5, 101, 101),  # timed runs per Jacobian benchmark entry (they take ~0.2 ms)
    jac_cases=(3, 10, 20),  # random inputs on which the Jacobian methods must agree
    cross_width=(512, 1024, 1024),  # K of the crossover sweep on the CPU
    gpu_cross_width=(512, 1024, 4096),  # K of the crossover sweep on a GPU, when there is one
    cross_fixed=(8, 32, 32),  # P while D varies, and D while P varies
    cross_sizes=(
        (1, 8, 512),  # 512: far enough from the crossover at 8 for the order to be clear
        (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    ),
)
run

# %%
import math
from collections import Counter, deque
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from IPython.display import Markdown, display
from matplotlib.ticker import NullFormatter
from myst_nb import glue
from threadpoolctl import threadpool_limits
from torch.func import jacfwd, jacrev
from torch.utils.flop_counter import FlopCounterMode

from helpers.gradcheck import check_gradients
from helpers.timing import format_seconds, measure, measure_alternately, ratio_verdict, speed_ratio

rng = np.random.default_rng(run.seed)
generator = torch.Generator().manual_seed(run.seed)
CPU = torch.device("cpu")
DEVICES = [CPU] + ([run.device] if run.device.type != "cpu" else [])
torch.set_num_threads(1)  # one CPU thread for every timing: see the note below
threadpool_limits(limits=1)  # the same for NumPy's BLAS


def as_float64(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy().astype(np.float64)
    return np.asarray(a, dtype=np.float64)


def normwise_error(ours, reference) -> float:
    """max |ours - reference| / max |reference|: a relative error that tolerates entries ~0."""
    ours, reference = as_float64(ours), as_float64(reference)
    assert ours.shape == reference.shape, (ours.shape, reference.shape)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


# %% [markdown]
# ```{note}
# **One thread.** Every CPU timing in this chapter runs on a single thread, for PyTorch and
# NumPy alike. A multi-threaded kernel waits for its slowest thread at every step, so on a
# machine where anything else is running (a shared server, a laptop with a browser open) one
# busy neighbour can slow down every step, and timings of small operations become
# unrepeatable. The question of this chapter is what the *arithmetic* costs, and one thread
# measures it more reproducibly; more threads divide the time of large matrix products, and
# only those, by up to the number of cores.
# ```
#
# Most comparisons in this chapter are between two computations of the same quantity in float64
# that differ only in the order of their roundings (our engine against PyTorch, a hand-written
# formula against an engine). We compare them with the *normwise* relative error
# $\max_i |a_i - b_i| / \max_i |b_i|$, which stays near machine precision ($10^{-16}$) even when
# some entries cancel to almost zero, where an entry-by-entry relative error would be large for
# no fault of the code. Our tolerance for such comparisons is $10^{-12}$: a few thousand
# roundings of $10^{-16}$ each, far below the $O(1)$ error of a wrong sign or a wrong
# transpose. Finite differences are different: they carry a truncation error and are checked
# with `helpers.gradcheck` at its tolerance $10^{-6}$, on a 2-norm relative error. Chapter 1
# derives that error and the choice of $10^{-6}$; its comparisons with autograd use the
# 2-norm too, with a tolerance of $10^{-10}$, where this chapter uses the max-norm error
# above at $10^{-12}$.

# %% [markdown]
# ## A reverse-mode engine on a tape
#
# ### The idea
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
# ### The tape
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
# A queue would pop in the order of execution: every node *before* its consumers, the exact
# opposite of what is needed. We test this below.
#
# ### The engine
#
# We write the engine on NumPy float64 arrays. NumPy has no automatic differentiation at all,
# so every derivative the engine produces visibly comes from the rules in the table above; and
# float64 lets us compare with PyTorch at $10^{-12}$ and with finite differences at their
# usual tolerance. (Torch tensors with autograd switched off would do as well; they would also
# run on a GPU, which this small engine does not need.)
#
# Three pieces: a FLOP counter (used in a later section; the counting conventions are
# explained there), the node class `Var`, and the backward driver.

# %%
class FlopCounter:
    """Floating point operations of the forward and of the backward pass, counted apart."""

    def __init__(self):
        self.exact_sums = False  # False: 004's convention, summing k numbers costs k additions
        self.reset()

    def reset(self):
        self.counts, self.phase = {"forward": 0, "backward": 0}, "forward"

    def add(self, flops: int):
        self.counts[self.phase] += int(flops)

    def additions(self, k: int) -> int:
        """Additions needed to sum k numbers: k under 004's convention, k - 1 exactly."""
        return k - 1 if self.exact_sums else k


FLOPS = FlopCounter()
TAPE: list = []  # the operations of the current graph, in the order they were executed


class Var:
    """A node of the graph: a float64 array, its adjoint `grad`, and its inputs with VJP rules."""

    def __init__(self, value, parents=(), requires_grad=False):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = parents  # pairs (input node, rule: adjoint -> (contribution, FLOPs))
        self.requires_grad = requires_grad or any(p.requires_grad for p, _ in parents)
        self.grad = None
        if parents:
            TAPE.append(self)  # push: an operation goes on the tape when it is executed

    @property
    def shape(self):
        return self.value.shape

    # The operators and methods of a torch tensor, so that the same code runs on both.
    def __add__(self, other):
        return add(self, lift(other))

    def __radd__(self, other):
        return add(lift(other), self)

    def __sub__(self, other):
        return sub(self, lift(other))

    def __mul__(self, other):
        return mul(self, lift(other))

    def __rmul__(self, other):
        return mul(lift(other), self)

    def __matmul__(self, other):
        return matmul(self, lift(other))

    def sum(self):
        return vsum(self)

    def mean(self):
        return vmean(self)

    def abs(self):
        return vabs(self)

    def tanh(self):
        return vtanh(self)

    def relu(self):
        return vrelu(self)


def lift(x):
    """Wrap a constant (a number, an array) as a leaf that needs no gradient."""
    return x if isinstance(x, Var) else Var(x)


def new_graph():
    """Start recording a new forward pass: an empty tape, FLOP counts at zero."""
    TAPE.clear()
    FLOPS.reset()


def unbroadcast(g, shape):
    """Sum an adjoint over the axes that broadcasting added or stretched (a bias, a scalar)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1)
    out = g.sum(axis=axes).reshape(shape)
    FLOPS.add(out.size * FLOPS.additions(g.size // out.size))
    return out


def accumulate(node, contribution):
    """Add one term of the sum (eq-adjoint) to a node's adjoint."""
    assert contribution.shape == node.shape, "a VJP rule returned an adjoint of the wrong shape"
    if node.grad is None:
        node.grad = contribution  # the first term: nothing to add it to
    else:
        node.grad = node.grad + contribution
        FLOPS.add(contribution.size)


def stack_order(loss):
    """Pop the tape: last in, first out (a reverse topological order, by the proposition)."""
    tape = list(TAPE)  # a copy, so that the same graph can be differentiated again
    while tape:
        yield tape.pop()


def backward(loss, order=stack_order):
    """Reverse mode: seed the loss's adjoint with 1, visit the nodes in `order`, apply the VJPs."""
    for node in TAPE:  # forget the adjoints of any earlier backward pass over this graph
        node.grad = None
        for parent, _ in node.parents:
            parent.grad = None
    FLOPS.phase = "backward"
    loss.grad = np.ones_like(loss.value)
    for node in order(loss):
        if node.grad is None:
            continue  # no adjoint has reached this node: there is nothing to send back
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

# %%
def op(value, flops, *parents):
    """Record one executed primitive: its value, its forward FLOPs, its (input, VJP) pairs."""
    FLOPS.add(flops)
    return Var(value, parents)


def add(a, b):
    size = np.broadcast(a.value, b.value).size
    return op(a.value + b.value, size, (a, lambda g: (g, 0)), (b, lambda g: (g, 0)))


def sub(a, b):
    size = np.broadcast(a.value, b.value).size
    return op(a.value - b.value, size, (a, lambda g: (g, 0)), (b, lambda g: (-g, g.size)))


def mul(a, b):
    size = np.broadcast(a.value, b.value).size
    return op(a.value * b.value, size,
              (a, lambda g: (g * b.value, g.size)), (b, lambda g: (g * a.value, g.size)))


def matmul(a, b):
    """(m, n) @ (n, p), or (m, n) @ (n,) with the vector taken as a one-column matrix."""
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
    return op(t, t.size, (a, lambda g: (g * (1 - t * t), 3 * g.size)))  # t*t, 1 - ., g * .


def vrelu(a):
    return op(np.maximum(a.value, 0), a.value.size,
              (a, lambda g: (g * (a.value > 0), 2 * g.size)))  # comparison, product


# %% [markdown]
# That is the whole engine: about 120 lines of code, FLOP counting included. Because `Var`
# has the operators `+ - * @` and the methods `sum mean abs tanh relu`, a function written for
# torch tensors with those names runs unchanged on `Var`s, which lets us feed the *same* code
# to our engine and to PyTorch and compare.
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

# %%
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
    """The backward pass of lydia_loss written out: each line undoes one forward line."""
    n = len(Y)
    residual = X @ w - Y  # the forward values the backward pass needs
    loss_bar = 1.0
    square_loss_bar = loss_bar  # loss = square_loss + penalty
    penalty_bar = loss_bar
    l1_bar = lam * penalty_bar  # penalty = lam * l1
    w_abs_bar = np.full_like(w, l1_bar)  # l1 = sum(w_abs): the adjoint is broadcast
    w_bar = w_abs_bar * np.sign(w)  # w_abs = |w|: first path into w
    squared_bar = np.full(n, square_loss_bar / n)  # square_loss = mean(squared)
    residual_bar = 2 * squared_bar * residual  # squared = residual * residual: two terms
    Xw_bar = residual_bar  # residual = Xw - Y
    return w_bar + X.T @ Xw_bar  # Xw = X @ w: second path into w, added (eq-adjoint)


n, d, lam = 50, 8, 0.1
X = rng.standard_normal((n, d))
Y = np.sign(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n))  # labels in {-1, 1}
w0 = rng.standard_normal(d)
assert np.abs(w0).min() > 1e-3  # |w| has a kink at 0: keep finite differences (1e-6) off it

closed_form = 2 / n * X.T @ (X @ w0 - Y) + lam * np.sign(w0)
by_hand = lydia_gradient_by_hand(w0, X, Y, lam)

new_graph()
w = Var(w0, requires_grad=True)
backward(lydia_loss(w, Var(X), Var(Y), lam))
engine = w.grad

w_torch = torch.tensor(w0, requires_grad=True)
lydia_loss(w_torch, torch.tensor(X), torch.tensor(Y), lam).backward()

for name, grad in [("by hand", by_hand), ("engine", engine), ("torch", w_torch.grad)]:
    err = normwise_error(grad, closed_form)
    assert err < 1e-12, f"{name}: {err:.2e}"  # float64 roundings only, see above


def lydia_loss_value():  # reads w0, which check_gradients perturbs in place
    new_graph()
    return lydia_loss(Var(w0), Var(X), Var(Y), lam).value


fd_errors = check_gradients(lydia_loss_value, {"w": w0}, {"w": engine})  # tol 1e-6
glue("lydia_fd_error", fd_errors["w"], display=False)

# %% [markdown]
# All five agree: the four exact computations to float64 rounding, and finite differences to
# a relative error of {glue:text}`lydia_fd_error:.1e`, which is rounding error alone, not a
# disagreement. There is no truncation error to add: the loss is quadratic in $w$ plus
# $\lambda\lVert w\rVert_1$, which is linear between its kinks, and every $|w_j|$ is more than
# $10^{-3}$ from its kink, far beyond the step of $10^{-6}$; a centred difference of a quadratic
# or a linear function is exact but for rounding (its error term involves the third
# derivative, zero here). The hand-written backward pass and the engine do the same thing;
# the engine just does it for any function composed of its primitives. Note the last line of
# the hand-written pass: $w$ is read twice in the forward pass (by $Xw$ and by $|w|$), so its
# adjoint is a sum of two terms, exactly {eq}`eq-adjoint`.
#
# ## Why the tape is a stack (002 §4.2)
#
# 002 asks whether the stack of a tape-based autodiff could be replaced by a queue at no cost
# in running time, and answers no. Let us see what a queue actually does, on a graph
# small enough to draw. One value, $h$, is read by two consumers at different distances from
# the loss:
#
# $$
# h = \tanh(x), \qquad u = \operatorname{relu}(h \odot w), \qquad
# \ell = \textstyle\sum_i (h + u)_i .
# $$ (eq-diamond)
#
# The adjoint of $h$ has two terms: one from the sum $h + u$ (one step from the loss) and one
# through the product $h \odot w$ (three steps). We try three orders for the backward pass:
#
# - **FIFO tape**: the tape read as a queue, first in first out, the drop-in replacement
#   002 has in mind;
# - **breadth-first from the loss**: a queue that starts at the loss and discovers nodes
#   through their inputs, visiting each once; it is the natural "walk the graph backwards"
#   and it is correct on chains and trees;
# - **counted queue**: a queue that releases a node only when all of its consumers have
#   sent their terms (Kahn's algorithm on the reversed graph).

# %%
def fifo_order(loss):
    """The tape read as a queue: first in, first out, i.e. the order of execution."""
    tape = deque(TAPE)
    while tape:
        yield tape.popleft()


def breadth_first_order(loss):
    """From the loss through inputs, nearest first, each node once. Plausible, and wrong."""
    seen, queue = {id(loss)}, deque([loss])
    while queue:
        node = queue.popleft()
        yield node
        for parent, _ in node.parents:
            if parent.parents and id(parent) not in seen:  # operations only, each once
                seen.add(id(parent))
                queue.append(parent)


def counted_queue_order(loss):
    """A queue that releases a node once all its consumers have sent their terms."""
    waiting = Counter(id(p) for node in TAPE for p, _ in node.parents)  # consumers left
    queue = deque([loss])
    while queue:
        node = queue.popleft()
        yield node
        for parent, _ in node.parents:
            waiting[id(parent)] -= 1
            if waiting[id(parent)] == 0 and parent.parents:
                queue.append(parent)


def diamond(x, w):
    h = x.tanh()
    u = (h * w).relu()
    return (h + u).sum()


x0, wd0 = rng.standard_normal(6), rng.standard_normal(6)
x_t, w_t = torch.tensor(x0, requires_grad=True), torch.tensor(wd0, requires_grad=True)
diamond(x_t, w_t).backward()  # PyTorch's answer, the reference
assert (torch.relu(torch.tanh(x_t) * w_t) > 0).any()  # the long branch carries a gradient

queue_errors = {}
for order in [stack_order, fifo_order, breadth_first_order, counted_queue_order]:
    new_graph()
    x, w = Var(x0, requires_grad=True), Var(wd0, requires_grad=True)
    backward(diamond(x, w), order=order)
    queue_errors[order.__name__] = [
        normwise_error(np.zeros(6) if v.grad is None else v.grad, ref.grad)
        for v, ref in [(x, x_t), (w, w_t)]
    ]

display(Markdown("| backward order | error in $\\bar x$ | error in $\\bar w$ |\n|---|---|---|\n"
                 + "\n".join(f"| `{name}` | {ex:.1e} | {ew:.1e} |"
                             for name, (ex, ew) in queue_errors.items())))
assert max(queue_errors["stack_order"]) < 1e-12  # correct, as the proposition says
assert min(queue_errors["fifo_order"]) > 0.5  # nothing reaches x or w: both adjoints 0
assert queue_errors["breadth_first_order"][0] > 1e-3  # x misses the long branch's term ...
assert queue_errors["breadth_first_order"][1] < 1e-12  # ... while w, on one path, is right
assert max(queue_errors["counted_queue_order"]) < 1e-12  # a queue *can* be made correct

# %% [markdown]
# The table shows the three failure modes and the fix:
#
# - The **FIFO tape** visits $h$ first, when nothing has reached it yet, then every other node
#   in the same premature state; only the loss, visited last, has an adjoint, and it arrives too
#   late for anyone to use. Both gradients come out zero (normwise error 1). On a chain the
#   same happens: a queue over the tape is the worst possible order, not a slower one.
# - **Breadth-first from the loss** reaches $h$ through the short branch (distance 2) before
#   the long branch $u \to h \odot w$ has delivered its term. It passes an incomplete
#   $\bar h$ on to $x$, and the term that arrives later is never propagated. The adjoint of
#   $w$, which has a single path to the loss, is right: a check of $\bar w$ alone would miss
#   the bug.
# - **The stack** and **the counted queue** are both correct: both visit every node after all
#   of its consumers, i.e. in a reverse topological order ({prf:ref}`prop-stack`).
#
# ```{note}
# **On 002's answer.** 002 marks the statement false on the grounds that a queue would need
# extra work to recover the reverse order and would therefore run longer. As a drop-in
# replacement, though, a queue does not make the backward pass slower; it makes it *wrong*, as
# the table shows.
# A queue can be used correctly if it is fed in a reverse topological order, which costs one
# extra pass over the graph to count consumers (Kahn's algorithm), $O(V + E)$ for $V$ nodes
# and $E$ edges, the same order of cost as the backward pass itself. So the runtime grows by a
# constant factor, not asymptotically; what the stack buys is that the forward pass has
# already produced the order, for free.
# ```
#
# ## Counting FLOPs (004 §4.3)
#
# 004 counts the floating point operations of the forward pass of {eq}`eq-lydia-loss` under
# these conventions: each $+ - \times /$, comparison and scalar function evaluation is one
# FLOP; summing a vector of length $k$ costs $k$ additions; an $(m, n)$ by $(n, p)$ matrix
# product costs $2mnp$. Here $n$ is the number of examples (rows of $X$) and $d$ the number of
# features (the length of $w$). Line by line of `lydia_loss`:
#
# | line | operation | FLOPs (004) | FLOPs (exact) |
# |---|---|---|---|
# | `X @ w` | $(n, d)$ by $(d, 1)$ product | $2nd$ | $n(2d - 1)$ |
# | `Xw - Y` | $n$ subtractions | $n$ | $n$ |
# | `residual * residual` | $n$ products | $n$ | $n$ |
# | `.mean()` | sum of $n$, one division | $n + 1$ | $n$ |
# | `w.abs()` | $d$ function evaluations | $d$ | $d$ |
# | `.sum()` | sum of $d$ | $d$ | $d - 1$ |
# | `lam * l1`, `+` | two scalar operations | $2$ | $2$ |
# | **total** | | $2nd + 3n + 2d + 3$ | $2nd + 2n + 2d + 1$ |
#
# The exam's total, $2nd + 3n + 2d + 3$, is right under its conventions.
#
# ```{note}
# **On 004's count.** Two small issues. (1) The line numbers in the solution's tally do not
# match its listing: the tally puts the absolute value on "line 7", the mean on "line 9", the
# sum on "line 11" and the scalar operations on "lines 12+13", while in the listing (comments
# and `def` counted) they are lines 8, 7, 9 and 10-11, and line 12 is the `return`. The
# operations it counts are the right ones. (2) The conventions overcount: summing $k$ numbers
# takes $k - 1$ additions, so a length-$d$ dot product is $2d - 1$ FLOPs, not $2d$. The exact
# count is the last column, $2nd + 2n + 2d + 1$. The difference, $n + 2$, is negligible next to
# $2nd$, which is why the convention is harmless and common.
# ```
#
# Our engine counts under either convention (`FLOPS.exact_sums`). We check both totals, and
# the backward pass's count, for several shapes, including $n = d = 1$ where a wrong constant
# term would show.
#
# The backward pass, from the rules of the engine (each VJP's cost, plus one addition per entry
# whenever a second term arrives at an adjoint, {eq}`eq-adjoint`): the final sum passes its
# adjoint on for free; $\lambda$ times the penalty's adjoint is 1 FLOP, and so is the mean's
# division by $n$; the adjoints of $\sum_j |w_j|$ and of the mean are broadcast, for free;
# $\lvert w\rvert$ costs $2d$ (a sign and a product); `residual * residual` sends two terms of
# $n$ products to the same node and adds them ($3n$); the subtraction passes the residual's
# adjoint to $Xw$ unchanged and sends nothing to $Y$, which needs no gradient; and
# $\bar w \mathrel{+}= X^\top \overline{Xw}$ is a $(d, n)$ by $(n, 1)$ product plus $d$
# additions. In total
#
# $$
# \text{backward} = 2nd + 3n + 3d + 2 \;\;\text{(004's convention)}, \qquad
# 2nd + 3n + 2d + 2 \;\;\text{(exact)}.
# $$ (eq-lydia-backward-flops)

# %%
def lydia_counts(n, d, exact):
    """Forward and backward FLOPs of lydia_loss, counted by the engine."""
    X, Y = rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], size=n)
    new_graph()
    FLOPS.exact_sums = exact
    w = Var(rng.standard_normal(d), requires_grad=True)
    backward(lydia_loss(w, Var(X), Var(Y), 0.1))
    FLOPS.exact_sums = False
    return FLOPS.counts["forward"], FLOPS.counts["backward"]


for n, d in [(1, 1), (2, 2), (7, 3), (50, 20), (1000, 1)]:
    assert lydia_counts(n, d, exact=False) == (2*n*d + 3*n + 2*d + 3, 2*n*d + 3*n + 3*d + 2)
    assert lydia_counts(n, d, exact=True) == (2*n*d + 2*n + 2*d + 1, 2*n*d + 3*n + 2*d + 2)

# %% [markdown]
# ### The backward pass against the forward pass
#
# On this graph the backward pass costs about as many FLOPs as the forward pass: both counts
# are dominated by one matrix-vector product with $X$ ($Xw$ forward, $X^\top \overline{Xw}$
# backward). The usual rule of thumb, "a backward pass costs about two forward passes",
# comes from layers whose input *also* needs an adjoint: then a product $AB$ needs both
# $\bar V B^\top$ and $A^\top \bar V$ {eq}`eq-matmul-vjp`. Here $X$ is data and gets no
# adjoint, so the engine skips that product entirely (we will see the factor two in an MLP
# below).
#
# Counting is one thing, time another. We time the forward and the backward pass of the same
# graph at a larger size, with our engine and with PyTorch (CPU, float64, the same function),
# and report the medians. The backward pass is timed alone, replayed on a graph recorded once.

# %%
n, d = run.lydia_n, run.lydia_d
X, Y = rng.standard_normal((n, d)), rng.choice([-1.0, 1.0], size=n)
w0 = rng.standard_normal(d)
X_t, Y_t = torch.tensor(X), torch.tensor(Y)
w_t = torch.tensor(w0, requires_grad=True)


def engine_forward():
    new_graph()
    return lydia_loss(Var(w0, requires_grad=True), Var(X), Var(Y), 0.1)


engine_loss = engine_forward()
forward_flops = FLOPS.counts["forward"]
backward(engine_loss)
backward_flops = FLOPS.counts["backward"]
results.compare("lydia_forward_flops", forward_flops, 2 * n * d + 3 * n + 2 * d + 3,
                tolerance=0, source="004 §4.3, its formula 2nd + 3n + 2d + 3 at this n and d",
                description=f"forward FLOPs of squared loss + L1, counted by our engine under "
                            f"004's conventions (n = {n}, d = {d})")
torch_loss = lydia_loss(w_t, X_t, Y_t, 0.1)
assert normwise_error(engine_loss.value, torch_loss.detach()) < 1e-12

# backward() replays the current tape, so the backward pass is timed before any new forward.
timings = {
    ("engine", "backward"): measure(lambda: backward(engine_loss), repeat=run.repeat),
    ("engine", "forward"): measure(engine_forward, repeat=run.repeat),
    ("torch", "forward"): measure(lambda: lydia_loss(w_t, X_t, Y_t, 0.1), repeat=run.repeat),
    ("torch", "backward"): measure(
        lambda: torch.autograd.grad(torch_loss, w_t, retain_graph=True), repeat=run.repeat),
    ("engine", "of which X @ w"): measure(lambda: X @ w0, repeat=run.repeat),  # NumPy alone
    ("torch", "of which X @ w"): measure(lambda: X_t @ w_t.detach(), repeat=run.repeat),
}
seconds = {key: t.seconds for key, t in timings.items()}
phases = [("forward", f"{forward_flops:,}"), ("of which X @ w", f"{2 * n * d:,}"),
          ("backward", f"{backward_flops:,}")]
display(Markdown(
    f"Squared loss + L1, $n$ = {n}, $d$ = {d}, float64 on {profiles.device_name(CPU)}, "
    f"median of {run.repeat} runs\n\n"
    "| | FLOPs (004 convention) | engine | torch | engine / torch |\n|---|---|---|---|---|\n"
    + "\n".join(f"| {phase} | {flops} | {seconds['engine', phase] * 1e3:.3f} ms "
                f"| {seconds['torch', phase] * 1e3:.3f} ms "
                f"| {seconds['engine', phase] / seconds['torch', phase]:.2f} |"
                for phase, flops in phases)))

results.record("lydia_backward_forward_flop_ratio", backward_flops / forward_flops,
               description="backward / forward FLOPs of the squared loss + L1 graph (004 §4)")
results.record("lydia_backward_forward_time_ratio_engine",
               seconds["engine", "backward"] / seconds["engine", "forward"],
               description="backward / forward wall time, our engine, squared loss + L1")
results.record("lydia_backward_forward_time_ratio_torch",
               seconds["torch", "backward"] / seconds["torch", "forward"],
               description="backward / forward wall time, torch autograd, squared loss + L1")
results.record("lydia_backward_engine_over_torch",
               seconds["engine", "backward"] / seconds["torch", "backward"],
               description="time of the backward pass alone, our engine / torch, squared loss + L1")
engine_step = seconds["engine", "forward"] + seconds["engine", "backward"]
torch_step = seconds["torch", "forward"] + seconds["torch", "backward"]
results.record("lydia_engine_over_torch", engine_step / torch_step,
               description="time of forward + backward, our engine / torch, squared loss + L1")
glue("lydia_n", n, display=False)
glue("lydia_d", d, display=False)


def beyond_noise(ratio: float) -> bool:
    """Whether a time ratio is outside the ten percent that ratio_verdict calls no clear
    difference."""
    return ratio_verdict(ratio, "above", "below", "") != ""


LIBRARIES = {"engine": "our engine", "torch": "PyTorch"}
flop_ratio = backward_flops / forward_flops
# backward/forward time against backward/forward FLOPs, per library
off_flops = [words for lib, words in LIBRARIES.items()
             if beyond_noise(seconds[lib, "backward"] / seconds[lib, "forward"] / flop_ratio)]
glue("lydia_time_flop_sentence",
     "Here wall time follows the FLOP count in both, to within ten percent." if not off_flops
     else "Wall time need not follow the FLOP count, and here it does not in "
     + ("either library" if len(off_flops) == 2 else off_flops[0]) + ".", display=False)
matvec_share = {lib: seconds[lib, "of which X @ w"] / seconds[lib, "forward"] for lib in LIBRARIES}
glue("lydia_matvec_share_engine", matvec_share["engine"], display=False)
glue("lydia_matvec_share_torch", matvec_share["torch"], display=False)
most = [words for lib, words in LIBRARIES.items() if matvec_share[lib] >= 0.5]
if len(most) == 2:
    matvec_sentence = "In both, this one product is most of the forward time."
elif most:
    rest = next(words for words in LIBRARIES.values() if words not in most)
    matvec_sentence = (f"It is most of the forward time in {most[0]} but not in {rest}, "
                       "although it has nearly all the FLOPs in both.")
else:
    matvec_sentence = (
        "So in neither library is this one product most of the forward time, although it has "
        "nearly all the FLOPs. The rest is everything else in the pass, the elementwise "
        f"operations on the {n:,} residuals and the bookkeeping of each operation, which these "
        "timings do not separate.")
glue("lydia_matvec_sentence", matvec_sentence, display=False)
matvec_numpy_over_torch = seconds["engine", "of which X @ w"] / seconds["torch", "of which X @ w"]
glue("lydia_matvec_numpy_over_torch", matvec_numpy_over_torch, display=False)
kernel_verdict = ratio_verdict(matvec_numpy_over_torch, "slower", "faster", "")
glue("lydia_engine_sentence", ratio_verdict(
    engine_step / torch_step,
    "So our engine is the slower here" + (
        ", and part of that, at least, is the library underneath: NumPy's bare product is "
        "itself the slower one." if kernel_verdict == "slower" else
        ", although NumPy's bare product is not the slower one: the difference lies in the "
        "rest of the pass, which includes our engine's bookkeeping in Python."),
    "So our engine is the faster here" + (
        ", and part of that, at least, is the library underneath: NumPy's bare product is "
        "itself the faster one. Nothing here shows that our bookkeeping is cheaper than "
        "PyTorch's." if kernel_verdict == "faster" else
        ", although NumPy's bare product is not the faster one; these timings do not show "
        "where the difference comes from."),
    "So the two are within ten percent of each other, a difference that run-to-run noise "
    "can produce."), display=False)

# %% [markdown]
# At $n$ = {glue:text}`lydia_n`, $d$ = {glue:text}`lydia_d` the backward pass counts
# {glue:text}`lydia_backward_forward_flop_ratio:.3f` times the forward pass's FLOPs, as
# {eq}`eq-lydia-backward-flops` predicts, and its wall time is
# {glue:text}`lydia_backward_forward_time_ratio_engine:.2f` times the forward's in our engine
# and {glue:text}`lydia_backward_forward_time_ratio_torch:.2f` times in PyTorch.
# {glue:text}`lydia_time_flop_sentence` Nearly all the FLOPs of each pass are one
# matrix-vector product with $X$ ($Xw$ forward, $X^\top \overline{Xw}$ backward), but FLOPs
# are not time. Such a product does two FLOPs per entry of $X$ it reads, so its speed is
# likely set by how fast memory delivers $X$ and by the particular kernel each library calls
# for it (row-wise for $Xw$, column-wise for $X^\top v$), not by the FLOP count. Timed by
# itself, the bare product $Xw$ takes {glue:text}`lydia_matvec_share_engine:.0%` of our
# engine's forward time and {glue:text}`lydia_matvec_share_torch:.0%` of PyTorch's.
# {glue:text}`lydia_matvec_sentence`
#
# A full gradient step (forward plus backward) with our engine takes
# {glue:text}`lydia_engine_over_torch:.2f` times as long as with PyTorch, and the backward
# pass alone {glue:text}`lydia_backward_engine_over_torch:.2f` times as long; NumPy's bare
# $Xw$ takes {glue:text}`lydia_matvec_numpy_over_torch:.2f` times as long as PyTorch's.
# {glue:text}`lydia_engine_sentence` The picture changes when a graph has many small
# operations, each with its own bookkeeping, as in the Jacobian benchmark below.
#
# ## A check with teeth: the missing transpose
#
# A gradient check is only worth something if it fails when the gradient is wrong. Here is a
# plausible bug: the VJP of a matrix product for its left factor written as $\bar V B$ instead
# of $\bar V B^\top$ {eq}`eq-matmul-vjp`. If $B$ is square, the shapes still fit and nothing
# crashes, so only the numbers can catch it.
#
# We differentiate $\ell = \operatorname{mean}\,\tanh\!\bigl(\tanh(X W_1) W_2\bigr)$ with
# square $W_1, W_2$ through the correct and the broken product, against PyTorch.

# %%
def matmul_missing_transpose(a, b):
    """A deliberately broken copy of matmul: the left factor's VJP lacks the transpose."""
    out = matmul(a, b)
    B = b.value
    out.parents = ((a, lambda g: (g @ B, g.size * B.shape[1] * 2)),) + out.parents[1:]  # bug
    return out


def two_layer_loss(X, W1, W2, mm=matmul):
    return mm(mm(X, W1).tanh(), W2).tanh().mean()


K = 12
X0, W1_0, W2_0 = (rng.standard_normal(shape) / np.sqrt(K) for shape in [(20, K), (K, K), (K, K)])
W1_t, W2_t = torch.tensor(W1_0, requires_grad=True), torch.tensor(W2_0, requires_grad=True)
torch.tanh(torch.tanh(torch.tensor(X0) @ W1_t) @ W2_t).mean().backward()

transpose_errors = {}
for mm in [matmul, matmul_missing_transpose]:
    new_graph()
    W1, W2 = Var(W1_0, requires_grad=True), Var(W2_0, requires_grad=True)
    backward(two_layer_loss(Var(X0), W1, W2, mm))
    transpose_errors[mm.__name__] = (normwise_error(W1.grad, W1_t.grad),
                                     normwise_error(W2.grad, W2_t.grad))

assert max(transpose_errors["matmul"]) < 1e-12  # the correct rule: rounding only
assert transpose_errors["matmul_missing_transpose"][0] > 1e-2  # the check catches the bug
assert transpose_errors["matmul_missing_transpose"][1] < 1e-12  # W2's adjoint never uses it
glue("broken_w1_error", transpose_errors["matmul_missing_transpose"][0], display=False)

# %% [markdown]
# With the missing transpose, the gradient of $W_1$ is off by a normwise relative error of
# {glue:text}`broken_w1_error:.2f`, far above the $10^{-12}$ tolerance, so the comparison
# fails as it should. Two lessons hide in the details. The gradient of $W_2$ is still exact:
# the broken rule is the one for the *left* factor, which only matters for what lies before
# the product, so a check must cover every parameter. And the bug would be invisible if $B$
# were symmetric ($B = B^\top$), while with a non-square $B$ it would have raised a shape
# error at once: test with random, non-symmetric matrices, and keep the shape assertion in
# `accumulate`, which turns most transposition bugs into immediate errors.
#
# ## An MLP through the engine (004 §5)
#
# 004 §5 looks at a three-layer perceptron without biases, $100 \to 200 \to 400 \to 10$ with
# ReLUs between the layers. We build it with `torch.nn` and ask three questions.
#
# ### How much memory do the weights take? (004 §5.1)
#
# A linear layer from $a$ to $b$ features stores a $b \times a$ matrix, so the weights number
# $100 \cdot 200 + 200 \cdot 400 + 400 \cdot 10$, at 4 bytes each in float32 and 8 in float64.
# We count them from the model itself rather than from the formula.

# %%
def alans_mlp(relu=True):
    """004 §5.1's network: 100 -> 200 -> 400 -> 10, no biases, ReLU between the layers."""
    widths = [100, 200, 400, 10]
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b, bias=False))
        if relu and i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


mlp = alans_mlp()  # float32, as torch.nn creates it
n_weights = sum(p.numel() for p in mlp.parameters())
bytes_fp32 = sum(p.numel() * p.element_size() for p in mlp.parameters())
mlp = mlp.double()  # the same weights in float64 (used below)
bytes_fp64 = sum(p.numel() * p.element_size() for p in mlp.parameters())
assert n_weights == 100 * 200 + 200 * 400 + 400 * 10 and bytes_fp64 == 2 * bytes_fp32

results.record("mlp_weights", n_weights, description="weights of the 100-200-400-10 MLP")
bytes_comparison = results.compare("mlp_weight_bytes_fp32", bytes_fp32, 416_000, tolerance=0,
                                   source="004 §5.1", unit="bytes",
                                   description="memory of the MLP's weights in float32")
assert bytes_comparison.holds, bytes_comparison
glue("mlp_weight_bytes_fp32_exam", bytes_comparison.reference, display=False)
results.record("mlp_weight_bytes_fp64", bytes_fp64, unit="bytes",
               description="memory of the MLP's weights in float64")

# %% [markdown]
# The model has {glue:text}`mlp_weights:,` weights, {glue:text}`mlp_weight_bytes_fp32:,.0f`
# bytes in float32 (the exam's answer, {glue:text}`mlp_weight_bytes_fp32_exam:,.0f`, exactly)
# and {glue:text}`mlp_weight_bytes_fp64:,.0f` bytes in
# float64. Training needs more than that: a gradient of the same size, optimizer state (two
# more copies for Adam), and the tape's saved activations, which grow with the batch
# (exercise 3).
#
# ### Our engine against PyTorch on the MLP's gradient
#
# The same MLP, written once as a function of its weight matrices, runs through our engine and
# through PyTorch. `nn.Linear` computes $h W^\top$ with $W$ stored as (out, in); we pass the
# transposed matrices, (in, out), so that each layer is a plain `h @ W`. The loss is the mean
# squared error against random targets.

# %%
def mlp_loss(weights, X, T, relu=True):
    """Mean squared error of the bias-free MLP; weights are (in, out) matrices."""
    h = X
    for i, W in enumerate(weights):
        h = h @ W
        if relu and i < len(weights) - 1:
            h = h.relu()
    residual = h - T
    return (residual * residual).mean()


B = run.mlp_batch
weights0 = [layer.weight.detach().T.contiguous().numpy() for layer in mlp[::2]]  # float64
X_mlp, T_mlp = rng.standard_normal((B, 100)), rng.standard_normal((B, 10))
weights_t = [torch.tensor(W, requires_grad=True) for W in weights0]
X_mlp_t, T_mlp_t = torch.tensor(X_mlp), torch.tensor(T_mlp)


def engine_mlp_gradient():
    new_graph()
    weights = [Var(W, requires_grad=True) for W in weights0]
    backward(mlp_loss(weights, Var(X_mlp), Var(T_mlp)))
    return [W.grad for W in weights]


def torch_mlp_gradient():
    return torch.autograd.grad(mlp_loss(weights_t, X_mlp_t, T_mlp_t), weights_t)


for ours, theirs in zip(engine_mlp_gradient(), torch_mlp_gradient(), strict=True):
    assert normwise_error(ours, theirs) < 1e-12
assert normwise_error(X_mlp_t @ weights_t[0], mlp[0](X_mlp_t)) < 1e-12  # h @ W is nn.Linear

mlp_forward_flops, mlp_backward_flops = FLOPS.counts["forward"], FLOPS.counts["backward"]
matmul_flops = 2 * B * (100 * 200 + 200 * 400 + 400 * 10)  # 2mnp per layer
relu_flops = B * (200 + 400)
loss_flops = 3 * B * 10 + 1  # subtraction, product, mean (sum + one division)
assert mlp_forward_flops == matmul_flops + relu_flops + loss_flops
input_adjoint_flops = 2 * B * (200 * 400 + 400 * 10)  # layers 2 and 3 pass adjoints back
assert mlp_backward_flops == (matmul_flops + input_adjoint_flops + 2 * relu_flops
                              + 3 * B * 10 + 1)

engine_time = measure(engine_mlp_gradient, repeat=run.repeat)
torch_time = measure(torch_mlp_gradient, repeat=run.repeat)
results.record("mlp_backward_forward_flop_ratio", mlp_backward_flops / mlp_forward_flops,
               description="backward / forward FLOPs of the 100-200-400-10 MLP's gradient")
results.record("mlp_engine_over_torch", engine_time.seconds / torch_time.seconds,
               description="time of the MLP gradient, our engine / torch (CPU, float64)")
results.record("mlp_engine_gradient_ms", engine_time.seconds * 1e3, unit="ms",
               description="time of the MLP gradient with our engine (CPU, float64)")
results.record("mlp_torch_gradient_ms", torch_time.seconds * 1e3, unit="ms",
               description="time of the MLP gradient with torch autograd (CPU, float64)")
glue("mlp_batch", B, display=False)
glue("mlp_engine_sentence", ratio_verdict(
    engine_time.seconds / torch_time.seconds,
    "Our engine is the slower here. Both sides run the same handful of large matrix products in "
    "compiled code, so the difference lies in the kernels each library calls or in our "
    "bookkeeping in Python; this timing does not separate the two.",
    "Our engine is even the faster here: whatever the per-operation overhead of a Python engine "
    "costs, it does not show next to a handful of large matrix products in compiled code.",
    "The two are within ten percent: next to a handful of large matrix products in compiled "
    "code, the per-operation overhead of a Python engine does not show."), display=False)

# %% [markdown]
# The engine's MLP gradient matches PyTorch's to rounding. Its backward pass counts
# {glue:text}`mlp_backward_forward_flop_ratio:.2f` times the forward FLOPs, close to the rule of
# thumb's two: each weight matrix needs its own adjoint $A^\top \bar V$, and the second and
# third layers also pass an adjoint $\bar V W^\top$ back to their inputs; only the first layer
# skips that product, because its input is data. At batch {glue:text}`mlp_batch` a gradient
# takes {glue:text}`mlp_engine_gradient_ms:.2f` ms with our engine and
# {glue:text}`mlp_torch_gradient_ms:.2f` ms with PyTorch, a ratio of
# {glue:text}`mlp_engine_over_torch:.2f`. {glue:text}`mlp_engine_sentence`
#
# ### What does autograd cost? A backward pass written by hand
#
# Our engine and PyTorch both pay for bookkeeping: they record every operation of the forward
# pass on a tape, then walk the tape backwards and call one VJP per operation. A backward pass
# written out by hand pays for none of that. Chapter 1 derived one for a network with a hidden
# layer of 20 tanh units and a log-cosh loss, {eq}`bp-tanh-model` in
# {doc}`Backpropagation in matrix form </book/notebooks/01_backprop/03_matrix_form>`: the five
# gradients of {eq}`bp-tanh-grads` are a few matrix products and elementwise operations on the
# whole batch. We import that network and its hand-written gradients from the book's library
# of chapter code, and write the autograd version here: make the parameters and the inputs
# leaves of the tape, compute the loss, call `backward`.

# %%
from helpers.lessons.backprop import tanh_net_grads, tanh_net_init, tanh_net_loss


def tanh_net_grads_autograd(P: dict, X: torch.Tensor, y: torch.Tensor) -> dict:
    """The gradients of eq. (bp-tanh-grads), for W1, b1, w2, b2 and X, by PyTorch's autograd."""
    # detach() makes new leaves that share the data (no copy), each with an empty .grad
    leaves = {name: value.detach().requires_grad_() for name, value in {**P, "X": X}.items()}
    tanh_net_loss(leaves, leaves["X"], y).backward()
    return {name: leaf.grad for name, leaf in leaves.items()}


tanh_generator = torch.Generator().manual_seed(run.seed)
params_check = tanh_net_init(10, 20, tanh_generator)  # d = 10 inputs, H = 20 hidden units
X_check = torch.randn(8, 10, generator=tanh_generator, dtype=torch.float64)
y_check = torch.randn(8, generator=tanh_generator, dtype=torch.float64)
by_hand = tanh_net_grads(params_check, X_check, y_check)
by_autograd = tanh_net_grads_autograd(params_check, X_check, y_check)
for name in by_hand:  # the same products in another order: rounding only
    assert normwise_error(by_hand[name], by_autograd[name]) < 1e-12, name

# %% [markdown]
# The two agree to rounding on all five gradients. Now we time one forward and backward pass
# of each on a small batch of 64 rows and a large one of {glue:text}`autograd_rows:,` rows,
# on the CPU and, when there is one, on a CUDA GPU. The two run in alternating rounds, one
# timed call of each per round, so that a slow moment of the machine hits both alike and the
# ratio of each round is a fair comparison.

# %%
SMALL_ROWS = 64
tanh_devices = [device for device in DEVICES if device.type != "mps"]  # MPS has no float64
tanh_timings = {}  # (device type, rows) -> (hand-written, autograd)
for device in tanh_devices:
    for rows in (SMALL_ROWS, run.autograd_rows):
        params_b = {k: v.to(device) for k, v in tanh_net_init(10, 20, tanh_generator).items()}
        X_b = torch.randn(rows, 10, generator=tanh_generator, dtype=torch.float64).to(device)
        y_b = torch.randn(rows, generator=tanh_generator, dtype=torch.float64).to(device)
        tanh_timings[device.type, rows] = measure_alternately(
            [partial(tanh_net_grads, params_b, X_b, y_b),
             partial(tanh_net_grads_autograd, params_b, X_b, y_b)], run.autograd_rounds)

autograd_over_hand = {key: speed_ratio(auto, hand) for key, (hand, auto) in tanh_timings.items()}
ratio_small = autograd_over_hand["cpu", SMALL_ROWS]
ratio_large = autograd_over_hand["cpu", run.autograd_rows]
assert ratio_small > 1.2, ratio_small  # on 64 rows the bookkeeping costs at least a fifth more
if run.profile != "smoke":  # the smoke run's large batch (512 rows) is still too small to tell
    assert ratio_large < ratio_small, (ratio_large, ratio_small)  # a fixed cost per operation

# %% tags=["hide-input"]
def round_ratios(slow, fast) -> list[float]:
    """The ratio slow / fast of each round (measure_alternately pairs the runs by round)."""
    return [s / f for s, f in zip(slow.runs, fast.runs, strict=True)]


lines = ["| device | rows | by hand | autograd | ratio | range over rounds |",
         "|---|---:|---:|---:|---:|---:|"]
for (device_type, rows), (hand, auto) in tanh_timings.items():
    size = "small" if rows == SMALL_ROWS else "large"
    ratios = round_ratios(auto, hand)
    lines.append(f"| {device_type.upper()} | {rows:,} | "
                 f"{format_seconds(hand.seconds)} | {format_seconds(auto.seconds)} | "
                 f"{speed_ratio(auto, hand):.2f} | {min(ratios):.2f} to {max(ratios):.2f} |")
    results.record(f"autograd_over_hand_{device_type}_{size}", speed_ratio(auto, hand),
                   unit="ratio", description=f"tanh net gradient, autograd time / hand-written "
                                             f"time ({device_type}, {rows} rows)")
    if device_type == "cpu":
        glue(f"autograd_over_hand_cpu_{size}_min", min(ratios), display=False)
        glue(f"autograd_over_hand_cpu_{size}_max", max(ratios), display=False)
glue("autograd_rows", run.autograd_rows, display=False)
names = "; ".join(profiles.device_name(d) if d.type == "cpu" else
                  f"{d.type.upper()}: {profiles.device_name(d)}" for d in tanh_devices)
display(Markdown(f"One forward and backward pass of the tanh network in float64 ({names}; one "
                 f"CPU thread): medians of {run.autograd_rounds} alternating rounds, and the "
                 f"ratio autograd / by hand of the medians and of each round.\n\n"
                 + "\n".join(lines)))

# %% [markdown]
# On the CPU, autograd took {glue:text}`autograd_over_hand_cpu_small:.1f` times as long as
# the hand-written pass on the small batch (the rounds gave ratios from
# {glue:text}`autograd_over_hand_cpu_small_min:.1f` to
# {glue:text}`autograd_over_hand_cpu_small_max:.1f`) and
# {glue:text}`autograd_over_hand_cpu_large:.2f` times as long on the large one (from
# {glue:text}`autograd_over_hand_cpu_large_min:.2f` to
# {glue:text}`autograd_over_hand_cpu_large_max:.2f`): the bookkeeping is a fixed cost per
# operation, the same for 64 rows as for {glue:text}`autograd_rows:,`, so it dominates when
# each operation has little to do and hides behind the arithmetic of a large batch. A run with
# a CUDA GPU adds its two rows to the table.
#
# The fixed cost is not the only difference between the two passes. The derivative of tanh is
# another: our formula for $\boldsymbol\Delta = \partial J/\partial \mathbf{Z}$,
# `torch.outer(e, w2) * (1 - A**2)`, runs four elementwise operations (the outer product, the
# square, the subtraction and the product), each a pass over an $N \times H$ array, while
# autograd's backward of tanh is one fused kernel, `tanh_backward`, that computes
# $\mathbf{G} \odot (1 - \mathbf{A} \odot \mathbf{A})$ in a single pass after the same outer
# product. We time that one line both ways, on the CPU, at the large batch's size.

# %%
delta_generator = torch.Generator().manual_seed(run.seed)
A_big = torch.tanh(torch.randn(run.autograd_rows, 20, generator=delta_generator,
                               dtype=torch.float64))
e_big = torch.randn(run.autograd_rows, generator=delta_generator, dtype=torch.float64)
w2_big = torch.randn(20, generator=delta_generator, dtype=torch.float64)


def delta_four_passes():
    return torch.outer(e_big, w2_big) * (1 - A_big**2)  # outer, square, subtract, multiply


def delta_fused():
    return torch.ops.aten.tanh_backward(torch.outer(e_big, w2_big), A_big)  # outer, one pass


assert normwise_error(delta_four_passes(), delta_fused()) < 1e-12  # the same formula
time_four, time_fused = measure_alternately([delta_four_passes, delta_fused],
                                            run.autograd_rounds)
assert speed_ratio(time_four, time_fused) > 1.2  # fewer passes over memory are faster

# %% tags=["hide-input"]
fused_ratios = round_ratios(time_four, time_fused)
results.record("delta_four_passes_over_fused_cpu", speed_ratio(time_four, time_fused),
               unit="ratio", description=f"tanh net dJ/dZ, four-pass formula time / fused "
                                         f"tanh_backward time (cpu, {run.autograd_rows} rows)")
glue("time_delta_four", format_seconds(time_four.seconds), display=False)
glue("time_delta_fused", format_seconds(time_fused.seconds), display=False)
glue("delta_ratio_min", min(fused_ratios), display=False)
glue("delta_ratio_max", max(fused_ratios), display=False)

# %% [markdown]
# Our line takes {glue:text}`delta_four_passes_over_fused_cpu:.1f` times as long as the fused
# kernel ({glue:text}`time_delta_four` against {glue:text}`time_delta_fused`, medians; the
# rounds gave ratios from {glue:text}`delta_ratio_min:.1f` to
# {glue:text}`delta_ratio_max:.1f`). Fewer passes over memory are faster, as expected (a ratio
# above 1.2 is asserted): here autograd's building blocks are better tuned than the formula
# written the obvious way. How much of the large batch's timing this one line accounts for,
# the experiment does not say. Speed, in the end, is not what autograd is for: both passes do
# the same arithmetic, and autograd's value is that it never forgets a term of the chain
# rule.
#
# ### Do the ReLUs cost much? (004 §5.2)
#
# The exam's roommate proposes to delete the ReLUs to save FLOPs. Our counts above already
# answer: per example the matrix products take $2 \cdot 104000$ FLOPs and the ReLUs $600$, one
# per hidden unit. We also time the network with and without them (float32, as one would
# train).

# %%
relu_share = relu_flops / (matmul_flops + relu_flops)
X32 = torch.randn(run.mlp_batch, 100, generator=generator)
with torch.no_grad():
    mlp32, linear32 = alans_mlp(relu=True), alans_mlp(relu=False)
    time_relu = measure(lambda: mlp32(X32), repeat=run.repeat, number=10)
    time_linear = measure(lambda: linear32(X32), repeat=run.repeat, number=10)
results.record("relu_flop_share", relu_share,
               description="ReLU FLOPs / (matmul + ReLU FLOPs) in the 004 §5 MLP forward pass")
relu_saving = 1 - time_linear.seconds / time_relu.seconds
relu_spread = (max(time_relu.runs) - min(time_relu.runs)) / time_relu.seconds
results.record("relu_time_saving", relu_saving,
               description="fraction of the forward time saved by removing the ReLUs (float32)")
glue("relu_spread", relu_spread, display=False)
glue("relu_time_change", f"{abs(relu_saving):.1%} {'less' if relu_saving >= 0 else 'more'}",
     display=False)
within_noise = abs(relu_saving) < relu_spread
if relu_saving > 2 * relu_share and within_noise:
    glue("relu_memory_sentence", f"That would be {relu_saving / relu_share:.0f} times their "
         "share of the FLOPs, but the difference is within the spread of the timings, so this "
         "run cannot tell the two networks apart.", display=False)
elif relu_saving > 2 * relu_share:
    glue("relu_memory_sentence", f"That is {relu_saving / relu_share:.0f} times their share of "
         "the FLOPs. The likely reason for a gap of this kind is memory traffic: a ReLU does "
         "one comparison for each number it reads and writes back, so, like other elementwise "
         "operations, its time is set by moving the activations through memory (plus one call "
         "per layer), while a matrix product does hundreds of multiply-adds for each number it "
         "loads.",
         display=False)
elif relu_saving >= 0:
    glue("relu_memory_sentence", "That is no more than twice their share of the FLOPs.",
         display=False)
else:
    glue("relu_memory_sentence", "In this run the network without ReLUs was not faster at all"
         + (", a difference within that spread." if within_noise else "."), display=False)
if relu_saving < 0.1:
    glue("relu_verdict", "The exam's answer stands: deleting the ReLUs buys little speed.",
         display=False)
elif within_noise:
    glue("relu_verdict", "So this run neither confirms nor refutes the exam's answer; a quieter "
         "machine or more repeats would.", display=False)
else:
    glue("relu_verdict", "Here deleting the ReLUs saved more time than the exam's answer "
         "suggests, although their FLOPs are negligible.", display=False)

# %% [markdown]
# The ReLUs are {glue:text}`relu_flop_share:.2%` of the forward FLOPs: linear in the layer
# widths, against the quadratic cost of the matrix products. Without them the measured
# forward pass takes {glue:text}`relu_time_change` time. Timings this short are noisy: the
# repeated timings of the network with ReLUs spread, from fastest to slowest, over
# {glue:text}`relu_spread:.0%` of their median, so the size of the difference matters, not
# its exact value.
# {glue:text}`relu_memory_sentence` {glue:text}`relu_verdict` What the ReLUs are *for* is
# the next question.
#
# ### What do the ReLUs do? (004 §5.3)
#
# Without them the network is $x \mapsto W_3 W_2 W_1 x$, a product of matrices, i.e. *one*
# $10 \times 100$ matrix $M = W_3 W_2 W_1$: a linear model, whatever the depth. We check that
# the ReLU-free network's output is exactly $x M^\top$, that it is additive
# ($f(x + x') = f(x) + f(x')$) while the network with ReLUs is not.

# %%
relu_mlp = alans_mlp(relu=True).double()
linear_mlp = relu_mlp[::2]  # the same three Linear layers (shared, not copied), no ReLUs
W1_l, W2_l, W3_l = (layer.weight.detach() for layer in linear_mlp)
M = W3_l @ W2_l @ W1_l  # (10, 100): the whole network as one matrix
Xa = torch.randn(64, 100, generator=generator, dtype=torch.float64)
Xb = torch.randn(64, 100, generator=generator, dtype=torch.float64)

with torch.no_grad():
    assert normwise_error(linear_mlp(Xa), Xa @ M.T) < 1e-12  # collapsed to one matrix
    assert normwise_error(linear_mlp(Xa + Xb), linear_mlp(Xa) + linear_mlp(Xb)) < 1e-12
    nonadditivity = normwise_error(relu_mlp(Xa + Xb), relu_mlp(Xa) + relu_mlp(Xb))
assert nonadditivity > 0.1  # with ReLUs, far from linear
glue("collapsed_entries", M.numel(), display=False)
glue("relu_nonadditivity", nonadditivity, display=False)

# %% [markdown]
# Without ReLUs the {glue:text}`mlp_weights:,` weights describe a function that
# {glue:text}`collapsed_entries` numbers describe as well: the $10 \times 100$ matrix $M$. With
# the same weights and the ReLUs back, $f(x + x')$ and $f(x) + f(x')$ differ by a normwise
# {glue:text}`relu_nonadditivity:.2f`. That is the exam's answer to why accuracy dropped:
# without nonlinearities, depth adds parameters but no expressive power; the network can only
# represent what logistic regression on the raw inputs can.
#
# ## Jacobians: reverse mode against forward mode (003 P2)
#
# So far the output was a scalar, a loss. Now take a network with a vector output,
#
# $$
# f(x) = W_F \tanh\!\bigl(W_L \cdots \tanh(W_2 \tanh(W_1 x))\bigr), \qquad
# W_1 \in \mathbb R^{K\times D},\; W_2, \dots, W_L \in \mathbb R^{K\times K},\;
# W_F \in \mathbb R^{P\times K},
# $$ (eq-tanh-net)
#
# so $f : \mathbb R^D \to \mathbb R^P$, with $L$ tanh layers. 003 takes $D = 2$, $K = 30$,
# $P = 10$ and asks for the whole Jacobian $J = \partial f / \partial x \in \mathbb R^{P\times D}$.
# With $h_0 = x$, $h_k = \tanh(W_k h_{k-1})$ and $S_k = \operatorname{diag}(1 - h_k \odot h_k)$,
# the chain rule gives a product of matrices:
#
# $$
# J = W_F\, S_L W_L\, S_{L-1} W_{L-1} \cdots S_1 W_1 .
# $$ (eq-jacobian-product)
#
# A product of matrices can be evaluated from either end, and that is the whole difference
# between the two modes of automatic differentiation.
#
# - **Forward mode** goes from the right, together with the forward pass: it carries the
#   tangent $T_k = \partial h_k / \partial x$, a $K \times D$ matrix,
#   $T_0 = I_D$, $T_k = S_k W_k T_{k-1}$, $J = W_F T_L$. Each column of $T$ is one
#   directional derivative (a Jacobian-vector product, JVP); $D$ of them give $J$.
# - **Reverse mode** goes from the left, after the forward pass: it carries the adjoint
#   $A_k = \partial f / \partial h_k$, a $P \times K$ matrix, $A_L = I_P W_F$,
#   $A_{k-1} = (A_k S_k) W_k$, $J = (A_1 S_1) W_1$. Each row of $A$ is one VJP, the backward
#   pass of one output; $P$ of them give $J$.
#
# **Cost model (003 2(e)).** Count a product of an $M_1 \times M_2$ and an $M_2 \times M_3$
# matrix as $M_1 M_2 M_3$ multiply-adds and ignore the elementwise work (the $S_k$, lower
# order). Both modes need the forward pass, $F = KD + (L-1)K^2 + PK$ (matrix-vector
# products). Reading off the recursions:
#
# $$
# C_{\mathrm{fwd}} = F + K D^2 + (L-1) K^2 D + P K D, \qquad
# C_{\mathrm{rev}} = F + P^2 K + (L-1) P K^2 + P K D ,
# $$ (eq-cost-model)
#
# where $KD^2$ and $P^2K$ are the products with the identity seeds, which PyTorch's `jacfwd`
# and `jacrev` really perform (they push the columns of $I_D$ or the rows of $I_P$ through the
# graph); a hand-written version would start from $W_1$ or $W_F$ and save them. Now look at
# the terms: those of forward mode are $D$ times the terms of $F$, those of reverse mode $P$
# times. The model factors,
#
# $$
# C_{\mathrm{fwd}} = (1 + D)\, F, \qquad C_{\mathrm{rev}} = (1 + P)\, F :
# $$ (eq-cost-factored)
#
# a Jacobian costs one forward pass plus one more per *input* in forward mode, per *output* in
# reverse mode. So $C_{\mathrm{fwd}} - C_{\mathrm{rev}} = (D - P)F$: **forward mode is cheaper
# exactly when $D < P$**, fewer inputs than outputs, and the ratio $(1 + D)/(1 + P)$ depends
# on neither the depth nor the width. For a scalar function ($P = 1$) of $D$ inputs reverse
# mode wins by $(1 + D)/2$; in training the "inputs" are millions of parameters, which is why
# training uses reverse mode. In 003's setting, $D = 2 < P = 10$: the model favours forward
# mode, at $(1 + 2)/(1 + 10) = 3/11$ of the cost of reverse mode.

# %%
def jacobian_cost(D, K, P, L):
    """Multiply-adds of the forward pass and of each mode's Jacobian (eq-cost-model)."""
    primal = K * D + (L - 1) * K * K + P * K
    forward = K * D * D + (L - 1) * K * K * D + P * K * D
    reverse = P * P * K + (L - 1) * P * K * K + P * K * D
    return primal, primal + forward, primal + reverse


def tanh_net_weights(D, K, P, L, device=CPU, dtype=torch.float64):
    """W_1 (K, D), W_2..W_L (K, K), W_F (P, K); entries N(0, 1/fan-in) keep tanh unsaturated."""
    shapes = [(K, D)] + [(K, K)] * (L - 1) + [(P, K)]
    names = [f"W{k}" for k in range(1, L + 1)] + ["WF"]
    return {name: (torch.randn(shape, generator=generator, dtype=torch.float64)
                   / shape[1] ** 0.5).to(device, dtype) for name, shape in zip(names, shapes,
                                                                               strict=True)}


def tanh_net(x, weights):
    """f(x) of eq-tanh-net; the dict holds W1..WL then WF, in that order."""
    *hidden, W_F = weights.values()
    h = x
    for W in hidden:
        h = torch.tanh(W @ h)
    return W_F @ h


# %% [markdown]
# Five ways to compute $J$. Two reverse-mode ones: a loop of $P$ backward passes (one per
# output, `torch.autograd.grad` on $f_p$), and `torch.func.jacrev`, which runs the $P$ VJPs as
# one vectorized pass (`vmap`). Two forward-mode ones: a loop of $D$ passes with dual numbers
# (`torch.autograd.forward_ad`, one column per pass), and `torch.func.jacfwd`, the $D$ JVPs
# vectorized. And the product {eq}`eq-jacobian-product` written out, which is forward mode by
# hand.

# %%
def jacobian_reverse_rows(x, weights):
    """Reverse mode, one backward pass per output: row p of J is the gradient of f_p."""
    x = x.detach().requires_grad_()
    y = tanh_net(x, weights)
    rows = [torch.autograd.grad(y[p], x, retain_graph=True)[0] for p in range(len(y))]
    return torch.stack(rows)


def jacobian_forward_columns(x, weights):
    """Forward mode, one pass with dual numbers per input: column j of J is f's JVP with e_j."""
    columns = []
    with fwAD.dual_level():
        for e_j in torch.eye(len(x), dtype=x.dtype, device=x.device):
            y = tanh_net(fwAD.make_dual(x, e_j), weights)
            columns.append(fwAD.unpack_dual(y).tangent)
    return torch.stack(columns, dim=1)


def jacobian_jacrev(x, weights):
    return jacrev(tanh_net)(x, weights)


def jacobian_jacfwd(x, weights):
    return jacfwd(tanh_net)(x, weights)


def jacobian_by_product(x, weights):
    """eq-jacobian-product accumulated from the right: T_k = S_k W_k T_{k-1}, J = W_F T_L."""
    *hidden, W_F = weights.values()
    h, T = x, torch.eye(len(x), dtype=x.dtype, device=x.device)
    for W in hidden:
        h = torch.tanh(W @ h)
        T = (1 - h * h)[:, None] * (W @ T)
    return W_F @ T


JACOBIAN_METHODS = {
    "reverse, P backward passes": jacobian_reverse_rows,
    "reverse, jacrev": jacobian_jacrev,
    "forward, D dual passes": jacobian_forward_columns,
    "forward, jacfwd": jacobian_jacfwd,
}

# %% [markdown]
# The check, in float64 for $L = 3$ and 003's sizes, on several random inputs: every method
# agrees with the product formula to rounding, and one row of the Jacobian at a time is
# compared with finite differences (which know nothing about either mode).

# %%
D, K, P = 2, 30, 10
weights = tanh_net_weights(D, K, P, L=3)
for _ in range(run.jac_cases):
    x = torch.randn(D, generator=generator, dtype=torch.float64)
    J = jacobian_by_product(x, weights)
    assert J.shape == (P, D)
    for name, method in JACOBIAN_METHODS.items():
        assert normwise_error(method(x, weights), J) < 1e-12, name
    for p in range(P):  # x is perturbed in place by the finite differences
        check_gradients(lambda p=p, x=x: tanh_net(x, weights)[p], {"x": x}, {"x": J[p]})

# %% [markdown]
# The cost model counts multiply-adds; PyTorch's `FlopCounterMode` counts the FLOPs of every
# matrix-matrix product it dispatches (2 per multiply-add). The forward pass uses
# matrix-*vector* products, which it does not count, so what it counts is exactly the
# Jacobian part of {eq}`eq-cost-model`, $C - F$. We check that this holds to the last FLOP for
# a range of shapes, which confirms both the model and our reading of what `jacfwd` and
# `jacrev` do (the identity seeds included).

# %%
def counted_matmul_flops(method, x, weights):
    counter = FlopCounterMode(display=False)
    with counter:
        method(x, weights)
    return counter.get_total_flops()


for D_, K_, P_, L_ in [(2, 30, 10, 3), (2, 30, 10, 10), (1, 64, 32, 3), (32, 64, 1, 5)]:
    w_ = tanh_net_weights(D_, K_, P_, L_)
    x_ = torch.randn(D_, generator=generator, dtype=torch.float64)
    primal, c_fwd, c_rev = jacobian_cost(D_, K_, P_, L_)
    assert (c_fwd, c_rev) == ((1 + D_) * primal, (1 + P_) * primal)  # eq-cost-factored
    assert counted_matmul_flops(jacobian_jacfwd, x_, w_) == 2 * (c_fwd - primal)
    assert counted_matmul_flops(jacobian_jacrev, x_, w_) == 2 * (c_rev - primal)

# %% [markdown]
# ### Benchmark at 003's sizes
#
# Now the timings 003 asks for: $D = 2$, $K = 30$, $P = 10$, $L = 3, 5, 10$, each method on
# the CPU and, when there is one, on the GPU, in float32 (the precision one would use in
# practice). Each entry is the median of the timed runs.

# %%
benchmark = {}  # (device, L, method) -> seconds
for device in DEVICES:
    for L in (3, 5, 10):
        weights = tanh_net_weights(D, K, P, L, device=device, dtype=torch.float32)
        x = torch.randn(D, generator=generator).to(device)
        for name, method in JACOBIAN_METHODS.items():
            timing = measure(partial(method, x, weights), repeat=run.jac_repeat, warmup=3)
            benchmark[device.type, L, name] = timing.seconds

header = "| device | L | model: fwd / rev multiply-adds | " + " | ".join(JACOBIAN_METHODS)
lines = [header + " |", "|---" * (3 + len(JACOBIAN_METHODS)) + "|"]
for device in DEVICES:
    for L in (3, 5, 10):
        _, c_fwd, c_rev = jacobian_cost(D, K, P, L)
        cells = [f"{benchmark[device.type, L, name] * 1e6:.0f} µs" for name in JACOBIAN_METHODS]
        lines.append(f"| {device.type} | {L} | {c_fwd:,} / {c_rev:,} = {c_fwd / c_rev:.2f} | "
                     + " | ".join(cells) + " |")
names = ", ".join(f"{d.type} = {profiles.device_name(d)}" for d in DEVICES)
display(Markdown(f"Jacobian of the tanh network, D = {D}, K = {K}, P = {P}, float32 "
                 f"({names}); median of {run.jac_repeat} runs.\n\n" + "\n".join(lines)))

for L in (3, 10):
    for key, name in [("jacrev", "reverse, jacrev"), ("jacfwd", "forward, jacfwd"),
                      ("rows", "reverse, P backward passes"),
                      ("columns", "forward, D dual passes")]:
        results.record(f"jac_{key}_l{L}_cpu_us", benchmark["cpu", L, name] * 1e6, unit="µs",
                       description=f"Jacobian by {name}, L = {L}, D=2 K=30 P=10, CPU float32")
    glue(f"jac_measured_ratio_l{L}", benchmark["cpu", L, "forward, jacfwd"]
         / benchmark["cpu", L, "reverse, jacrev"], display=False)
    glue(f"jac_passes_ratio_l{L}", benchmark["cpu", L, "reverse, P backward passes"]
         / benchmark["cpu", L, "forward, D dual passes"], display=False)
_, c_fwd, c_rev = jacobian_cost(D, K, P, 3)
glue("jac_model_ratio_l3", c_fwd / c_rev, display=False)  # the same at every depth
glue("cpu_name", profiles.device_name(CPU), display=False)
glue("jac_pass_ratio", (1 + P) / D, display=False)  # passes of the row loop / column loop


def vmap_verdict(loop_over_vmap: float) -> str:
    """Did vmap pay off? loop_over_vmap = time of the loop / time of the vmapped version."""
    return ratio_verdict(
        loop_over_vmap,
        "it paid off in this run",
        "it did not pay off in this run",
        "it made no clear difference in this run (within ten percent)",
    )


rows_over_jacrev = benchmark["cpu", 3, "reverse, P backward passes"] / benchmark[
    "cpu", 3, "reverse, jacrev"]
columns_over_jacfwd = benchmark["cpu", 3, "forward, D dual passes"] / benchmark[
    "cpu", 3, "forward, jacfwd"]
glue("jac_vmap_rev_verdict", vmap_verdict(rows_over_jacrev), display=False)
glue("jac_vmap_fwd_verdict", vmap_verdict(columns_over_jacfwd), display=False)
glue("jac_loop_ratio_l3", rows_over_jacrev, display=False)
glue("jac_fwd_vmap_ratio_l3", 1 / columns_over_jacfwd, display=False)  # jacfwd / the loop
if len(DEVICES) > 1:
    accelerator = DEVICES[1]
    acc_us, cpu_us = (benchmark[kind, 3, "reverse, jacrev"] * 1e6
                      for kind in (accelerator.type, "cpu"))
    glue("jac_gpu_sentence", f"On the {accelerator.type.upper()} device "
         f"({profiles.device_name(accelerator)}), `jacrev` at $L = 3$ took {acc_us:.0f} µs "
         f"against {cpu_us:.0f} µs on the CPU, "
         + ("slower: at these sizes there is too little arithmetic to pay for its fixed cost "
            "per operation (presumably a kernel launch each)." if acc_us > cpu_us else
            "faster even at these sizes."), display=False)
else:
    glue("jac_gpu_sentence", "This run had no GPU; a run with one adds a GPU block to the "
         "table.", display=False)

# %% [markdown]
# On this run's CPU ({glue:text}`cpu_name`) the model predicts, at every depth, that forward
# mode needs $3/11 \approx$ {glue:text}`jac_model_ratio_l3:.2f` times the multiply-adds of
# reverse mode {eq}`eq-cost-factored`. The measured ratio of `jacfwd` to `jacrev` is
# {glue:text}`jac_measured_ratio_l3:.2f` at $L = 3$ and {glue:text}`jac_measured_ratio_l10:.2f`
# at $L = 10$. The model does not predict these timings, and it
# should not be expected to: at $K = 30$ the whole Jacobian is a few tens of thousands of
# multiply-adds, a few microseconds of arithmetic, while each timing is hundreds of
# microseconds. What we are measuring is bookkeeping: building the graph, dispatching each
# small operation, the dual numbers of forward mode, the `vmap` transformation.
#
# The bookkeeping has a structure of its own. At this size each pass through the network
# costs roughly the same fixed amount, so the loops cost roughly in proportion to their
# number of passes. The row loop makes one forward pass and $P = 10$ backward passes, the
# column loop $D = 2$ forward passes with dual numbers, and the rows take
# {glue:text}`jac_passes_ratio_l3:.1f` times as long as the columns at $L = 3$
# ({glue:text}`jac_passes_ratio_l10:.1f` at $L = 10$), against a ratio of passes of
# $(1 + P)/D$ = {glue:text}`jac_pass_ratio:.1f`: a rough proportion only, because the passes
# are not alike (a backward pass is not the same work as a forward pass with dual numbers).
# Vectorizing with `vmap` replaces the passes by one pass over a batch, at a fixed price of
# its own. For the ten backward passes {glue:text}`jac_vmap_rev_verdict` (the loop takes
# {glue:text}`jac_loop_ratio_l3:.1f` times as long as `jacrev` at $L = 3$); for the two
# forward passes {glue:text}`jac_vmap_fwd_verdict` (`jacfwd` takes
# {glue:text}`jac_fwd_vmap_ratio_l3:.1f` times as long as the loop).
# {glue:text}`jac_gpu_sentence`
#
# The model becomes a prediction of time only when the matrices are large enough for the
# arithmetic to dominate. That is the next experiment.
#
# ### Where is the crossover?
#
# We take wide layers ($K$ in the scale table, $L = 3$) and sweep one dimension at a time:
# $D$ with $P$ fixed, then $P$ with $D$ fixed. By {eq}`eq-cost-factored` the crossover is at
# $D = P$. At each size the two modes are timed in alternating rounds, one call of each per
# round (which goes first swaps every round), so that a slow spell of the shared machine
# slows both alike; a mode's time is the median of its rounds. Near the crossover the two
# times are close and their order can change from round to round, so a comparison of two
# medians could put a crossing wherever noise tips it. We therefore count, at each size, the
# rounds in which the mode that carries the swept dimension was the slower, and call the
# order *settled* when one mode was the slower in at least {glue:text}`settle_share:.0%` of
# the rounds. The measured crossover is then a range: from the largest size at which that
# mode was settled faster to the smallest size from which on it was settled slower at every
# size.
#
# To compare times with the model we fit one line per device,
# $t = t_0 + c \cdot C$, with $C$ the multiply-adds of {eq}`eq-cost-model`, $t_0$ an
# intercept (what a call costs beyond its multiply-adds) and $1/c$ a rate of multiply-adds per
# second ($2/c$ in FLOPs per second, two FLOPs to a multiply-add), over all
# points of both modes and both sweeps. The fit is robust: of all the lines through two
# measured points (or through one, with $t_0 = 0$ or $c = 0$), we keep the one with the
# smallest sum of absolute log errors $|\ln(\text{model}/\text{measured})|$. Like a median, it
# lets a few points far off the line move it only a little, where a least-squares fit would
# let them drag both constants. Two constants for the whole device: the *shape* of the
# curves, and the crossover, come from the model alone (the two modes share one line in the
# multiply-adds, so their model curves cross exactly where the multiply-adds are equal, at
# $D = P$).

# %%
def crossover_sweep(device, K, fixed, sizes, L=3):
    """Time jacfwd and jacrev, alternately, for D in sizes (P = fixed), then P in sizes
    (D = fixed)."""
    rows = []
    for sweep in ("D", "P"):
        for size in sizes:
            D_, P_ = (size, fixed) if sweep == "D" else (fixed, size)
            weights = tanh_net_weights(D_, K, P_, L, device=device, dtype=torch.float32)
            x = torch.randn(D_, generator=generator).to(device)
            _, c_fwd, c_rev = jacobian_cost(D_, K, P_, L)
            timings = measure_alternately([partial(jacobian_jacfwd, x, weights),
                                           partial(jacobian_jacrev, x, weights)], run.repeat,
                                          warmup=2)
            for mode, cost, timing in zip(("forward", "reverse"), (c_fwd, c_rev), timings,
                                          strict=True):
                rows.append(dict(sweep=sweep, size=size, mode=mode, cost=cost,
                                 seconds=timing.seconds, runs=timing.runs))
    return rows


def fit_time_model(rows):
    """t = t0 + c * cost with t0, c >= 0: the line through two measured points (or through one,
    with t0 = 0 or c = 0) with the least sum of |log(model / measured)| over all points.
    Returns t0, c and the rows the line passes through."""
    t = np.array([r["seconds"] for r in rows])
    cost = np.array([r["cost"] for r in rows], dtype=float)
    candidates = ([(0.0, t[i] / cost[i], (i,)) for i in range(len(t))]
                  + [(t[i], 0.0, (i,)) for i in range(len(t))])
    for i in range(len(t)):
        for j in range(i + 1, len(t)):
            if cost[i] != cost[j]:
                c = (t[j] - t[i]) / (cost[j] - cost[i])
                if c >= 0 and t[i] - c * cost[i] >= 0:
                    candidates.append((t[i] - c * cost[i], c, (i, j)))
    t0, c, through = min(candidates,
                         key=lambda cand: np.abs(np.log((cand[0] + cand[1] * cost) / t)).sum())
    return float(t0), float(c), [rows[i] for i in through]


SETTLED = 0.8  # share of the rounds in which one mode must be the slower for the order to count


def growing_mode(sweep) -> str:
    """The mode whose multiply-adds grow with the swept dimension: forward mode carries D."""
    return "forward" if sweep == "D" else "reverse"


def settled_order(rows, sweep) -> dict:
    """size -> +1 where the growing mode was the slower in at least SETTLED of the paired
    rounds, -1 where it was the faster in that many, 0 where the order is not settled."""
    runs = {(r["size"], r["mode"]): r["runs"] for r in rows if r["sweep"] == sweep}
    growing = growing_mode(sweep)
    flat = "reverse" if growing == "forward" else "forward"
    order = {}
    for size in sorted({size for size, _ in runs}):
        slower = np.mean([a > b for a, b in zip(runs[size, growing], runs[size, flat],
                                                 strict=True)])
        order[size] = 1 if slower >= SETTLED else -1 if slower <= 1 - SETTLED else 0
    return order


def crossover_range(order):
    """(low, high): high is the smallest size from which on the growing mode was settled slower
    at every size (None if it was not at the largest); low is the largest size below high at
    which it was settled faster (None if there is none)."""
    high = None
    for size in sorted(order, reverse=True):
        if order[size] != 1:
            break
        high = size
    low = max((s for s in order if order[s] == -1 and high is not None and s < high),
              default=None)
    return low, high


def order_changes(order) -> int:
    """How often the settled order changes along a sweep (sizes where it is not settled are
    skipped)."""
    signs = [order[size] for size in sorted(order) if order[size] != 0]
    return sum(a != b for a, b in zip(signs[:-1], signs[1:], strict=True))


sweeps, time_model = {}, {}
for device in DEVICES:
    K_cross = run.cross_width if device.type == "cpu" else run.gpu_cross_width
    sweeps[device.type] = (K_cross, crossover_sweep(device, K_cross, run.cross_fixed,
                                                    run.cross_sizes))
    time_model[device.type] = fit_time_model(sweeps[device.type][1])
# the settled order along each sweep, once per device: size -> +1, -1 or 0
orders = {kind: {sweep: settled_order(rows, sweep) for sweep in ("D", "P")}
          for kind, (_, rows) in sweeps.items()}

# %% [markdown]
# Before plotting, two checks that hold whatever the machine: at the largest size of each
# sweep, where the model says that the mode carrying the swept dimension needs
# {glue:text}`cross_model_extreme_ratio:.0f` times the multiply-adds of the other, the
# measured times must order the same way.

# %%
fixed, largest = run.cross_fixed, max(run.cross_sizes)
for device_type, (_, rows) in sweeps.items():
    time = {(r["sweep"], r["size"], r["mode"]): r["seconds"] for r in rows}
    assert time["D", largest, "forward"] > time["D", largest, "reverse"], device_type
    assert time["P", largest, "reverse"] > time["P", largest, "forward"], device_type
_, c_fwd, c_rev = jacobian_cost(largest, run.cross_width, fixed, 3)
glue("cross_model_extreme_ratio", c_fwd / c_rev, display=False)  # the same ratio in both sweeps

# %%
fig, axes = plt.subplots(len(sweeps), 3, figsize=(14, 4.2 * len(sweeps)), squeeze=False)
for row_axes, device in zip(axes, DEVICES, strict=True):
    K_cross, rows = sweeps[device.type]
    t0, c, _ = time_model[device.type]
    for ax, sweep in zip(row_axes[:2], ("D", "P"), strict=True):
        for mode, marker, color in [("forward", "o", "C0"), ("reverse", "s", "C1")]:
            pts = [r for r in rows if r["sweep"] == sweep and r["mode"] == mode]
            sizes = [r["size"] for r in pts]
            ax.plot(sizes, [r["seconds"] * 1e3 for r in pts], marker, color=color,
                    label=f"{mode} mode, measured (median)")
            ax.plot(sizes, [(t0 + c * r["cost"]) * 1e3 for r in pts], "-", color=color,
                    alpha=0.7, label=f"{mode} mode, model")
        ax.axvline(run.cross_fixed, color="gray", linestyle="--", label="model crossover")
        low, high = crossover_range(orders[device.type][sweep])
        if high is not None:
            ax.axvspan(min(run.cross_sizes) if low is None else low, high, color="gray",
                       alpha=0.15, label="measured crossover range")
        other, what = ("P", "inputs") if sweep == "D" else ("D", "outputs")
        ax.set(xscale="log", yscale="log",
               xlabel=f"{sweep}, number of {what} (with {other} = {run.cross_fixed})",
               ylabel="time per Jacobian (ms)",
               title=f"{device.type.upper()}: varying {sweep}, K = {K_cross}, L = 3")
        ax.legend(fontsize=8)
    ax = row_axes[2]
    for mode, marker, color in [("forward", "o", "C0"), ("reverse", "s", "C1")]:
        pts = [r for r in rows if r["mode"] == mode]
        ax.plot([(t0 + c * r["cost"]) * 1e3 for r in pts], [r["seconds"] * 1e3 for r in pts],
                marker, color=color, label=f"{mode} mode")
    bounds = [min(r["seconds"] for r in rows) * 1e3 * 0.7, max(r["seconds"] for r in rows) * 1e3]
    ax.plot(bounds, bounds, "k--", label="measured = model")
    ax.set(xscale="log", yscale="log", xlabel="model prediction (ms)",
           ylabel="measured time (ms)", title=f"{device.type.upper()}: measured against model")
    ax.legend(fontsize=8)
for ax in axes.flat:  # label the decades only: minor labels collide on short log ranges
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
fig.suptitle("Jacobian by forward (jacfwd) and reverse (jacrev) mode: "
             + "; ".join(profiles.device_name(d) for d in DEVICES), fontsize=10)
fig.tight_layout()
plt.show()

# %%
def join_words(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def point_text(r) -> str:
    return f"{r['mode']} mode at ${r['sweep']}$ = {r['size']}"


def crossover_range_text(sweep, low, high) -> str:
    """Where a sweep puts the crossover, in words."""
    if high is None:
        return f"nowhere in the ${sweep}$ sweep (the order is not settled at its largest size)"
    if low is None:
        return f"at or below ${sweep}$ = {high}"
    return f"between ${sweep}$ = {low} and {high}"


def crossing_sentence(order, sweep, model_crossover) -> str:
    """What the settled order of one sweep says about the crossover, against the model's."""
    low, high = crossover_range(order)
    growing = growing_mode(sweep)
    if high is None:
        return (f"In the ${sweep}$ sweep {growing} mode was not the settled slower at the "
                f"largest ${sweep}$, so this run gives no measured crossover.")
    if low is None:
        where = (f"at every ${sweep}$ measured" if high == min(order) else
                 f"at every ${sweep}$ from {high} on")
        text = f"In the ${sweep}$ sweep {growing} mode was the settled slower {where}"
        text += " and the settled faster at none"
        below, above = model_crossover / high, 1.0
    else:
        text = (f"In the ${sweep}$ sweep {growing} mode was last the settled faster at "
                f"${sweep}$ = {low} and the settled slower at every ${sweep}$ from {high} on")
        below, above = model_crossover / high, low / model_crossover
    text += f", so the measured crossover lies {crossover_range_text(sweep, low, high)}"
    if model_crossover in (low, high):
        end = "lower" if model_crossover == low else "upper"
        text += f"; the model's, ${sweep}$ = {model_crossover}, is its {end} end."
    elif max(below, above) <= 1:
        text += f"; the model's, ${sweep}$ = {model_crossover}, lies within this range."
    else:
        side = "above" if below > 1 else "below"
        text += (f"; the model's, ${sweep}$ = {model_crossover}, lies outside it, a factor of "
                 f"{max(below, above):.1f} {side} its nearest end.")
    reversed_sizes = [s for s in order if low is not None and s < low and order[s] == 1]
    if reversed_sizes:
        text += (f" Further down, at ${sweep}$ = {join_words(reversed_sizes)}, {growing} mode "
                 "was the settled slower as well.")
    return text


def model_factor(r, t0, c) -> float:
    """How far the model is from a measured point, as a factor >= 1."""
    model = t0 + c * r["cost"]
    return max(r["seconds"] / model, model / r["seconds"])


def outlier_text(outliers, t0, c) -> str:
    """'reverse mode at P = 2, 4 and 8, above the model', grouped by mode, sweep and side."""
    groups = {}
    for r in outliers:
        side = "above" if r["seconds"] > t0 + c * r["cost"] else "below"
        groups.setdefault((r["mode"], r["sweep"], side), []).append(r["size"])
    return "; ".join(f"{mode} mode at ${sweep}$ = {join_words(sorted(sizes))}, {side} the model"
                     for (mode, sweep, side), sizes in groups.items())


for device_type, (_, rows) in sweeps.items():
    t0, c, _ = time_model[device_type]
    errors = [model_factor(r, t0, c) for r in rows]
    outliers = [r for r in rows if model_factor(r, t0, c) > 3]
    for sweep, slower, faster in (("D", "jacfwd", "jacrev"), ("P", "jacrev", "jacfwd")):
        order = orders[device_type][sweep]
        low, high = crossover_range(order)
        other = "P" if sweep == "D" else "D"
        settled = (f"in at least {SETTLED:.0%} of alternating rounds, {other} fixed, "
                   f"{device_type}")
        results.record(f"crossover_{sweep.lower()}_{device_type}", high,
                       description=f"measured crossover, upper end: the smallest {sweep} from "
                                   f"which on {slower} was slower than {faster} at every "
                                   f"{sweep}, {settled} (None: not at the largest {sweep})")
        results.record(f"crossover_{sweep.lower()}_low_{device_type}", low,
                       description=f"measured crossover, lower end: the largest {sweep} below "
                                   f"the upper end at which {slower} was faster than {faster}, "
                                   f"{settled} (None: at no such {sweep})")
        results.record(f"crossings_{sweep.lower()}_{device_type}", order_changes(order),
                       description=f"changes of the settled order of jacfwd and jacrev along "
                                   f"the {sweep} sweep, unsettled sizes skipped, {device_type}")
        # sentences with math or code are glued as Markdown and pasted with {glue:md}`name:myst`
        # (glue:text would show the dollar signs and backticks)
        glue(f"crossing_sentence_{sweep.lower()}_{device_type}",
             Markdown(crossing_sentence(order, sweep, run.cross_fixed)), display=False)
    results.record(f"time_model_overhead_{device_type}_us", t0 * 1e6, unit="µs",
                   description=f"fitted intercept t0 of the time model (robust fit), "
                               f"{device_type}")
    results.record(f"time_model_rate_{device_type}_gflops", 2 / c / 1e9 if c > 0 else 0.0,
                   unit="GFLOP/s", description=f"fitted arithmetic rate (2 FLOPs per "
                   f"multiply-add), {device_type}")
    results.record(f"time_model_worst_factor_{device_type}", max(errors),
                   description=f"largest factor between measured time and model, {device_type}")
    results.record(f"time_model_median_factor_{device_type}", float(np.median(errors)),
                   description=f"median factor between measured time and model, {device_type}")
    results.record(f"time_model_outliers_{device_type}", len(outliers),
                   description=f"sweep points more than 3x from the time model, {device_type}")
    glue(f"time_model_outlier_sentence_{device_type}", Markdown(
        f"{len(outliers)} of the {len(rows)} points are off by more than a factor of three, "
        f"the worst by {max(errors):.1f}: {outlier_text(outliers, t0, c)}" if outliers else
        f"none of the {len(rows)} points is off by more than a factor of three (the worst by "
        f"{max(errors):.1f})"), display=False)

# the fewest rounds one mode must be the slower in for a settled order (as in settled_order)
settle_at = min(k for k in range(run.repeat + 1) if k / run.repeat >= SETTLED)
glue("settle_share", SETTLED, display=False)
glue("settle_rounds", run.repeat, display=False)
glue("settle_chance", 2 * sum(math.comb(run.repeat, k) for k in range(settle_at, run.repeat + 1))
     / 2**run.repeat, display=False)  # a fair coin per round, either mode

t0, c, through = time_model["cpu"]
rows = sweeps["cpu"][1]
glue("time_model_through_sentence", Markdown(
    f"The line passes through two measured points, {join_words(map(point_text, through))}."
    if len(through) == 2 else
    f"The line passes through the origin and one measured point, {point_text(through[0])}."
    if t0 == 0 else f"The line is flat, at the time of {point_text(through[0])}."),
    display=False)
fastest = min(rows, key=lambda r: r["seconds"])
glue("time_model_t0_sentence", Markdown(
    f"The fastest Jacobian of the sweep ({point_text(fastest)}) took "
    f"{fastest['seconds'] * 1e3:.2f} ms, less than $t_0$ itself: $t_0$ is an intercept that "
    "absorbs what the multiply-add count misses at these sizes, not the measured cost of an "
    "empty call." if fastest["seconds"] < t0 else
    "No Jacobian of the sweep took less than $t_0$; still, $t_0$ is an intercept that absorbs "
    "what the multiply-add count misses at these sizes, not the measured cost of an empty "
    "call."), display=False)
# The largest size of each sweep, for the mode that carries the swept dimension: the two
# points of largest cost, which the fit above may pass through. A line fitted without the
# largest size of either sweep predicts them instead, a test on points it has not seen.
far = [r for r in rows if r["size"] == largest and r["mode"] == growing_mode(r["sweep"])]
t0_held, c_held, _ = fit_time_model([r for r in rows if r["size"] != largest])
far_factor = max(model_factor(r, t0_held, c_held) for r in far)
glue("far_model_sentence", Markdown(
    f"Refitted without the largest size of either sweep, the line predicts the two points of "
    f"largest cost ({join_words(map(point_text, far))}), which it has not seen, within a "
    f"factor of {far_factor:.2f}" + (": there the model predicts the time." if far_factor < 1.5
                                     else ": even there it is only a rough guide in this run.")),
    display=False)
flat_change, flat_model_change = [], []
for sweep in ("D", "P"):
    flat = [r for r in rows if r["sweep"] == sweep and r["mode"] != growing_mode(sweep)]
    flat_change.append(max(r["seconds"] for r in flat) / min(r["seconds"] for r in flat))
    flat_model_change.append(max(t0 + c * r["cost"] for r in flat)
                             / min(t0 + c * r["cost"] for r in flat))
glue("flat_mode_change", max(flat_change), display=False)
glue("flat_model_change", max(flat_model_change), display=False)
glue("cross_fixed", run.cross_fixed, display=False)
glue("cross_width", run.cross_width, display=False)

# %% [markdown]
# One more measurement, to read the plots with. Under `vmap`, the VJP of a matrix-vector
# product $W h$ becomes a product of $W^\top$ with a thin matrix, the batch of adjoints, in
# the layout $W^\top A^\top$. It is the same arithmetic as $A W$, and the result agrees to
# float32 rounding; whether it takes the same time depends on the kernel the BLAS library
# picks for that layout. We time both layouts on the CPU, alternately, for a thin matrix of
# 4 rows and for every number of rows $P$ of the sweep up to $K/16$.

# %%
W_wide = torch.randn(run.cross_width, run.cross_width, generator=generator)
layout_rows = sorted({4} | {s for s in run.cross_sizes if s <= run.cross_width // 16})
layout_ratio = {}
for n_rows in layout_rows:
    A_thin = torch.randn(n_rows, run.cross_width, generator=generator)
    # float32 sums of ~1e3 products in two orders: agreement to ~1e-6 relative
    assert normwise_error(W_wide.T @ A_thin.T, (A_thin @ W_wide).T) < 1e-5
    layout_plain, layout_transposed = measure_alternately(
        [lambda A=A_thin: A @ W_wide, lambda A=A_thin: W_wide.T @ A.T], run.repeat, warmup=2)
    layout_ratio[n_rows] = layout_transposed.seconds / layout_plain.seconds
    if n_rows == 4:
        results.record("layout_plain_us", layout_plain.seconds * 1e6, unit="µs",
                       description="A @ W, A 4 x K, W K x K, float32, one CPU thread")
        results.record("layout_transposed_us", layout_transposed.seconds * 1e6, unit="µs",
                       description="W.T @ A.T, the same product in the layout of a vmapped VJP")
glue("layout_ratio_text", Markdown(join_words(f"{layout_ratio[n]:.1f}" for n in layout_rows)
     + " times as long as $AW$ at " + join_words(layout_rows) + " rows"), display=False)

slow_layouts = {n for n, ratio in layout_ratio.items() if ratio > 3}
lifted = sorted({r["size"] if r["sweep"] == "P" else run.cross_fixed for r in rows
                 if r["mode"] == "reverse" and r["seconds"] > 3 * (t0 + c * r["cost"])})
if not lifted:
    layout_sentence = ("No reverse-mode point sat more than three times above the model in "
                       "this run, so there was nothing for the layout to explain.")
elif set(lifted) <= slow_layouts:
    layout_sentence = (
        f"Every reverse-mode point more than three times above the model ($P$ = "
        f"{join_words(lifted)}) is at a number of rows where the transposed layout was more "
        "than three times slower. That supports, without proving, the hypothesis that this "
        "kernel is what lifts them; a profiler (`torch.profiler`) would show where the time "
        "goes.")
else:
    layout_sentence = (
        f"Of the reverse-mode points more than three times above the model ($P$ = "
        f"{join_words(lifted)}), not all are at a number of rows where the transposed layout "
        "was measured more than three times slower, so in this run the layout explains at "
        "most part of the gap.")
glue("layout_sentence", Markdown(layout_sentence), display=False)

accelerators = [d for d in DEVICES if d.type != "cpu"]
if accelerators:
    kind = accelerators[0].type
    ranges = [crossover_range_text(sweep, *crossover_range(orders[kind][sweep]))
              for sweep in ("D", "P")]
    glue("gpu_sweep_sentence", Markdown(
        f"On the {kind.upper()} device (the second row of the figure, $K$ = {sweeps[kind][0]}), "
        f"the fitted intercept $t_0$ is {time_model[kind][0] * 1e6:.0f} µs against "
        f"{time_model['cpu'][0] * 1e6:.0f} µs on the CPU, and the measured crossover lies "
        f"{ranges[0]} and {ranges[1]}, against the model's $D = P$ = {run.cross_fixed}."),
        display=False)
else:
    glue("gpu_sweep_sentence", Markdown("This run had no GPU, so the figure has a single row; a "
         "run with one adds a second row for the GPU."), display=False)

# %% [markdown]
# On the CPU with $K$ = {glue:text}`cross_width` and the other dimension fixed at
# {glue:text}`cross_fixed`, the model puts the crossover at $D = P$ =
# {glue:text}`cross_fixed`. Each size was timed in {glue:text}`settle_rounds` alternating
# rounds; were the order of the two modes a coin toss in each round, one of them would still
# come out settled (the slower in at least {glue:text}`settle_share:.0%` of the rounds) with
# probability {glue:text}`settle_chance:.2g` at a given size.
# {glue:md}`crossing_sentence_d_cpu:myst`
# {glue:md}`crossing_sentence_p_cpu:myst`
#
# The fitted time model is $t_0$ = {glue:text}`time_model_overhead_cpu_us:.0f` µs plus
# multiply-adds at {glue:text}`time_model_rate_cpu_gflops:.0f` GFLOP/s ($2/c$).
# {glue:md}`time_model_through_sentence:myst` It is within a factor of
# {glue:text}`time_model_median_factor_cpu:.2f` of the measured time at the median point,
# and {glue:md}`time_model_outlier_sentence_cpu:myst`. {glue:md}`time_model_t0_sentence:myst`
#
# Reading the plots:
#
# - **Far from the crossover.** When the swept dimension is much larger than the fixed one,
#   the mode that carries it (forward mode carries $D$ columns, reverse mode $P$ rows) does
#   proportionally more multiply-adds, a little more than proportionally at the largest
#   sizes, where the seed's term $KD^2$ or $P^2K$ counts. {glue:md}`far_model_sentence:myst`
#   The other mode's time changes by at most a factor of {glue:text}`flat_mode_change:.2f`
#   across a sweep, where the model predicts at most {glue:text}`flat_model_change:.2f`.
# - **Near the crossover other costs matter.** The model counts multiply-adds only. A
#   product $W_k T$ with a thin $T$ reads all $K^2$ entries of $W_k$ to do only a few
#   multiply-adds with each, so memory traffic rather than arithmetic is likely to set its
#   time, and the two modes carry different fixed costs (dual numbers against a recorded
#   graph), so the measured crossover need not sit at $D = P$.
# - **Points far above the model: a hypothesis.** The measurement just above timed the thin
#   product of a vmapped VJP in two layouts: $W^\top A^\top$ took
#   {glue:md}`layout_ratio_text:myst`, for the same multiply-adds. Where the BLAS
#   library has a slow path for a layout, every reverse-mode Jacobian with that many rows of
#   adjoints would pay for it. {glue:md}`layout_sentence:myst` A cost model of multiply-adds
#   cannot see such effects.
# - **The rule to remember** is the one the model gives: the cost of a Jacobian by forward
#   mode scales with the number of inputs, by reverse mode with the number of outputs
#   {eq}`eq-cost-factored`. For
#   training, one scalar loss and millions of parameters, reverse mode is the only sensible
#   choice; for a function with few inputs and many outputs (the sensitivity of a whole
#   simulated field to one physical parameter, say), forward mode is.
#
# {glue:md}`gpu_sweep_sentence:myst`

# %% [markdown]
# ## Short questions from 004, checked (§1 and §2)
#
# 004 opens with true/false items and short answers. Most of them are one line of reasoning;
# where a computation can test that reasoning, we add it.
#
# - **Broadcasting** (§1, item 4). Two shapes broadcast when, aligned at their last axes,
#   each pair of sizes is equal or contains a 1 (a missing axis counts as 1); the result takes
#   the larger size. For $(6, 6, 5, 1)$ and $(2, 6, 1, 2)$ the first axes are 6 and 2: neither
#   is 1, so the two tensors do not broadcast. *False*, as the solution says. We write the rule
#   and compare it with NumPy's and PyTorch's on random shapes.
# - **Dimension of a product space** (§1, item 1). $V = \mathbb{R}^p \times \mathbb{R}^q$ has
#   the basis $(\mathbf{e}_i, \mathbf{0})$, $(\mathbf{0}, \mathbf{f}_j)$: every pair is
#   $\sum_i x_i (\mathbf{e}_i, \mathbf{0}) + \sum_j y_j (\mathbf{0}, \mathbf{f}_j)$, in one
#   way only, so the dimension is $p + q$, not $pq$. This is reasoning, not something to
#   compute: a pair has $p + q$ coordinates, so any numerical "check" would only restate
#   that. The tempting $pq$ is the dimension of another space, the tensor product
#   $\mathbb{R}^p \otimes \mathbb{R}^q$ spanned by the outer products
#   $\mathbf{x}\mathbf{y}^\top$; that outer products of random pairs span all $pq$
#   dimensions, not fewer, is a fact we can check.
# - **The polynomial kernel** $k(\mathbf{x}, \mathbf{y}) = (1 + \mathbf{x}^\top\mathbf{y})^p$
#   (§1, item 5) is a kernel: $1 + \mathbf{x}^\top\mathbf{y}$ is the inner product of
#   $(1, \mathbf{x})$ and $(1, \mathbf{y})$, and products of kernels are kernels. So every Gram
#   matrix is positive semi-definite; its smallest eigenvalue must be $\ge 0$ up to rounding.
# - **Counting** (§2, items 2 and 3): an epoch of mini-batch Adam with $B = 100$ on
#   $n = 5000$ examples has $n / B = 50$ steps, whatever $d$ and $\kappa$ are; we let Adam
#   count them itself, on 004's linear model with $d = 20$. A grid of
#   $5 \times 4 \times 3$ values of $(\alpha, \beta, \lambda)$ is $60$ training runs, a
#   product with nothing to measure.
#
# Of the others, item 2 (an $\ell_2$ term makes a convex loss strongly convex) is proved in
# Chapter 4, item 3 (backpropagation is a kind of automatic differentiation, while numerical
# and symbolic differentiation are not) is this chapter's subject, and item 6 (positional
# encodings) is used in Chapter 7.

# %%
def broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of two shapes by the rule above, or None where they do not broadcast."""
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + a, (1,) * (width - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b, strict=True)):
        return None
    return tuple(max(x, y) for x, y in zip(a, b, strict=True))


def library_broadcast(a, b):
    """NumPy's and PyTorch's answers (None where they raise), which must agree."""
    answers = []
    for broadcast in (np.broadcast_shapes, torch.broadcast_shapes):
        try:
            answers.append(tuple(broadcast(a, b)))
        except (ValueError, RuntimeError):
            answers.append(None)
    assert answers[0] == answers[1], (a, b, answers)
    return answers[0]


exam_shapes = ((6, 6, 5, 1), (2, 6, 1, 2))
assert broadcast_shape(*exam_shapes) is None and library_broadcast(*exam_shapes) is None
shape_rng = np.random.default_rng(4)
for _ in range(500):  # sizes in {1, 2, 3} and up to 4 axes: both outcomes occur often
    a, b = (tuple(int(s) for s in shape_rng.integers(1, 4, size=shape_rng.integers(0, 5)))
            for _ in range(2))
    assert broadcast_shape(a, b) == library_broadcast(a, b), (a, b)

p_dim, q_dim = 3, 4
outer_products = np.array([np.kron(shape_rng.normal(size=p_dim), shape_rng.normal(size=q_dim))
                           for _ in range(50)])  # x y^T of 50 random pairs, flattened
assert np.linalg.matrix_rank(outer_products) == p_dim * q_dim  # they span all of R^p (x) R^q

X_poly = shape_rng.normal(size=(80, 5))
gram_poly = (1 + X_poly @ X_poly.T) ** 3
eig_min = np.linalg.eigvalsh(gram_poly).min()
# positive semi-definite up to rounding: float64 eigenvalues err by ~1e-16 times the largest
assert eig_min > -1e-12 * np.abs(gram_poly).max(), eig_min
# and of rank 56, the number of monomials of degree <= 3 in 5 variables: the features' dimension
assert np.linalg.matrix_rank(gram_poly) == math.comb(5 + 3, 3)

n_adam, batch_adam, d_adam = 5000, 100, 20
adam_data = torch.utils.data.TensorDataset(torch.randn(n_adam, d_adam, generator=generator),
                                           torch.randn(n_adam, generator=generator))
adam_model = torch.nn.Linear(d_adam, 1)
adam = torch.optim.Adam(adam_model.parameters())
for X_batch, y_batch in torch.utils.data.DataLoader(adam_data, batch_size=batch_adam,
                                                    shuffle=True, generator=generator):
    adam.zero_grad()
    torch.nn.functional.mse_loss(adam_model(X_batch).squeeze(1), y_batch).backward()
    adam.step()
steps_per_epoch = int(adam.state[adam_model.weight]["step"])  # Adam's own count of its steps
results.compare("adam_steps_per_epoch", steps_per_epoch, 50, tolerance=0,
                source="004 §2.2", description="steps of mini-batch Adam in one epoch, counted "
                                               "by the optimizer, n = 5000, B = 100, d = 20")
glue("poly_eig_min", float(eig_min), display=False)

# %% [markdown]
# All of these hold: our broadcasting rule agrees with NumPy and PyTorch on 500 random pairs
# of shapes and on the exam's pair, which neither library accepts; the outer products of 50
# random pairs in $\mathbb{R}^3 \times \mathbb{R}^4$ span all $3 \cdot 4 = 12$ dimensions of
# the tensor product, against $3 + 4 = 7$ for the pairs themselves; the Gram matrix of the cubic
# polynomial kernel on 80 points of $\mathbb{R}^5$ has rank 56, the number of monomials of
# degree at most 3 in 5 variables (the dimension of its features), so 24 of its eigenvalues are
# zero, and the smallest is {glue:text}`poly_eig_min:.1e`, zero up to rounding; and Adam counts
# {glue:text}`adam_steps_per_epoch:.0f` steps in one epoch, as in the solution.
#
# ## Summary
#
# - Reverse mode is the chain rule {eq}`eq-adjoint` applied node by node, each node pulling its
#   adjoint back through its inputs with a vector-Jacobian product. Eight primitives and a
#   backward driver are a working engine; it matched PyTorch's gradients to rounding on every
#   graph here, and finite differences within the truncation and rounding error of the
#   method.
# - The tape is a stack because a node's adjoint must be complete before it is propagated.
#   Popping the tape gives a reverse topological order for free ({prf:ref}`prop-stack`); a FIFO
#   queue gives the opposite order and zero gradients, and a breadth-first queue silently drops
#   the terms of longer paths. A queue works only with consumer counting.
# - FLOPs: 004's count $2nd + 3n + 2d + 3$ holds under its conventions ($2nd + 2n + 2d + 1$
#   exactly). A backward pass costs one forward pass when the inputs of the big products are
#   data (squared loss), and nearly two in an MLP, where activations need adjoints too.
# - Autograd's bookkeeping is a fixed cost per operation. Against Chapter 1's hand-written
#   backward pass of a tanh network it took {glue:text}`autograd_over_hand_cpu_small:.1f` times
#   as long on 64 rows and {glue:text}`autograd_over_hand_cpu_large:.2f` times as long on
#   {glue:text}`autograd_rows:,` rows (medians on the CPU).
# - The checks have teeth: a missing transpose in one VJP was caught, but only in the
#   parameters upstream of it, and it would have been invisible with symmetric test matrices.
# - A Jacobian of $f: \mathbb R^D \to \mathbb R^P$ costs, by 003's model, $1 + D$ forward
#   passes in forward mode and $1 + P$ in reverse mode; the crossover is at $D = P$. At small
#   sizes the bookkeeping, not the arithmetic, sets the time, and at every size the points
#   far from the fitted model show what a count of multiply-adds cannot see (memory
#   traffic, and possibly a slow kernel for one memory layout).
# - An MLP's weights take $4\times$ (float32) their number in bytes; its ReLUs are a
#   negligible share of its FLOPs and are what makes depth worth having.
#
# ## Exercises
#
# 1. **Two more primitives.** Add `exp` and `log` to the engine, with their VJPs and FLOP
#    counts, and use them to write the softmax cross-entropy of a batch of logits. Check the
#    gradient against `torch.nn.functional.cross_entropy` at $10^{-12}$, and against finite
#    differences with `helpers.gradcheck`. Then make the check fail on purpose by dropping
#    the max-subtraction that keeps `exp` from overflowing: at which logit size does it fail,
#    and how?
# 2. **Zero buffers.** The exam's backward pseudocode (004 §4.4) allocates every adjoint as
#    zeros and adds each term with `+=`. Count the FLOPs of that backward pass under 004's
#    conventions and compare with {eq}`eq-lydia-backward-flops`. Which additions does our
#    engine avoid, and why is it allowed to?
# 3. **The tape's memory.** Reverse mode keeps every intermediate the VJPs need. For the MLP of
#    004 §5 at batch size $B$, list what the engine's tape holds (which arrays, which shapes)
#    and how many bytes that is in float32. From which batch size on does the tape take more
#    memory than the weights ({glue:text}`mlp_weight_bytes_fp32:,.0f` bytes)? Forward mode needs
#    no tape: what does it keep instead, and why is it still not used for training?
# 4. **Hessian-vector products.** For {eq}`eq-lydia-loss` with $\lambda = 0$ the Hessian is
#    $\frac2n X^\top X$. Compute $Hv$ without forming $H$ by forward-over-reverse
#    (`torch.func.jvp` of `torch.func.grad`) and by reverse-over-reverse (the gradient of
#    $\nabla\ell(w)^\top v$), check both against the closed form, and time them against
#    forming $H$ explicitly as $d$ grows. Which wins, and where is the crossover?
# 5. **The price of the counted queue.** Replace `stack_order` by `counted_queue_order` in the
#    MLP gradient and time both at small batch sizes (where bookkeeping dominates). Is the
#    extra pass of 002's answer visible? Then build a graph of 10,000 scalar additions in a
#    chain and measure again.
