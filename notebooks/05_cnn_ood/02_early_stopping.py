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
# # The data and early stopping
#
# This section sets up what the rest of the chapter trains on: Fashion-MNIST with the split
# of USC CSCI ML, homework 3, problem 3 (cited as *001*), the source's two-layer perceptron
# in PyTorch, and a training loop. Then it looks at early stopping from the outside
# (001 3.3): it trains for 30 epochs without stopping, records the training, validation
# and test accuracy after every epoch, and replays the stopping rule on the validation
# curve for several patiences.

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
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.glue import glue

run = profiles.setup(
    profile,
    seed=5,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    es_epochs=(2, 30, 30),  # epochs of the early-stopping study (the source: 30)
)
device = run.device
run

# %% [markdown]
# ## The data: Fashion-MNIST with the source's split
#
# As in {doc}`Chapter 3 <../../chapters/03_mlps>`, the source (001, 3) trains on 10,000
# images, validates on 2,000 and tests on 10,000. We draw the training and validation
# images from the official training set with the *same seeded permutation as Chapter 3*,
# so both chapters train on the same images, and take the test images from the official
# test set. Pixels are scaled to $[0, 1]$; the images keep their $1\times28\times28$
# shape, and the MLP flattens them itself.

# %% tags=["save"]
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers import data

SPLIT_SEED = 3  # Chapter 3's seed: the same 10,000 training and 2,000 validation images


def fashion_split(n_train: int, n_val: int, n_test: int, device) -> dict:
    """{'train', 'val', 'test'}: (float32 images (N, 1, 28, 28) in [0, 1], labels)."""
    train, test = data.load_fashion_mnist("train"), data.load_fashion_mnist("test")
    split = np.random.default_rng(SPLIT_SEED).permutation(len(train.labels))
    train_idx, val_idx = split[:n_train], split[n_train: n_train + n_val]

    def as_tensors(images, labels):
        x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
        return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)

    return {
        "train": as_tensors(train.images[train_idx], train.labels[train_idx]),
        "val": as_tensors(train.images[val_idx], train.labels[val_idx]),
        "test": as_tensors(test.images[:n_test], test.labels[:n_test]),
    }


# %%
if device.type == "cpu":
    torch.set_num_threads(1)  # batches of 5 images: one thread is faster (see below)
fm = fashion_split(run.n_train, run.n_val, run.n_test, device)
{name: tuple(x.shape) for name, (x, _) in fm.items()}

# %% [markdown]
# ## The model and the training loop
#
# Chapter 3 wrote the two-layer perceptron in NumPy and checked its gradients. Here we use
# PyTorch for every model: the source's MLP, $784 \to 128 \to 10$ with a ReLU (001 3.5
# fixes the width at 128), trained by SGD with learning rate $\eta = 0.01$ on mini-batches
# of $B = 5$ images, Chapter 3's setting. `accuracy` evaluates in chunks, so that a whole
# test set never has to pass at once.

# %% tags=["save"]
class MLP(nn.Module):
    """The source's two-layer perceptron: flatten, 784 -> 128, ReLU, 128 -> 10."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 10))

    def forward(self, x):
        return self.net(x)


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, chunk: int = 1_000) -> torch.Tensor:
    """The model's logits for the images x, in evaluation mode, computed in chunks."""
    model.eval()
    return torch.cat([model(x[i: i + chunk]) for i in range(0, len(x), chunk)])


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model, x).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions."""
    return (predictions(model, x) == y).double().mean().item()


# %% [markdown]
# One epoch is a pass over the training set in a fresh random order. At $B = 5$ an epoch
# of 10,000 images is 2,000 updates, and reading the loss of each one back into Python
# (`loss.item()`) would make a GPU wait for every step to finish before queuing the next.
# The loop therefore adds the losses up on the device and reads the sum once, at the end
# of the epoch. `augment`, a transform of each mini-batch, is used in
# {doc}`section 4 <04_three_models>`. `capped` returns its argument itself, except in a dry
# run (see the README), where it runs a few updates.

# %% tags=["save"]
from helpers.dryrun import capped


def train_epoch(model, opt, x, y, batch_size: int, gen: torch.Generator,
                augment=None) -> float:
    """One pass over (x, y) in a random order; returns the mean mini-batch loss."""
    model.train()
    order = torch.randperm(len(y), generator=gen).to(x.device)
    total = torch.zeros((), device=x.device)  # summed on the device: no sync per step
    for start in capped(range(0, len(y), batch_size)):
        rows = order[start: start + batch_size]
        xb = x[rows] if augment is None else augment(x[rows], gen)
        loss = F.cross_entropy(model(xb), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.detach() * len(rows)
    return total.item() / len(y)  # the one read of the epoch


# %% [markdown]
# ```{note}
# **One thread on a CPU.** On a CPU this chapter runs PyTorch on one thread. The MLP's
# mini-batches of five images are far too small to split between threads, and on a
# machine whose cores are busy with other work, threads that wait for each other at every
# operation made training many times slower in our trials, not faster.
# ```
#
# ## Early stopping, seen from the outside (001 3.3)
#
# Chapter 3 trained with early stopping: keep the parameters of the epoch with the best
# validation accuracy and stop after $p$ epochs (the *patience*) without a new best. To see
# what that rule does, the source trains for 30 epochs *without* stopping and records the
# training, validation and test accuracy after every epoch. From the validation curve alone
# we can then replay the rule for any patience: it stops at the first epoch $t$ with
# $t - t_{\text{best}}(t) = p$, where $t_{\text{best}}(t)$ is the best validation epoch up
# to $t$, and returns the model of $t_{\text{best}}(t)$.

# %%
def early_stop(val_acc: list[float], patience: int) -> tuple[int, int]:
    """Replay early stopping on a validation curve: (stopping epoch, returned epoch)."""
    best, best_epoch = -1.0, 0
    for epoch, acc in enumerate(val_acc, 1):
        if acc > best:
            best, best_epoch = acc, epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(val_acc), best_epoch


# demonstrations of the rule on hand-made curves
assert early_stop([0.5, 0.6, 0.55, 0.58, 0.7], 2) == (4, 2)  # 2 epochs without a best
assert early_stop([0.5, 0.6, 0.55, 0.58, 0.7], 3) == (5, 5)  # never triggered
assert early_stop([0.5, 0.5, 0.5], 1) == (2, 1)  # a tie is not an improvement

# %%
torch.manual_seed(run.seed)
es_model = MLP().to(device)
es_opt = torch.optim.SGD(es_model.parameters(), lr=0.01)
es_gen = torch.Generator().manual_seed(run.seed)
es_log = {"loss": [], "train": [], "val": [], "test": []}
for _ in capped(range(run.es_epochs)):
    es_log["loss"].append(train_epoch(es_model, es_opt, *fm["train"], 5, es_gen))
    for part in ("train", "val", "test"):
        es_log[part].append(100 * accuracy(es_model, *fm[part]))

PATIENCES = (1, 2, 3, 5, 10)
stops = {p: early_stop(es_log["val"], p) for p in PATIENCES}
MAIN_PATIENCE = 5  # Chapter 3's patience
stop_epoch, best_epoch = stops[MAIN_PATIENCE]
final_gap = es_log["train"][-1] - es_log["test"][-1]
val_drops = int(np.sum(np.diff(es_log["val"]) < 0))
if run.profile != "smoke":  # 2 epochs are too few to show any of this
    assert stops[1][0] < stops[MAIN_PATIENCE][0]  # patience 1 stops earlier
    assert es_log["train"][-1] > es_log["train"][4]  # training accuracy keeps rising
    assert final_gap > 2  # and ends above the test accuracy (by more than its noise)
    assert val_drops >= 3  # the validation curve is not monotone: it fluctuates

# %% tags=["hide-input"]
es_epochs = np.arange(1, len(es_log["val"]) + 1)
fig, ax = plots.figure(width=6.5, height=3.8)
for part, marker, label in (("train", "o", "training"), ("val", "s", "validation"),
                            ("test", "^", "test")):
    ax.plot(es_epochs, es_log[part], marker=marker, ms=3, label=label)
ax.plot(best_epoch, es_log["val"][best_epoch - 1], "k*", ms=14,
        label=f"returned by early stopping (p = {MAIN_PATIENCE})")
ax.axvline(stop_epoch, color="grey", ls="--", label=f"where p = {MAIN_PATIENCE} stops")
ax.set(xlabel="epoch", ylabel="accuracy (%)")
ax.legend(fontsize=8)
plots.glue_figure("fig_es_curves", fig)

results.record("es_train_acc_final", es_log["train"][-1], unit="%")
results.record("es_val_acc_final", es_log["val"][-1], unit="%")
results.record("es_test_acc_final", es_log["test"][-1], unit="%")
results.record("es_train_test_gap_final", final_gap, unit="points")
results.record("es_stop_epoch", stop_epoch,
               description=f"where patience {MAIN_PATIENCE} stops")
results.record("es_best_epoch", best_epoch,
               description="the epoch early stopping returns")
results.record("es_test_at_best", es_log["test"][best_epoch - 1], unit="%")
results.record("es_p1_stop_epoch", stops[1][0])
results.record("es_p1_test", es_log["test"][stops[1][1] - 1], unit="%")
results.record("es_best_test_any_epoch", max(es_log["test"]), unit="%")
glue("es_main_patience", MAIN_PATIENCE, display=False)
glue("es_n_epochs", run.es_epochs, display=False)
glue("es_val_drops", val_drops, display=False)
display(Markdown(
    "| patience $p$ | stops at epoch | returns epoch | its validation acc. (%) | "
    "its test acc. (%) |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {p} | {s} | {b} | {es_log['val'][b - 1]:.2f} | "
        f"{es_log['test'][b - 1]:.2f} |"
        for p, (s, b) in stops.items())))

# %% [markdown]
# ```{glue:figure} fig_es_curves
# ---
# name: fig-cnn-es-curves
# alt: >-
#   Training, validation and test accuracy of the MLP after each of 30 epochs; the
#   training curve keeps rising while the other two level off near 85 percent.
# ---
# The MLP ($B = 5$, $\eta = 0.01$) trained without early stopping. Look at the gap that
# opens between the training curve and the other two, and at where the rule with patience
# 5 stops (dashed) and which epoch it returns (star).
# ```
#
# In {numref}`fig-cnn-es-curves` the training accuracy climbs to
# {glue:text}`es_train_acc_final:.1f`% after {glue:text}`es_n_epochs` epochs; the
# validation and test accuracies rise quickly during the first few epochs and then creep up
# slowly, with setbacks along the way (the validation accuracy fell from one epoch to the
# next {glue:text}`es_val_drops` times), ending at {glue:text}`es_val_acc_final:.1f`% and
# {glue:text}`es_test_acc_final:.1f`%, a gap of
# {glue:text}`es_train_test_gap_final:.1f` points to the training accuracy. After the
# early-stopping point the network keeps fitting its 10,000 training images and learns
# little that carries over to new ones (001 3.3(ii)).
#
# With patience {glue:text}`es_main_patience` the rule stops at epoch
# {glue:text}`es_stop_epoch` and returns the model of epoch {glue:text}`es_best_epoch`,
# whose test accuracy is {glue:text}`es_test_at_best:.2f`%; the best test accuracy of any
# epoch was {glue:text}`es_best_test_any_epoch:.2f`%, which no rule could pick without
# looking at the test set. A too-small patience (001 3.3(iii)) mistakes the noise of the
# validation curve for the end of learning: with $p = 1$ the first epoch whose validation
# accuracy does not beat the previous best ends training, here at epoch
# {glue:text}`es_p1_stop_epoch`, and the model it returns has a test accuracy of
# {glue:text}`es_p1_test:.2f`%. The table shows the trade-off: a larger patience costs
# more epochs and protects against stopping on a fluctuation, and as long as the
# validation curve still creeps up, it returns a later and better model.
#
# How much a validation gain means has a scale too: with 2,000 validation images one image
# is 0.05 points, and an accuracy near 85% measured on them is within about
# $\sqrt{0.85 \cdot 0.15 / 2000} \approx 0.8$ points (one standard error) of the accuracy
# on all images of that kind. Most epoch-to-epoch gains after the first few epochs are
# smaller, so picking the best of many epochs by validation accuracy partly picks a lucky
# sample.
#
# ## What this section showed
#
# On the source's split, the MLP's training accuracy keeps rising long after the
# validation and test accuracies have levelled off; early stopping returns the best
# validation epoch, and a patience of one stops on the first fluctuation of a noisy
# validation curve. The standard error of an accuracy measured on 2,000 images, about 0.8
# points, is the scale against which any gain on the validation set should be read.
#
# ## Exercises
#
# 1. **Patience and cost.** From the table, how many epochs does each patience train, and
#    how much test accuracy does each extra epoch buy?
#
#    :::{dropdown} Hint
#    The cost of patience $p$ is its stopping epoch; its benefit is the test accuracy of
#    the epoch it returns. Past a patience of about 5 the returned epoch barely moves
#    while the cost keeps growing.
#    :::
#
# 2. **A noisier validation set.** Replay the rule on a validation set of 200 images
#    instead of 2,000. What happens to the standard error, and to the epoch that patience
#    1 stops at?
#
#    :::{dropdown} Answer
#    The standard error grows by $\sqrt{10}$, to about 2.5 points: larger than most
#    epoch-to-epoch gains, so small patiences stop even earlier and the epoch returned is
#    more a matter of luck.
#    :::
#
# 3. **Stopping on the loss.** Replace the validation accuracy by the validation
#    cross-entropy (lower is better) in `early_stop`. Does it stop earlier or later?
#
#    :::{dropdown} Hint
#    The validation loss often starts to rise while the accuracy still creeps up: a
#    confident mistake costs much loss and only one image of accuracy.
#    :::
