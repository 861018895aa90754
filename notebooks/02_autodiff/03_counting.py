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
# # Counting FLOPs, forward and backward
#
# How much does a gradient cost? A common answer is "between one and two forward passes".
# This section counts, with the engine of {doc}`section 1 <01_reverse_mode>`, the floating
# point operations of the exam's squared loss with L1 (004 §4.3), checks the exam's count,
# and shows where the rule of thumb comes from: it holds for graphs whose cost is in matrix
# products, and fails for one made of elementwise functions. Counting is one thing, time
# another, so we also time both passes, with our engine and with PyTorch. The section ends
# with the exam's short questions (004 §1 and §2), most of which count something too.

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
import torch
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits

from helpers import profiles, results
from helpers.glue import glue
from helpers.gradcheck import ROUNDING_TOL, relative_error
from helpers.lessons.autodiff import FLOPS, TAPE, Var, backward, lydia_loss, new_graph
from helpers.timing import format_seconds, measure_alternately

run = profiles.setup(
    profile,
    seed=2,
    lydia_n=(500, 100_000, 100_000),  # examples in the timed squared-loss + L1 graph
    lydia_d=(20, 100, 200),  # features in that graph
    repeat=(3, 21, 31),  # timed runs per measurement (median reported)
    shape_pairs=(100, 500, 500),  # random pairs of shapes for the broadcasting rule
)
rng = np.random.default_rng(run.seed)
generator = torch.Generator().manual_seed(run.seed)
torch.set_num_threads(1)  # one CPU thread for every timing: see the note below
threadpool_limits(limits=1)  # the same for NumPy's BLAS
run

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
# ## The forward pass (004 §4.3)
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
# | total | | $2nd + 3n + 2d + 3$ | $2nd + 2n + 2d + 1$ |
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
# ## The backward pass
#
# From the rules of the engine (each VJP's cost, plus one addition per entry whenever a second
# term arrives at an adjoint, {eq}`eq-adjoint`): the final sum passes its adjoint on for free;
# $\lambda$ times the penalty's adjoint is 1 FLOP, and so is the mean's division by $n$; the
# adjoints of $\sum_j |w_j|$ and of the mean are broadcast, for free; $\lvert w\rvert$ costs
# $2d$ (a sign and a product); `residual * residual` sends two terms of $n$ products to the
# same node and adds them ($3n$); the subtraction passes the residual's adjoint to $Xw$
# unchanged and sends nothing to $Y$, which needs no gradient; and
# $\bar w \mathrel{+}= X^\top \overline{Xw}$ is a $(d, n)$ by $(n, 1)$ product plus $d$
# additions. In total
#
# $$
# \text{backward} = 2nd + 3n + 3d + 2 \;\;\text{(004's convention)}, \qquad
# 2nd + 3n + 2d + 2 \;\;\text{(exact)}.
# $$ (eq-lydia-backward-flops)
#
# The engine counts under either convention (`FLOPS.exact_sums`). We compare its counts with
# the four formulas for several shapes, including $n = d = 1$, where a wrong constant term
# would show.

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
    assert lydia_counts(n, d, exact=False) == (2*n*d + 3*n + 2*d + 3,
                                               2*n*d + 3*n + 3*d + 2)
    assert lydia_counts(n, d, exact=True) == (2*n*d + 2*n + 2*d + 1,
                                              2*n*d + 3*n + 2*d + 2)

# %% [markdown]
# The engine's counts and the formulas agree for every shape.
#
# ## One forward pass, two, or three?
#
# On this graph the backward pass costs about as many FLOPs as the forward pass: both counts
# are dominated by one matrix-vector product with $X$ ($Xw$ forward, $X^\top \overline{Xw}$
# backward). The rule of thumb, "a backward pass costs about two forward passes", comes from
# layers whose input *also* needs an adjoint: then a product $AB$ needs both $\bar V B^\top$
# and $A^\top \bar V$ {eq}`eq-matmul-vjp`, twice the product's forward cost. Here $X$ is data
# and gets no adjoint, so the engine skips that product entirely ({doc}`section 4
# <04_mlp_costs>` meets the factor two in an MLP). So for a graph whose cost is in its
# matrix products, a backward pass costs between one and two forward passes.
#
# That is not true in general. The VJP of $\tanh$, $\bar v \odot (1 - v \odot v)$, costs
# three FLOPs per entry (a square, a subtraction, a product), while the forward $\tanh$ counts
# as one, a scalar function evaluation. A graph made of elementwise functions therefore has a
# backward pass that costs *more* than two forward passes. The simplest one is a chain of
# $L$ tanhs summed, $\ell = \sum_i \tanh(\tanh(\cdots\tanh(x_i)))$: the forward pass costs
# $Ln + n$ (the $L$ tanhs and the sum), the backward pass $3Ln$ (the sum's VJP is a free
# broadcast), a ratio of $3L/(L + 1)$, which exceeds two from $L = 3$ on and tends to three.

# %%
def tanh_chain(x, L):
    h = x
    for _ in range(L):
        h = h.tanh()
    return h.sum()


chain_ratio = {}
for L in (1, 3, 10):
    for size in (1, 100):
        new_graph()
        backward(tanh_chain(Var(rng.standard_normal(size), requires_grad=True), L))
        forward, backward_flops = FLOPS.counts["forward"], FLOPS.counts["backward"]
        assert (forward, backward_flops) == (L * size + size, 3 * L * size), (L, size)
    chain_ratio[L] = backward_flops / forward
assert chain_ratio[3] > 2  # the counterexample to "at most two forward passes"

# %% tags=["hide-input"]
glue("chain_ratio_10", chain_ratio[10], display=False)

# %% [markdown]
# The engine counts exactly $Ln + n$ and $3Ln$; at $L = 10$ the backward pass costs
# {glue:text}`chain_ratio_10:.2f` forward passes. The same FLOP is not the same time, of
# course: a tanh evaluation takes much longer than a multiplication (exercise 2).
#
# ## FLOPs against time
#
# We time the forward and the backward pass of the squared loss with L1 at a larger size,
# with our engine and with PyTorch (CPU, float64, the same function). The backward pass is
# timed alone, replayed on a graph recorded once; and the one matrix-vector product $Xw$ that
# holds nearly all the FLOPs is timed by itself, in each library. The six are timed in
# alternating rounds, one call of each per round.

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
torch_loss = lydia_loss(w_t, X_t, Y_t, 0.1)
assert relative_error(engine_loss.value, torch_loss.detach()) < ROUNDING_TOL

graph = list(TAPE)  # the recorded graph, which each timed forward replaces


def engine_backward():
    TAPE[:] = graph  # put back the graph of engine_loss, then replay it
    backward(engine_loss)


# all six in alternating rounds, so that a slow spell of the machine hits them alike
timed = {
    ("engine", "forward"): engine_forward,
    ("engine", "backward"): engine_backward,
    ("engine", "of which X @ w"): lambda: X @ w0,  # NumPy's product alone
    ("torch", "forward"): lambda: lydia_loss(w_t, X_t, Y_t, 0.1),
    ("torch", "backward"):
        lambda: torch.autograd.grad(torch_loss, w_t, retain_graph=True),
    ("torch", "of which X @ w"): lambda: X_t @ w_t.detach(),
}
timings = dict(zip(timed, measure_alternately(list(timed.values()), run.repeat),
                   strict=True))

# %% tags=["hide-input"]
seconds = {key: t.seconds for key, t in timings.items()}
results.compare("lydia_forward_flops", forward_flops, 2 * n * d + 3 * n + 2 * d + 3,
                tolerance=0, source="004 §4.3, its formula 2nd + 3n + 2d + 3 at this n and d",
                description=f"forward FLOPs of squared loss + L1, counted by our engine "
                            f"under 004's conventions (n = {n}, d = {d})")
phases = [("forward", forward_flops), ("of which X @ w", 2 * n * d),
          ("backward", backward_flops)]
display(Markdown(
    "| pass | FLOPs (004) | engine | PyTorch | engine / PyTorch |\n|---|---:|---:|---:|---:|\n"
    + "\n".join(f"| {phase} | {flops:,} | {format_seconds(seconds['engine', phase])} "
                f"| {format_seconds(seconds['torch', phase])} "
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
               description="time of the backward pass alone, our engine / torch, "
                           "squared loss + L1")
engine_step = seconds["engine", "forward"] + seconds["engine", "backward"]
torch_step = seconds["torch", "forward"] + seconds["torch", "backward"]
results.record("lydia_engine_over_torch", engine_step / torch_step,
               description="time of forward + backward, our engine / torch, squared loss + L1")
for lib in ("engine", "torch"):
    glue(f"lydia_matvec_share_{lib}",
         seconds[lib, "of which X @ w"] / seconds[lib, "forward"], display=False)
glue("lydia_n", n, display=False)
glue("lydia_d", d, display=False)
glue("lydia_repeat", run.repeat, display=False)

# %% [markdown]
# The table gives the medians of {glue:text}`lydia_repeat` rounds at $n$ =
# {glue:text}`lydia_n:,`, $d$ = {glue:text}`lydia_d`. The backward pass counts
# {glue:text}`lydia_backward_forward_flop_ratio:.3f` times the forward pass's FLOPs, as
# {eq}`eq-lydia-backward-flops` predicts; its wall time is
# {glue:text}`lydia_backward_forward_time_ratio_engine:.2f` times the forward's in our engine
# and {glue:text}`lydia_backward_forward_time_ratio_torch:.2f` times in PyTorch, and a whole
# step (forward and backward) with our engine takes {glue:text}`lydia_engine_over_torch:.2f`
# times as long as with PyTorch. FLOPs are not time, though: the bare product $Xw$, which
# holds nearly all the FLOPs, takes {glue:text}`lydia_matvec_share_engine:.0%` of our engine's
# forward time and {glue:text}`lydia_matvec_share_torch:.0%` of PyTorch's. The rest is the
# elementwise work on the $n$ residuals and the bookkeeping of each operation. A
# matrix-vector product does two FLOPs per entry of $X$ it reads, so its speed is likely set
# by how fast memory delivers $X$ rather than by its FLOP count, and so is that of the
# elementwise operations, which do one FLOP per number they read.
#
# ## The exam's short questions (004 §1 and §2)
#
# 004 opens with true/false items and short answers, most of which count something: sizes,
# dimensions, steps. Where a computation can test the reasoning, we add it. Of the others,
# item 2 of §1 (an $\ell_2$ term makes a convex loss strongly convex) is proved in Chapter 4,
# item 3 (backpropagation is a kind of automatic differentiation, while numerical and
# symbolic differentiation are not) is this chapter's subject, and item 6 (positional
# encodings) is used in Chapter 7.
#
# - **Broadcasting** (§1, item 4). The engine's `unbroadcast` undoes the stretching that
#   broadcasting does, so it relies on the rule: two shapes broadcast when, aligned at their
#   last axes, each pair of sizes is equal or contains a 1 (a missing axis counts as 1); the
#   result takes the larger size. For $(6, 6, 5, 1)$ and $(2, 6, 1, 2)$ the first axes are 6
#   and 2, neither is 1, so the two do not broadcast, as the solution says. We write the rule
#   and compare it with NumPy's and PyTorch's on the exam's pair and on random pairs.

# %%
def broadcast_shape(a: tuple, b: tuple) -> tuple | None:
    """The broadcast of two shapes by the rule above, or None where they do not."""
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
for _ in range(run.shape_pairs):  # sizes 1-3, up to 4 axes: both outcomes are common
    a, b = (tuple(int(s) for s in rng.integers(1, 4, size=rng.integers(0, 5)))
            for _ in range(2))
    assert broadcast_shape(a, b) == library_broadcast(a, b), (a, b)

# %% [markdown]
# The rule agrees with both libraries on every pair tried, and neither library accepts the
# exam's pair.
#
# - **Dimension of a product space** (§1, item 1). $V = \mathbb{R}^p \times \mathbb{R}^q$ has
#   the basis $(\mathbf{e}_i, \mathbf{0})$, $(\mathbf{0}, \mathbf{f}_j)$: every pair is
#   $\sum_i x_i (\mathbf{e}_i, \mathbf{0}) + \sum_j y_j (\mathbf{0}, \mathbf{f}_j)$, in one
#   way only, so the dimension is $p + q$, not $pq$. This is reasoning, not something to
#   compute. The tempting $pq$ is the dimension of another space, the tensor product
#   $\mathbb{R}^p \otimes \mathbb{R}^q$ spanned by the outer products
#   $\mathbf{x}\mathbf{y}^\top$; that outer products of random pairs span all $pq$
#   dimensions, not fewer, is a fact we can check.
# - **The polynomial kernel** $k(\mathbf{x}, \mathbf{y}) = (1 + \mathbf{x}^\top\mathbf{y})^p$
#   (§1, item 5) is a kernel: $1 + \mathbf{x}^\top\mathbf{y}$ is the inner product of
#   $(1, \mathbf{x})$ and $(1, \mathbf{y})$, and products of kernels are kernels. So every Gram
#   matrix is positive semi-definite: its smallest eigenvalue must be $\ge 0$ up to rounding.
#   Its rank counts something too: the monomials of degree at most $p$ in the inputs.

# %%
p_dim, q_dim = 3, 4
outer_products = np.array([np.kron(rng.normal(size=p_dim), rng.normal(size=q_dim))
                           for _ in range(50)])  # x y^T of 50 random pairs, flattened
assert np.linalg.matrix_rank(outer_products) == p_dim * q_dim  # all of R^p (x) R^q

X_poly = rng.normal(size=(80, 5))
gram_poly = (1 + X_poly @ X_poly.T) ** 3
eig_min = np.linalg.eigvalsh(gram_poly).min()
# positive semi-definite up to rounding: float64 eigenvalues err by ~1e-16 x the largest
assert eig_min > -1e-12 * np.abs(gram_poly).max(), eig_min
# rank 56: the monomials of degree <= 3 in 5 variables (the features' dimension)
assert np.linalg.matrix_rank(gram_poly) == math.comb(5 + 3, 3)

# %% tags=["hide-input"]
glue("poly_eig_min", float(eig_min), display=False)
glue("poly_eig_max", float(np.linalg.eigvalsh(gram_poly).max()), display=False)

# %% [markdown]
# The outer products of 50 random pairs in $\mathbb{R}^3 \times \mathbb{R}^4$ span all
# $3 \cdot 4 = 12$ dimensions of the tensor product, against $3 + 4 = 7$ for the pairs
# themselves. The Gram matrix of the cubic polynomial kernel on 80 points of $\mathbb{R}^5$ has
# rank 56, the number of monomials of degree at most 3 in 5 variables, so 24 of its
# eigenvalues are zero; the smallest is {glue:text}`poly_eig_min:.1e`, zero up to rounding
# next to the largest, {glue:text}`poly_eig_max:.1e`.
#
# - **Steps and runs** (§2, items 2 and 3). An epoch of mini-batch Adam with $B = 100$ on
#   $n = 5000$ examples has $n / B = 50$ steps, whatever $d$ and $\kappa$ are; a grid of
#   $5 \times 4 \times 3$ values of $(\alpha, \beta, \lambda)$ is $60$ training runs. Both
#   are products with nothing to measure. As an illustration, not a check (the data loader
#   makes $n/B$ batches by construction), here is one epoch of Adam on 004's linear model with
#   $d = 20$, with the optimizer counting its own steps.

# %%
n_adam, batch_adam, d_adam = 5000, 100, 20
adam_data = torch.utils.data.TensorDataset(
    torch.randn(n_adam, d_adam, generator=generator),
    torch.randn(n_adam, generator=generator))
adam_model = torch.nn.Linear(d_adam, 1)
adam = torch.optim.Adam(adam_model.parameters())
for X_batch, y_batch in torch.utils.data.DataLoader(adam_data, batch_size=batch_adam,
                                                    shuffle=True, generator=generator):
    adam.zero_grad()
    loss = torch.nn.functional.mse_loss(adam_model(X_batch).squeeze(1), y_batch)
    loss.backward()
    adam.step()
steps_per_epoch = int(adam.state[adam_model.weight]["step"])  # Adam's own count

# %% tags=["hide-input"]
glue("adam_steps_per_epoch", steps_per_epoch, display=False)

# %% [markdown]
# Adam took {glue:text}`adam_steps_per_epoch` steps in the epoch, $n / B$.
#
# ## What this section showed
#
# 004's forward count $2nd + 3n + 2d + 3$ holds under its conventions ($2nd + 2n + 2d + 1$
# exactly), and the engine reproduces it and the backward count for every shape tried. A
# backward pass costs about one forward pass when the inputs of the big products are data, as
# here, and up to two when activations need adjoints too; that rule holds for graphs whose cost
# is in matrix products. Elementwise functions break it: a chain of tanhs costs nearly three
# forward passes to differentiate. And FLOPs are not time: the one product that holds nearly
# all the FLOPs is only part of the measured time, the rest being memory traffic and
# bookkeeping. The exam's short answers hold where a computation can test them: its pair of
# shapes does not broadcast, a product space has dimension $p + q$ (the tensor product
# $pq$), the polynomial kernel's Gram matrix is positive semi-definite, and an epoch has
# $n/B$ steps.
#
# ## Exercises
#
# 1. **Exact sums.** Set `FLOPS.exact_sums = True` and count the backward pass of the tanh
#    chain. Does the ratio change? Why does the convention matter so little for the squared
#    loss and not at all here?
#
#    :::{dropdown} Answer
#    The chain's only sum is in the forward pass ($n$ additions, $n - 1$ exactly) and its
#    backward pass has none, so the ratio becomes $3L/(L + 1 - 1/n)$, a change of order
#    $1/n$. For the squared loss the convention changes both totals by about $n$ next to
#    $2nd$.
#    :::
#
# 2. **The tanh chain in time.** Time the forward and the backward pass of the tanh chain
#    with PyTorch for $L = 10$ and a vector of $10^6$ entries. Does the ratio of times follow
#    the ratio of FLOPs, $30/11$?
#
#    :::{dropdown} Hint
#    A tanh is far more expensive than a multiplication, although each counts as one FLOP,
#    and autograd's backward of tanh is one fused kernel that reads two arrays and writes
#    one. Both passes move about the same amount of memory per layer, so expect a ratio
#    well below $30/11$: FLOP counts weigh all operations alike, time does not.
#    :::
#
# 3. **The exam's L1 term.** For which $n$ and $d$ does the L1 term cost more than one
#    percent of the forward FLOPs? What does that say about counting it at all?
#
#    :::{dropdown} Answer
#    It costs $2d + 2$ of $2nd + 3n + 2d + 3$, about $1/n$ of the total when $n, d \gg 1$:
#    more than one percent only below about a hundred examples. The penalty is negligible in
#    cost at any realistic batch size; it matters for what it does to the solution.
#    :::
