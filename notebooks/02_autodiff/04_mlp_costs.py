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
# # What an MLP's gradient costs (004 §5)
#
# 004 §5 looks at a three-layer perceptron without biases, $100 \to 200 \to 400 \to 10$, with
# ReLUs between the layers, and asks what its weights take in memory, whether deleting the
# ReLUs would save time, and what the ReLUs are for. We answer each question with the network
# itself, run its gradient through the engine of {doc}`section 1 <01_reverse_mode>` to see the
# factor two of {doc}`section 3 <03_counting>`, and measure what autograd's bookkeeping costs
# against a backward pass written by hand in Chapter 1.

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
from functools import partial

import numpy as np
import torch
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits

from helpers import profiles, results
from helpers.glue import glue
from helpers.gradcheck import ROUNDING_TOL, relative_error
from helpers.lessons.autodiff import FLOPS, Var, backward, new_graph
from helpers.lessons.backprop import tanh_net_grads, tanh_net_init, tanh_net_loss
from helpers.timing import (
    format_seconds,
    measure,
    measure_alternately,
    round_ratios,
    speed_ratio,
)

run = profiles.setup(
    profile,
    seed=2,
    mlp_batch=(16, 256, 1024),  # batch of the timed MLP gradient
    autograd_rows=(512, 8192, 65536),  # large batch of the hand-written vs autograd timing
    autograd_rounds=(3, 24, 24),  # alternating rounds of that timing, one run each a round
    repeat=(3, 21, 31),  # timed runs per measurement (median reported)
)
rng = np.random.default_rng(run.seed)
generator = torch.Generator().manual_seed(run.seed)
torch.set_num_threads(1)  # one CPU thread for every timing (section 3 says why)
threadpool_limits(limits=1)  # the same for NumPy's BLAS
run

# %% [markdown]
# ## How much memory do the weights take? (004 §5.1)
#
# A linear layer from $a$ to $b$ features stores a $b \times a$ matrix, so the weights number
# $100 \cdot 200 + 200 \cdot 400 + 400 \cdot 10$, at 4 bytes each in float32 and 8 in float64.
# We build the network with `torch.nn` and count them from the model itself, then compare
# with the formula and with the exam's answer.

# %%
def alans_mlp(relu=True):
    """004 §5.1's network: 100 -> 200 -> 400 -> 10, no biases, ReLU between layers."""
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

# %% tags=["hide-input"]
results.record("mlp_weights", n_weights, description="weights of the 100-200-400-10 MLP")
bytes_comparison = results.compare("mlp_weight_bytes_fp32", bytes_fp32, 416_000,
                                   tolerance=0, source="004 §5.1", unit="bytes",
                                   description="memory of the MLP's weights in float32")
glue("mlp_weight_bytes_fp32_exam", bytes_comparison.reference, display=False)
results.record("mlp_weight_bytes_fp64", bytes_fp64, unit="bytes",
               description="memory of the MLP's weights in float64")

# %% [markdown]
# The model has {glue:text}`mlp_weights:,` weights, {glue:text}`mlp_weight_bytes_fp32:,.0f`
# bytes in float32 (the exam's answer is {glue:text}`mlp_weight_bytes_fp32_exam:,.0f`) and
# {glue:text}`mlp_weight_bytes_fp64:,.0f` bytes in float64. Training needs more than that: a
# gradient of the same size, optimizer state (two more copies for Adam), and the tape's saved
# activations, which grow with the batch (exercise 1).
#
# ## The gradient through the engine
#
# The same MLP, written once as a function of its weight matrices, runs through our engine and
# through PyTorch. `nn.Linear` computes $h W^\top$ with $W$ stored as (out, in); we pass the
# transposed matrices, (in, out), so that each layer is a plain `h @ W`. The loss is the mean
# squared error against random targets. Besides comparing the gradients, we compare the
# engine's FLOP counts with the count from the shapes: $2mnp$ per product, one FLOP per ReLU
# forward and two backward, and the loss's elementwise work.

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
weights0 = [layer.weight.detach().T.contiguous().numpy() for layer in mlp[::2]]
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
    assert relative_error(ours, theirs) < ROUNDING_TOL
# h @ W with W transposed is what nn.Linear computes
assert relative_error(X_mlp_t @ weights_t[0], mlp[0](X_mlp_t)) < ROUNDING_TOL

mlp_forward_flops = FLOPS.counts["forward"]
mlp_backward_flops = FLOPS.counts["backward"]
matmul_flops = 2 * B * (100 * 200 + 200 * 400 + 400 * 10)  # 2mnp per layer
relu_flops = B * (200 + 400)
loss_flops = 3 * B * 10 + 1  # subtraction, product, mean (sum + one division)
assert mlp_forward_flops == matmul_flops + relu_flops + loss_flops
input_adjoint_flops = 2 * B * (200 * 400 + 400 * 10)  # layers 2, 3 pass adjoints back
assert mlp_backward_flops == (matmul_flops + input_adjoint_flops + 2 * relu_flops
                              + 3 * B * 10 + 1)

engine_time, torch_time = measure_alternately([engine_mlp_gradient, torch_mlp_gradient],
                                              run.repeat)

# %% tags=["hide-input"]
results.record("mlp_backward_forward_flop_ratio", mlp_backward_flops / mlp_forward_flops,
               description="backward / forward FLOPs of the 100-200-400-10 MLP's gradient")
results.record("mlp_engine_over_torch", speed_ratio(engine_time, torch_time),
               description="time of the MLP gradient, our engine / torch (CPU, float64)")
results.record("mlp_engine_gradient_ms", engine_time.seconds * 1e3, unit="ms",
               description="time of the MLP gradient with our engine (CPU, float64)")
results.record("mlp_torch_gradient_ms", torch_time.seconds * 1e3, unit="ms",
               description="time of the MLP gradient with torch autograd (CPU, float64)")
glue("mlp_batch", B, display=False)
display(Markdown(
    "| MLP gradient (forward and backward) | our engine | PyTorch | engine / PyTorch |\n"
    "|---|---:|---:|---:|\n"
    f"| batch {B}, float64, one CPU thread | {format_seconds(engine_time.seconds)} "
    f"| {format_seconds(torch_time.seconds)} "
    f"| {speed_ratio(engine_time, torch_time):.2f} |"))

# %% [markdown]
# The engine's gradient matches PyTorch's to rounding, and its counts match the shapes. The
# backward pass counts {glue:text}`mlp_backward_forward_flop_ratio:.2f` times the forward
# FLOPs, close to the rule of thumb's two: each weight matrix needs its own adjoint
# $A^\top \bar V$, and the second and third layers also pass an adjoint $\bar V W^\top$ back to
# their inputs; only the first layer skips that product, because its input is data. The table
# gives the medians of alternating runs at batch {glue:text}`mlp_batch`. Both sides spend
# their time in the same handful of large matrix products, in compiled code; their ratio
# mixes the kernels each library calls with our engine's bookkeeping in Python, and this
# timing does not separate the two.
#
# ## What does autograd cost? A backward pass written by hand
#
# Our engine and PyTorch both pay for bookkeeping: they record every operation of the forward
# pass on a tape, then walk the tape backwards and call one VJP per operation. A backward pass
# written out by hand pays for none of that. Chapter 1 derived one for a network with a hidden
# layer of 20 tanh units and a log-cosh loss, {eq}`bp-tanh-model` in
# {doc}`Backpropagation in matrix form <../01_backprop/03_matrix_form>`: the five gradients of
# {eq}`bp-tanh-grads` are a few matrix products and elementwise operations on the whole batch.
# We import that network and its hand-written gradients from the book's library of chapter
# code, and write the autograd version here.

# %%
def tanh_net_grads_autograd(P: dict, X: torch.Tensor, y: torch.Tensor) -> dict:
    """The gradients of eq. (bp-tanh-grads) for W1, b1, w2, b2 and X, by autograd."""
    # detach() makes new leaves that share the data (no copy), each with an empty .grad
    leaves = {name: value.detach().requires_grad_()
              for name, value in {**P, "X": X}.items()}
    tanh_net_loss(leaves, leaves["X"], y).backward()
    return {name: leaf.grad for name, leaf in leaves.items()}


tanh_generator = torch.Generator().manual_seed(run.seed)
params_check = tanh_net_init(10, 20, tanh_generator)  # d = 10 inputs, H = 20 units
X_check = torch.randn(8, 10, generator=tanh_generator, dtype=torch.float64)
y_check = torch.randn(8, generator=tanh_generator, dtype=torch.float64)
by_hand = tanh_net_grads(params_check, X_check, y_check)
by_autograd = tanh_net_grads_autograd(params_check, X_check, y_check)
for name in by_hand:  # the same products in another order: rounding only
    assert relative_error(by_hand[name], by_autograd[name]) < ROUNDING_TOL, name

# %% [markdown]
# The two agree to rounding on all five gradients. Now we time one forward and backward pass
# of each on a small batch of 64 rows and a large one of {glue:text}`autograd_rows:,` rows,
# on the CPU and, when there is one, on a CUDA GPU. The two run in alternating rounds, one
# timed call of each per round, so that a slow moment of the machine hits both alike and the
# ratio of each round is a fair comparison.

# %%
SMALL_ROWS = 64
DEVICES = [torch.device("cpu")] + ([run.device] if run.device.type == "cuda" else [])
tanh_timings = {}  # (device type, rows) -> (hand-written, autograd)
for device in DEVICES:
    for rows in (SMALL_ROWS, run.autograd_rows):
        params_b = {k: v.to(device)
                    for k, v in tanh_net_init(10, 20, tanh_generator).items()}
        X_b = torch.randn(rows, 10, generator=tanh_generator, dtype=torch.float64)
        y_b = torch.randn(rows, generator=tanh_generator, dtype=torch.float64)
        X_b, y_b = X_b.to(device), y_b.to(device)
        tanh_timings[device.type, rows] = measure_alternately(
            [partial(tanh_net_grads, params_b, X_b, y_b),
             partial(tanh_net_grads_autograd, params_b, X_b, y_b)], run.autograd_rounds)

ratio = {key: speed_ratio(auto, hand) for key, (hand, auto) in tanh_timings.items()}
assert ratio["cpu", SMALL_ROWS] > 1.2  # on 64 rows bookkeeping costs a fifth or more
if run.profile != "smoke":  # the smoke run's large batch (512 rows) is too small
    # a fixed cost per operation weighs less on a large batch
    assert ratio["cpu", run.autograd_rows] < ratio["cpu", SMALL_ROWS]

# %% tags=["hide-input"]
lines = ["| device | rows | by hand | autograd | autograd / by hand | range over rounds |",
         "|---|---:|---:|---:|---:|---:|"]
for (device_type, rows), (hand, auto) in tanh_timings.items():
    size = "small" if rows == SMALL_ROWS else "large"
    ratios = round_ratios(auto, hand)
    lines.append(f"| {device_type.upper()} | {rows:,} | {format_seconds(hand.seconds)} | "
                 f"{format_seconds(auto.seconds)} | {ratio[device_type, rows]:.2f} | "
                 f"{min(ratios):.2f} to {max(ratios):.2f} |")
    results.record(f"autograd_over_hand_{device_type}_{size}", ratio[device_type, rows],
                   unit="ratio", description=f"tanh net gradient, autograd time / "
                                             f"hand-written time ({device_type}, {rows} rows)")
glue("autograd_rows", run.autograd_rows, display=False)
glue("autograd_rounds", run.autograd_rounds, display=False)
display(Markdown("\n".join(lines)))

# %% [markdown]
# The table gives, for one forward and backward pass of the tanh network in float64, the
# medians of {glue:text}`autograd_rounds` alternating rounds, their ratio, and the range of
# the ratio over the rounds (a GPU, when the run has one, adds two rows). On the CPU,
# autograd took {glue:text}`autograd_over_hand_cpu_small:.1f` times as long as the
# hand-written pass on the small batch and {glue:text}`autograd_over_hand_cpu_large:.2f`
# times as long on the large one. The asserts above check the robust part of that reading:
# the bookkeeping is a fixed cost per operation, the same for 64 rows as for
# {glue:text}`autograd_rows:,`, so it dominates when each operation has little to do and
# weighs less behind the arithmetic of a large batch.
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
    return torch.outer(e_big, w2_big) * (1 - A_big**2)  # outer, square, minus, times


def delta_fused():
    return torch.ops.aten.tanh_backward(torch.outer(e_big, w2_big), A_big)  # 2 passes


assert relative_error(delta_four_passes(), delta_fused()) < ROUNDING_TOL  # same formula
time_four, time_fused = measure_alternately([delta_four_passes, delta_fused],
                                            run.autograd_rounds)
assert speed_ratio(time_four, time_fused) > 1.2  # fewer passes over memory are faster

# %% tags=["hide-input"]
fused_ratios = round_ratios(time_four, time_fused)
results.record("delta_four_passes_over_fused_cpu", speed_ratio(time_four, time_fused),
               unit="ratio", description=f"tanh net dJ/dZ, four-pass formula time / fused "
                                         f"tanh_backward time (cpu, {run.autograd_rows} rows)")
display(Markdown(
    "| $\\partial J/\\partial \\mathbf{Z}$, CPU | four passes | fused | ratio "
    "| range over rounds |\n|---|---:|---:|---:|---:|\n"
    f"| {run.autograd_rows:,} rows | {format_seconds(time_four.seconds)} "
    f"| {format_seconds(time_fused.seconds)} | {speed_ratio(time_four, time_fused):.2f} "
    f"| {min(fused_ratios):.2f} to {max(fused_ratios):.2f} |"))

# %% [markdown]
# Our line takes {glue:text}`delta_four_passes_over_fused_cpu:.1f` times as long as the fused
# kernel (medians, in the table with the range over the rounds). Fewer passes over memory are
# faster, as expected (a ratio above 1.2 is asserted): here autograd's building blocks are
# better tuned than the formula written the obvious way. How much of the large batch's timing
# this one line accounts for, the experiment does not say. Speed, in the end, is not what
# autograd is for: both passes do the same arithmetic, and autograd's value is that it never
# forgets a term of the chain rule.
#
# ## Do the ReLUs cost much? (004 §5.2)
#
# The exam's roommate proposes to delete the ReLUs to save FLOPs. The counts above already
# answer: per example the matrix products take $2 \cdot 104{,}000$ FLOPs and the ReLUs $600$,
# one per hidden unit. We also time the network with and without them (float32, as one would
# train), in alternating rounds.

# %%
relu_share = relu_flops / (matmul_flops + relu_flops)
X32 = torch.randn(run.mlp_batch, 100, generator=generator)
with torch.no_grad():
    mlp32, linear32 = alans_mlp(relu=True), alans_mlp(relu=False)
    time_relu, time_linear = measure_alternately(
        [lambda: mlp32(X32), lambda: linear32(X32)], run.repeat, repeat=10)

# %% tags=["hide-input"]
results.record("relu_flop_share", relu_share,
               description="ReLU FLOPs / (matmul + ReLU FLOPs) in the 004 §5 MLP forward pass")
results.record("relu_time_saving", 1 - time_linear.seconds / time_relu.seconds,
               description="fraction of the forward time saved by removing the ReLUs "
                           "(float32)")
relu_ratios = [a / b for a, b in zip(time_linear.runs, time_relu.runs, strict=True)]
glue("relu_time_ratio", speed_ratio(time_linear, time_relu), display=False)
display(Markdown(
    "| forward pass, float32, CPU | with ReLUs | without | without / with "
    "| range over runs |\n|---|---:|---:|---:|---:|\n"
    f"| batch {run.mlp_batch} | {format_seconds(time_relu.seconds)} "
    f"| {format_seconds(time_linear.seconds)} "
    f"| {speed_ratio(time_linear, time_relu):.2f} "
    f"| {min(relu_ratios):.2f} to {max(relu_ratios):.2f} |"))

# %% [markdown]
# The ReLUs are {glue:text}`relu_flop_share:.2%` of the forward FLOPs: linear in the layer
# widths, against the quadratic cost of the matrix products. Without them the forward pass
# took {glue:text}`relu_time_ratio:.2f` times as long as with them (the table gives the
# spread over the runs). Their share of the time can be many times their share of the
# FLOPs: a ReLU does one comparison for each number it reads and writes back, so, like other
# elementwise operations, its time is set by moving the activations through memory, and by
# one call per layer, rather than by its FLOPs. So the roommate's reason, FLOPs, is the wrong
# measure of what the ReLUs cost; and whatever time deleting them saves, it costs the network
# what the next question shows.
#
# ## What do the ReLUs do? (004 §5.3)
#
# Without them the network is $x \mapsto W_3 W_2 W_1 x$, a product of matrices, i.e. *one*
# $10 \times 100$ matrix $M = W_3 W_2 W_1$: a linear model, whatever the depth. Two
# demonstrations show it (both hold by associativity and linearity, up to rounding), and one
# check shows that the ReLUs break it: the ReLU-free network's output is $x M^\top$, it is
# additive, $f(x + x') = f(x) + f(x')$, and the network with ReLUs is far from additive.

# %%
relu_mlp = alans_mlp(relu=True).double()
linear_mlp = relu_mlp[::2]  # the same three Linear layers (shared), no ReLUs
W1_l, W2_l, W3_l = (layer.weight.detach() for layer in linear_mlp)
M = W3_l @ W2_l @ W1_l  # (10, 100): the whole network as one matrix
Xa = torch.randn(64, 100, generator=generator, dtype=torch.float64)
Xb = torch.randn(64, 100, generator=generator, dtype=torch.float64)

with torch.no_grad():
    # demonstrations: true by construction, shown to rounding
    assert relative_error(linear_mlp(Xa), Xa @ M.T) < ROUNDING_TOL
    assert relative_error(linear_mlp(Xa + Xb),
                          linear_mlp(Xa) + linear_mlp(Xb)) < ROUNDING_TOL
    # the check: with ReLUs the same weights are far from additive
    nonadditivity = relative_error(relu_mlp(Xa + Xb), relu_mlp(Xa) + relu_mlp(Xb))
assert nonadditivity > 0.1

# %% tags=["hide-input"]
glue("collapsed_entries", M.numel(), display=False)
glue("relu_nonadditivity", nonadditivity, display=False)

# %% [markdown]
# Without ReLUs the {glue:text}`mlp_weights:,` weights describe a function that
# {glue:text}`collapsed_entries` numbers describe as well: the $10 \times 100$ matrix $M$. With
# the same weights and the ReLUs back, $f(x + x')$ and $f(x) + f(x')$ differ by a relative
# {glue:text}`relu_nonadditivity:.2f`. That is the exam's answer to why accuracy dropped:
# without nonlinearities, depth adds parameters but no expressive power; the network can only
# represent what a linear model on the raw inputs can.
#
# ## What this section showed
#
# The MLP's weights take 4 bytes each in float32, {glue:text}`mlp_weight_bytes_fp32:,.0f`
# bytes, as the exam says. Its backward pass counts nearly two forward passes, because every
# layer but the first passes an adjoint back to its input as well as to its weights. Autograd's
# bookkeeping is a fixed cost per operation: it dominates a small batch and weighs less on a
# large one, and autograd's fused kernels can beat a formula written the obvious way. The ReLUs
# are a negligible share of the FLOPs and are what makes depth worth having.
#
# ## Exercises
#
# 1. **The tape's memory.** Reverse mode keeps every intermediate the VJPs need. For this MLP
#    at batch size $B$, list what the engine's tape holds (which arrays, which shapes) and how
#    many bytes that is in float32. From which batch size on does the tape take more memory
#    than the weights? Forward mode needs no tape: what does it keep instead, and why is it
#    still not used for training?
#
#    :::{dropdown} Hint
#    The products keep their inputs ($B \times 100$, $B \times 200$, $B \times 400$) and the
#    ReLUs theirs ($B \times 200$, $B \times 400$), about $1300B$ numbers, so the tape passes
#    the $104{,}000$ weights near $B = 80$. Forward mode keeps only the current tangent, but
#    needs one pass per parameter ({doc}`section 5 <05_jacobians>`).
#    :::
#
# 2. **A residual connection.** Add $h \leftarrow h + \operatorname{relu}(h W)$ with a square
#    $W$ as a fourth layer. How do the forward and backward FLOP counts change, and does the
#    engine need any change to differentiate it?
#
#    :::{dropdown} Answer
#    The layer adds $2Bk^2 + 2Bk$ forward FLOPs for width $k$ and about twice that backward
#    (both VJPs of the product, the ReLU's two FLOPs, plus $Bk$ additions where $h$'s two
#    adjoint terms meet). The engine needs no change: $h$ simply has two consumers, and
#    {eq}`eq-adjoint` sums them.
#    :::
