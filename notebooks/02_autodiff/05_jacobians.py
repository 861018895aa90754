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
# # Jacobians: forward mode against reverse mode (003 P2)
#
# So far the output was a scalar, a loss, and reverse mode computed its gradient in one
# backward pass. A function with a vector output has a whole Jacobian, and it can be built
# from either end: by reverse mode, one row per output, or by forward mode, one column per
# input. This section derives what each costs for a deep tanh network, checks the model
# against PyTorch's own FLOP counter, times the five ways PyTorch offers at the sizes of 003,
# and looks for the crossover between the two modes on wide layers.

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
from functools import partial

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
from IPython.display import Markdown, display
from matplotlib.ticker import NullFormatter
from threadpoolctl import threadpool_limits
from torch.func import jacfwd, jacrev
from torch.utils.flop_counter import FlopCounterMode

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import ROUNDING_TOL, check_gradients, relative_error
from helpers.timing import format_seconds, measure, measure_alternately

run = profiles.setup(
    profile,
    seed=2,
    jac_repeat=(5, 101, 101),  # timed runs per Jacobian benchmark entry (median reported)
    jac_cases=(3, 10, 20),  # random inputs on which the Jacobian methods must agree
    cross_width=(512, 1024, 1024),  # K of the crossover sweep on the CPU
    gpu_cross_width=(512, 1024, 4096),  # K of the crossover sweep on a GPU, if any
    cross_fixed=(8, 32, 32),  # P while D varies, and D while P varies
    cross_sizes=(
        (1, 8, 512),  # 512: far enough from the crossover at 8 for the order to be clear
        (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
        (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    ),
    repeat=(3, 21, 31),  # alternating rounds per size of the sweep
)
generator = torch.Generator().manual_seed(run.seed)
CPU = torch.device("cpu")
DEVICES = [CPU] + ([run.device] if run.device.type != "cpu" else [])
torch.set_num_threads(1)  # one CPU thread for every timing (section 3 says why)
threadpool_limits(limits=1)
run

# %% [markdown]
# ## Two ends of one product
#
# Take a network with a vector output,
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
# ## The cost model (003 2(e))
#
# Count a product of an $M_1 \times M_2$ and an $M_2 \times M_3$ matrix as $M_1 M_2 M_3$
# multiply-adds and ignore the elementwise work (the $S_k$, lower order). Both modes need the
# forward pass, $F = KD + (L-1)K^2 + PK$ (matrix-vector products). Reading off the recursions:
#
# $$
# C_{\mathrm{fwd}} = F + K D^2 + (L-1) K^2 D + P K D, \qquad
# C_{\mathrm{rev}} = F + P^2 K + (L-1) P K^2 + P K D ,
# $$ (eq-cost-model)
#
# where $KD^2$ and $P^2K$ are the products with the identity seeds, which PyTorch's `jacfwd`
# and `jacrev` really perform (they push the columns of $I_D$ or the rows of $I_P$ through the
# graph); a hand-written version would start from $W_1$ or $W_F$ and save them. The terms of
# forward mode are $D$ times the terms of $F$, those of reverse mode $P$ times, so the model
# factors:
#
# $$
# C_{\mathrm{fwd}} = (1 + D)\, F, \qquad C_{\mathrm{rev}} = (1 + P)\, F .
# $$ (eq-cost-factored)
#
# A Jacobian costs one forward pass plus one more per *input* in forward mode, per *output* in
# reverse mode. So $C_{\mathrm{fwd}} - C_{\mathrm{rev}} = (D - P)F$: forward mode is cheaper
# exactly when $D < P$, fewer inputs than outputs, and the ratio $(1 + D)/(1 + P)$ depends
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
    """W_1 (K, D), W_2..W_L (K, K), W_F (P, K); entries N(0, 1/fan-in)."""
    shapes = [(K, D)] + [(K, K)] * (L - 1) + [(P, K)]
    names = [f"W{k}" for k in range(1, L + 1)] + ["WF"]
    return {name: (torch.randn(shape, generator=generator, dtype=torch.float64)
                   / shape[1] ** 0.5).to(device, dtype)
            for name, shape in zip(names, shapes, strict=True)}


def tanh_net(x, weights):
    """f(x) of eq-tanh-net; the dict holds W1..WL then WF, in that order."""
    *hidden, W_F = weights.values()
    h = x
    for W in hidden:
        h = torch.tanh(W @ h)
    return W_F @ h


# %% [markdown]
# ## Five ways to compute $J$
#
# Two reverse-mode ones: a loop of $P$ backward passes (one per output, `torch.autograd.grad`
# on $f_p$), and `torch.func.jacrev`, which runs the $P$ VJPs as one vectorized pass (`vmap`).
# Two forward-mode ones: a loop of $D$ passes with dual numbers (`torch.autograd.forward_ad`,
# one column per pass), and `torch.func.jacfwd`, the $D$ JVPs vectorized. And the product
# {eq}`eq-jacobian-product` written out, which is forward mode by hand.

# %%
def jacobian_reverse_rows(x, weights):
    """Reverse mode, one backward pass per output: row p of J is the gradient of f_p."""
    x = x.detach().requires_grad_()
    y = tanh_net(x, weights)
    rows = [torch.autograd.grad(y[p], x, retain_graph=True)[0] for p in range(len(y))]
    return torch.stack(rows)


def jacobian_forward_columns(x, weights):
    """Forward mode, a dual-number pass per input: column j of J is the JVP with e_j."""
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
    """eq-jacobian-product from the right: T_k = S_k W_k T_{k-1}, J = W_F T_L."""
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
# agrees with the product formula to rounding, and each row of the Jacobian is compared with
# finite differences (which know nothing about either mode).

# %%
D, K, P = 2, 30, 10
weights = tanh_net_weights(D, K, P, L=3)
for _ in range(run.jac_cases):
    x = torch.randn(D, generator=generator, dtype=torch.float64)
    J = jacobian_by_product(x, weights)
    assert J.shape == (P, D)
    for name, method in JACOBIAN_METHODS.items():
        assert relative_error(method(x, weights), J) < ROUNDING_TOL, name
    for p in range(P):  # x is perturbed in place by the finite differences
        check_gradients(lambda p=p, x=x: tanh_net(x, weights)[p], {"x": x}, {"x": J[p]})

# %% [markdown]
# PyTorch's `FlopCounterMode` counts the FLOPs of every matrix-matrix product it dispatches
# (2 per multiply-add). The forward pass uses matrix-*vector* products, which it does not
# count, so what it counts should be exactly the Jacobian part of {eq}`eq-cost-model`,
# $C - F$. We compare the two for a range of shapes; agreement to the last FLOP confirms both
# the model and our reading of what `jacfwd` and `jacrev` do (the identity seeds included).

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
    assert counted_matmul_flops(jacobian_jacfwd, x_, w_) == 2 * (c_fwd - primal)
    assert counted_matmul_flops(jacobian_jacrev, x_, w_) == 2 * (c_rev - primal)

# %% [markdown]
# ## Timings at 003's sizes
#
# Now the timings 003 asks for: $D = 2$, $K = 30$, $P = 10$, $L = 3, 5, 10$, each method on
# the CPU and, when there is one, on the GPU, in float32 (the precision one would use in
# practice).

# %%
benchmark = {}  # (device, L, method) -> seconds
for device in DEVICES:
    for L in (3, 5, 10):
        weights = tanh_net_weights(D, K, P, L, device=device, dtype=torch.float32)
        x = torch.randn(D, generator=generator).to(device)
        for name, method in JACOBIAN_METHODS.items():
            timing = measure(partial(method, x, weights), repeat=run.jac_repeat,
                             warmup=3)
            benchmark[device.type, L, name] = timing.seconds

# %% tags=["hide-input"]
header = "| device | L | model: fwd / rev multiply-adds | " + " | ".join(JACOBIAN_METHODS)
lines = [header + " |", "|---|---:|---:" + "|---:" * len(JACOBIAN_METHODS) + "|"]
for device in DEVICES:
    for L in (3, 5, 10):
        _, c_fwd, c_rev = jacobian_cost(D, K, P, L)
        cells = [format_seconds(benchmark[device.type, L, name]) for name in JACOBIAN_METHODS]
        lines.append(f"| {device.type.upper()} | {L} | {c_fwd:,} / {c_rev:,} = "
                     f"{c_fwd / c_rev:.2f} | " + " | ".join(cells) + " |")
display(Markdown("\n".join(lines)))

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
_, c_fwd3, c_rev3 = jacobian_cost(D, K, P, 3)
glue("jac_model_ratio", c_fwd3 / c_rev3, display=False)  # the same at every depth
glue("jac_rev_madds_l3", c_rev3, display=False)
glue("jac_fastest", format_seconds(min(t for (kind, _, _), t in benchmark.items()
                                       if kind == "cpu")), display=False)
glue("jac_pass_ratio", (1 + P) / D, display=False)  # passes of the row loop / column loop
glue("jac_loop_over_jacrev", benchmark["cpu", 3, "reverse, P backward passes"]
     / benchmark["cpu", 3, "reverse, jacrev"], display=False)
glue("jac_jacfwd_over_loop", benchmark["cpu", 3, "forward, jacfwd"]
     / benchmark["cpu", 3, "forward, D dual passes"], display=False)
glue("jac_repeat", run.jac_repeat, display=False)

# %% [markdown]
# The table gives the medians of {glue:text}`jac_repeat` timed runs. The model predicts, at
# every depth, that forward mode needs {glue:text}`jac_model_ratio:.2f` ($= 3/11$) times the
# multiply-adds of reverse mode {eq}`eq-cost-factored`; on the CPU, `jacfwd` took
# {glue:text}`jac_measured_ratio_l3:.2f` times as long as `jacrev` at $L = 3$ and
# {glue:text}`jac_measured_ratio_l10:.2f` times at $L = 10$. The model is not a prediction of
# these timings, and should not be: at $L = 3$ the whole reverse-mode Jacobian is
# {glue:text}`jac_rev_madds_l3:,` multiply-adds, which a core doing a few billion
# multiply-adds per second finishes in microseconds, while the fastest entry of the table took
# {glue:text}`jac_fastest`. What we are measuring is
# bookkeeping: building the graph, dispatching each small operation, the dual numbers of
# forward mode, the `vmap` transformation.
#
# The bookkeeping has a structure of its own. At this size each pass through the network costs
# roughly the same fixed amount, so the loops cost roughly in proportion to their number of
# passes: the row loop makes one forward pass and $P = 10$ backward passes, the column loop
# $D = 2$ forward passes with dual numbers, a ratio of passes of $(1 + P)/D$ =
# {glue:text}`jac_pass_ratio:.1f`, and the rows took {glue:text}`jac_passes_ratio_l3:.1f`
# times as long as the columns at $L = 3$ ({glue:text}`jac_passes_ratio_l10:.1f` at
# $L = 10$). That is a rough proportion only, because a backward pass is not the same work as
# a forward pass with dual numbers. Vectorizing with `vmap` replaces the passes by one pass
# over a batch, at a fixed price of its own: the loop of ten backward passes took
# {glue:text}`jac_loop_over_jacrev:.1f` times as long as `jacrev`, and `jacfwd` took
# {glue:text}`jac_jacfwd_over_loop:.1f` times as long as the loop of two dual passes it
# replaces.
#
# ## Where is the crossover?
#
# The model becomes a prediction of time only when the matrices are large enough for the
# arithmetic to dominate. We take wide layers ($K$ = {glue:text}`cross_width` on the CPU,
# $L = 3$) and sweep one dimension at a time: $D$ with $P$ fixed, then $P$ with $D$ fixed,
# both at {glue:text}`cross_fixed`, so that {eq}`eq-cost-factored` puts the crossover at
# $D = P$ = {glue:text}`cross_fixed` in both sweeps. At each size `jacfwd` and `jacrev` are
# timed in alternating rounds, one call of each per round, so that a slow spell of the machine
# slows both alike.

# %%
def crossover_sweep(device, K, fixed, sizes, L=3):
    """Time jacfwd and jacrev alternately: D in sizes (P fixed), then P (D fixed)."""
    rows = []
    for sweep in ("D", "P"):
        for size in sizes:
            D_, P_ = (size, fixed) if sweep == "D" else (fixed, size)
            weights = tanh_net_weights(D_, K, P_, L, device=device, dtype=torch.float32)
            x = torch.randn(D_, generator=generator).to(device)
            _, c_fwd, c_rev = jacobian_cost(D_, K, P_, L)
            timings = measure_alternately([partial(jacobian_jacfwd, x, weights),
                                           partial(jacobian_jacrev, x, weights)],
                                          run.repeat, warmup=2)
            for mode, cost, timing in zip(("forward", "reverse"), (c_fwd, c_rev),
                                          timings, strict=True):
                rows.append(dict(sweep=sweep, size=size, mode=mode, cost=cost,
                                 seconds=timing.seconds, runs=timing.runs))
    return rows


sweeps = {}
for device in DEVICES:
    K_cross = run.cross_width if device.type == "cpu" else run.gpu_cross_width
    sweeps[device.type] = crossover_sweep(device, K_cross, run.cross_fixed,
                                          run.cross_sizes)

# far from the crossover, where the model's ratio of multiply-adds is largest,
# the measured times must order as the model says
largest = max(run.cross_sizes)
for device_type, rows in sweeps.items():
    time = {(r["sweep"], r["size"], r["mode"]): r["seconds"] for r in rows}
    assert time["D", largest, "forward"] > time["D", largest, "reverse"], device_type
    assert time["P", largest, "reverse"] > time["P", largest, "forward"], device_type

# %% [markdown]
# Near the crossover the two times are close and their order can change from round to round,
# so a comparison of two medians could put a crossing wherever noise tips it. We therefore
# call the order at a size *settled* when the mode that carries the swept dimension (forward
# mode carries $D$, reverse mode $P$) was the slower in at least 80% of the rounds, or the
# faster in at least 80%. The measured crossover is then a range: from the largest size at
# which that mode was settled faster to the smallest size from which on it was settled slower
# at every size.

# %% tags=["hide-input"]
SETTLED = 0.8  # share of the rounds in which one mode must be the slower


def growing_mode(sweep) -> str:
    """The mode whose multiply-adds grow with the swept dimension."""
    return "forward" if sweep == "D" else "reverse"


def settled_order(rows, sweep) -> dict:
    """size -> +1 (growing mode settled slower), -1 (settled faster), 0 (not settled)."""
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
    """(low, high): high, the smallest size from which on the growing mode was settled
    slower at every size (None if not at the largest); low, the largest size below high
    at which it was settled faster (None if none)."""
    high = None
    for size in sorted(order, reverse=True):
        if order[size] != 1:
            break
        high = size
    low = max((s for s in order if order[s] == -1 and high is not None and s < high),
              default=None)
    return low, high


def range_words(low, high) -> str:
    """A measured range in a few words, for the prose."""
    if high is None:
        return "beyond the sizes measured"
    return f"at or below {high}" if low is None else f"between {low} and {high}"


orders = {kind: {sweep: settled_order(rows, sweep) for sweep in ("D", "P")}
          for kind, rows in sweeps.items()}
for device_type in sweeps:
    for sweep, slower, faster in (("D", "jacfwd", "jacrev"), ("P", "jacrev", "jacfwd")):
        order = orders[device_type][sweep]
        low, high = crossover_range(order)
        signs = [order[s] for s in sorted(order) if order[s] != 0]
        what = f"{slower} slower than {faster}, {SETTLED:.0%} of rounds, {device_type}"
        results.record(f"crossover_{sweep.lower()}_{device_type}", high,
                       description=f"measured crossover, upper end: smallest {sweep} from "
                                   f"which on {what} (None: not at the largest)")
        results.record(f"crossover_{sweep.lower()}_low_{device_type}", low,
                       description=f"measured crossover, lower end: largest {sweep} below "
                                   f"the upper end with {faster} slower (None: none)")
        results.record(f"crossings_{sweep.lower()}_{device_type}",
                       sum(a != b for a, b in zip(signs[:-1], signs[1:], strict=True)),
                       description=f"changes of the settled order of jacfwd and jacrev "
                                   f"along the {sweep} sweep, {device_type}")
        glue(f"cross_range_{sweep.lower()}_{device_type}", range_words(low, high),
             display=False)
# were the order a coin toss in each round, the chance that one mode comes out settled
settle_at = math.ceil(SETTLED * run.repeat)
glue("settle_chance", 2 * sum(math.comb(run.repeat, k)
                              for k in range(settle_at, run.repeat + 1)) / 2**run.repeat,
     display=False)
glue("settle_rounds", run.repeat, display=False)
glue("cross_fixed", run.cross_fixed, display=False)
glue("cross_width", run.cross_width, display=False)

fig, axes = plots.figure(ncols=2, nrows=len(DEVICES), squeeze=False,
                         height=3.4 * len(DEVICES))
for row_axes, device in zip(axes, DEVICES, strict=True):
    rows = sweeps[device.type]
    for ax, sweep in zip(row_axes, ("D", "P"), strict=True):
        for mode, marker in [("forward", "o-"), ("reverse", "s-")]:
            pts = [r for r in rows if r["sweep"] == sweep and r["mode"] == mode]
            ax.plot([r["size"] for r in pts], [r["seconds"] * 1e3 for r in pts], marker,
                    ms=4, label=f"{mode} mode ({'jacfwd' if mode == 'forward' else 'jacrev'})")
        ax.axvline(run.cross_fixed, color="gray", ls="--", label="model crossover")
        low, high = crossover_range(orders[device.type][sweep])
        if high is not None:
            ax.axvspan(min(run.cross_sizes) if low is None else low, high, color="gray",
                       alpha=0.2, label="measured crossover")
        other, what = ("P", "inputs") if sweep == "D" else ("D", "outputs")
        ax.set(xscale="log", yscale="log", ylabel="time per Jacobian (ms)",
               xlabel=f"{sweep}, number of {what} ({other} = {run.cross_fixed})")
        if len(DEVICES) > 1:
            ax.set_title(device.type.upper(), fontsize=9)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
axes[0][0].legend(fontsize=7)
plots.glue_figure("fig_crossover", fig)

# %% [markdown]
# ```{glue:figure} fig_crossover
# ---
# name: fig-ad-crossover
# alt: >-
#   Two log-log panels of the time of a Jacobian by jacfwd and by jacrev, against the number
#   of inputs D on the left and of outputs P on the right; the forward-mode line rises with D
#   and the reverse-mode line with P; a dashed line marks the model's crossover and a shaded
#   band the measured one.
# ---
# Time of one Jacobian by forward mode (`jacfwd`) and reverse mode (`jacrev`) for wide layers,
# against the number of inputs $D$ (left, $P$ fixed) and of outputs $P$ (right, $D$ fixed);
# medians of alternating rounds, one CPU thread (a run with a GPU adds a row). Look at where
# the two lines cross: the dashed line marks the model's crossover $D = P$, the shaded band
# the measured one.
# ```
#
# In {numref}`fig-ad-crossover`, far from the crossover the model's rule holds: the mode that
# carries the swept dimension grows in proportion to it, the other far more slowly, and at the
# largest size each mode is the slower one exactly where the model says (asserted above, on
# every device). Near the crossover other costs matter. Each size was timed in
# {glue:text}`settle_rounds` rounds (were the order a coin toss in each round, one mode would
# still come out settled with probability {glue:text}`settle_chance:.2g`), and on the CPU the
# measured crossover lies {glue:text}`cross_range_d_cpu` in the $D$ sweep and
# {glue:text}`cross_range_p_cpu` in the $P$ sweep, against the model's
# {glue:text}`cross_fixed`. The model counts multiply-adds only; a product $W_k T$ with a thin
# $T$ reads all $K^2$ entries of $W_k$ to do only a few multiply-adds with each, so memory
# traffic rather than arithmetic is likely to set its time, and the two modes carry different
# fixed costs (dual numbers against a recorded graph), so the measured crossover need not sit
# at $D = P$. The rule to remember is the model's: a Jacobian by forward mode scales with the
# number of inputs, by reverse mode with the number of outputs. For training, one scalar loss
# and millions of parameters, reverse mode is the only sensible choice; for a function with
# few inputs and many outputs, forward mode is.

# %% tags=["hide-input"]
def fit_time_model(rows):
    """t = t0 + c * cost with t0, c >= 0: of the lines through two measured points (or one,
    with t0 = 0 or c = 0), the one with the least sum of |log(model / measured)|."""
    t = np.array([r["seconds"] for r in rows])
    cost = np.array([r["cost"] for r in rows], dtype=float)
    candidates = ([(0.0, t[i] / cost[i]) for i in range(len(t))]
                  + [(t[i], 0.0) for i in range(len(t))])
    for i in range(len(t)):
        for j in range(i + 1, len(t)):
            if cost[i] != cost[j]:
                c = (t[j] - t[i]) / (cost[j] - cost[i])
                if c >= 0 and t[i] - c * cost[i] >= 0:
                    candidates.append((t[i] - c * cost[i], c))
    t0, c = min(candidates, key=lambda m: np.abs(np.log((m[0] + m[1] * cost) / t)).sum())
    return float(t0), float(c)


def model_factor(r, t0, c) -> float:
    """How far the model is from a measured point, as a factor >= 1."""
    model = t0 + c * r["cost"]
    return max(r["seconds"] / model, model / r["seconds"])


for device_type, rows in sweeps.items():
    t0, c = fit_time_model(rows)
    errors = [model_factor(r, t0, c) for r in rows]
    results.record(f"time_model_overhead_{device_type}_us", t0 * 1e6, unit="µs",
                   description=f"fitted intercept t0 of the time model, {device_type}")
    results.record(f"time_model_rate_{device_type}_gflops", 2 / c / 1e9 if c > 0 else 0.0,
                   unit="GFLOP/s", description=f"fitted arithmetic rate (2 FLOPs per "
                   f"multiply-add), {device_type}")
    results.record(f"time_model_worst_factor_{device_type}", max(errors),
                   description=f"largest factor between measured time and model, "
                               f"{device_type}")
    results.record(f"time_model_median_factor_{device_type}", float(np.median(errors)),
                   description=f"median factor between measured time and model, "
                               f"{device_type}")
    results.record(f"time_model_outliers_{device_type}", sum(e > 3 for e in errors),
                   description=f"sweep points more than 3x from the time model, "
                               f"{device_type}")
# held out: refit without the largest size, predict the two points of largest cost
rows = sweeps["cpu"]
far = [r for r in rows if r["size"] == largest and r["mode"] == growing_mode(r["sweep"])]
t0_held, c_held = fit_time_model([r for r in rows if r["size"] != largest])
glue("far_factor", max(model_factor(r, t0_held, c_held) for r in far), display=False)
glue("sweep_points", len(rows), display=False)

# the product of a vmapped VJP, W^T A^T, against the same product in the layout A W
W_wide = torch.randn(run.cross_width, run.cross_width, generator=generator)
layout_rows = sorted({4} | {s for s in run.cross_sizes if s <= run.cross_width // 16})
layout_ratio = {}
for n_rows in layout_rows:
    A_thin = torch.randn(n_rows, run.cross_width, generator=generator)
    # float32 sums of ~1e3 products in two orders: agreement to ~1e-6 relative
    assert relative_error(W_wide.T @ A_thin.T, (A_thin @ W_wide).T) < 1e-5
    plain, transposed = measure_alternately(
        [lambda A=A_thin: A @ W_wide, lambda A=A_thin: W_wide.T @ A.T], run.repeat,
        warmup=2)
    layout_ratio[n_rows] = transposed.seconds / plain.seconds
    if n_rows == 4:
        results.record("layout_plain_us", plain.seconds * 1e6, unit="µs",
                       description="A @ W, A 4 x K, W K x K, float32, one CPU thread")
        results.record("layout_transposed_us", transposed.seconds * 1e6, unit="µs",
                       description="W.T @ A.T, the same product in a vmapped VJP's layout")
glue("layout_ratio_4", layout_ratio[4], display=False)
glue("layout_ratio_max", max(layout_ratio.values()), display=False)
glue("layout_rows_max", max(layout_rows), display=False)

# %% [markdown]
# :::{dropdown} Aside: how well does a line in the multiply-adds fit the times?
# To compare times with the model beyond the crossover, fit one line per device,
# $t = t_0 + c \cdot C$, with $C$ the multiply-adds of {eq}`eq-cost-model`, $t_0$ an intercept
# (what a call costs beyond its multiply-adds) and $2/c$ an arithmetic rate in FLOPs per
# second, over all points of both modes and both sweeps. A least-squares fit would let a few
# points far off the line drag both constants; the fit in the hidden cell above is robust
# instead: of all the lines through two measured points (or through one, with $t_0 = 0$ or
# $c = 0$), it keeps the one with the smallest sum of $|\ln(\text{model}/\text{measured})|$,
# which, like a median, a few outliers move only a little. On the CPU it gives
# $t_0$ = {glue:text}`time_model_overhead_cpu_us:.0f` µs and a rate of
# {glue:text}`time_model_rate_cpu_gflops:.0f` GFLOP/s; it is within a factor of
# {glue:text}`time_model_median_factor_cpu:.2f` of the measured time at the median of the
# {glue:text}`sweep_points` points and {glue:text}`time_model_worst_factor_cpu:.2f` at the
# worst. Refitted without the largest size of either sweep, the line predicts the two points
# of largest cost, which it has not seen, within a factor of {glue:text}`far_factor:.2f`.
#
# One hypothesis for points far above the line: under `vmap`, the VJP of a matrix-vector
# product $W h$ becomes a product of $W^\top$ with a thin matrix, the batch of adjoints, in
# the layout $W^\top A^\top$. It is the same arithmetic as $A W$, and the result agrees to
# float32 rounding (checked in the hidden cell), but the BLAS library may pick a slower kernel
# for that layout. Timed alternately on the CPU, $W^\top A^\top$ took
# {glue:text}`layout_ratio_4:.1f` times as long as $AW$ for a thin matrix of 4 rows, and up to
# {glue:text}`layout_ratio_max:.1f` times as long for up to {glue:text}`layout_rows_max` rows.
# Where a layout has a slow path, every reverse-mode Jacobian with that many rows of adjoints
# pays for it; a profiler (`torch.profiler`) would show whether it does here. A count of
# multiply-adds cannot see such effects.
# :::
#
# ## What this section showed
#
# A Jacobian of $f: \mathbb R^D \to \mathbb R^P$ is a product of matrices that can be
# evaluated from either end; by 003's model it costs $1 + D$ forward passes in forward mode
# and $1 + P$ in reverse mode, and PyTorch's own FLOP counter agrees with the model to the
# last FLOP. At 003's small sizes the bookkeeping, not the arithmetic, sets the time, and the
# model does not predict the timings. On wide layers the model's rule holds far from the
# crossover, while near it fixed costs and memory traffic move the measured crossover away
# from $D = P$.
#
# ## Exercises
#
# 1. **Hessian-vector products.** For {eq}`eq-lydia-loss` with $\lambda = 0$ the Hessian is
#    $\frac2n X^\top X$. Compute $Hv$ without forming $H$ by forward-over-reverse
#    (`torch.func.jvp` of `torch.func.grad`) and by reverse-over-reverse (the gradient of
#    $\nabla\ell(w)^\top v$), check both against the closed form, and time them against
#    forming $H$ explicitly as $d$ grows. Which wins, and where is the crossover?
#
#    :::{dropdown} Hint
#    Both products cost a small constant number of gradient evaluations, $O(nd)$ each,
#    while forming $H$ costs $O(nd^2)$ once; for a single product the implicit ones win from
#    small $d$ on, and forming $H$ pays only when it is reused for about $d$ products.
#    :::
#
# 2. **A model with fixed costs.** Extend the time model to
#    $t = a_{\mathrm{mode}} + c \cdot C$, one intercept per mode. Where does it put the
#    crossover, and does it agree better with the measured range of
#    {numref}`fig-ad-crossover`?
#
#    :::{dropdown} Answer
#    The crossover moves to where $(D - P) F c = a_{\mathrm{rev}} - a_{\mathrm{fwd}}$: the
#    mode with the larger fixed cost needs a larger share of the multiply-adds to break even,
#    so the crossover moves towards the side where that mode carries fewer dimensions. Fit
#    it with the robust fit of the aside, one intercept per mode, and compare.
#    :::
#
# 3. **Scalar output.** Set $P = 1$ in the cost model. How much does reverse mode save over
#    forward mode for a loss of $10^6$ parameters, and how many forward passes does the
#    gradient cost?
#
#    :::{dropdown} Answer
#    $(1 + D)/(1 + P) = (10^6 + 1)/2$, half a million times cheaper; the gradient costs
#    $1 + P = 2$ forward passes in this model, the same "about two" as for the MLP of
#    {doc}`section 4 <04_mlp_costs>`.
#    :::
