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
# # What the fast paths buy
#
# Beyond the source: two implementation choices of this chapter, timed against the
# alternatives. The source recommends computing attention during training by calling
# `step` at each position; our `forward` does all $T$ positions in three batched matrix
# products with a mask. And our RNN runs its recurrence in a Python loop, where PyTorch's
# `nn.RNN` runs the same recurrence in one C++ (or cuDNN) call.

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
from typing import Literal

profile = None
# the data of section 1: "sample", "full" or None (the profile's default)
tinystories: Literal["sample", "full"] | None = None

# %% tags=["hide-input"]
import torch
from IPython.display import Markdown, display
from torch import nn

from helpers import profiles, results
from helpers.glue import glue
from helpers.lessons.rnn_attention import lm_loss, load_corpus, make_model
from helpers.timing import measure, speed_ratio

run = profiles.setup(
    profile,
    seed=601,
    vocab_size=(1024, 2048, 2048),  # BPE vocabulary, as in section 1
    seq_len=(32, 64, 128),  # tokens per training sequence, as in section 4
    full_train_stories=(300, 20_000, 200_000),  # stories of the full data, as in section 1
    full_val_stories=(50, 1_000, 30_000),
    base_width=(64, 128, 128),  # the base model of sections 4 and 5
    base_batch=(32, 32, 128),
    repeat=(2, 5, 7),  # timing repeats
)
if run.device.type == "cpu":
    torch.set_num_threads(1)  # small matrices: one thread is faster (see section 4)
corpus = load_corpus(tinystories, run)  # section 1
run

# %% [markdown]
# ## Masked attention against a loop of `step`
#
# We time one training step (forward and backward of the whole model, at the base width
# and batch) both ways.

# %%
timing_model = make_model(corpus.vocab_size, run.base_width, run.base_width, run.seed,
                          run.device)
x_time = corpus.train_seqs[: run.base_batch].to(run.device)


def training_step(by_steps: bool):
    def step():
        timing_model.zero_grad()
        lm_loss(timing_model(x_time, by_steps=by_steps)[0], x_time).backward()

    return step


t_masked = measure(training_step(False), repeat=run.repeat)
t_by_steps = measure(training_step(True), repeat=run.repeat)

# %% [markdown]
# ## Our RNN against `nn.RNN`
#
# First we check that `nn.RNN`, with our weights copied into it, computes the same states
# (in float32 with tanh the states lie in $[-1, 1]$, so rounding differences are of order
# $10^{-7}$; on a GPU, cuDNN may use TF32, with a 10-bit mantissa, hence the looser
# tolerance there). Then we time forward and backward of the recurrence alone
# (`RNN.recur`: the cell over all steps, without the output projection, which `nn.RNN` does
# not have).

# %%
ours = timing_model.rnn.cell
torch_rnn = nn.RNN(run.base_width, run.base_width, nonlinearity="tanh",
                   batch_first=True).to(run.device)
with torch.no_grad():
    torch_rnn.weight_ih_l0.copy_(ours.i2h.weight)
    torch_rnn.bias_ih_l0.copy_(ours.i2h.bias)
    torch_rnn.weight_hh_l0.copy_(ours.h2h.weight)
    torch_rnn.bias_hh_l0.zero_()
    inputs = timing_model.embedding(x_time)
    difference = timing_model.rnn.recur(inputs) - torch_rnn(inputs)[0]
    rnn_torch_gap = difference.abs().max().item()
assert rnn_torch_gap < (1e-4 if run.device.type == "cpu" else 1e-2), rnn_torch_gap

inputs_leaf = inputs.detach().requires_grad_()
t_ours_rnn = measure(lambda: timing_model.rnn.recur(inputs_leaf).sum().backward(),
                     repeat=run.repeat)
t_torch_rnn = measure(lambda: torch_rnn(inputs_leaf)[0].sum().backward(),
                      repeat=run.repeat)

# %% tags=["hide-input"]
masked_speedup = speed_ratio(t_by_steps, t_masked)
torch_rnn_speedup = speed_ratio(t_ours_rnn, t_torch_rnn)
if run.profile != "smoke":
    assert masked_speedup > 1.0, masked_speedup  # the masked path must pay for itself
results.record("masked_attention_speedup", masked_speedup,
               description="training step, step-loop attention time / masked attention time")
results.record("torch_rnn_speedup", torch_rnn_speedup,
               description="RNN forward+backward, our time / torch nn.RNN time")
results.record("rnn_torch_gap", rnn_torch_gap, description="our RNN vs nn.RNN states, max diff")
display(Markdown(
    f":::{{table}} Two fast paths, timed (width {run.base_width}, batch {run.base_batch}, "
    f"$T$ = {run.seq_len}).\n:name: tab-rnn-fast\n\n"
    "| what | slow path | fast path | speed-up |\n|---|---|---|---|\n"
    f"| training step: attention by `step` loop vs masked `forward` | {t_by_steps} | "
    f"{t_masked} | {masked_speedup:.1f}x |\n"
    f"| RNN forward + backward: ours vs `nn.RNN` | {t_ours_rnn} | {t_torch_rnn} | "
    f"{torch_rnn_speedup:.1f}x |\n:::"))
glue("device_name", profiles.device_name(run.device), display=False)
glue("base_width", run.base_width, display=False)
glue("base_batch", run.base_batch, display=False)

# %% [markdown]
# {numref}`tab-rnn-fast` holds the timings. On {glue:text}`device_name`, the masked
# attention makes a whole training step {glue:text}`masked_attention_speedup:.1f` times
# faster than the loop over `step`: the loop launches $T$ small attention computations,
# each recomputing keys and values of all earlier positions, for $O(T^2)$ key and value
# projections instead of
# $O(T)$; the mask computes $T^2/2$ scores that are thrown away, which costs far less.
#
# PyTorch's `nn.RNN` computes the same states as ours (largest difference
# {glue:text}`rnn_torch_gap:.1e`); the ratio of our time to its time for forward and
# backward is {glue:text}`torch_rnn_speedup:.2f` (above one, `nn.RNN` is faster). Both do
# the same matrix products, one per step, and they cannot do otherwise, since step $t$
# needs $\mathbf{h}_{t-1}$; what `nn.RNN` can save is the Python loop and the autograd
# bookkeeping of every step. That overhead is fixed per step while a step's arithmetic is
# small (a batch of {glue:text}`base_batch` rows times a {glue:text}`base_width` $\times$
# {glue:text}`base_width` matrix), so at this size it is a real share of the time; how
# large a share depends on the machine and, on one shared with other jobs, on the moment:
# the ratio changes from run to run. On a GPU each small step also costs a kernel launch,
# which cuDNN's fused steps save. That sequential recurrence is the fundamental cost of an
# RNN, and the one that attention-only models (Transformers, the next chapter) remove.
#
# ## What this section showed
#
# Computing attention for all positions at once with a causal mask beats a loop over
# positions, even though it computes scores it throws away. A fused RNN saves the
# per-step overhead of a Python loop, but not the sequential recurrence itself.
#
# ## Exercises
#
# 1. **Longer sequences.** Time both attention paths at $T = 32, 64, 128, 256$. How does
#    the speed-up grow with $T$?
#
#    :::{dropdown} Hint
#    The loop does $O(T^2)$ key and value projections and $T$ separate calls; the mask does
#    $O(T)$ projections and one $T \times T$ score matrix. Expect the speed-up to grow
#    about linearly in $T$ until the $T^2$ scores start to dominate.
#    :::
#
# 2. **Width.** Time our RNN and `nn.RNN` at widths 32 and 1024. At which width does the
#    fixed per-step overhead stop mattering?
#
#    :::{dropdown} Hint
#    The overhead is about the same at every width, while a step's arithmetic grows like
#    the batch times the width squared: at large widths the ratio approaches one.
#    :::
