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
# # Training with mini-batch SGD and early stopping
#
# The network of {doc}`the previous section <01_numpy_mlp>` has correct gradients; now it
# learns. This section trains it on the Fashion-MNIST split of 001 (problem 3.1) with
# mini-batch SGD, stops early on a validation set, and then checks the whole training loop
# against the same network written in PyTorch, fed the same mini-batches: the two must end
# at the same weights, and we compare their speed.

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
import time

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from threadpoolctl import threadpool_limits
from torch import nn

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.mlps import MLP, fashion_split, mlp_like
from helpers.timing import measure

run = profiles.setup(
    profile,
    seed=3,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (the source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    hidden=(32, 256, 256),  # hidden units of the NumPy MLP
    max_epochs=(2, 150, 300),  # cap on epochs per training run (early stopping ends it)
    patience=(1, 5, 10),  # epochs without a better validation accuracy before stopping
    twin_epochs=(1, 5, 10),  # epochs of the NumPy vs PyTorch comparison
    repeat=(1, 3, 5),  # timed runs per implementation (median reported)
)
torch.set_num_threads(1)  # one thread for NumPy and PyTorch alike (see the text)
_ = threadpool_limits(limits=1)
fm = fashion_split(run.n_train, run.n_val, run.n_test, seed=run.seed)
init_state = MLP(784, run.hidden, 10, np.random.default_rng(run.seed)).state()
run

# %% [markdown]
# The split and the initial weights are those of the previous section (the same seed).
#
# ## The training loop
#
# One *epoch* is one pass over the training set in a random order, cut into batches of $B$
# images (the last batch may be shorter). After each epoch we measure the accuracy on the
# validation set. *Early stopping with patience $p$* keeps the parameters of the epoch with
# the best validation accuracy so far and stops when $p$ epochs in a row have not beaten
# it; the model returned is the best one, and only then do we look at the test set, once.
# The clock measures the updates only, not the evaluations, so that batch sizes are
# compared on the cost of learning. For {doc}`the next section <03_batch_size>` the loop
# also measures the validation accuracy every tenth of an epoch, outside the clock.
# (`capped` returns the loop's range itself, except in a dry run of the full scale, see
# the README, where it runs a few updates.)

# %% tags=["save"]
from helpers.dryrun import capped


def sgd_epoch(model: MLP, X, y, batch_size: int, lr: float, rng,
              after_update=None) -> float:
    """One pass over (X, y) in a random order; returns the mean mini-batch loss.

    Calls `after_update()`, if given, after every update."""
    order = rng.permutation(len(y))
    losses = []
    for start in capped(range(0, len(y), batch_size)):
        rows = order[start : start + batch_size]
        losses.append(model.loss(X[rows], y[rows]))
        model.backward()
        model.sgd_step(lr)
        if after_update is not None:
            after_update()
    return float(np.mean(losses))


def train(model: MLP, fm: dict, batch_size: int, lr: float, max_epochs: int,
          patience: int, seed: int) -> dict:
    """SGD, early stopping on validation accuracy; leaves the best model in `model`."""
    rng = np.random.default_rng(seed)
    (X, y), (X_val, y_val) = fm["train"], fm["val"]
    log = {"loss": [], "train_acc": [], "val_acc": [], "seconds": []}
    # The validation accuracy every tenth of an epoch too (outside the clock).
    fine = {"updates": [], "val_acc": []}
    probe_every, done, probe_seconds = max(1, len(y) // 10 // batch_size), 0, 0.0

    def probe():
        nonlocal done, probe_seconds
        done += 1
        if done % probe_every == 0:
            tick = time.perf_counter()
            fine["updates"].append(done)
            fine["val_acc"].append(model.accuracy(X_val, y_val))
            probe_seconds += time.perf_counter() - tick

    best_acc, best_epoch, best_state, clock = -1.0, 0, model.state(), 0.0
    for epoch in capped(range(1, max_epochs + 1), may_stop_early=True):
        start, probed_before = time.perf_counter(), probe_seconds
        log["loss"].append(sgd_epoch(model, X, y, batch_size, lr, rng, probe))
        clock += time.perf_counter() - start - (probe_seconds - probed_before)
        log["seconds"].append(clock)
        log["train_acc"].append(model.accuracy(X, y))
        log["val_acc"].append(model.accuracy(X_val, y_val))
        if log["val_acc"][-1] > best_acc:
            best_acc, best_epoch, best_state = log["val_acc"][-1], epoch, model.state()
        elif epoch - best_epoch >= patience:
            break
    model.load(best_state)
    return {
        "batch_size": batch_size, "log": log, "fine": fine, "probe_every": probe_every,
        "best_epoch": best_epoch,
        "epochs_run": epoch,
        "hit_cap": epoch == max_epochs and best_epoch > max_epochs - patience,
        "updates": best_epoch * math.ceil(len(y) / batch_size),
        "seconds_to_best": log["seconds"][best_epoch - 1], "seconds_total": clock,
        "train_acc": log["train_acc"][best_epoch - 1],  # of the model returned
        "val_acc": best_acc, "test_acc": model.accuracy(*fm["test"]),
    }


# %% [markdown]
# The source's setting: batch size $B = 5$, learning rate $\eta = 0.01$, the initialization
# $\mathcal N(0, 0.1^2)$ of `Linear`, and {glue:text}`hidden_units` hidden units. Problem
# 3.1 does not state the width (it is in starter code we do not have); the parameter count
# of 001 3.5 implies 128 for the TensorFlow version of the same network, which Chapter 5
# uses. Here the width is our choice, not tuned. We ask for at least 84% test accuracy, an
# acceptance bound of ours: the source gives no number for this network.

# %%
LR = 0.01
model = mlp_like(init_state, np.float32)
main = train(model, fm, 5, LR, run.max_epochs, run.patience, seed=run.seed)
accuracy_check = results.compare(
    "numpy_mlp_test_acc", 100 * main["test_acc"], 84.0, tolerance=0, rule="at_least",
    unit="%", source="our acceptance bound (001 gives no number for this network); "
    "published MLP baselines are 85-90%",
    description="NumPy MLP, batch 5, early stopping: test accuracy on 10,000 "
                "Fashion-MNIST images",
)
if run.profile != "smoke":  # the smoke profile trains on 1,000 images for 2 epochs
    assert accuracy_check.holds, main["test_acc"]

# %% tags=["hide-input"]
results.record("numpy_mlp_best_epoch", main["best_epoch"],
               description="epoch of best val acc")
results.record("numpy_mlp_val_acc", 100 * main["val_acc"], unit="%")
results.record("numpy_mlp_train_seconds", main["seconds_total"], unit="s")
glue("hidden_units", run.hidden, display=False)
glue("patience", run.patience, display=False)
glue("numpy_mlp_train_acc_end", 100 * main["log"]["train_acc"][-1], display=False)

epochs = np.arange(1, len(main["log"]["loss"]) + 1)
fig, (ax_loss, ax_acc) = plots.figure(ncols=2)
ax_loss.plot(epochs, main["log"]["loss"], marker="o", ms=3)
ax_loss.set(xlabel="epoch", ylabel="mean mini-batch loss (nats)")
ax_acc.plot(epochs, 100 * np.array(main["log"]["train_acc"]), marker="o", ms=3,
            label="train")
ax_acc.plot(epochs, 100 * np.array(main["log"]["val_acc"]), marker="s", ms=3,
            label="validation")
ax_acc.axvline(main["best_epoch"], color="grey", ls="--", label="best val. epoch")
ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
ax_acc.legend(fontsize=8)
plots.glue_figure("fig_training", fig)

# %% [markdown]
# ```{glue:figure} fig_training
# ---
# name: fig-mlp-training
# alt: >-
#   Two panels against the epoch: the training loss falling, and the training and
#   validation accuracies rising, with a dashed line at the best validation epoch.
# ---
# The NumPy MLP trained with $B = 5$: the mean mini-batch cross-entropy of each epoch
# (left) and the accuracies after it (right). Look at the gap that opens between the
# training and validation curves, and at where the dashed line, the model kept, sits.
# ```
#
# The best validation accuracy, {glue:text}`numpy_mlp_val_acc:.1f`%, came at epoch
# {glue:text}`numpy_mlp_best_epoch`, and the model of that epoch reaches
# {glue:text}`numpy_mlp_test_acc:.1f`% on the 10,000 test images, close to published MLP
# baselines for Fashion-MNIST, which lie around 85-90%, most of them trained on all 60,000
# images rather than 10,000. In {numref}`fig-mlp-training` the training accuracy keeps
# climbing after the best epoch, to {glue:text}`numpy_mlp_train_acc_end:.1f`% when the run
# stopped, while the validation accuracy wobbles: from there on the network learns its
# training set rather than the task, and early stopping (patience
# {glue:text}`patience` epochs) cuts that off.
#
# ## The same network in PyTorch
#
# The NumPy network is only correct if it computes what a reference implementation
# computes. We build the same network in PyTorch (`nn.Linear`, `F.cross_entropy`,
# `torch.optim.SGD`), load the *same initial weights* and feed it the *same sequence of
# mini-batches* ($B = 50$, {glue:text}`twin_epochs` epochs). Both run in float32; they
# differ only in the order of the roundings inside the matrix products, about $10^{-7}$
# relative per operation. Amplified over the updates, such differences should still stay
# far below $10^{-4}$ of the largest weight, and the test accuracies should be equal up to
# a handful of images whose two largest logits are within rounding of each other: we allow
# 0.2 percentage points, 20 of the 10,000 test images.
#
# We also time both, on one thread each: every computation of this chapter runs on one CPU
# thread, so that a comparison of speed compares the same arithmetic, without one library's
# threading against the other's.

# %%
class TorchMLP(nn.Module):
    def __init__(self, state: dict):
        super().__init__()
        self.fc1 = nn.Linear(*state["W1"].shape[::-1])
        self.fc2 = nn.Linear(*state["W2"].shape[::-1])
        with torch.no_grad():
            for name, p in (("W1", self.fc1.weight), ("b1", self.fc1.bias),
                            ("W2", self.fc2.weight), ("b2", self.fc2.bias)):
                p.copy_(torch.from_numpy(state[name]))

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


TWIN_B = 50
X_t, y_t = torch.from_numpy(fm["train"][0]), torch.from_numpy(fm["train"][1])


def fit_numpy_twin():
    model, rng = mlp_like(init_state, np.float32), np.random.default_rng(run.seed)
    for _ in capped(range(run.twin_epochs)):
        sgd_epoch(model, *fm["train"], TWIN_B, LR, rng)
    return model


def fit_torch_twin():
    net, rng = TorchMLP(init_state), np.random.default_rng(run.seed)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    for _ in capped(range(run.twin_epochs)):
        order = torch.from_numpy(rng.permutation(len(y_t)))  # the same order as NumPy's
        for start in capped(range(0, len(y_t), TWIN_B)):
            rows = order[start : start + TWIN_B]
            loss = F.cross_entropy(net(X_t[rows]), y_t[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


twins = {}
t_numpy = measure(lambda: twins.update(numpy=fit_numpy_twin()), repeat=run.repeat,
                  warmup=0)
t_torch = measure(lambda: twins.update(torch=fit_torch_twin()), repeat=run.repeat,
                  warmup=0)
twin_np, twin_torch = twins["numpy"], twins["torch"]
with torch.no_grad():
    logits_torch = twin_torch(torch.from_numpy(fm["test"][0])).numpy()
acc_torch = float((logits_torch.argmax(1) == fm["test"][1]).mean())
acc_numpy = twin_np.accuracy(*fm["test"])
twin_weight_err = max(
    np.abs(twin_np.params()[k] - p.detach().numpy()).max()
    / np.abs(p.detach().numpy()).max()
    for k, p in (("W1", twin_torch.fc1.weight), ("W2", twin_torch.fc2.weight)))
assert twin_weight_err < 1e-4, twin_weight_err  # float32 roundings, amplified
assert abs(acc_numpy - acc_torch) <= 0.002, (acc_numpy, acc_torch)  # 20 images at most

# %% tags=["hide-input"]
results.record("twin_acc_numpy", 100 * acc_numpy, unit="%")
results.record("twin_acc_torch", 100 * acc_torch, unit="%")
results.record("twin_weight_rel_diff", twin_weight_err,
               description="max |W_np - W_torch| / max |W|")
results.record("numpy_seconds", t_numpy.seconds, unit="s")
results.record("torch_seconds", t_torch.seconds, unit="s")
results.record("numpy_over_torch_time", t_numpy.seconds / t_torch.seconds,
               description="NumPy training time / PyTorch training time, same work, "
                           "one thread")
glue("twin_epochs", run.twin_epochs, display=False)
glue("twin_acc_diff_pp", float(abs(100 * (acc_numpy - acc_torch))), display=False)
display(Markdown(
    f"| {run.twin_epochs} epochs at $B = {TWIN_B}$, one thread | seconds (median of "
    f"{run.repeat}) | test accuracy (%) |\n|---|---|---|\n"
    f"| NumPy (this chapter's layers) | {t_numpy.seconds:.2f} | {100 * acc_numpy:.2f} |\n"
    f"| PyTorch (`nn.Linear`, autograd, `optim.SGD`) | {t_torch.seconds:.2f} | "
    f"{100 * acc_torch:.2f} |\n"
    f"| NumPy time / PyTorch time | {t_numpy.seconds / t_torch.seconds:.2f} | |"))

# %% [markdown]
# After {glue:text}`twin_epochs` epochs the two networks' weights differ by at most
# {glue:text}`twin_weight_rel_diff:.1e` of their largest entry, and their test accuracies
# differ by {glue:text}`twin_acc_diff_pp:.2f` percentage points: the NumPy loop is the same
# computation as the library's. The table gives the times. Both spend much of the time in
# matrix products of the same sizes, so their ratio mostly measures the overhead around
# them, PyTorch's autograd graph, module calls and optimizer bookkeeping against our
# handful of NumPy calls; for a network this small neither has an advantage in the
# arithmetic, and on a shared machine the timings vary from run to run, so only a large
# ratio would mean much. A GPU, where PyTorch could run and NumPy cannot, would change
# that.
#
# ## What this section showed
#
# Mini-batch SGD with early stopping is a dozen lines around the model's `backward` and
# `sgd_step`. With the source's setting the NumPy MLP reaches the accuracy of published MLP
# baselines on a sixth of their training data, and the validation curve, not the training
# curve, says when to stop. The same network in PyTorch, started from the same weights and
# fed the same batches, ends at the same weights up to float32 rounding: the from-scratch
# code and the library compute the same thing, at comparable speed on one CPU thread.
#
# ## Exercises
#
# 1. **Momentum.** Add SGD with momentum to the NumPy MLP (a velocity array per parameter)
#    and train at $B = 50$ with momentum 0.9. How many updates to the best validation epoch
#    does it save? Check it against `torch.optim.SGD(momentum=0.9)` as above.
#
#    :::{dropdown} Hint
#    The velocity is $v \leftarrow \mu v + \bar\theta$ and the step
#    $\theta \leftarrow \theta - \eta v$ (PyTorch's convention). With $\mu = 0.9$ the
#    effective step is about ten times $\eta$, so expect far fewer updates, and check that
#    the two implementations still agree to float32 rounding.
#    :::
#
# 2. **Patience.** Rerun with patience 1 and patience 20. Which epoch is chosen each time,
#    and what happens to the test accuracy? Why is the test set looked at only once?
#
#    :::{dropdown} Answer
#    Patience 1 stops at the first epoch that does not improve, often early in a noisy
#    climb; a long patience finds a later, slightly better epoch at the cost of more
#    training. The test set is used once, after the choice, so that its accuracy is an
#    unbiased estimate for the chosen model; choosing the epoch on it would make it a
#    second validation set.
#    :::
