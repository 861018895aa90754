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
# # Does the network know when it is lost?
#
# The models of {doc}`section 4 <04_three_models>` fail on rotated images. A classifier
# that fails would do less harm if it said so. This section, beyond the source, tests the
# simplest way it could: by its own confidence. It defines the AUROC, computes it by
# sorting instead of comparing all pairs, checks the fast formula against the definition,
# and measures how well the confidence separates familiar images from shifted and rotated
# ones, and right answers from wrong ones.

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
import torch.nn.functional as F
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.dryrun import capped
from helpers.glue import glue
from helpers.lessons.cnn_ood import (
    ARCHITECTURES,
    KEYS,
    TEST_SETS,
    cnn2,
    fashion_split,
    logits_of,
    shift_augment,
    train_models,
)

run = profiles.setup(
    profile,
    seed=5,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    ood_max_epochs=(1, 15, 60),  # cap on epochs per model (as in section 4)
    ood_patience=(1, 3, 8),  # early-stopping patience (as in section 4)
    conf_seeds=(1, 1, 3),  # training seeds per model (AUROCs are averaged)
)
device = run.device
if device.type == "cpu":
    torch.set_num_threads(1)  # small batches: one thread is faster on a busy machine
fm = fashion_split(run.n_train, run.n_val, run.n_test, device)
x_test, y_test = fm["test"]
run

# %% [markdown]
# The four models of {doc}`section 5 <05_invariance>` (the three of the source and the
# 2-layer CNN trained on shifted images), with the recipe of section 4:

# %%
MODELS = {**ARCHITECTURES, "2-layer CNN + shifts": cnn2}
SEEDS = [run.seed + 100 * i for i in range(run.conf_seeds)]
trained = train_models(MODELS, SEEDS, fm, run.ood_max_epochs, run.ood_patience,
                       augment={"2-layer CNN + shifts": shift_augment(4)})

# %% [markdown]
# ## Confidence and the AUROC
#
# The simplest test reads the network's own output {cite:p}`hendrycks2017baseline`: the
# largest softmax probability $s(x) = \max_c p_c(x)$, the *confidence*, should be high on
# images like the training images and lower on strange ones. If it is, a threshold on $s$
# flags the strange inputs. How well *any* threshold can do is summarized by the area
# under the ROC curve (AUROC): the probability that a randomly drawn familiar image scores
# higher than a randomly drawn strange one, ties counting one half. A coin scores 0.5, a
# perfect separation 1.0. Written as it is defined, the AUROC of $m$ familiar scores $a_i$
# and $n$ strange scores $b_j$ is an average over all $mn$ pairs,
#
# $$
# \mathrm{AUROC} = \frac{1}{mn} \sum_{i=1}^{m} \sum_{j=1}^{n}
#   \Big( [a_i > b_j] + \tfrac12 [a_i = b_j] \Big),
# $$ (eq-auroc-pairs)
#
# $10^8$ pairs for two test sets of $10^4$ images. Sorting does it in
# $O((m+n)\log(m+n))$: rank the pooled $m+n$ scores from 1 (lowest) upward, giving tied
# scores the mean of their ranks, and let $R$ be the sum of the familiar scores' ranks.
# Each $a_i$'s mid-rank counts the scores below it, one half for every other score tied
# with it, and one for itself:
#
# $$
# \mathrm{rank}(a_i) = \#\{j : b_j < a_i\} + \tfrac12 \#\{j : b_j = a_i\}
#   + \#\{k : a_k < a_i\} + \tfrac12 \#\{k \ne i : a_k = a_i\} + 1 .
# $$
#
# Summed over $i$, the familiar-familiar terms count each of the $m(m-1)/2$ pairs of
# familiar scores once, so with the $m$ ones they add up to $m(m+1)/2$; what is left,
# $U = R - m(m+1)/2$, is the Mann-Whitney statistic, the double sum of
# {eq}`eq-auroc-pairs`:
#
# $$
# \mathrm{AUROC} = \frac{R - m(m+1)/2}{mn}.
# $$ (eq-auroc-ranks)
#
# One numerical trap: a confident network's largest probability can be within $10^{-8}$
# of 1, and float32 rounds such a value to exactly 1, so confident images would tie. We
# rank by the largest *log*-probability computed in float64 from the logits, which orders
# the images exactly as $s$ does without the ties.

# %%
def auroc(familiar: torch.Tensor, strange: torch.Tensor) -> float:
    """P(a random familiar score > a random strange one), ties 1/2: the rank formula."""
    m, n = len(familiar), len(strange)
    if m == 0 or n == 0:
        raise ValueError(f"AUROC needs scores on both sides, got {m} and {n}")
    scores = torch.cat([familiar, strange]).double().cpu()
    sorted_scores, order = scores.sort()
    _, group, counts = torch.unique_consecutive(sorted_scores, return_inverse=True,
                                                return_counts=True)
    mean_rank = counts.cumsum(0) - (counts - 1) / 2  # ranks of a tie group: their mean
    ranks = torch.empty_like(scores)
    ranks[order] = mean_rank[group].double()
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def auroc_by_pairs(familiar: torch.Tensor, strange: torch.Tensor) -> float:
    """The definition, pair by pair: O(mn) time and memory."""
    d = familiar.double()[:, None] - strange.double()[None, :]
    return float(((d > 0).double() + 0.5 * (d == 0).double()).mean())


def confidence(model, x: torch.Tensor):
    """(log max_c p_c(x), the predicted class) per image, in float64."""
    log_conf, predicted = F.log_softmax(logits_of(model, x).double(), dim=1).max(1)
    return log_conf.cpu(), predicted.cpu()


# %% [markdown]
# The two formulas must agree to rounding: both add up halves and ones, at most $10^8$ of
# them, exactly representable in float64, and divide once, so $10^{-12}$ is generous. We
# check on random scores with many ties, and on two hand-made cases.

# %%
gen_check = torch.Generator().manual_seed(0)
for m_check, n_check in ((1, 1), (7, 3), (300, 500)):
    a_check = torch.randint(0, 6, (m_check,), generator=gen_check).double()  # many ties
    b_check = torch.randn(n_check, generator=gen_check).round()
    assert abs(auroc(a_check, b_check) - auroc_by_pairs(a_check, b_check)) < 1e-12
assert auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0  # perfect
assert auroc(torch.ones(4), torch.ones(9)) == 0.5  # all tied: a coin

# %% [markdown]
# ## Confidence on familiar and strange images
#
# For every model and seed we score the original test images and each of the four
# out-of-distribution sets of section 4, and compute two kinds of AUROC: original against
# each strange set, and, on the original images, right answers against wrong ones.

# %%
OOD_SETS = [ts for ts in TEST_SETS if ts != "original"]
conf = {name: {ts: [] for ts in TEST_SETS} for name in MODELS}  # mean confidence
acc = {name: {ts: [] for ts in TEST_SETS} for name in MODELS}  # accuracy (%)
ood_auroc = {name: {ts: [] for ts in OOD_SETS} for name in MODELS}
error_auroc = {name: [] for name in MODELS}  # right vs wrong answers, original set
for name, fits in trained.items():
    for i, f in enumerate(capped(fits, what="evaluations")):
        scores = {}
        for ts, t in TEST_SETS.items():
            scores[ts], predicted = confidence(f["model"], t(x_test))
            right = predicted == y_test.cpu()
            conf[name][ts].append(scores[ts].exp().mean().item())
            acc[name][ts].append(100 * right.double().mean().item())
            if ts == "original":
                right_original = right
        for ts in OOD_SETS:
            ood_auroc[name][ts].append(auroc(scores["original"], scores[ts]))
        error_auroc[name].append(auroc(scores["original"][right_original],
                                       scores["original"][~right_original]))
        if name == "2-layer CNN" and i == 0:
            first_scores = scores
# the rank formula agrees with the definition on real scores (a subset: O(mn) memory)
s_orig, s_rot = first_scores["original"][:2_000], first_scores["rotated 90"][:2_000]
assert abs(auroc(s_orig, s_rot) - auroc_by_pairs(s_orig, s_rot)) < 1e-12

# %% tags=["hide-input"]
def mean(d):
    return {k: float(np.mean(v)) for k, v in d.items()}


mean_conf = {n: mean(c) for n, c in conf.items()}
mean_acc = {n: mean(a) for n, a in acc.items()}
mean_auroc = {n: mean(a) for n, a in ood_auroc.items()}
mean_error_auroc = {n: float(np.mean(v)) for n, v in error_auroc.items()}
display(Markdown(
    "Mean confidence on each test set (accuracy in parentheses) and the AUROC of the "
    "confidence for telling the original test images from that set, after the slash; "
    "last column: the AUROC for telling right answers from wrong ones on the original "
    f"set. Means over {run.conf_seeds} seed(s).\n\n"
    "| model | " + " | ".join(TEST_SETS) + " | right vs wrong |\n"
    + "|---" * (len(TEST_SETS) + 2) + "|\n" + "\n".join(
        f"| {name} | {mean_conf[name]['original']:.2f} "
        f"({mean_acc[name]['original']:.0f}%) | " + " | ".join(
            f"{mean_conf[name][ts]:.2f} ({mean_acc[name][ts]:.0f}%) / "
            f"{mean_auroc[name][ts]:.2f}" for ts in OOD_SETS)
        + f" | {mean_error_auroc[name]:.2f} |" for name in MODELS)))

fig, ax = plots.figure(width=6.5, height=3.6)
bins = np.logspace(-8, 0, 33)  # 1 - confidence; below 1e-8 is counted in the first bin
for ts, style in (("original", "-"), ("shifted up 4", "--"), ("rotated 90", ":")):
    doubt = (-torch.expm1(first_scores[ts])).clamp(min=1e-8).numpy()  # 1 - s, exactly
    ax.hist(doubt, bins=bins, histtype="step", linestyle=style, linewidth=2,
            weights=np.full(len(doubt), 100 / len(doubt)), label=ts)
ax.set(xlabel="1 - confidence (first bin: all below 1e-8)",
       ylabel="share of the test images (%)", xscale="log")
ax.legend(loc="upper left", fontsize=8)
plots.glue_figure("fig_confidence", fig)

for name in MODELS:
    results.record(f"auroc_{KEYS[name]}_rot90", mean_auroc[name]["rotated 90"],
                   description=f"{name}: AUROC of confidence, original vs rotated 90")
    results.record(f"auroc_{KEYS[name]}_errors", mean_error_auroc[name],
                   description=f"{name}: AUROC of confidence, right vs wrong")
sure = math.log(0.99)
glue("sure_original", 100 * (first_scores["original"] > sure).double().mean().item(),
     display=False)
glue("sure_rot90", 100 * (first_scores["rotated 90"] > sure).double().mean().item(),
     display=False)
glue("conf_cnn2_original", mean_conf["2-layer CNN"]["original"], display=False)
glue("conf_cnn2_rot90", mean_conf["2-layer CNN"]["rotated 90"], display=False)
glue("acc_cnn2_original", mean_acc["2-layer CNN"]["original"], display=False)
glue("acc_cnn2_rot90", mean_acc["2-layer CNN"]["rotated 90"], display=False)
overconfident = [100 * mean_conf[n][ts] - mean_acc[n][ts]
                 for n in ARCHITECTURES for ts in OOD_SETS if "rot" in ts]
glue("overconf_min", min(overconfident), display=False)
glue("overconf_max", max(overconfident), display=False)
ood_aurocs = [mean_auroc[n][ts] for n in ARCHITECTURES for ts in OOD_SETS]
glue("auroc_ood_min", min(ood_aurocs), display=False)
glue("auroc_ood_max", max(ood_aurocs), display=False)
glue("auroc_ood_best_wrong", 100 * (1 - max(ood_aurocs)), display=False)
error_aurocs = [mean_error_auroc[n] for n in ARCHITECTURES]
glue("auroc_err_min", min(error_aurocs), display=False)
glue("auroc_err_max", max(error_aurocs), display=False)

# %%
if run.profile != "smoke":  # 1 epoch on 1,000 images: too little to separate anything
    # the summary's reading: every source model's confidence separates its right from
    # its wrong answers better than familiar from strange images (a margin of several
    # hundredths in our runs)
    assert min(error_aurocs) > max(ood_aurocs), (error_aurocs, ood_aurocs)

# %% [markdown]
# ```{glue:figure} fig_confidence
# ---
# name: fig-cnn-confidence
# alt: >-
#   Histograms of one minus the confidence of the 2-layer CNN on a log scale for the
#   original, shifted and rotated test images; all three have much of their mass at
#   near-certain answers.
# ---
# How sure the 2-layer CNN (first seed) is on the original, shifted and rotated test
# images, drawn against $1 - s$ on a log scale because many answers are nearly certain.
# Look at how much of the rotated images' histogram sits at the near-certain left end.
# ```
#
# The 2-layer CNN's mean confidence is {glue:text}`conf_cnn2_original:.2f` on the
# original test images, where it is right {glue:text}`acc_cnn2_original:.0f`% of the time;
# on the images rotated by 90 degrees it is still {glue:text}`conf_cnn2_rot90:.2f`, while
# it is right on only {glue:text}`acc_cnn2_rot90:.0f`%. Over the three source models and
# the three rotated sets, mean confidence minus accuracy ranges from
# {glue:text}`overconf_min:.0f` to {glue:text}`overconf_max:.0f` points. In
# {numref}`fig-cnn-confidence`, {glue:text}`sure_rot90:.0f`% of the rotated images get a
# confidence above 0.99, against {glue:text}`sure_original:.0f`% of the original ones.
#
# As a detector of strange inputs, the confidence of the three source models reaches
# AUROCs from {glue:text}`auroc_ood_min:.2f` to {glue:text}`auroc_ood_max:.2f` across
# the four out-of-distribution sets: even the best pair leaves
# {glue:text}`auroc_ood_best_wrong:.0f`% of the familiar-strange pairs ranked the wrong way
# round. On the other question a confidence is asked, whether an answer on a familiar
# image is right, the AUROCs run from {glue:text}`auroc_err_min:.2f` to
# {glue:text}`auroc_err_max:.2f`, above every AUROC of the first question (checked above).
# {cite:t}`hendrycks2017baseline` propose the softmax confidence as a *baseline* for both
# questions, one that better methods should beat, and that is what it is here. Training
# minimized the cross-entropy on centred, upright images only; nothing in that objective
# asks the network to be unsure about anything else, and nothing stops a rotated shirt
# from landing far from every decision boundary.
#
# ## What this section showed
#
# The AUROC of a score is the Mann-Whitney statistic of its ranks, computed by one sort
# and equal to the pair-by-pair definition to rounding. The largest softmax probability of
# our models is a weak detector of shifted and rotated images: they are often nearly as
# confident on rotated images as on familiar ones, while being right on far fewer. The
# same score is a better guide to which answers on familiar images are wrong.
#
# ## Exercises
#
# 1. **A better score for strange inputs.** Replace the largest softmax probability by
#    the largest logit, and then by the log-sum-exp of the logits (both need no softmax).
#    Do the AUROCs on the rotated sets move? Why can a score that ignores the other
#    classes' logits not be fooled in the same way, and why can it be fooled in others?
#
#    :::{dropdown} Hint
#    The softmax only sees differences between logits: an image far from everything can
#    still have one logit much larger than the rest. The largest logit and the log-sum-exp
#    also see the overall size of the logits, which a strange image may or may not change.
#    :::
#
# 2. **Ties.** Compute the AUROC of the float32 softmax probability itself, not the
#    float64 log-probability. How many familiar images tie at exactly 1.0, and how does
#    the AUROC change?
#
#    :::{dropdown} Hint
#    Count `(F.softmax(logits, 1).max(1).values == 1).sum()`; every tie counts one half,
#    so ties between near-certain familiar and near-certain strange images pull the AUROC
#    towards 0.5.
#    :::
