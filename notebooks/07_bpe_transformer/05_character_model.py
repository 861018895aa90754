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
# # A character-level Transformer on tiny Shakespeare
#
# 001 P4 trains a small Transformer on tiny Shakespeare one character at a time. We use the
# model of {doc}`section 3 <03_model>` and the training loop of
# {doc}`section 4 <04_sentences>`, with a vocabulary of single characters: no tokenizer to
# train, no padding (every example is a window of the text). This section trains one model,
# compares its loss with the published numbers of nanoGPT's recipes, and reads what a loss
# means in the text the model writes. {doc}`Section 6 <06_context_heads>` then varies the
# context length and the number of heads.

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
from helpers.dryrun import capped
from helpers.glue import glue
from helpers.lessons.bpe_transformer import (
    TransformerLM,
    configure_device,
    mean_loss,
    moving_average,
    n_parameters,
    sample,
    train,
)

run = profiles.setup(
    profile,
    seed=7,
    char_width=(32, 128, 384),  # d of the character model
    char_blocks=(1, 3, 6),  # blocks
    char_heads=(2, 4, 6),  # heads
    char_context=(32, 64, 256),  # context length
    char_steps=(30, 1_800, 5_000),  # updates
    char_dropout=(0.0, 0.0, 0.2),  # dropout
    batch=(8, 32, 64),  # windows per mini-batch
    eval_batches=(2, 20, 50),  # mini-batches per validation loss
)
device = run.device
configure_device(device)  # one thread on a CPU, TF32 on recent NVIDIA GPUs (section 3)
run

# %% [markdown]
# ## The data and the model
#
# Tiny Shakespeare is {glue:text}`tiny_chars:,` characters of the plays, with a vocabulary
# of {glue:text}`char_vocab` characters. The first 90 % of the text is for training and the
# last 10 % for validation, and the examples are random windows of `context + 1` characters.
# The model differs from the BPE model in two ways: the hidden layer of each block's MLP is
# $4d$ wide, nanoGPT's convention, where the BPE model has the source's $2d$; and the heads
# split the width, $p = d/H$, so that they concatenate back to $d$, where the BPE model has
# the source's two heads of $p = 32$ and projects $2p$ back to $d$.

# %% tags=["save"]
import re
from types import SimpleNamespace

from helpers import data


def load_characters():
    """Tiny Shakespeare as character ids: the first 90 % for training, the rest for
    validation, and the set of (lower-case) words of the training text."""
    text = data.load_text("tinyshakespeare")
    chars = sorted(set(text))
    to_id = {ch: i for i, ch in enumerate(chars)}
    ids = torch.tensor([to_id[ch] for ch in text])
    split = int(0.9 * len(ids))
    return SimpleNamespace(
        text=text, chars=chars, to_id=to_id, train=ids[:split], val=ids[split:],
        train_words=set(re.findall(r"[a-z]+", text[:split].lower())))


def window_batch(source, context, batch, rng, device="cpu"):
    """``batch`` random windows of ``context`` + 1 characters: inputs and targets."""
    starts = torch.randint(len(source) - context - 1, (batch,), generator=rng)
    windows = torch.stack([source[s : s + context + 1] for s in starts.tolist()])
    return windows[:, :-1].to(device), windows[:, 1:].to(device)


def char_model(vocab, width, heads, blocks, context, dropout=0.0, model_seed=0):
    """A character model (MLP 4d, p = d / heads), its weights drawn from model_seed."""
    torch.manual_seed(model_seed)
    return TransformerLM(vocab, context, width, heads, blocks, dropout=dropout)


def char_eval_batches(cs, context, batch, n_batches, device="cpu"):
    """The same validation windows every time (a fixed generator)."""
    rng = torch.Generator().manual_seed(12345)
    return [window_batch(cs.val, context, batch, rng, device) for _ in range(n_batches)]


# %% [markdown]
# One call trains a model with the loop of section 4, and `real_word_shares` (click to
# show) counts how many of the words a model writes occur in the training text.

# %% tags=["save"]
def char_experiment(cs, width, heads, blocks, context, steps, batch, eval_batches,
                    device, dropout=0.0, model_seed=0, desc=""):
    """Train one character model; windows from a generator seeded by model_seed."""
    model = char_model(len(cs.chars), width, heads, blocks, context, dropout,
                       model_seed)
    rng = torch.Generator().manual_seed(model_seed + 1)
    history = train(model, lambda: window_batch(cs.train, context, batch, rng, device),
                    steps, char_eval_batches(cs, context, batch, eval_batches, device),
                    max(1, steps // 10), device, desc=desc)
    return model, history


# %% tags=["save", "hide-input"]
def real_word_shares(text, train_words, long=5):
    """Shares of the words of a sample (runs of letters, lower-cased) that occur in the
    training text: of all words, and of those of at least ``long`` letters. The last
    word is left out, since the sample may stop in the middle of it."""
    words = re.findall(r"[a-z]+", text.lower())[:-1]
    longer = [w for w in words if len(w) >= long]
    return tuple(sum(w in train_words for w in ws) / max(1, len(ws))
                 for ws in (words, longer))


# %%
cs = load_characters()
assert len(cs.chars) == 65


def decode(ids):
    return "".join(cs.chars[i] for i in ids)


# %% tags=["hide-input"]
glue("tiny_chars", len(cs.text), display=False)
glue("char_vocab", len(cs.chars), display=False)

# %% [markdown]
# ## The yardstick: nanoGPT's recipes
#
# The reference numbers are nanoGPT's {cite:p}`karpathy2022nanogpt`, Karpathy's
# character-level Shakespeare recipes on the corpus of char-rnn
# {cite:p}`karpathy2015unreasonable`: a small one for a CPU and a larger one for a GPU, with
# the validation losses its README reports. nanoGPT uses pre-norm blocks, learned positions,
# GELU and an output layer tied to the token embedding; ours are the post-norm blocks,
# sine-cosine positions, ReLU and a separate output layer of this chapter (both are
# bias-free). The table sets the recipes beside the one this run trains. A useful measure
# of how much training a recipe gets is the number of *predicted characters*: every position
# of every window of every update.

# %% tags=["hide-input"]
NANOGPT = {  # config/train_shakespeare_char.py, and the CPU settings of the README
    "nanoGPT CPU": dict(blocks=4, width=128, heads=4, context=64, batch=12,
                        steps=2_000, dropout=0.0),
    "nanoGPT GPU": dict(blocks=6, width=384, heads=6, context=256, batch=64,
                        steps=5_000, dropout=0.2),
}
NANOGPT_VAL = {"nanoGPT CPU": 1.88, "nanoGPT GPU": 1.47}
ours = dict(blocks=run.char_blocks, width=run.char_width, heads=run.char_heads,
            context=run.char_context, batch=run.batch, steps=run.char_steps,
            dropout=run.char_dropout)


def predicted_chars(recipe):
    return recipe["steps"] * recipe["batch"] * recipe["context"]


# %% tags=["hide-input"]
def recipe_row(name, r, loss):
    cells = [name, f"{r['blocks']} × {r['width']}, {r['heads']}", r["context"],
             f"{r['batch']} × {r['steps']:,}", f"{r['dropout']:g}",
             f"{predicted_chars(r):,}", loss]
    return "| " + " | ".join(str(c) for c in cells) + " |"


display(Markdown(
    "| recipe | blocks × width, heads | context | batch × updates | dropout "
    "| predicted characters | validation loss |\n" + "|---" * 7 + "|\n"
    + "\n".join([recipe_row(k, r, f"{NANOGPT_VAL[k]:.2f}") for k, r in NANOGPT.items()])
    + "\n" + recipe_row("ours, this run", ours, "see below")))

# %% [markdown]
# ## Before and after training
#
# First the untrained model: its validation loss, and a sample of 500 characters after
# the prompt `ROMEO:` on a line of its own after a blank line, the way a speaker's turn
# begins in the play. Then the trained model, with the same prompt and the same
# temperature, 0.8.

# %%
SPEAKER_PROMPT, N_SAMPLE, SAMPLE_TAU = "\n\nROMEO:\n", 500, 0.8
prompt_ids = [cs.to_id[ch] for ch in SPEAKER_PROMPT]
shape = (run.char_width, run.char_heads, run.char_blocks, run.char_context)
untrained = char_model(len(cs.chars), *shape, run.char_dropout).to(device)
untrained_batches = char_eval_batches(cs, run.char_context, run.batch, run.eval_batches,
                                      device)
untrained_loss = mean_loss(untrained, untrained_batches)
before = decode(sample(untrained, prompt_ids, N_SAMPLE, temperature=SAMPLE_TAU,
                       seed=1)[len(prompt_ids) :])

model, history = char_experiment(cs, *shape, run.char_steps, run.batch,
                                 run.eval_batches, device, run.char_dropout,
                                 desc="character model")
# The same weights and windows give the same loss; 1e-5 allows a GPU's summation order.
assert math.isclose(history["val"][0], untrained_loss, rel_tol=1e-5)
assert history["tokens"] == predicted_chars(ours)  # windows have no padding
after = decode(sample(model, prompt_ids, N_SAMPLE, temperature=SAMPLE_TAU,
                      seed=1)[len(prompt_ids) :])
print(f"Before training:\n{before}\n\nAfter training:\n{after}")

# %% tags=["hide-input"]
# Jensen: logsumexp(z) >= mean(z) + ln V, with equality only when all logits are equal.
with torch.no_grad():
    untrained.eval()
    jensen_gap = np.mean([  # batches of equal size: the mean of their means is the mean
        (z.logsumexp(-1) - z.mean(-1) - math.log(len(cs.chars))).mean().item()
        for z in (untrained(x).double()
                  for x, _ in capped(untrained_batches, what="evaluations"))]).item()
assert untrained_loss > math.log(len(cs.chars))  # expected, not certain: see the text
assert jensen_gap > 0  # the numeric check of the inequality

on_gpu = run.profile == "gpu"
reference = "nanoGPT GPU" if on_gpu else "nanoGPT CPU"
# Our acceptance bound, asserted below: a margin over nanoGPT's 1.47 (gpu) and 1.88
# (cpu) for the differences of recipe. The reference gets no verdict (rule "beside").
char_bound = 1.6 if on_gpu else 2.1
results.compare(
    "char_val_loss", history["best_val"], NANOGPT_VAL[reference], tolerance=0.0,
    rule="beside", source=f"nanoGPT shakespeare_char ({reference[-3:]} recipe)",
    description="character-level validation loss (best evaluation)",
    note=(f"our acceptance bound, asserted: {char_bound:.1f}; ours: post-norm, "
          f"sine-cosine positions, {predicted_chars(ours):,} predicted characters; "
          f"nanoGPT: pre-norm, learned positions, "
          f"{predicted_chars(NANOGPT[reference]):,}"))
results.record("char_last_val_loss", history["last_val"],
               description="character-level validation loss, last evaluation")
results.record("char_tokens_per_second", history["tokens_per_second"], unit="chars/s")
results.record("char_train_minutes", history["seconds"] / 60, unit="min")
results.record("char_parameters", n_parameters(model))
words_before, _ = real_word_shares(before, cs.train_words)
words_after, long_after = real_word_shares(after, cs.train_words)
speaker_lines = re.findall(r"^[A-Z][A-Za-z ]*:$", after, re.MULTILINE)  # name and colon
for name, value in [
    ("char_train_loss", float(np.mean(history["train"][-50:]))),
    ("char_epochs", history["tokens"] / len(cs.train)),
    ("char_uniform_loss", math.log(len(cs.chars))),
    ("char_initial_loss", untrained_loss),
    ("char_jensen_gap", jensen_gap), ("char_reference_name", reference),
    ("char_reference_val", NANOGPT_VAL[reference]), ("char_bound", char_bound),
    ("char_words_before", 100 * words_before), ("char_words_after", 100 * words_after),
    ("char_long_words_after", 100 * long_after),
    ("char_speaker_turns", len(speaker_lines)),
    ("char_best_step", history["best_step"]), ("char_steps", run.char_steps),
]:
    glue(name, value, display=False)
if run.profile != "smoke":
    assert history["best_val"] <= char_bound, history["best_val"]  # acceptance
    assert words_after > words_before, (words_after, words_before)

fig, ax = plots.figure(height=3.6)
window = max(1, run.char_steps // 50)
smoothed = moving_average(history["train"], window)
ax.plot(np.arange(window, window + len(smoothed)), smoothed,
        label=f"training loss, moving average of {window}")
ax.plot(history["val_step"], history["val"], "o-", ms=3, label="validation loss")
ax.axhline(math.log(len(cs.chars)), color="gray", ls=":",
           label=f"uniform guess, ln {len(cs.chars)}")
ax.set(xlabel="weight updates", ylabel="cross-entropy (nats per character)")
ax.legend()
plots.glue_figure("fig_char_curves", fig)

# %% [markdown]
# ```{glue:figure} fig_char_curves
# ---
# name: fig-bt-char-curves
# alt: >-
#   Training and validation loss of the character model falling from above the dotted
#   uniform-guess line, fast at first and then slowly.
# ---
# Loss of the character model against weight updates. The first validation point lies
# above the uniform guess (dotted); then the training loss (moving average) and the
# validation loss (dots) fall fast and flatten.
# ```
#
# Before training the validation loss is {glue:text}`char_initial_loss:.3f`, above
# $\ln$ {glue:text}`char_vocab` = {glue:text}`char_uniform_loss:.2f`, the loss of a uniform
# guess: the untrained logits of a position are not all equal, and by Jensen's inequality
# their log-sum-exp exceeds their mean plus $\ln$ {glue:text}`char_vocab` (here by
# {glue:text}`char_jensen_gap:.3f` on average), so a target whose logit is a typical one
# costs more than under the uniform guess. After {glue:text}`char_train_minutes:.1f` minutes
# of training ({glue:text}`char_parameters:,` parameters,
# {glue:text}`char_tokens_per_second:,.0f` characters per second;
# {numref}`fig-bt-char-curves`) the best validation loss is {glue:text}`char_val_loss:.3f`
# nats per character, at update {glue:text}`char_best_step:,` of
# {glue:text}`char_steps:,` (the last evaluation: {glue:text}`char_last_val_loss:.3f`).
# Our yardstick is the {glue:text}`char_reference_name` recipe, which reaches about
# {glue:text}`char_reference_val:.2f`: we accept our model if its loss is at most
# {glue:text}`char_bound:.1f` (asserted; the Reproduction page lists ours beside the
# reference). The table above shows how far apart the recipes are in the number of
# characters predicted in training, and the architectures, the weight decay and the warm-up
# differ as well, so the comparison is a sanity check, not a race.
#
# The training loss (moving average of the last 50 mini-batches) is
# {glue:text}`char_train_loss:.3f` against {glue:text}`char_val_loss:.3f` for validation.
# The model went {glue:text}`char_epochs:.1f` times through the training characters; the
# validation text is the last tenth of the file: other scenes, other speakers, other names.
#
# ## What the loss means in the text
#
# Counting as a word any run of letters, in lower case,
# {glue:text}`char_words_before:.0f` % of the words of the untrained model's sample occur
# somewhere in the training text, and {glue:text}`char_words_after:.0f` % of the trained
# model's (asserted: more); of its words of five letters or more,
# {glue:text}`char_long_words_after:.0f` % occur there. Short words like *the*, *and* and
# *my* count as real even when a model places them at random, so the longer words are the
# better test. The sample opens {glue:text}`char_speaker_turns` new speaker turns by itself,
# lines that hold only a name and a colon.
#
# Why a play and not, say, an encyclopedia article (001 P4 asks)? Training minimized the
# cross-entropy on these characters and nothing else: the model is an estimate of the
# distribution of the next character *in this text*, and sampling draws from that estimate.
# Names followed by colons, short lines and archaic pronouns are what the text is made of;
# an article's sentences and vocabulary are nowhere in it.
#
# ## What this section showed
#
# The same Transformer, trained on characters, starts above the uniform guess (Jensen's
# inequality) and ends within our acceptance bound of nanoGPT's published loss, with fewer
# predicted characters and a different architecture. Its samples look like the play:
# speaker turns, short lines, mostly real short words, and longer words that are often
# invented.
#
# ## Exercises
#
# 1. **The source's equations, literally.** Put the sigmoid of 000 on $q$, $k$ and $v$
#    (section 2) and train this model. How much worse is the validation loss, and why does
#    it still learn?
#
#    :::{dropdown} Hint
#    Attention can no longer be sharp (section 2's bound), but the MLPs and the residual
#    path still see the current character, and soft averages of the recent characters still
#    carry information: expect a loss between this model's and that of a bigram model.
#    :::
#
# 2. **Pre-norm.** Move the LayerNorm before attention and the MLP as nanoGPT does. Does
#    training become less sensitive to the learning rate? Try four times the learning rate
#    with both.
#
#    :::{dropdown} Hint
#    Pass `lr=4e-3` to `train` (through `char_experiment`) for both variants and compare
#    the validation curves; with post-norm, the warm-up matters more.
#    :::
#
# 3. **Temperature.** Sample 2,000 characters at temperatures 0.5, 0.8 and 1.2 and compute
#    `real_word_shares` for each. Which temperature writes the most real long words, and
#    what does the lowest one do instead?
#
#    :::{dropdown} Answer
#    A low temperature favours the most likely continuations: real words, but the same
#    few words and phrases repeated. A high temperature invents more words. The share of
#    real long words falls as the temperature rises.
#    :::
