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
# # Why the tape is a stack
#
# The engine of {doc}`the previous section <01_reverse_mode>` pops its tape, last in first
# out, and {prf:ref}`prop-stack` says why that is right: every node is visited after all of
# its consumers, so its adjoint is complete before it is passed on. 002 (§4.2) asks whether
# the stack could be replaced by a queue at no cost in running time, and answers no. This
# section tries three queues on a graph small enough to draw, and finds that the honest answer
# is stronger than 002's: a drop-in queue does not make the backward pass slower, it makes it
# wrong.

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
from collections import Counter, deque

import numpy as np
import torch
from IPython.display import Markdown, display

from helpers import profiles
from helpers.gradcheck import ROUNDING_TOL, relative_error
from helpers.lessons.autodiff import TAPE, Var, backward, new_graph, stack_order

run = profiles.setup(
    profile,
    seed=2,
    graph_size=(6, 6, 6),  # entries of x and w in the diamond graph
)
rng = np.random.default_rng(run.seed)
run

# %% [markdown]
# ## Four orders on one graph
#
# The engine (`Var`, `backward`, `stack_order`, the tape `TAPE`) comes from the previous
# section. One value, $h$, is read by two consumers at different distances from the loss:
#
# $$
# h = \tanh(x), \qquad u = \operatorname{relu}(h \odot w), \qquad
# \ell = \textstyle\sum_i (h + u)_i .
# $$ (eq-diamond)
#
# The adjoint of $h$ has two terms: one from the sum $h + u$ (one step from the loss) and one
# through the product $h \odot w$ (three steps). We try three orders for the backward pass
# besides the stack:
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
    """From the loss through inputs, nearest first, each node once. Plausible; wrong."""
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


# %% [markdown]
# PyTorch's gradients are the reference. Each order runs the same engine on the same graph;
# an adjoint that nothing reached counts as zero.

# %%
x0, wd0 = rng.standard_normal(run.graph_size), rng.standard_normal(run.graph_size)
x_t = torch.tensor(x0, requires_grad=True)
w_t = torch.tensor(wd0, requires_grad=True)
diamond(x_t, w_t).backward()
assert (torch.relu(torch.tanh(x_t) * w_t) > 0).any()  # the long branch carries a term

queue_errors = {}
for order in [stack_order, fifo_order, breadth_first_order, counted_queue_order]:
    new_graph()
    x, w = Var(x0, requires_grad=True), Var(wd0, requires_grad=True)
    backward(diamond(x, w), order=order)
    queue_errors[order.__name__] = [
        relative_error(np.zeros(run.graph_size) if v.grad is None else v.grad, ref.grad)
        for v, ref in [(x, x_t), (w, w_t)]
    ]

stack, fifo = queue_errors["stack_order"], queue_errors["fifo_order"]
breadth_first, counted = (queue_errors["breadth_first_order"],
                          queue_errors["counted_queue_order"])
assert max(stack) < ROUNDING_TOL  # correct, as the proposition says
assert min(fifo) > 0.5  # nothing reaches x or w: both adjoints 0
assert breadth_first[0] > 1e-3  # x misses the long branch's term ...
assert breadth_first[1] < ROUNDING_TOL  # ... while w, on one path, is right
assert max(counted) < ROUNDING_TOL  # a queue *can* be made correct

# %% tags=["hide-input"]
display(Markdown(
    "| backward order | relative error of $\\bar x$ | relative error of $\\bar w$ |\n"
    "|---|---:|---:|\n"
    + "\n".join(f"| `{name}` | {ex:.1e} | {ew:.1e} |"
                for name, (ex, ew) in queue_errors.items())))

# %% [markdown]
# The table shows the three failure modes and the fix (the asserts above check each reading):
#
# - The **FIFO tape** visits $h$ first, when nothing has reached it yet, then every other node
#   in the same premature state; only the loss, visited last, has an adjoint, and it arrives
#   too late for anyone to use. Both gradients come out zero (relative error 1). On a chain the
#   same happens: a queue over the tape is the worst possible order, not a slower one.
# - **Breadth-first from the loss** reaches $h$ through the short branch (distance 2) before
#   the long branch $u \to h \odot w$ has delivered its term. It passes an incomplete
#   $\bar h$ on to $x$, and the term that arrives later is never propagated. The adjoint of
#   $w$, which has a single path to the loss, is right: a check of $\bar w$ alone would miss
#   the bug.
# - **The stack** and **the counted queue** are both correct: both visit every node after all
#   of its consumers, in a reverse topological order ({prf:ref}`prop-stack`).
#
# ```{note}
# **On 002's answer.** 002 marks the statement false on the grounds that a queue would need
# extra work to recover the reverse order and would therefore run longer. As a drop-in
# replacement, though, a queue does not make the backward pass slower; it makes it *wrong*,
# as the table shows. A queue can be used correctly if it is fed in a reverse topological
# order, which costs one extra pass over the graph to count consumers (Kahn's algorithm),
# $O(V + E)$ for $V$ nodes and $E$ edges, the same order of cost as the backward pass itself.
# So the running time grows by a constant factor, not asymptotically; what the stack buys is
# that the forward pass has already produced the order, for free.
# ```
#
# ## What this section showed
#
# The tape is a stack because a node's adjoint must be complete before it is propagated.
# Popping the tape gives a reverse topological order for free; a FIFO queue gives the opposite
# order and zero gradients, and a breadth-first queue silently drops the terms of longer paths
# while leaving single-path gradients right. A queue works only with consumer counting.
#
# ## Exercises
#
# 1. **The price of the counted queue.** Replace `stack_order` by `counted_queue_order` in the
#    MLP gradient of {doc}`section 4 <04_mlp_costs>` and time both at small batch sizes (where
#    bookkeeping dominates). Is the extra pass of 002's answer visible? Then build a graph of
#    10,000 scalar additions in a chain and measure again.
#
#    :::{dropdown} Hint
#    The counting pass touches each edge once, like the backward pass, but does no
#    arithmetic on arrays. Next to the matrix products of the MLP it should be invisible; on
#    a chain of scalar additions, where each node's VJP is itself almost free, expect the two
#    orders to differ by a constant factor of order one, the same for every chain length.
#    :::
#
# 2. **Where breadth-first is right.** Prove that breadth-first from the loss is a correct
#    order when every node has a single consumer (the graph is a tree rooted at the loss).
#    Which layer of a typical network breaks that condition first?
#
#    :::{dropdown} Answer
#    In a tree each node has exactly one consumer, its parent on the path to the loss, and
#    breadth-first visits that consumer before the node, so the adjoint is complete when the
#    node is visited. Any value read twice breaks it: a residual connection $h + f(h)$, a
#    weight shared between positions, or a parameter used in two terms of the loss, like $w$
#    in {eq}`eq-lydia-loss`.
#    :::
