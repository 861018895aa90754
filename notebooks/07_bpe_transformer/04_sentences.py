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
# # Training on sentences, and sampling
#
# 000 P1(c) and (d) ask for the Transformer of {doc}`section 3 <03_model>` trained to
# complete a sentence, on the corpus and with the BERT-style tokenizer of
# {doc}`section 1 <01_bpe>`, and for completions of a few prompts. Each training example is
# one sentence, so a mini-batch holds sentences of unequal length, padded to the longest:
# this section makes sure that padding changes nothing, compares the model with a baseline
# that ignores the context, keeps the best model seen during training, and samples from it
# with temperature and top-$k$.

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
import numpy as np
import torch
from IPython.display import Markdown, display

from helpers import data, plots, profiles, results
from helpers.glue import glue
from helpers.lessons.bpe_transformer import (
    BOOKS,
    SOURCE_T,
    SPECIALS,
    configure_device,
    n_parameters,
    source_model,
    train_bert_tokenizer,
)

run = profiles.setup(
    profile,
    seed=7,
    vocab_size=(512, 1024, 2048),  # BPE vocabulary, special tokens included
    lm_chars=(300_000, 10_000_000, 10_000_000),  # corpus prefix cut into sentences
    lm_blocks=(2, 2, 4),  # Transformer blocks (the source: 2-4)
    lm_batch=(8, 32, 64),  # sentences per mini-batch
    lm_steps=(20, 2_500, 4_000),  # updates: about 1 pass (cpu), 3 passes (gpu)
    lm_dropout=(0.0, 0.0, 0.1),  # dropout: only the gpu profile sees a sentence twice
    lm_eval_every=(10, 250, 250),  # updates between validation losses
    lm_val_batches=(3, 50, 100),  # validation mini-batches of sentences (about)
)
device = run.device
configure_device(device)  # one thread on a CPU, TF32 on recent NVIDIA GPUs (section 3)
run

# %% [markdown]
# ## Sentences as examples
#
# We join the lines of the corpus, cut it after `.`, `!` or `?`, keep sentences of at least
# four words, and encode each as `[CLS] tokens [SEP]`: `[CLS]` gives the first word
# something to be predicted from, and predicting `[SEP]` teaches the model where sentences
# end. A sentence that does not fit in $T + 1 = 129$ tokens with its `[CLS]` and `[SEP]` is
# cut to `[CLS]` and its first 128 tokens and gets no `[SEP]`: it does not end there, and a
# `[SEP]` after the cut would teach the model to stop in mid-sentence. A random 5 % of the
# sentences is held out for validation.

# %%
import re

corpus = "\n".join(data.load_text(name) for name in BOOKS)[: run.lm_chars]
tokenizer = train_bert_tokenizer(corpus, run.vocab_size)  # section 1's production path
PAD, CLS, SEP = (tokenizer.token_to_id(s) for s in ["[PAD]", "[CLS]", "[SEP]"])

flat = re.sub(r"\s+", " ", corpus)
sentences = [s for s in re.split(r"(?<=[.!?])\s+", flat) if len(s.split()) >= 4]
encoded, n_cut = [], 0
for e in tokenizer.encode_batch(sentences):
    if len(e.ids) + 2 <= SOURCE_T + 1:
        encoded.append([CLS, *e.ids, SEP])
    else:  # cut to T + 1 tokens, with no [SEP]: the sentence goes on
        encoded.append([CLS, *e.ids[:SOURCE_T]])
        n_cut += 1
assert max(len(s) for s in encoded) <= SOURCE_T + 1
assert sum(s[-1] != SEP for s in encoded) == n_cut

order = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(run.seed))
n_val = max(run.lm_batch, len(encoded) // 20)
val_sentences = [encoded[i] for i in order[:n_val].tolist()]
train_sentences = [encoded[i] for i in order[n_val:].tolist()]

# %% tags=["hide-input"]
n_train_tokens = sum(len(s) - 1 for s in train_sentences)
glue("n_sentences", len(encoded), display=False)
glue("n_train_sentences", len(train_sentences), display=False)
glue("n_train_tokens", n_train_tokens, display=False)
glue("median_sentence_tokens", int(np.median([len(s) for s in encoded])), display=False)
glue("truncated_pct", 100 * n_cut / len(encoded), display=False)

# %% [markdown]
# The corpus gives {glue:text}`n_sentences:,` sentences, {glue:text}`n_train_tokens:,`
# training tokens in {glue:text}`n_train_sentences:,` training sentences; the median
# sentence has {glue:text}`median_sentence_tokens` tokens including `[CLS]` and `[SEP]`,
# and {glue:text}`truncated_pct:.2f` % of the sentences are cut (and have no `[SEP]`).
#
# ## Padding that changes nothing
#
# A mini-batch of sentences of unequal length is padded with `[PAD]` on the right to the
# longest one. Padding must not count: the targets at padded positions are set to $-100$,
# which `F.cross_entropy` ignores (`ignore_index`), so the loss is the mean over real
# tokens only. The keys of padded positions are also masked in attention, although with
# right padding and the causal mask a real token never sees them anyway.
#
# Random sentences would make most of a batch padding: one long sentence of *War and Peace*
# pads every short sentence of its batch to its length. So a mini-batch is a random run of
# neighbours in the list of training sentences sorted by length (*length bucketing*): all
# sentences of a batch have similar lengths, and which lengths come next is still random.

# %% tags=["save"]
import numpy as np


def pad_batch(batch, pad_id, device="cpu"):
    """Token lists -> inputs (B, L) padded with pad_id, targets (B, L), -100 at pads."""
    L = max(len(s) for s in batch) - 1
    inputs = torch.full((len(batch), L), pad_id)
    targets = torch.full((len(batch), L), -100)
    for row, s in enumerate(batch):
        inputs[row, : len(s) - 1] = torch.tensor(s[:-1])
        targets[row, : len(s) - 1] = torch.tensor(s[1:])
    return inputs.to(device), targets.to(device)


# %% [markdown]
# `bucketed_batches` returns a function that draws such a run of neighbours and pads it
# (click to show).

# %% tags=["save", "hide-input"]
def bucketed_batches(sentences, batch_size, pad_id, device, seed):
    """Mini-batches forever: each a random run of neighbours in length order."""
    by_length = sorted(sentences, key=len)
    rng = np.random.default_rng(seed)

    def next_batch():
        start = rng.integers(len(by_length) - batch_size + 1)
        return pad_batch(by_length[start : start + batch_size], pad_id, device)

    return next_batch


# %% [markdown]
# Two checks on an untrained model in float64 make "padding changes nothing" concrete: a
# sentence's logits inside a padded batch equal its logits computed alone, and the loss of
# the batch equals the mean of the sentences' own losses, each weighted by its number of
# tokens (not their plain mean, which the last assert rules out). The tolerance is rounding:
# products of different sizes may sum in a different order.

# %%
import math

import torch.nn.functional as F

val_by_length = sorted(val_sentences, key=len)
pad_check = source_model(run.vocab_size, run.lm_blocks, pad_id=PAD).double().eval()
trio = [val_by_length[0], val_by_length[len(val_by_length) // 2], val_by_length[-1]]
x_trio, y_trio = pad_batch(trio, PAD)
assert len({len(s) for s in trio}) == 3 and (x_trio == PAD).any()
assert (x_trio[:, 0] == CLS).all() and ((x_trio == PAD) == (y_trio == -100)).all()
with torch.no_grad():
    padded_logits = pad_check(x_trio)
    own_losses, own_counts = [], []
    for row, s in enumerate(trio):
        alone = pad_check(torch.tensor([s[:-1]]))[0]  # the sentence alone, no padding
        inside = padded_logits[row, : len(s) - 1]
        assert torch.allclose(inside, alone, atol=1e-10, rtol=0)
        own_losses.append(F.cross_entropy(alone, torch.tensor(s[1:])).item())
        own_counts.append(len(s) - 1)
    batch_loss = F.cross_entropy(padded_logits.flatten(0, 1), y_trio.flatten(),
                                 ignore_index=-100).item()
weighted = np.average(own_losses, weights=own_counts)
assert math.isclose(batch_loss, weighted, rel_tol=1e-12)
assert not math.isclose(batch_loss, np.mean(own_losses), rel_tol=1e-6)

# %% [markdown]
# ## The baseline and the training loop
#
# A model that ignores the context and always predicts the frequencies of the training
# tokens (a *unigram* model, with one added to every count so that no token has probability
# zero) has as its loss the cross-entropy of the validation tokens under those frequencies.
# We measure it on exactly the tokens of the model's validation loss. A Transformer that
# learned anything from the context must beat it clearly.

# %% tags=["save"]
def unigram_loss(train, val, vocab):
    targets = np.concatenate([s[1:] for s in train])
    counts = 1 + np.bincount(targets, minlength=vocab)  # add-one: no probability 0
    log_p = np.log(counts / counts.sum())
    return float(-np.mean(log_p[np.concatenate([s[1:] for s in val])]))


# %% [markdown]
# The model's losses are measured by `target_losses`, the loss of every real target of a
# fixed set of batches, and `mean_loss`, their mean (click to show).

# %% tags=["save", "hide-input"]
from helpers.dryrun import capped


@torch.no_grad()
def target_losses(model, batches, last_only=False):
    """The loss of every target that is not padding (-100), in float64; with
    `last_only`, of the last position of each sequence only."""
    model.eval()
    losses = []
    for inputs, targets in capped(batches, what="evaluations"):
        logits = model(inputs)
        if last_only:
            logits, targets = logits[:, -1:], targets[:, -1:]
        targets = targets.flatten()
        loss = F.cross_entropy(logits.flatten(0, 1), targets, ignore_index=-100,
                               reduction="none")
        losses.append(loss[targets != -100].double().cpu())
    model.train()
    return torch.cat(losses)


def mean_loss(model, batches):
    return target_losses(model, batches).mean().item()


# %% [markdown]
# The training loop is the same for every model of this chapter: AdamW with a short linear
# warm-up and a cosine decay of the learning rate, gradient clipping at norm 1, the training
# loss of each mini-batch recorded, and the validation loss every `eval_every` updates on a
# fixed set of validation batches. A model that trains for several passes over its data can
# start to fit the training sentences in particular, and its validation loss then rises
# again; so the loop keeps a copy of the weights at the best validation loss and returns the
# model with those weights, reporting both the best and the last loss. Throughput counts the
# real (non-padding) target tokens per second of the updates themselves: building the
# batches and the evaluations are excluded. The device and the arithmetic are set in one
# place, the first lines of the loop: `mixed_precision` picks the arithmetic of the forward
# pass, float32 on a CPU; a GPU runs it in bfloat16 on Ampere and Hopper cards and in
# float16 with loss scaling on a T4, while the weights and the updates stay float32.
# `capped` is the `range` itself, except in a dry run (see the README), where it runs a few
# updates.

# %% tags=["save"]
import copy
import time

from tqdm.auto import tqdm

from helpers.precision import mixed_precision


def train(model, next_batch, steps, eval_batches, eval_every, device, lr=1e-3,
          desc="training"):
    """Train with AdamW; return the history and leave the best-validation weights in
    ``model``."""
    model.to(device).train()
    amp = mixed_precision(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99),
                                  weight_decay=0.01)
    warmup = max(1, steps // 20)

    def factor(s):  # linear warm-up, then a cosine from 1 down to 0.1
        cosine = 0.1 + 0.45 * (1 + math.cos(math.pi * s / steps))
        return min(1.0, (s + 1) / warmup) * cosine

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    history = {"train": [], "val_step": [0], "val": [mean_loss(model, eval_batches)],
               "tokens": 0, "batch_tokens": [], "seconds": 0.0, "precision": amp.name}
    best_state = copy.deepcopy(model.state_dict())
    for step in tqdm(capped(range(1, steps + 1)), desc=desc, leave=False):
        inputs, targets = next_batch()
        start = time.perf_counter()
        with amp.autocast():
            logits = model(inputs)
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                                   ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(loss, optimizer, model.parameters(), max_norm=1.0)
        schedule.step()
        history["train"].append(loss.item())  # .item() waits for the GPU: honest timing
        history["seconds"] += time.perf_counter() - start
        history["batch_tokens"].append(int((targets != -100).sum()))
        history["tokens"] += history["batch_tokens"][-1]
        if step % eval_every == 0 or step == steps:
            history["val_step"].append(step)
            history["val"].append(mean_loss(model, eval_batches))
            if history["val"][-1] < min(history["val"][:-1]):
                best_state = copy.deepcopy(model.state_dict())
    best = int(np.argmin(history["val"]))
    history.update(best_val=history["val"][best], best_step=history["val_step"][best],
                   last_val=history["val"][-1],
                   tokens_per_second=history["tokens"] / history["seconds"])
    model.load_state_dict(best_state)
    return history


# %% tags=["save", "hide-input"]
def moving_average(values, window):
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


# %% [markdown]
# The validation loss is measured on every $k$-th validation sentence in length order
# (about {glue:text}`lm_val_sentences:,` sentences), which covers short and long sentences
# alike.

# %%
torch.manual_seed(run.seed)
lm = source_model(run.vocab_size, run.lm_blocks, dropout=run.lm_dropout, pad_id=PAD)
stride = max(1, len(val_by_length) // (run.lm_val_batches * run.lm_batch))
val_pick = val_by_length[::stride]
val_batches = [pad_batch(val_pick[i : i + run.lm_batch], PAD, device)
               for i in range(0, len(val_pick), run.lm_batch)]
unigram = unigram_loss(train_sentences, val_pick, run.vocab_size)  # the same targets
assert sum(len(s) - 1 for s in val_pick) == sum(int((t != -100).sum())
                                                for _, t in val_batches)
next_batch = bucketed_batches(train_sentences, run.lm_batch, PAD, device, run.seed)
lm_history = train(lm, next_batch, run.lm_steps, val_batches, run.lm_eval_every, device,
                   desc="BPE Transformer")

# %% tags=["hide-input"]
train_stride = max(1, len(train_sentences) // len(val_pick))
train_pick = sorted(train_sentences, key=len)[::train_stride]
train_eval = mean_loss(lm, [pad_batch(train_pick[i : i + run.lm_batch], PAD, device)
                            for i in range(0, len(train_pick), run.lm_batch)])
lm_epochs = lm_history["tokens"] / n_train_tokens
# The gpu profile's steps, chosen for about three passes over these sentences:
gpu_passes = (run.value_in("lm_steps", "gpu") * run.value_in("lm_batch", "gpu")
              / len(train_sentences))
results.record("lm_unigram_loss", unigram,
               description="validation cross-entropy of unigram")
results.record("lm_val_loss", lm_history["best_val"],
               description="BPE model validation loss, best evaluation (model kept)")
results.record("lm_last_val_loss", lm_history["last_val"],
               description="BPE model validation loss at the last evaluation")
results.record("lm_train_loss", float(np.mean(lm_history["train"][-50:])),
               description="mean training loss of the last 50 mini-batches")
results.record("lm_train_eval_loss", train_eval,
               description="BPE model loss on training sentences, measured as val")
results.record("lm_tokens_per_second", lm_history["tokens_per_second"], unit="tokens/s")
results.record("lm_train_minutes", lm_history["seconds"] / 60, unit="min")
results.record("lm_passes", lm_epochs, description="passes over the training tokens")
results.record("lm_precision", lm_history["precision"],
               description="arithmetic of the forward pass in training")
glue("lm_parameters", n_parameters(lm), display=False)  # recorded in section 3
lm_gap = unigram - lm_history["best_val"]
glue("lm_gap", lm_gap, display=False)
glue("lm_perplexity_factor", math.exp(lm_gap), display=False)
glue("lm_best_step", lm_history["best_step"], display=False)
glue("lm_steps", run.lm_steps, display=False)
glue("lm_val_sentences", len(val_pick), display=False)
glue("lm_batch_tokens_ratio",
     max(lm_history["batch_tokens"]) / min(lm_history["batch_tokens"]), display=False)
glue("gpu_passes", gpu_passes, display=False)
glue("gpu_steps", run.value_in("lm_steps", "gpu"), display=False)
glue("gpu_batch", run.value_in("lm_batch", "gpu"), display=False)
glue("gpu_dropout", run.value_in("lm_dropout", "gpu"), display=False)
if run.profile != "smoke":
    # "Clearly below": by at least 1 nat, i.e. the perplexity divided by e or more.
    assert lm_history["best_val"] < unigram - 1.0, (lm_history["best_val"], unigram)
    assert 2 <= gpu_passes <= 4, gpu_passes  # the gpu profile's steps fit its data
assert lm_history["best_val"] < lm_history["val"][0]  # training lowered the loss

fig, ax = plots.figure(height=3.8)
window = max(1, run.lm_steps // 50)
smoothed = moving_average(lm_history["train"], window)
steps = np.arange(1, len(lm_history["train"]) + 1)
ax.plot(steps, lm_history["train"], color="C0", alpha=0.2, lw=0.7,
        label="training loss of each mini-batch")
ax.plot(np.arange(window, window + len(smoothed)), smoothed, color="C0",
        label=f"training loss, moving average of {window}")
ax.plot(lm_history["val_step"], lm_history["val"], "o-", color="C1", ms=3,
        label="validation loss")
ax.axhline(unigram, color="gray", ls="--", label="unigram baseline (validation)")
ax.set(xlabel="weight updates", ylabel="cross-entropy (nats per token)")
ax.legend(loc="center right", bbox_to_anchor=(1, 0.6), fontsize=8)
plots.glue_figure("fig_lm_curves", fig)

# %% [markdown]
# ```{glue:figure} fig_lm_curves
# ---
# name: fig-bt-lm-curves
# alt: >-
#   Training loss of each mini-batch (a noisy band), its moving average and the validation
#   loss, all falling from about the log of the vocabulary size to well below the dashed
#   unigram baseline.
# ---
# Loss of the BPE Transformer against weight updates. The faint band is the loss of single
# mini-batches, whose spread comes from their lengths; the validation loss (dots) drops
# below the unigram baseline (dashed) early and keeps falling more slowly.
# ```
#
# The model has {glue:text}`lm_parameters:,` parameters and trained at
# {glue:text}`lm_tokens_per_second:,.0f` tokens per second for
# {glue:text}`lm_train_minutes:.1f` minutes in {glue:text}`lm_precision`
# ({numref}`fig-bt-lm-curves`). Its best
# validation loss, {glue:text}`lm_val_loss:.3f` nats per token at update
# {glue:text}`lm_best_step:,` of {glue:text}`lm_steps:,` (the last evaluation gave
# {glue:text}`lm_last_val_loss:.3f`), is {glue:text}`lm_gap:.2f` nats below the
# {glue:text}`lm_unigram_loss:.3f` of the unigram baseline: the context divides the
# perplexity by {glue:text}`lm_perplexity_factor:.1f` (asserted: by at least $e$).
#
# The moving average of the training loss and the validation curve are not measured alike:
# the moving average gives every mini-batch the same weight, whatever its number of tokens,
# and with length bucketing the largest mini-batch of this run had
# {glue:text}`lm_batch_tokens_ratio:.0f` times as many real tokens as the smallest.
# Measured like the validation loss, on about as many training sentences, the training loss
# is {glue:text}`lm_train_eval_loss:.3f` against {glue:text}`lm_val_loss:.3f`. The model saw
# {glue:text}`lm_passes:.2f` times as many tokens as the training set holds. Below one pass
# it cannot have learned particular sentences by heart, and the two losses measured alike
# stay close; after several passes without regularization the training loss keeps falling
# while the validation loss turns up, which is what keeping the best model guards against.
#
# ```{note}
# How many updates? Our longest setting ({glue:text}`gpu_steps:,` updates of
# {glue:text}`gpu_batch` sentences) is chosen from the size of the data, not from a run:
# {glue:text}`n_train_sentences:,` training sentences, about
# {glue:text}`n_train_tokens:,` tokens (about as many as the model has parameters at that
# scale, 2.4 million), make it {glue:text}`gpu_passes:.1f` passes (asserted: between 2 and
# 4), with dropout {glue:text}`gpu_dropout:g`. With about one training token per parameter,
# repeated passes soon let a model fit the training sentences in particular; an earlier
# setting of 20,000 updates without dropout meant about 15 passes. A few passes with light
# dropout stay where the held-out loss usually still improves, and the best-model rule picks
# the stopping point within the run, so a setting somewhat too long costs time, not quality.
# ```
#
# ## Sampling
#
# 000 P1(d) completes a prompt one token at a time: encode the prompt, draw
# $\hat x_{t+1} \sim p(\cdot \mid x_1, \dots, x_t)$ from the softmax of the last logits,
# append it, repeat. Two knobs shape the draw. The *temperature* $\tau$ divides the logits
# before the softmax: $\tau < 1$ sharpens the distribution towards the most likely token,
# $\tau > 1$ flattens it. *Top-$k$* keeps only the $k$ largest logits, so that the long tail
# of unlikely tokens, each rare but many together, is never drawn. The positions come with
# the context: the model adds the code of position $t$ to the $t$-th token, so feeding the
# growing sequence is all it needs; beyond $T$ tokens we keep the last $T$.

# %% tags=["save"]
@torch.no_grad()
def sample(model, ids, n_new, temperature=1.0, top_k=None, banned=(), seed=0):
    """Extend ``ids`` by ``n_new`` tokens drawn from ``model`` (on its own device)."""
    model.eval()
    device = next(model.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    ids = list(ids)
    for _ in range(n_new):
        context = torch.tensor([ids[-model.context :]], device=device)
        logits = model(context)[0, -1] / temperature
        logits[list(banned)] = float("-inf")  # tokens the sampler may never draw
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probabilities = torch.softmax(logits, dim=-1)
        ids.append(int(torch.multinomial(probabilities, 1, generator=rng)))
    return ids


# %% tags=["save", "hide-input"]
def markdown_text(text):
    """Text shown in Markdown: escape what Markdown or MyST would interpret."""
    text = re.sub(r"([\\`*_{}\[\]<>#|$~])", r"\\\1", text)
    return text.replace("\n", " ⏎ ")


# %% [markdown]
# The sampler may not draw special tokens: a `[SEP]` would end a completion, possibly before
# the 7-8 words the source asks for, so we draw 128 tokens and keep the text up to the
# eighth word (a run of letters: punctuation does not count as a word). Eight words usually
# take far fewer tokens, but a draw can wander into a long run of quotation marks, which
# count as no words (one did, in an earlier run of this section, with 32 tokens). Every
# prompt and every setting gets its own seed, so the draws of the two settings are
# independent. (With one
# seed per prompt for both settings, the two would use the same uniform random numbers, and
# since their distributions are similar they would often pick the same first tokens: the
# completions would look alike for a reason that has nothing to do with the settings.)

# %% tags=["hide-input"]
def first_words(text, n):
    """`text` up to the end of its n-th word (a run of letters), and the words kept."""
    words = list(re.finditer(r"[^\W\d_]+", text))
    end = words[n - 1].end() if len(words) >= n else len(text)
    return text[:end].strip(), min(len(words), n)


# %%
prompts = ["The Eiffel Tower is in", "What say you to my", "She looked at him and",
           "The king is dead, and", "It was a cold night in"]
settings = {"τ = 0.8, top-k 40": dict(temperature=0.8, top_k=40),
            "τ = 1.0": dict(temperature=1.0)}
completions = {}
for i, prompt in enumerate(prompts):
    prompt_ids = [CLS, *tokenizer.encode(prompt).ids]
    for j, (label, options) in enumerate(settings.items()):
        seed = run.seed * 1_000 + len(settings) * i + j  # one per prompt and setting
        out = sample(lm, prompt_ids, 128, banned=range(len(SPECIALS)), seed=seed,
                     **options)
        # Decode prompt and completion together, so that a first "##s" joins its word.
        shown, whole = tokenizer.decode(prompt_ids), tokenizer.decode(out)
        completion = whole[len(shown) :] if whole.startswith(shown) else whole
        completions[prompt, label], n_words = first_words(completion, 8)
        if run.profile != "smoke":
            assert n_words >= 7, completion  # 128 tokens: far over 8 English words

# %% tags=["hide-input"]
display(Markdown("\n\n".join(
    f"*{markdown_text(prompt)}* …\n\n" + "\n".join(
        f"- {label}: {markdown_text(completions[prompt, label])}" for label in settings)
    for prompt in prompts)))

# %% [markdown]
# The completions string together common words and punctuation in the manner of the
# corpus, but they hold no thought across a sentence, and some words are invented: a piece
# that starts a word followed by `##` pieces that never follow it in the text. The model is
# small. Five prompts are too few to tell the two sampling settings apart; in principle
# top-$k$ and $\tau < 1$ draw fewer rare tokens, and exercise 2 measures it. (The decoder
# puts spaces around apostrophes and quotes, because the BERT pre-tokenizer threw the
# original spacing away.)
#
# ## What this section showed
#
# Sentences padded on the right, with the padded targets ignored and the padded keys
# masked, train exactly as if each sentence were alone (asserted to rounding), and length
# bucketing keeps the padding small. The source's model beats a unigram baseline by well
# over a nat per token; the loop keeps the weights of the best validation loss, and the
# number of updates is chosen from the size of the data. Samples, drawn with independent
# seeds per setting, read like the corpus word by word but not sentence by sentence.
#
# ## Exercises
#
# 1. **The plain mean.** Replace `ignore_index` by a loss over all positions, padding
#    included (with `[PAD]` as the target there). What does the model learn to do, and why
#    does the validation loss measured that way look better than it is?
#
#    :::{dropdown} Answer
#    Predicting `[PAD]` after `[PAD]` is easy and soon costs almost nothing, so the mean
#    over all positions is pulled down by the padding, the more so the more padding a batch
#    has; the loss on real tokens is what matters and is what `ignore_index` measures.
#    :::
#
# 2. **Temperature.** Measure the fraction of completions that contain a non-word (a word
#    not in the training text) as the temperature goes from 0.5 to 1.5, with 100 prompts
#    and independent seeds.
#
#    :::{dropdown} Hint
#    Split the corpus into words once with `re.findall(r"[a-z]+", corpus.lower())` and
#    keep the set; a completion contains a non-word if one of its words (but the last, which
#    may be cut) is not in it.
#    :::
#
# 3. **Best or last.** Train the model for four times as many updates with dropout 0, and
#    plot the validation loss. Where is the best model, and how much worse is the last?
#
#    :::{dropdown} Hint
#    The history holds `best_step`, `best_val` and `last_val`. Expect the training loss
#    measured like validation (`mean_loss` on training sentences) to keep falling after the
#    validation loss has turned.
#    :::
