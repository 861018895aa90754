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
# # What the batch size changes
#
# The source (001, problem 3.2) trains the network of {doc}`the previous section
# <02_training>` with batch sizes $B \in \{1, 5, 50, 500, 5000\}$ and asks three questions:
# does a smaller batch train faster, does a larger batch generalize better, and does a
# larger batch need fewer updates? (The part of our copy of the source that states the set
# is garbled; these are the five sizes from 1 to 5,000 that its questions and its magnitude
# check use.) This section runs the five trainings and answers each question with the
# run's numbers.

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
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.mlps import MLP, fashion_split, mlp_like, train

run = profiles.setup(
    profile,
    seed=3,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (the source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    hidden=(32, 256, 256),  # hidden units of the NumPy MLP
    max_epochs=(2, 150, 300),  # cap on epochs per training run (early stopping ends most)
    patience=(1, 5, 10),  # epochs without a better validation accuracy before stopping
)
_ = threadpool_limits(limits=1)  # one thread, as in the rest of the chapter
fm = fashion_split(run.n_train, run.n_val, run.n_test, seed=run.seed)
init_state = MLP(784, run.hidden, 10, np.random.default_rng(run.seed)).state()
run

# %% [markdown]
# Every run starts from the same initial weights, uses $\eta = 0.01$ and the loop `train`
# of the previous section, with early stopping; "converged" means the best validation
# epoch. A cap on the number of epochs (in the settings above) keeps the study to a few
# minutes; the table marks a run that the cap stopped while it was still improving. The
# table also gives the training accuracy of each early-stopped model, which tells apart a
# model that has not fitted its training set from one that fits it but generalizes worse.

# %%
LR = 0.01
BATCH_SIZES = (1, 5, 50, 500, 5000)
study = {B: train(mlp_like(init_state, np.float32), fm, B, LR, run.max_epochs,
                  run.patience, seed=run.seed)
         for B in BATCH_SIZES}

# %% tags=["hide-input"]
rows = ["| batch size | epochs to best | updates to best | stopped at epoch "
        "| train acc. (%) | val. acc. (%) | test acc. (%) |", "|---" * 7 + "|"]
timing = ["| batch size | ms per update | s per epoch | s to best epoch |", "|---" * 4 + "|"]
per_update_ms = {}  # milliseconds per SGD update, over all epochs run
for B, r in study.items():
    cap = " (cap)" if r["hit_cap"] else ""
    rows.append(f"| {B} | {r['best_epoch']}{cap} | {r['updates']:,} | {r['epochs_run']} | "
                f"{100 * r['train_acc']:.1f} | {100 * r['val_acc']:.1f} | "
                f"{100 * r['test_acc']:.1f} |")
    n_updates = r["epochs_run"] * math.ceil(run.n_train / B)
    per_update_ms[B] = 1e3 * r["seconds_total"] / n_updates
    timing.append(f"| {B} | {per_update_ms[B]:.2f} | "
                  f"{r['seconds_total'] / r['epochs_run']:.2f} | {r['seconds_to_best']:.1f} |")
    results.record(f"batch{B}_test_acc", 100 * r["test_acc"], unit="%")
    results.record(f"batch{B}_updates", r["updates"], description="updates to best val epoch")
    results.record(f"batch{B}_epochs", r["best_epoch"],
                   description="epochs to best val epoch")
    results.record(f"batch{B}_seconds", r["seconds_to_best"], unit="s")
results.record("batch5000_train_acc", 100 * study[5000]["train_acc"], unit="%",
               description="training accuracy of the early-stopped B = 5000 model")
display(Markdown("\n".join(rows)))
display(Markdown("Time spent in updates (one thread):\n\n" + "\n".join(timing)))

fig, axes = plots.figure(ncols=2, nrows=2, height=6.0)
bs = np.array(BATCH_SIZES)
for B in BATCH_SIZES:
    log = study[B]["log"]
    axes[0, 0].plot(np.arange(1, len(log["val_acc"]) + 1), 100 * np.array(log["val_acc"]),
                    label=f"B = {B}")
axes[0, 0].set(xlabel="epoch", ylabel="validation accuracy (%)", xscale="log")
axes[0, 0].legend(fontsize=7)
axes[0, 1].loglog(bs, [study[B]["updates"] for B in bs], marker="o", label="updates")
axes[0, 1].loglog(bs, [study[B]["best_epoch"] for B in bs], marker="s", label="epochs")
axes[0, 1].set(xlabel="batch size B", ylabel="count to best val. epoch")
axes[0, 1].legend(fontsize=8)
axes[1, 0].loglog(bs, [study[B]["seconds_to_best"] for B in bs], marker="o",
                  label="to best epoch")
axes[1, 0].loglog(bs, [study[B]["seconds_total"] / study[B]["epochs_run"] for B in bs],
                  marker="s", label="per epoch")
axes[1, 0].set(xlabel="batch size B", ylabel="training time (s)")
axes[1, 0].legend(fontsize=8)
axes[1, 1].semilogx(bs, [100 * study[B]["test_acc"] for B in bs], marker="o")
axes[1, 1].set(xlabel="batch size B", ylabel="test accuracy (%)")
plots.glue_figure("fig_batch_sizes", fig)

# %% [markdown]
# ```{glue:figure} fig_batch_sizes
# ---
# name: fig-mlp-batch-sizes
# alt: >-
#   Four panels: validation accuracy per epoch for the five batch sizes; updates and epochs
#   to the best epoch against the batch size; training time to the best epoch and per
#   epoch against the batch size; test accuracy against the batch size.
# ---
# The five runs. Top left: validation accuracy per epoch (log scale), each run until it
# stopped. Top right: updates and epochs to the best validation epoch. Bottom left: time
# spent in updates, to the best epoch and per epoch. Bottom right: test accuracy of the
# early-stopped model. Look at the opposite slopes of updates and epochs, and at the
# U shape of the time.
# ```
#
# **(i) Does a smaller batch guarantee faster training?** No. The second table gives the
# time spent in updates: $B = 1$ needed {glue:text}`batch1_updates:,` updates to its best
# epoch and by far the longest time, $B = 50$ needed {glue:text}`batch50_updates:,` and a
# small fraction of that time. An update on fifty images costs at most a few times an update
# on one (the check below asks for less than ten times as much), for fifty times the
# arithmetic: for small batches the time goes into calling NumPy, moving the weights
# through the cache and launching small matrix products, not into the arithmetic, which a
# matrix product on 50 rows does far faster than 50 products on one row. An epoch at
# $B = 1$ is therefore much slower (bottom left of {numref}`fig-mlp-batch-sizes`,
# squares) even though each of its steps is cheap. At the other end, an epoch at
# $B = 5000$ is fast, but it holds only two updates, and the time to the best epoch climbs
# again.

# %%
# (i) the claims above, as checks on this run
assert per_update_ms[50] < 10 * per_update_ms[1]  # 50 times the arithmetic, not time
epoch_seconds = {B: r["seconds_total"] / r["epochs_run"] for B, r in study.items()}
assert epoch_seconds[1] > epoch_seconds[50]  # an epoch at B = 1 is slower
if run.profile != "smoke":
    # B = 1 is not faster
    assert study[1]["seconds_to_best"] > study[50]["seconds_to_best"]

# %% [markdown]
# **(ii) Does a larger batch give a higher test accuracy?** No, the opposite here. The two
# smallest batches give the best test accuracies, {glue:text}`batch1_test_acc:.1f`% for
# $B = 1$ and {glue:text}`batch5_test_acc:.1f`% for $B = 5$, and from there the accuracy
# falls at every step: {glue:text}`batch50_test_acc:.1f`% ($B = 50$),
# {glue:text}`batch500_test_acc:.1f`% ($B = 500$) and {glue:text}`batch5000_test_acc:.1f`%
# ($B = 5000$). Which of $B = 1$ and $B = 5$ comes first is not a stable reading: a test
# accuracy near 86% measured on 10,000 images has a standard error of
# {glue:text}`test_acc_se:.2f` points, the two differ by {glue:text}`batch_1_5_gap:.1f`, and
# these two runs, with their hundred thousand and more float32 updates, end at different
# models on processors that round their small matrix products differently. The later steps
# are larger, the last ones by several points. But the large batches are not a fair test of
# generalization. At a fixed learning rate a large batch takes few steps per epoch, and
# early stopping ends its run far from a good
# solution: the early-stopped $B = 5000$ model has a *training* accuracy of
# {glue:text}`batch5000_train_acc:.1f`%, below the validation accuracy of every batch of
# 500 or fewer. It has not fitted its training set, so its test accuracy says little about
# how well large batches generalize once they are trained to the end. Whether small
# batches generalize better even then is a separate question, and a contested one. A
# popular hypothesis is that the noise of their gradient estimates, the term
# $\operatorname{tr}\Sigma/B$ of {doc}`section 1's formula <01_numpy_mlp>`, keeps SGD out of
# sharp minima of the training loss, and that flat minima generalize better; it is
# debated, and this run, with its fixed $\eta$ and its early stopping, cannot test it.

# %%
# (ii) the test accuracy falls with the batch size; B = 5000 has not fitted its data
test_acc = [study[B]["test_acc"] for B in BATCH_SIZES]
train_5000, val_500 = study[5000]["train_acc"], study[500]["val_acc"]
if run.profile != "smoke":
    # B = 1 and 5 agree within 1.5 points, three standard errors of the difference
    # of two test accuracies (0.5 points); below both of them, a fall at every step
    assert abs(test_acc[0] - test_acc[1]) < 0.015, test_acc
    assert min(test_acc[:2]) > test_acc[2] > test_acc[3] > test_acc[4], test_acc
    assert train_5000 < min(study[B]["val_acc"] for B in BATCH_SIZES[:-1])

# %% tags=["hide-input"]
p = study[1]["test_acc"]
glue("test_acc_se", 100 * math.sqrt(p * (1 - p) / run.n_test), display=False)
glue("batch_1_5_gap", 100 * abs(test_acc[0] - test_acc[1]), display=False)

# %% [markdown]
# **(iii) Does a larger batch need fewer updates to converge?** In the count, yes: the best
# epoch came after {glue:text}`batch1_updates:,`, {glue:text}`batch5_updates:,`,
# {glue:text}`batch50_updates:,`, {glue:text}`batch500_updates:,` and
# {glue:text}`batch5000_updates:,` updates for $B = 1, 5, 50, 500, 5000$. A larger batch
# averages more examples, so its gradient has less variance and each step is more
# reliable. But the count flatters the large batches, which "converge" to worse models: the
# patience rule stops a run that still improves, but too slowly to beat its best within
# {glue:text}`patience` epochs, which is what happened at $B = 500$ and $B = 5000$ (their
# curves in {numref}`fig-mlp-batch-sizes` are still rising). A fairer count is the number of
# updates to reach a *given* accuracy. We take {glue:text}`reach_acc:.1f`%, the best
# validation accuracy of the weakest run, so that every run reaches it; the validation
# accuracy measured every tenth of an epoch makes each count exact to a tenth of an epoch
# ({glue:text}`batch1_probe_updates:,` updates at $B = 1$). The five runs needed
# {glue:text}`batch1_updates_to_reach:,`, {glue:text}`batch5_updates_to_reach:,`,
# {glue:text}`batch50_updates_to_reach:,`, {glue:text}`batch500_updates_to_reach:,` and
# {glue:text}`batch5000_updates_to_reach:,` updates. The returns diminish: from $B = 1$
# to $B = 50$ the batch grows 50-fold and the count falls
# {glue:text}`reach_ratio_1_50:.0f`-fold, while from $B = 50$ to $B = 5000$, a hundred
# times the batch, it stays within a factor of 1.5. The variance term falls like $1/B$
# only until it is small next to $\|g\|^2$; beyond that a larger batch buys little per
# step, and at a fixed $\eta$ each step moves the weights about as far whatever $B$.
# Counted in *epochs*, passes over the data, the cost of convergence grows with $B$:
# {glue:text}`batch1_epochs` for $B = 1$, {glue:text}`batch50_epochs` for $B = 50$,
# {glue:text}`batch500_epochs` for $B = 500$ and {glue:text}`batch5000_epochs` for
# $B = 5000$. To turn the cleaner gradients of large batches into fewer updates, the
# learning rate has to grow with $B$ (exercise 1).

# %%
# (iii) updates to a common accuracy, from the accuracies of every tenth of an epoch
reach_acc = min(study[B]["val_acc"] for B in BATCH_SIZES)
updates_to_reach = {}
for B in BATCH_SIZES:
    fine = study[B]["fine"]  # (updates, validation accuracy), every tenth of an epoch
    updates_to_reach[B] = next((u for u, acc in zip(fine["updates"], fine["val_acc"],
                                                    strict=True) if acc >= reach_acc),
                               math.nan)  # nan: never reached (in a dry run only)
updates = [study[B]["updates"] for B in BATCH_SIZES]
assert study[1]["updates"] > study[50]["updates"]  # noisy single-image steps need more
if run.profile != "smoke":
    assert updates == sorted(updates, reverse=True)  # fewer updates as B grows
    # the patience rule, not the cap, stopped the two largest
    assert not study[500]["hit_cap"] and not study[5000]["hit_cap"]
    # to a given accuracy: fewer updates from B = 1 to 5 to 50 ...
    assert updates_to_reach[1] > updates_to_reach[5] > updates_to_reach[50]
    # ... while from B = 50 to 5000 the count stays within a factor of 1.5 (a plateau)
    plateau = [updates_to_reach[B] for B in (50, 500, 5000)]
    assert max(plateau) < 1.5 * min(plateau), plateau
    epochs_run = [study[B]["best_epoch"] for B in (1, 50, 500, 5000)]
    assert epochs_run == sorted(epochs_run)  # more epochs as B grows

# %% tags=["hide-input"]
for B in BATCH_SIZES:
    glue(f"batch{B}_updates_to_reach", updates_to_reach[B], display=False)
glue("reach_acc", 100 * reach_acc, display=False)
glue("batch1_probe_updates", study[1]["probe_every"], display=False)
glue("reach_ratio_1_50", updates_to_reach[1] / updates_to_reach[50], display=False)
glue("patience", run.patience, display=False)

# %% [markdown]
# ## What this section showed
#
# The batch size trades the number of updates against the cost of each. Small batches pay
# a fixed cost per update that dwarfs their arithmetic, so $B = 1$ is the slowest in wall
# time although each of its updates is cheap; large batches take cleaner steps, but at a
# fixed learning rate each step moves the weights no further, so the count of updates falls
# ever more slowly with $B$ while the count of epochs grows. At a fixed $\eta$ with early
# stopping, the test accuracy fell with every increase of the batch, $B = 1$ first; the
# largest batches stopped before they had fitted their training set, which is a statement
# about this training budget, not a verdict on how large batches generalize.
#
# ## Exercises
#
# 1. **Learning rate and batch size.** Scale the learning rate with the batch size,
#    $\eta = 0.01 \cdot B/5$, for $B \in \{50, 500\}$. Which of the three answers change?
#    Where does the linear scaling rule break down?
#
#    :::{dropdown} Hint
#    With $\eta \propto B$ an epoch moves the weights about as far at every batch size, so
#    the epochs to converge stop growing and the updates fall like $1/B$. The rule holds
#    while the gradient noise dominates ($B$ small next to the ratio
#    $\operatorname{tr}\Sigma / \|g\|^2$); beyond that, or once $\eta$ exceeds the stable
#    step of the loss's curvature, training slows down or diverges.
#    :::
#
# 2. **Fixed epochs.** Train every batch size for the same 20 epochs, without early
#    stopping. Which answers of this section change, and why is this a worse experiment
#    for question (ii)?
#
#    :::{dropdown} Answer
#    The large batches then take even fewer updates (at $B = 5000$, 40 in all) and fit
#    their data even less, while $B = 1$ may start to overfit: the comparison of test
#    accuracies mixes underfitting at one end with overfitting at the other, and says even
#    less about how well each batch size generalizes once trained to convergence.
#    :::
