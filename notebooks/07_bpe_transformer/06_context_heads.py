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
# # Context length and the number of heads
#
# 001 P4 asks what the context length and the number of heads change in a character-level
# Transformer: contexts of 2, 16 and 64 characters, and 2, 4 and 8 heads. We train five
# small models from scratch on tiny Shakespeare with the code of
# {doc}`section 5 <05_character_model>`, compare their validation losses fairly (at the
# position where each model sees its whole context), and count how many of the words they
# write are real.

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

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.lessons.bpe_transformer import (
    char_experiment,
    configure_device,
    load_characters,
    markdown_text,
    moving_average,
    n_parameters,
    real_word_shares,
    sample,
    target_losses,
    window_batch,
)

run = profiles.setup(
    profile,
    seed=7,
    study_width=(32, 96, 192),  # d of every model in the study
    study_blocks=(2, 2, 2),  # blocks of every model
    study_steps=(15, 800, 3_000),  # updates of every model
    batch=(8, 32, 64),  # windows per mini-batch
    eval_batches=(2, 20, 50),  # mini-batches per validation loss
)
device = run.device
configure_device(device)  # one thread on a CPU, TF32 on recent NVIDIA GPUs (section 3)
run

# %% [markdown]
# ## Five models
#
# The five models share one setting (width {glue:text}`study_width`,
# {glue:text}`study_blocks` blocks, {glue:text}`study_steps:,` updates of the same batch
# size on the same text): context lengths 2, 16 and 64 with 4 heads, and 2, 4 and 8 heads
# with context 64 (the model with context 64 and 4 heads is shared by both series). With a
# fixed width $d$, more heads means smaller heads, $p = d/H$: the number of parameters stays
# the same, only how attention is split changes. Each model then writes
# {glue:text}`study_sample_chars:,` characters after a line break.

# %%
cs = load_characters()
CONFIGS = [(2, 4), (16, 4), (64, 2), (64, 4), (64, 8)]  # (context, heads)
N_STUDY_SAMPLE = 1_000
study = {}
for context, heads in CONFIGS:
    model, history = char_experiment(
        cs, run.study_width, heads, run.study_blocks, context, run.study_steps,
        run.batch, run.eval_batches, device, desc=f"context {context}, {heads} heads")
    ids = sample(model, [cs.to_id["\n"]], N_STUDY_SAMPLE, temperature=0.8, seed=2)[1:]
    study[context, heads] = dict(model=model, history=history,
                                 text="".join(cs.chars[i] for i in ids))
assert len({n_parameters(s["model"]) for s in study.values()}) == 1  # asserted: equal

# %% tags=["hide-input"]
glue("study_sample_chars", N_STUDY_SAMPLE, display=False)
glue("study_width", run.study_width, display=False)
glue("study_blocks", run.study_blocks, display=False)
glue("study_steps", run.study_steps, display=False)
vals = {key: s["history"]["best_val"] for key, s in study.items()}
for (context, heads), value in vals.items():
    results.record(f"study_ctx{context}_heads{heads}_val", value,
                   description=f"val loss, context {context}, {heads} heads")
heads_spread = max(vals[64, h] for h in (2, 4, 8)) - min(vals[64, h] for h in (2, 4, 8))
results.record("study_heads_spread", heads_spread,
               description="max - min val loss, 2, 4, 8 heads at context 64 (one seed)")
context_gain = vals[2, 4] - vals[64, 4]
glue("study_context_gain", context_gain, display=False)
if run.profile != "smoke":
    # At most two characters of context see less than a word; 16 see whole words.
    assert vals[2, 4] > vals[16, 4] + 0.1 and vals[2, 4] > vals[64, 4] + 0.1, vals
    assert heads_spread < context_gain, vals  # heads matter less than context

fig, axes = plots.figure(ncols=2, height=3.6, sharey=True)
for ax, series, label in [(axes[0], [(c, 4) for c in (2, 16, 64)], "context {0}"),
                          (axes[1], [(64, h) for h in (2, 4, 8)], "{1} heads")]:
    for i, key in enumerate(series):
        h = study[key]["history"]
        w = max(1, run.study_steps // 25)
        sm = moving_average(h["train"], w)
        ax.plot(np.arange(w, w + len(sm)), sm, color=f"C{i}", alpha=0.5)
        ax.plot(h["val_step"], h["val"], "o--", color=f"C{i}", ms=3,
                label=label.format(*key))
    ax.set(xlabel="weight updates")
    ax.legend(fontsize=8, title="validation (dots)", title_fontsize=8)
axes[0].set_ylabel("nats per character")
low = min(min(s["history"]["train"]) for s in study.values()) - 0.05
axes[0].set_ylim(low, max(s["history"]["val"][:2][-1] for s in study.values()) + 0.15)
plots.glue_figure("fig_study_curves", fig)

# %% [markdown]
# ```{glue:figure} fig_study_curves
# ---
# name: fig-bt-study-curves
# alt: >-
#   Two panels of loss curves. Left: context 2 ends clearly higher than contexts 16 and
#   64, which end close together. Right: 2, 4 and 8 heads end almost on top of each other.
# ---
# Training (lines, moving averages) and validation (dots) losses of the five models, the
# vertical axis cut above. Left, four heads and contexts 2, 16 and 64: the context-2 model
# ends far above the others. Right, context 64 and 2, 4 or 8 heads: the curves nearly
# coincide.
# ```
#
# ## Context length
#
# Context length matters most (asserted: context 2 ends more than 0.1 nats above both
# longer contexts, and that gap exceeds the spread over the heads). The validation loss,
# averaged over every position of the windows as in training, ends at
# {glue:text}`study_ctx2_heads4_val:.3f` with context 2,
# {glue:text}`study_ctx16_heads4_val:.3f` with context 16 and
# {glue:text}`study_ctx64_heads4_val:.3f` with context 64, {numref}`fig-bt-study-curves`.
# That average mixes contexts: position $j$ of a window sees only $j + 1$ characters, so half
# the predictions of the context-2 model see one character (a bigram model) and half see two
# (a trigram model), and the context-64 model's first 16 positions are in the same
# situation as the context-16 model.
#
# To compare the contexts themselves we score only the last position of about 4,096
# validation windows, where each model sees its whole context. The windows are drawn once
# at the longest context and cut to each model's, so the three models are scored on the
# same targets and the differences can be taken target by target, with their standard
# errors.

# %%
LAST_WINDOWS = 4_096


def full_context_losses(model, context, longest=64):
    """Loss of the last prediction of each validation window: the only one that sees the
    whole context. The same targets for every context (windows cut from the longest)."""
    rng = torch.Generator().manual_seed(54_321)
    batches = []
    for _ in range(max(1, LAST_WINDOWS // run.batch)):
        inputs, targets = window_batch(cs.val, longest, run.batch, rng, device)
        batches.append((inputs[:, -context:], targets[:, -context:]))
    return target_losses(model, batches, last_only=True)


def mean_and_se(differences):
    """The mean of per-target differences and its standard error."""
    se = differences.std() / math.sqrt(len(differences))
    return differences.mean().item(), se.item()


last = {c: full_context_losses(study[c, 4]["model"], c) for c in (2, 16, 64)}
gain_short, se_short = mean_and_se(last[2] - last[16])  # per target: paired
gain_long, se_long = mean_and_se(last[16] - last[64])
_, se_gains = mean_and_se((last[2] - last[16]) - (last[16] - last[64]))
if run.profile != "smoke":
    assert gain_short > gain_long + 2 * se_gains, (gain_short, gain_long, se_gains)

# %% tags=["hide-input"]
for c in (2, 16, 64):
    glue(f"study_last_ctx{c}", last[c].mean().item(), display=False)
glue("study_last_windows", len(last[2]), display=False)
for name, value in [("gain_short", gain_short), ("se_short", se_short),
                    ("gain_long", gain_long), ("se_long", se_long)]:
    glue(f"study_{name}", value, display=False)

# %% [markdown]
# At the last position of {glue:text}`study_last_windows:,` windows the losses are
# {glue:text}`study_last_ctx2:.3f`, {glue:text}`study_last_ctx16:.3f` and
# {glue:text}`study_last_ctx64:.3f` nats. Going from context 2 to 16 lowers the loss by
# {glue:text}`study_gain_short:.3f` ± {glue:text}`study_se_short:.3f` nats (mean ± standard
# error over the targets), from 16 to 64 by {glue:text}`study_gain_long:.3f` ±
# {glue:text}`study_se_long:.3f`: the first gain is the larger by more than twice the
# standard error of the difference (asserted). Most of what predicts the next character
# lies in the current and the previous word, while the cost does not shrink: attention's
# time and memory grow as the square of the context. Whether this small model, in this many
# updates, gains anything at all from characters beyond 16 is the second number and its
# error; a negative value would mean the longer context even cost it a little.
#
# Equal updates are not equal data. A window gives as many predictions as the context is
# long, so the models with context 64 were trained on {glue:text}`study_chars_seen:,`
# predicted characters (about {glue:text}`study_epochs:.1f` passes over the training text)
# and the model with context 2 on only {glue:text}`study_ctx2_chars:,`. Part of its gap may
# be the smaller amount of data rather than the short context; exercise 2 separates the
# two.

# %% [markdown]
# ## What the loss means for the text
#
# The table counts, as before, the words of each model's sample that occur in the training
# text, and the words of five letters or more; the samples themselves are in the dropdown
# below the table. Short words like *the*, *and* and *my* count as real even when a model
# places them at random, so the longer words are the better test: that is where the
# context-2 model, which cannot see a whole word, should fall behind.

# %% tags=["hide-input"]
glue("study_chars_seen", study[64, 4]["history"]["tokens"], display=False)
glue("study_ctx2_chars", study[2, 4]["history"]["tokens"], display=False)
glue("study_epochs", study[64, 4]["history"]["tokens"] / len(cs.train), display=False)
shares = {key: real_word_shares(s["text"], cs.train_words) for key, s in study.items()}
display(Markdown(
    "| context | heads | validation loss | words in the training text "
    "| words of 5+ letters in it |\n|---|---|---|---|---|\n" + "\n".join(
        f"| {c} | {h} | {vals[c, h]:.3f} | {100 * shares[c, h][0]:.0f} % "
        f"| {100 * shares[c, h][1]:.0f} % |" for c, h in CONFIGS)))
display(Markdown(
    ":::{dropdown} The first 300 characters of each model's sample (temperature 0.8; "
    "⏎ is a line break)\n" + "\n".join(
        f"- context {c}, {h} heads: {markdown_text(study[c, h]['text'][:300])}"
        for c, h in CONFIGS) + "\n:::\n"))

# %% [markdown]
# ## The number of heads
#
# 2, 4 and 8 heads end at {glue:text}`study_ctx64_heads2_val:.3f`,
# {glue:text}`study_ctx64_heads4_val:.3f` and {glue:text}`study_ctx64_heads8_val:.3f`, a
# spread of {glue:text}`study_heads_spread:.3f` nats, smaller than the
# {glue:text}`study_context_gain:.2f` nats between contexts 2 and 64 (asserted). The
# parameter count is identical; more heads let the layer attend to several places at once,
# but each head is narrower ($p = d/H$). We trained one model per setting from one seed, so
# the study does not measure how much the loss moves from seed to seed. Without that
# yardstick we cannot tell whether differences this small come from the heads or from the
# seed, and they do not rank the settings (exercise 3 measures the spread between seeds).
# The samples begin alike because every model starts from the same weights (their shapes
# do not depend on the context or the number of heads), drew its mini-batches from the same
# random numbers and was sampled with the same random numbers; where they part, the
# differences at equal loss are the luck of the draw.
#
# ## What this section showed
#
# A longer context lowers the loss, most of it from 2 to 16 characters, where a model first
# sees whole words; the evaluation at the last position, with paired targets and standard
# errors, is what makes that reading fair. The number of heads at a fixed width changes the
# loss far less than the context, and one seed per setting cannot rank the heads.
#
# ## Exercises
#
# 1. **A bigram table.** The context-2 model's first position is a bigram model. Compute the
#    bigram loss of the validation text directly from counts of the training text (with
#    add-one smoothing) and compare it with that model's loss at position 0.
#
#    :::{dropdown} Hint
#    `counts = np.ones((65, 65))`, add one for each pair of neighbours in `cs.train`, and
#    normalize the rows; the loss is the mean of $-\ln p(x_{t+1} \mid x_t)$ over the
#    validation pairs. The model should come close to it, not below.
#    :::
#
# 2. **Equal data.** Give the context-2 model 32 times larger batches, so that it predicts
#    as many characters per update as the context-64 model. How much of its gap remains?
#
#    :::{dropdown} Hint
#    Pass `batch=32 * run.batch` for context 2. If its loss barely moves, the gap comes
#    from the context, not from the data: a bigram or trigram model has few parameters'
#    worth of statistics to learn and saturates early.
#    :::
#
# 3. **Seeds.** Train the models with 2, 4 and 8 heads with three seeds each (`model_seed`
#    of `char_experiment`). How far apart are the losses of one setting, and can you now
#    rank the three settings?
#
#    :::{dropdown} Hint
#    Compare the spread between the heads with the standard deviation over seeds within
#    one setting; a ranking needs differences several standard errors of a mean of three
#    apart.
#    :::
