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
# # The data, a tokenizer and the score to beat
#
# A language model needs text, a way to cut the text into tokens, and a yardstick. This
# section loads the children's stories of TinyStories {cite}`eldan2023tinystories`, trains a
# byte-level BPE tokenizer on them, turns the stories into training sequences, and scores
# the simplest possible language model, one that ignores the context, in a unit that does
# not depend on the tokenizer: bits per character. Every later section starts from the
# same data through one call, `load_corpus`, defined at the end. (Cells that only load
# files or bundle results are collapsed: click to open them.)

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
# "sample": the offline mirror's 2 MiB sample; "full": the canonical TinyStories files (a
# 1.9 GB download); None: "full" in the gpu profile, the source's scale, else "sample".
tinystories: Literal["sample", "full"] | None = None

# %% tags=["hide-input"]
from helpers import profiles, results
from helpers.glue import glue

run = profiles.setup(
    profile,
    seed=601,
    vocab_size=(1024, 2048, 2048),  # BPE vocabulary, the end-of-story token included
    seq_len=(32, 64, 128),  # tokens per training sequence (the source does not state it)
    full_train_stories=(300, 20_000, 200_000),  # first stories of TinyStories-train.txt
    full_val_stories=(50, 1_000, 30_000),  # of TinyStories-valid.txt (about 22,000)
)
run

# %% [markdown]
# ## The stories
#
# TinyStories is a collection of about two million short stories written by GPT-3.5 and
# GPT-4 in the vocabulary of a three-year-old. `helpers.data` gives it in two forms, and
# the parameter `tinystories` chooses:
#
# - `"sample"`, the default on a laptop: the book's offline mirror holds the first 2 MiB of
#   the training file. We hold out 10% of its stories for validation, chosen at random with
#   the notebook's seed. The sample is small, so long runs see the training sequences
#   several times: "number of sequences" in this chapter counts sequences *seen*, with
#   repeats, and every run reports its number of passes over the training data.
# - `"full"`, the default at the source's scale on a GPU: the canonical training and
#   validation files, downloaded once (1.9 GB) and checked against the checksum Hugging
#   Face publishes with them. We read the first stories of the training file (the
#   settings' last rows), enough that no sequence repeats even at the source's 250,000, and
#   validate on the validation file.
#
# A run without network access (the machines these notes are built on) can use only the
# sample; at the source's scale, dozens of passes over it are a different experiment from
# the source's, and the later sections say so where it matters. A story that also occurs
# in training (a generated corpus may repeat one) would make the validation loss partly a
# training loss, so such stories leave the validation set. `load_stories` (collapsed
# below) returns the two splits and the number of validation stories left out.

# %% tags=["save", "hide-input"]
import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from helpers import data


def choose_source(tinystories: str | None, profile: str) -> str:
    """The `tinystories` parameter, or its default: the full files at the gpu scale."""
    source = tinystories or ("full" if profile == "gpu" else "sample")
    if source not in ("sample", "full"):
        raise ValueError(
            f"tinystories must be 'sample' or 'full' (or None), not {source!r}")
    return source


def load_stories(source: str, seed: int, full_train: int, full_val: int):
    """(training stories, validation stories, number of validation stories left out
    because they also occur in training)."""
    if source == "sample":
        shuffled = data.load_tinystories("sample")
        random.Random(seed).shuffle(shuffled)
        n_held_out = len(shuffled) // 10
        val, train = shuffled[:n_held_out], shuffled[n_held_out:]
    else:
        train = data.load_tinystories("train", max_stories=full_train)
        val = data.load_tinystories("valid", max_stories=full_val)
    seen = set(train)
    kept = [story for story in val if story not in seen]
    return train, kept, len(val) - len(kept)


# %%
source = choose_source(tinystories, run.profile)
train_stories, val_stories, n_left_out = load_stories(
    source, run.seed, run.full_train_stories, run.full_val_stories)
assert val_stories and not set(train_stories).intersection(val_stories)
print(train_stories[0][:300], "...")

# %% tags=["hide-input"]
n_chars = sum(map(len, train_stories + val_stories))
glue("data_source", {"sample": "the 2 MiB sample", "full": "the full files"}[source],
     display=False)
glue("n_stories", len(train_stories) + len(val_stories) + n_left_out, display=False)
glue("n_train_stories", len(train_stories), display=False)
glue("n_val_stories", len(val_stories), display=False)
glue("n_left_out", n_left_out, display=False)
glue("n_chars", n_chars, display=False)

# %% [markdown]
# This run uses {glue:text}`data_source`: {glue:text}`n_stories:,` stories
# ({glue:text}`n_chars:,` characters, once the repeats are left out), of which
# {glue:text}`n_train_stories:,` train and {glue:text}`n_val_stories:,` validate;
# {glue:text}`n_left_out` validation stories also occurred in training and were left out.
#
# ## A byte-level BPE tokenizer
#
# The source ships a pretrained tokenizer. We train our own byte-pair encoding (BPE)
# {cite}`sennrich2016neural` with the `tokenizers` library, on the training stories only.
# BPE starts from single symbols and repeatedly merges the most frequent adjacent pair into
# a new symbol until the vocabulary is full, so frequent words become one token and rare
# words are spelled from pieces. We use the *byte-level* variant (as GPT-2 does): the text
# is first turned into bytes, so every string can be encoded, nothing is ever unknown, and
# decoding gives back exactly the original text, spaces and newlines included. A space
# belongs to the word after it (`Ġday` is " day"). One special token, `<|endofstory|>`,
# marks where a story ends; since the next story follows it, the model also learns from it
# how stories begin.

# %% tags=["save"]
EOS = "<|endofstory|>"


def train_tokenizer(stories: list[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE with `vocab_size` tokens; EOS is token 0."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes
        show_progress=False,
    )
    tokenizer.train_from_iterator(stories, trainer)
    return tokenizer


# %%
tokenizer = train_tokenizer(train_stories, run.vocab_size)
eos_id = tokenizer.token_to_id(EOS)
assert tokenizer.get_vocab_size() == run.vocab_size and eos_id == 0

for text in ["Once upon a time there was a little girl named Lily.",
             "Zebras eat 3 kiwis!"]:
    encoding = tokenizer.encode(text)
    print(f"{text!r}\n  tokens {encoding.tokens}")
    assert tokenizer.decode(encoding.ids) == text
pieces = {w: len(tokenizer.encode(w).ids)
          for w in ("Once", " upon", " little", "Zebras", " kiwis")}
# the stories' common words are single tokens, rare ones are spelled from pieces
assert all(pieces[w] == 1 for w in ("Once", " upon", " little")), pieces
assert all(pieces[w] > 1 for w in ("Zebras", " kiwis")), pieces

# %% [markdown]
# The stories' common words ("Once", " upon", " little") are single tokens, while rare ones
# ("Zebras", " kiwis") are spelled from pieces, and decoding gives back the text exactly. We
# check that on every validation story below, and count characters per token, which we need
# to turn losses per token into losses per character.
#
# ## One stream of tokens per split
#
# Each split becomes one stream of token ids: an end-of-story token, the first story, an
# end-of-story token, the next story, and so on. The model predicts every token of the
# stream but the first, that is, every story token and every story's end. For the loss per
# character we count each story's characters plus one for its end (the end-of-story token
# stands for the boundary, which the raw file writes as a separator line).

# %% tags=["save"]
def token_stream(tokenizer: Tokenizer, texts: list[str],
                 chunk: int = 10_000) -> torch.Tensor:
    """[EOS] story_1 [EOS] story_2 [EOS] ... as one 1-d tensor of token ids.

    Encoded `chunk` stories at a time: the library's encodings carry tokens and
    offsets too, too much memory to hold for the hundreds of thousands of stories of
    the full data.
    """
    eos_id = tokenizer.token_to_id(EOS)
    pieces = [np.array([eos_id])]
    for start in range(0, len(texts), chunk):
        for encoding in tokenizer.encode_batch(texts[start : start + chunk]):
            pieces.append(np.array(encoding.ids + [eos_id]))
    return torch.from_numpy(np.concatenate(pieces))


# %%
train_stream = token_stream(tokenizer, train_stories)
val_stream = token_stream(tokenizer, val_stories)
# Decoding inverts encoding on every validation story (split the stream at the EOS).
ends = (val_stream == eos_id).nonzero().flatten()
val_pieces = torch.tensor_split(val_stream, ends)[1:]
assert len(val_pieces) == len(val_stories) + 1  # the last piece is the final EOS alone
assert all(tokenizer.decode(piece[1:].tolist()) == story
           for piece, story in zip(val_pieces, val_stories, strict=False))
val_chars = sum(len(s) + 1 for s in val_stories)  # +1: the end of each story
chars_per_token = val_chars / (len(val_stream) - 1)  # all but the leading EOS predicted

# %% tags=["hide-input"]
results.record("chars_per_token", chars_per_token,
               description="validation characters per predicted token (our BPE)")
glue("n_train_tokens", len(train_stream), display=False)
glue("n_val_tokens", len(val_stream), display=False)

# %% [markdown]
# The training stream has {glue:text}`n_train_tokens:,` tokens and the validation stream
# {glue:text}`n_val_tokens:,`, with {glue:text}`chars_per_token:.2f` characters per token.
#
# ## Sequences
#
# The model trains on sequences of a fixed length $T$ cut from the stream. Consecutive
# sequences overlap by one token: sequence $i$ is tokens $i(T-1)$ to $i(T-1) + T - 1$, so
# the last token of one sequence is the first of the next, and every token of the stream
# except the first is a prediction target exactly once (up to the last whole sequence: the
# fewer than $T - 1$ tokens after it are dropped). The source does not say how long its
# sequences are; ours are in the settings above. A sequence may run across the end of one
# story into the next: the end-of-story token between them teaches the model that a new
# story starts there. A collapsed check below confirms that the targets tile the stream.

# %% tags=["save"]
def cut_sequences(stream: torch.Tensor, length: int) -> torch.Tensor:
    """Sequences of `length` tokens overlapping by one; shape (n, length)."""
    n = (len(stream) - 1) // (length - 1)
    starts = torch.arange(n) * (length - 1)
    return stream[starts[:, None] + torch.arange(length)]


def predicted_tokens(stream: torch.Tensor, length: int) -> int:
    """How many tokens of `stream` the sequences of `cut_sequences` predict."""
    return ((len(stream) - 1) // (length - 1)) * (length - 1)


# %% tags=["hide-input"]
T = run.seq_len
train_seqs, val_seqs = cut_sequences(train_stream, T), cut_sequences(val_stream, T)
# Every target once: the predicted tokens (all but the first of each sequence) tile the
# stream, and each sequence starts with the last token of the one before.
targets = train_seqs[:, 1:].reshape(-1)
assert torch.equal(targets, train_stream[1 : 1 + len(targets)])
assert torch.equal(train_seqs[1:, 0], train_seqs[:-1, -1])

# %% tags=["hide-input"]
glue("n_train_seqs", len(train_seqs), display=False)
glue("n_val_seqs", len(val_seqs), display=False)
glue("seq_len", T, display=False)

# %% [markdown]
# That gives {glue:text}`n_train_seqs:,` training and {glue:text}`n_val_seqs:,` validation
# sequences of {glue:text}`seq_len` tokens.
#
# ## All of it in one call
#
# Later sections need the same data, tokenizer and sequences. `load_corpus` (collapsed
# below) repeats the steps above and keeps the results together in a `Corpus`; with the
# same seed it must give the same streams, which we check (the tokenizer's training is
# deterministic, so this is a demonstration that nothing in the steps depends on hidden
# state). The check is collapsed below.

# %% tags=["save", "hide-input"]
@dataclass
class Corpus:
    """The stories, the tokenizer, the token streams and the sequences of one run."""

    source: str
    train_stories: list[str]
    val_stories: list[str]
    n_left_out: int
    tokenizer: Tokenizer
    eos_id: int
    train_stream: torch.Tensor
    val_stream: torch.Tensor
    train_seqs: torch.Tensor
    val_seqs: torch.Tensor

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()


def load_corpus(tinystories: str | None, run) -> Corpus:
    """The data of this chapter at the settings of `run`.

    It uses run.vocab_size, run.seq_len and run.full_train_stories/full_val_stories."""
    source = choose_source(tinystories, run.profile)
    train, val, n_left_out = load_stories(
        source, run.seed, run.full_train_stories, run.full_val_stories)
    tokenizer = train_tokenizer(train, run.vocab_size)
    train_stream = token_stream(tokenizer, train)
    val_stream = token_stream(tokenizer, val)
    return Corpus(source, train, val, n_left_out, tokenizer, tokenizer.token_to_id(EOS),
                  train_stream, val_stream, cut_sequences(train_stream, run.seq_len),
                  cut_sequences(val_stream, run.seq_len))


# %% tags=["hide-input"]
corpus = load_corpus(tinystories, run)
assert torch.equal(corpus.train_stream, train_stream)
assert torch.equal(corpus.val_seqs, val_seqs)

# %% [markdown]
# ## Bits per character
#
# A loss per token depends on the tokenizer: a vocabulary of longer tokens has fewer,
# harder predictions per text. Our tokenizer is not the source's, so our loss per token and
# the source's are not directly comparable. Dividing by characters puts both on the same
# scale: for a stream of $n$ predicted tokens that covers $c$ characters,
#
# $$
# \text{bits per character} = \frac{\sum_{t} -\ln P(x_{t+1} \mid x_{1:t})}{c \,\ln 2}
#   = \frac{\text{loss per token} \times n}{c \ln 2},
# $$ (eq-bpc)
#
# the number of bits an ideal coder driven by the model would spend per character of text,
# whatever the tokens. (The value still depends on the tokenizer through the model, which
# learns a different task with different tokens, but the unit is the same.) We compute it
# on the validation stream, as total nats over total characters; the characters are those
# of the stories the predicted tokens cover, plus one per story end.

# %% tags=["save"]
def bits_per_char(corpus: Corpus, nats: float, n_tokens: int) -> float:
    """Eq. (eq-bpc) on the first `n_tokens` predicted tokens of the validation
    stream."""
    covered = corpus.val_stream[1 : 1 + n_tokens]
    # Characters of the covered tokens: whole stories (+1 for their end), plus the
    # part of a story cut off at the end of the last sequence, measured by decoding it.
    ends = (covered == corpus.eos_id).nonzero().flatten().tolist()
    chars = sum(len(s) + 1 for s in corpus.val_stories[: len(ends)])
    tail = covered[ends[-1] + 1 :] if ends else covered
    chars += len(corpus.tokenizer.decode(tail.tolist()))
    return nats / chars / math.log(2)


# %% [markdown]
# Two checks. On the whole stream the characters are exactly those counted above, so one
# nat must give $1/(c \ln 2)$ bits per character. The part the sequences cover ends inside a
# story, and there we count the characters another way: by decoding all the covered tokens
# at once (decoding drops the end-of-story tokens, one character each). Both pass (the
# check is collapsed below).

# %% tags=["hide-input"]
val_covered = predicted_tokens(val_stream, T)
whole = bits_per_char(corpus, 1.0, len(val_stream) - 1)
assert abs(whole * val_chars * math.log(2) - 1) < 1e-12
covered_ids = val_stream[1 : 1 + val_covered]
covered_chars = (len(tokenizer.decode(covered_ids.tolist()))
                 + int((covered_ids == eos_id).sum()))
covered = bits_per_char(corpus, 1.0, val_covered)
assert abs(covered * covered_chars * math.log(2) - 1) < 1e-12

# %% [markdown]
# ## The unigram baseline
#
# The simplest language model ignores the context: $P(x_{t+1} \mid x_{1:t}) = p(x_{t+1})$,
# the frequency of each token in the training stream (add-one smoothed, so that no
# validation token has probability zero). Its loss is the cross-entropy of the validation
# tokens under these frequencies. A model that has learned anything about context must
# beat it.

# %% tags=["save"]
def unigram_probs(corpus: Corpus) -> torch.Tensor:
    """Add-one smoothed frequencies of the training stream's predicted tokens."""
    counts = torch.bincount(corpus.train_stream[1:], minlength=corpus.vocab_size)
    counts = counts.double()
    return (counts + 1) / (counts + 1).sum()


def unigram_baseline(corpus: Corpus, seq_len: int) -> tuple[float, float]:
    """(loss per token, bits per character) of the unigram model on the validation
    tokens that the sequences of length `seq_len` predict."""
    n = predicted_tokens(corpus.val_stream, seq_len)
    nats = -torch.log(unigram_probs(corpus))[corpus.val_stream[1 : 1 + n]].sum().item()
    return nats / n, bits_per_char(corpus, nats, n)


# %%
unigram_loss, unigram_bpc = unigram_baseline(corpus, T)
assert unigram_loss < math.log(corpus.vocab_size)  # frequencies beat a uniform guess

# %% tags=["hide-input"]
results.record("unigram_val_loss", unigram_loss, unit="nats/token",
               description="unigram baseline, validation loss per token")
results.record("unigram_bpc", unigram_bpc, unit="bits/char",
               description="unigram baseline, validation bits per character")
glue("vocab_size", corpus.vocab_size, display=False)
glue("ln_vocab", math.log(corpus.vocab_size), display=False)

# %% [markdown]
# The unigram model spends {glue:text}`unigram_val_loss:.3f` nats per token, that is
# {glue:text}`unigram_bpc:.3f` bits per character. For scale: a uniform choice among the
# {glue:text}`vocab_size` tokens costs $\ln V$ = {glue:text}`ln_vocab:.2f` nats per token.
# An untrained model, whose logits are all small, starts close to $\ln V$; every loss curve
# of this chapter starts there, falls first to about the unigram level (word frequencies,
# no context yet), and only then below it.
#
# ## What this section showed
#
# A byte-level BPE tokenizer trained on the stories encodes any text and decodes it
# exactly; common words become single tokens. The stories become one token stream per
# split, cut into sequences that overlap by one token so that every token but the first is
# predicted once. Bits per character put losses under different tokenizers on one scale,
# and the unigram model, which knows word frequencies and nothing else, sets the score that
# any model of context must beat.
#
# ## Exercises
#
# 1. **Tokenizer size.** Train the tokenizer with 512 and with 8192 tokens. How do the
#    characters per token and the unigram baseline change, per token and per character?
#
#    :::{dropdown} Hint
#    More tokens means longer tokens: fewer predictions per text, each harder, so the loss
#    per token rises. The unigram baseline per character can still fall, because a longer
#    token's frequency captures some context (the letters inside it).
#    :::
#
# 2. **No overlap.** Cut sequences that do not overlap (sequence $i$ is tokens $iT$ to
#    $iT + T - 1$). Which tokens are then never a prediction target?
#
#    :::{dropdown} Answer
#    The first token of every sequence: nothing before it is in the same sequence. One
#    token in $T$ is lost as a target, and the model never learns to predict across the
#    boundary between two sequences.
#    :::
#
# 3. **Characters, counted twice.** Why does `bits_per_char` count the characters of the
#    covered stories instead of decoding the covered tokens, as the check does?
#
#    :::{dropdown} Answer
#    Both give the same count (that is the check), but counting whole stories needs no
#    decoding of the whole stream, which for the full data is hundreds of millions of
#    characters: only the cut-off tail is decoded.
#    :::
