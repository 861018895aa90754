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
# # Training by the number of sequences seen
#
# The source controls training by a number of sequences rather than epochs, and validates
# after every tenth of it. This section writes that training loop, trains the base model,
# and answers the third empirical question of 002 section 5: how the final losses change
# with the number of sequences. With a fixed seed and a constant learning rate, a run of $N$
# sequences is exactly the beginning of a longer run, so one long run answers the whole
# question; we check that claim by training a short run separately.

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
import math

import numpy as np
import torch
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.rnn_attention import lm_loss, load_corpus, make_model, unigram_baseline

run = profiles.setup(
    profile,
    seed=601,
    vocab_size=(1024, 2048, 2048),  # BPE vocabulary, as in section 1
    seq_len=(32, 64, 128),  # tokens per training sequence (the source does not state it)
    full_train_stories=(300, 20_000, 200_000),  # stories of the full data, as in section 1
    full_val_stories=(50, 1_000, 30_000),
    lr=(3e-3, 3e-3, 2e-3),  # Adam's learning rate, constant
    base_width=(64, 128, 128),  # embed = hidden = keys = values (source: 128)
    base_batch=(32, 32, 128),  # batch size (source: 128)
    sweep_sequences=(256, 8_000, 50_000),  # sequences per run of section 5's sweeps
    count_sweep=((64, 128, 256, 512), (2_000, 4_000, 8_000, 16_000),
                 (10_000, 20_000, 50_000, 100_000)),  # sequences, sequence-count sweep
    eval_sequences=(32, 256, 1024),  # fixed train and validation subsets for the curves
)
if run.device.type == "cpu":
    # The matrices of one RNN step are small (batch x width times width x width): splitting
    # them across threads costs more in synchronization than it saves, and on a machine
    # shared with other jobs spinning threads can make a step several times slower.
    torch.set_num_threads(1)
corpus = load_corpus(tinystories, run)  # section 1: the stories, tokenizer and sequences
unigram_loss, _ = unigram_baseline(corpus, run.seq_len)
run

# %% [markdown]
# ## The scale of these runs
#
# The source's experiments train for up to 250,000 sequences on a GPU. This chapter keeps
# every experiment at a scale that fits a few minutes on two CPU cores, and runs at the
# source's scale on a GPU. {numref}`tab-rnn-scales` compares the two for the runs of this
# section and the next; the final model's sizes are in {doc}`section 6 <06_final_model>`.

# %% tags=["hide-input"]
def scale_rows(profile_name: str) -> list[str]:
    seq_len = run.value_in("seq_len", profile_name)
    sweep = run.value_in("sweep_sequences", profile_name)
    return [f"{seq_len}", f"{sweep:,}", f"{sweep * (seq_len - 1):,}",
            f"{max(run.value_in('count_sweep', profile_name)):,}",
            f"{run.value_in('base_batch', profile_name)}",
            f"{math.ceil(sweep / run.value_in('base_batch', 'gpu'))}",
            f"{run.value_in('lr', profile_name):g}"]


names = ["tokens per sequence $T$", "sequences per run of the width and batch sweeps",
         "predicted tokens per sweep run", "longest run of the sequence-count sweep",
         "batch size of the sweeps", "updates per sweep run at the source's batch of 128",
         "Adam's learning rate (constant)"]
laptop, source_scale = scale_rows("cpu"), scale_rows("gpu")
display(Markdown(
    ":::{table} The runs of sections 4 and 5 on a laptop and at the source's scale.\n"
    ":name: tab-rnn-scales\n\n| | on two CPU cores | at the source's scale (GPU) |\n"
    "|---|---|---|\n"
    + "\n".join(f"| {n} | {a} | {b} |" for n, a, b in zip(names, laptop, source_scale,
                                                          strict=True))
    + "\n:::"))
glue("token_factor", (run.value_in("sweep_sequences", "gpu") * (run.value_in("seq_len", "gpu")
                      - 1)) / (run.value_in("sweep_sequences", "cpu")
                               * (run.value_in("seq_len", "cpu") - 1)), display=False)

# %% [markdown]
# A sweep run on the laptop predicts {glue:text}`token_factor:.1f` times fewer tokens than
# at the source's scale. At that size a batch of 128 would give too few updates to learn
# much more than word frequencies, so the laptop's batch is 32, and its learning rate a
# little higher for the shorter runs.
#
# ## The training loop
#
# We train with Adam {cite}`kingma2015adam` at a constant learning rate (the source does not
# give its optimizer settings) and clip the gradient's norm at 1, a standard guard against
# the exploding gradients that the products of $\mathbf{W}_{h2h}^\top$ factors in BPTT can
# produce ({doc}`section 2 <02_model>`). The sequences are drawn in a random order, a fresh
# permutation for every pass over the training set.
#
# At every validation point we compute the loss per token on two fixed subsets of
# sequences, one from the training set and one from the validation set, with the model in
# evaluation mode. Fixed subsets make the points of all runs comparable. `sequence_losses`
# gives the model back in the mode it found it in: a helper that silently switched a model
# to training mode would, for a model with dropout, change what the caller computes next.

# %% tags=["save"]
import math  # noqa: F811 (the lessons module needs its own imports)
import time

import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.dryrun import capped


def sequence_order(n_train: int, n_sequences: int, seed: int) -> torch.Tensor:
    """Indices of the training sequences to visit: a fresh permutation per pass."""
    generator = torch.Generator().manual_seed(seed)
    passes = math.ceil(n_sequences / n_train)
    return torch.cat([torch.randperm(n_train, generator=generator)
                      for _ in range(passes)])[:n_sequences]


@torch.no_grad()
def sequence_losses(model, sequences: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Each sequence's mean loss per predicted token: (N,), float64, on the CPU.

    All sequences have the same length, so the mean of these is the loss per token of
    them all. The model is evaluated in eval mode and given back in the mode it had."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(sequences), batch):
        x = sequences[start : start + batch].to(device)
        per_token = lm_loss(model(x)[0], x, reduction="none").view(len(x), -1)
        parts.append(per_token.double().mean(1).cpu())
    model.train(was_training)
    return torch.cat(parts)


# %% [markdown]
# One update is a forward pass, the loss, the backward pass, clipping and Adam's step. The
# loop counts sequences, evaluates at the requested points and times the updates alone.
# It also records the standard error of the difference between the two subsets' losses,
# so that a gap between training and validation loss can be read against its noise.
# (`capped` is `range` itself, except in a dry run (see the README), where it runs a few
# updates.)

# %% tags=["save"]
def update(model, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> None:
    """One training update on the batch x: forward, loss, backward, clipping, Adam."""
    loss = lm_loss(model(x)[0], x)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


def train(model, corpus, evals: dict, n_sequences: int, batch: int, points: list[int],
          lr: float, seed: int, desc: str = "training") -> dict:
    """Train on `n_sequences` (rounded up to whole batches); evaluate at `points`."""
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = math.ceil(n_sequences / batch)
    order = sequence_order(len(corpus.train_seqs), n_batches * batch, seed)
    history = {"seen": [], "train": [], "val": [], "gap_se": [], "seconds": []}

    def log_losses(seen: int, seconds: float) -> None:
        train_losses = sequence_losses(model, evals["train"])
        val_losses = sequence_losses(model, evals["val"])
        history["seen"].append(seen)
        history["train"].append(train_losses.mean().item())
        history["val"].append(val_losses.mean().item())
        # the standard error of validation minus training loss: two independent samples
        history["gap_se"].append(math.sqrt(train_losses.var() / len(train_losses)
                                           + val_losses.var() / len(val_losses)))
        history["seconds"].append(seconds)

    seen, seconds = 0, 0.0
    log_losses(seen, seconds)  # the untrained model: every curve starts at 0 sequences
    for b in tqdm(capped(range(n_batches)), desc=desc, leave=False):
        start = time.perf_counter()
        x = corpus.train_seqs[order[b * batch : (b + 1) * batch]].to(device)
        update(model, optimizer, x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start  # training only, evaluation excluded
        seen = (b + 1) * batch
        if seen in points:
            log_losses(seen, seconds)
    if history["seen"][-1] != seen:  # every curve ends at the last update
        log_losses(seen, seconds)
    history["passes"] = seen / len(corpus.train_seqs)
    return history


# %% [markdown]
# The bookkeeping, collapsed: `eval_subsets` draws the fixed subsets,
# `validation_points` the points at each tenth of a run, and `upto` (with `at_point`) cuts
# a shorter run out of a longer one's history.

# %% tags=["save", "hide-input"]
def eval_subsets(corpus, n: int, seed: int) -> dict:
    """Fixed random subsets of `n` training and `n` validation sequences, seeded."""
    generator = torch.Generator().manual_seed(seed + 1)
    train_index = torch.randperm(len(corpus.train_seqs), generator=generator)[:n]
    val_index = torch.randperm(len(corpus.val_seqs), generator=generator)[:n]
    return {"train_index": train_index, "train": corpus.train_seqs[train_index],
            "val": corpus.val_seqs[val_index]}


def validation_points(n_sequences: int, batch: int) -> list[int]:
    """Sequences seen at each tenth of the run, rounded up to whole batches."""
    n_batches = math.ceil(n_sequences / batch)
    return sorted({math.ceil(k * n_batches / 10) * batch for k in range(1, 11)})


def at_point(history: dict, seen: int) -> int:
    """The index of the last evaluation of `history` after at most `seen` sequences."""
    return max(i for i, s in enumerate(history["seen"]) if s <= seen)


def upto(history: dict, points: list[int]) -> dict:
    """A shorter run of the same setting: a longer run's history at 0 and `points`."""
    keep = [at_point(history, p) for p in [0, *points]]
    return {k: [history[k][i] for i in keep]
            for k in ("seen", "train", "val", "gap_se", "seconds")}


# %% [markdown]
# First, the check that `sequence_losses` leaves the mode alone, in both directions (the
# version this chapter started with always switched the model back to training mode, and
# would fail the first assert):

# %%
evals = eval_subsets(corpus, run.eval_sequences, run.seed)
probe_model = make_model(corpus.vocab_size, 16, 16, run.seed, run.device)
probe_model.eval()
sequence_losses(probe_model, evals["val"][:4])
assert not probe_model.training
probe_model.train()
sequence_losses(probe_model, evals["val"][:4])
assert probe_model.training

# %% [markdown]
# ## The base run and the number of sequences
#
# The base model (width and batch in {numref}`tab-rnn-scales`) trains once, for the largest
# number of sequences of the sweep, and is evaluated at every tenth of the run and at each
# of the sweep's counts. Drawing the order from a fixed seed, with a constant learning rate,
# means that every run sees the same sequences in the same order, so a run of $N$
# sequences is *exactly* the first $N$ sequences of the long one.

# %%
count_points = sorted({math.ceil(n / run.base_batch) * run.base_batch
                       for n in run.count_sweep})
base_points = sorted(set(validation_points(max(run.count_sweep), run.base_batch))
                     | set(count_points))
base_model = make_model(corpus.vocab_size, run.base_width, run.base_width, run.seed,
                        run.device)
base = train(base_model, corpus, evals, max(run.count_sweep), run.base_batch,
             base_points, run.lr, run.seed, desc="base run")

n_short = min(run.count_sweep)
short_points = [math.ceil(n_short / run.base_batch) * run.base_batch]
short = train(make_model(corpus.vocab_size, run.base_width, run.base_width, run.seed,
                         run.device),
              corpus, evals, n_short, run.base_batch, short_points, run.lr, run.seed,
              desc="separate short run")
prefix_gap = abs(short["val"][-1] - upto(base, short_points)["val"][-1])

# %% [markdown]
# How closely must the short run match? On a CPU the two runs do the same operations on
# the same data from the same start, so they must agree to the last bit. GPU kernels may
# add in a different order from run to run (atomic additions in the embedding's backward
# pass, for one), and training amplifies such rounding; there we ask only what reading the
# sweep off one run needs: a drift under a tenth of the smallest difference between the
# sweep's points.

# %%
counts = sorted(run.count_sweep)
at_count = {n: at_point(base, math.ceil(n / run.base_batch) * run.base_batch)
            for n in counts}
count_val = {n: base["val"][i] for n, i in at_count.items()}
smallest_step = min(abs(count_val[a] - count_val[b])
                    for a, b in zip(counts, counts[1:], strict=False))
tolerance = 0.0 if run.device.type == "cpu" else smallest_step / 10
assert prefix_gap <= tolerance, (prefix_gap, tolerance)

# %% tags=["hide-input"]
fig, (ax_curve, ax_count) = plots.figure(2, sharey=True)
ax_curve.plot(base["seen"], base["train"], "o-", ms=3, label="training subset")
ax_curve.plot(base["seen"], base["val"], "o-", ms=3, label="validation subset")
ax_count.plot(counts, [base["train"][at_count[n]] for n in counts], "o-", label="training")
ax_count.plot(counts, [count_val[n] for n in counts], "o-", label="validation")
ax_count.set_xscale("log")
ax_count.set_xticks(counts, [f"{n:,}" for n in counts], fontsize=8)
ax_count.minorticks_off()  # only the measured counts are labelled
for ax in (ax_curve, ax_count):
    ax.axhline(unigram_loss, color="gray", ls=":", label="unigram (validation)")
    ax.set_xlabel("sequences seen" + (" (log scale)" if ax is ax_count else ""))
    ax.legend(fontsize=8)
ax_curve.set_ylabel("loss per token (nats)")
plots.glue_figure("fig_base_run", fig)

per_doubling = [(count_val[a] - count_val[b]) / math.log2(b / a)
                for a, b in zip(counts, counts[1:], strict=False)]
assert all(g > 0 for g in per_doubling), per_doubling  # more data, lower loss, every step
end = len(base["seen"]) - 1
gap, gap_se = base["val"][end] - base["train"][end], base["gap_se"][end]
visited = torch.zeros(len(corpus.train_seqs), dtype=torch.bool)
visited[sequence_order(len(corpus.train_seqs), base["seen"][end], run.seed)] = True
for n in counts:
    results.record(f"seqs_{n}_val_loss", count_val[n], unit="nats/token",
                   description=f"validation loss after {n} sequences (eval subset)")
results.record("base_gap", gap, unit="nats/token",
               description="base run: validation minus training loss at the end")
for name, value in {"prefix_gap": prefix_gap, "n_short": short_points[0],
                    "n_lo": counts[0], "n_hi": counts[-1],
                    "seqs_lo_val": count_val[counts[0]], "seqs_hi_val": count_val[counts[-1]],
                    "count_passes": base["passes"], "base_seconds": base["seconds"][-1],
                    "gain_first": per_doubling[0], "gain_last": per_doubling[-1],
                    "base_gap_se": gap_se,
                    "visited_share": visited[evals["train_index"]].double().mean().item(),
                    "eval_sequences": run.eval_sequences}.items():
    glue(name, value, display=False)

# %% [markdown]
# ```{glue:figure} fig_base_run
# ---
# name: fig-rnn-base-run
# alt: >-
#   Left, training and validation loss of the base run against sequences seen, falling
#   from about ln V past the unigram line; right, the losses at the four counts of the
#   sweep on a log axis.
# ---
# The base run. Left: the loss per token on the fixed training and validation subsets,
# against sequences seen; both start near $\ln V$, fall to the unigram line (dotted) and
# then below it. Right: the same losses at the sweep's four counts, on a log axis.
# ```
#
# The separately trained run of {glue:text}`n_short:,` sequences and the long run after as
# many sequences differ by {glue:text}`prefix_gap:.1e` in validation loss, so reading the
# sweep off one run changes nothing. {numref}`fig-rnn-base-run` shows the run: the
# validation loss (on {glue:text}`eval_sequences` fixed sequences) falls from
# {glue:text}`seqs_lo_val:.3f` after {glue:text}`n_lo:,` sequences to
# {glue:text}`seqs_hi_val:.3f` after {glue:text}`n_hi:,`
# ({glue:text}`count_passes:.1f` passes over the training data, in
# {glue:text}`base_seconds:.0f` s of training). Every doubling of the data lowers it, by
# {glue:text}`gain_first:.2f` nats per doubling between the first two counts and
# {glue:text}`gain_last:.2f` between the last two.
#
# At the end the validation loss exceeds the training loss by
# {glue:text}`base_gap:.2f` nats, with a standard error of {glue:text}`base_gap_se:.3f`
# (the two subsets are finite samples). Whether that gap means memorization depends on
# whether the model had trained on the sequences that measure the training loss: it had
# trained on {glue:text}`visited_share:.0%` of them. A gap of many standard errors on
# sequences the model has seen is the beginning of learning the particular training
# stories rather than stories in general; on sequences it has not seen, it would only
# measure how the two subsets differ. Over many more passes the same sequences keep coming
# back and the validation loss would eventually stop falling; the full TinyStories, with no
# repeats, avoids that.
#
# ## What this section showed
#
# Training by sequences seen, with a seeded order and a constant learning rate, makes every
# shorter run a prefix of a longer one: one run answers the question of how much data
# helps, and a separate short run confirms it to the last bit on a CPU. Each doubling of
# the data lowered the validation loss. The evaluation helper gives the model back in the
# mode it found it in.
#
# ## Exercises
#
# 1. **ReLU.** Train the base model with `activation="relu"` (pass it to
#    `RNNLanguageModel`). Does it train faster or slower, and does it need the gradient
#    clipping more? Count how often `clip_grad_norm_` actually scales the gradient (it
#    returns the norm before clipping).
#
#    :::{dropdown} Hint
#    With ReLU, $\phi' \in \{0, 1\}$ does not shrink the backward signal, so a
#    $\mathbf{W}_{h2h}$ with a norm above one can make the gradients explode over a
#    sequence; with tanh, saturated units damp it.
#    :::
#
# 2. **A learning-rate schedule.** With a schedule that decays the learning rate over the
#    run, is a run of $N$ sequences still the prefix of a longer run?
#
#    :::{dropdown} Answer
#    No: the schedule depends on the run's length, so the first $N$ updates of a long run
#    use larger learning rates than a short run's. Each count of the sweep would need its
#    own run.
#    :::
