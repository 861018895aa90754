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
# # Byte pair encoding and a decoder-only Transformer
#
# A language model reads text as a sequence of integers and predicts the next one. Two
# choices decide almost everything about it: how text is cut into integers (the
# *tokenizer*) and how the prediction for position $t$ looks at positions $1, \dots, t$
# (*causal self-attention*). This chapter builds both from scratch, checks each piece
# against a library with asserts, and trains two small Transformers: one on sentences of
# Shakespeare, Tolstoy and Austen cut by byte pair encoding, one on the characters of tiny
# Shakespeare, where we vary the context length and the number of heads.
#
# **Learning goals.** After this chapter you can
#
# 1. run byte pair encoding (BPE) by hand, implement a byte-level BPE trainer whose pair
#    counts are updated incrementally, and compare it with the `tokenizers` library on speed
#    and compression;
# 2. write multi-head causal self-attention from tensors, prove with asserts that it equals
#    PyTorch's fused kernel and that no position sees the future, and spot the two classic
#    bugs (the source's sums and a transposed attention formula);
# 3. train a decoder-only Transformer on padded mini-batches of sentences with a loss that
#    ignores padding, and sample from it with temperature and top-$k$;
# 4. read train and validation curves of character-level models and say what a longer
#    context and more heads change.
#
# The problems come from four courses: the BPE tokenizer and the Transformer of UPenn ESE
# 546, HW3, problem 1 (cited as **000**); the tiny-Shakespeare study of USC CSCI ML, HW3,
# problem 4 (**001**); a transposed attention formula in the Cornell CS 4787 prelim, section
# 5.4 (**004**); and the tensor shapes of CMU 10-301/601 HW7, section 4.3 (**002**).
# Prerequisites: PyTorch autograd and training loops (Chapters 2 and 3).

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

# %% tags=["parameters"]
profile = None

# %% [markdown]
# The profiles differ in how much text the tokenizers see, in the size of the models and in
# the number of updates. The `gpu` profile trains the source's model (four blocks,
# vocabulary 2048) for many passes over its sentences and a character model of the size of
# nanoGPT's
# Shakespeare recipe; the `cpu` profile keeps the source's widths ($T = 128$, $d = 256$,
# $p = 32$, two heads) but trains two blocks for a few minutes.

# %%
import heapq
import json
import math
import re
import time
from collections import Counter, defaultdict
from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from myst_nb import glue
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from tqdm.auto import tqdm

from helpers import data, profiles, results
from helpers.timing import measure, ratio_verdict, speed_ratio

run = profiles.setup(
    profile,
    seed=7,
    bpe_chars=(200_000, 10_000_000, 10_000_000),  # corpus prefix for the side-by-side (all: 9.6M)
    vocab_size=(512, 1024, 2048),  # BPE vocabulary, special tokens included
    lm_chars=(300_000, 10_000_000, 10_000_000),  # corpus prefix cut into training sentences
    lm_blocks=(2, 2, 4),  # Transformer blocks of the BPE model (the source: 2-4)
    lm_batch=(8, 32, 64),  # sentences per mini-batch
    lm_steps=(20, 2_500, 20_000),  # updates of the BPE model
    lm_eval_every=(10, 250, 1_000),  # updates between validation losses
    lm_val_batches=(3, 50, 100),  # validation mini-batches of sentences (about)
    char_width=(32, 128, 384),  # d of the main character model
    char_blocks=(1, 3, 6),  # blocks of the main character model
    char_heads=(2, 4, 6),  # heads of the main character model
    char_context=(32, 64, 256),  # context length of the main character model
    char_steps=(30, 1_800, 5_000),  # updates of the main character model
    char_dropout=(0.0, 0.0, 0.2),  # dropout of the main character model
    study_width=(32, 96, 192),  # d of every model in the context/heads study
    study_steps=(15, 800, 3_000),  # updates of every model in the study
    batch=(8, 32, 64),  # sequences per mini-batch of the character models
    eval_batches=(2, 20, 50),  # mini-batches per validation loss
    repeat=(2, 10, 20),  # timing repeats
)
device = run.device
if device.type == "cpu":
    # Our models are small (widths 32-256). On a CPU shared with other jobs, PyTorch's worker
    # threads wait for each other whenever one of them is descheduled: on a busy 2-core
    # machine we measured two threads 3-7 times slower than one. One thread keeps it steady.
    torch.set_num_threads(1)
if device.type == "cuda":
    # Float32 matrix products on tensor cores in TF32 (a 10-bit mantissa, float32's range):
    # several times faster on the GPUs of the `gpu` profile, and as accurate as training needs.
    # The exactness checks below run in float64 on the CPU, where this setting does nothing.
    torch.set_float32_matmul_precision("high")
run

# %% [markdown]
# ## Byte pair encoding
#
# A character-level model spends its capacity and its context on spelling: "the" costs three
# positions. A word-level model needs a vocabulary of every word it will ever meet and
# still fails on a new name. BPE {cite}`sennrich2016neural` sits between the two. It starts
# from single symbols and repeatedly replaces the most frequent pair of adjacent symbols by a
# new symbol, until the vocabulary has the size we want. Frequent words end up as one token,
# rare words as a few pieces, and nothing is ever out of vocabulary, because the single
# symbols are still there.
#
# ### The worked example
#
# The example of 000 P1(a) (taken from Wikipedia's article on BPE) compresses
# `aaabdaaabac`. We write a new symbol for each merge and print every step. Ties between
# pairs of equal count are broken by taking the smallest pair of symbol codes, where `a`,
# `b`, `c`, `d` have codes 0-3 and each new symbol gets the next free code (as byte-level
# BPE below numbers its new tokens 256, 257, ...). The rule is arbitrary, but it must be
# fixed for training to be reproducible.


# %%
def pair_counts(symbols):
    """How often each pair of adjacent symbols occurs (overlapping pairs counted)."""
    return Counter(pairwise(symbols))


def merge(symbols, pair, new):
    """Replace every non-overlapping occurrence of ``pair``, left to right, by ``new``."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


symbols, steps_shown = list("aaabdaaabac"), []
code = {ch: i for i, ch in enumerate("abcd")}  # a new symbol gets the next free code
for new in "ZYX":
    counts = pair_counts(symbols)
    best = max(counts.values())
    pair = min((p for p, c in counts.items() if c == best), key=lambda p: (code[p[0]], code[p[1]]))
    code[new] = len(code)
    symbols = merge(symbols, pair, new)
    steps_shown.append((pair, best, new, "".join(symbols)))
display(
    Markdown(
        "| merge | pair | count | new symbol | text after the merge |\n|---|---|---|---|---|\n"
        + "\n".join(
            f"| {i} | `{a}{b}` | {c} | `{n}` | `{s}` |"
            for i, ((a, b), c, n, s) in enumerate(steps_shown, 1)
        )
    )
)
assert [s[0] for s in steps_shown] == [("a", "a"), ("a", "b"), ("Z", "Y")]
assert "".join(symbols) == "XdXac"

# %% [markdown]
# The first count is 4, not 2: `aaa` contains the pair `aa` twice (overlapping), but only
# one of them can be merged. Counting overlapping pairs is what every BPE implementation
# does; it only changes which pair wins in texts with long runs of one symbol. After three
# merges the eleven symbols have become five, `XdXac`, with the grammar `X = ZY`,
# `Y = ab`, `Z = aa`, as in the source's example. Decoding replaces symbols by their pairs
# in the reverse order of the merges.
#
# ### Byte-level BPE with incremental pair counts
#
# Two choices turn this toy into a tokenizer.
#
# *Bytes, not characters.* We run BPE on the UTF-8 bytes of the text, so the 256 byte
# values are the initial vocabulary: any Unicode string can be encoded, with no unknown
# token, and decoding is exact.
#
# *Pre-tokenization.* Before counting, the text is cut into chunks that merges may not
# cross: a word with the space before it, a run of punctuation, a run of whitespace (the
# regular expression below). Identical chunks are counted once with their frequency, so
# the trainer works on tens of thousands of distinct chunks instead of millions of bytes.
#
# The naive trainer recounts every pair after every merge, which is what 000 calls "quite
# slow in Python". But a merge of the pair $(a, b)$ only changes the chunks that contain
# $(a, b)$. So we keep, for every pair, its count and the set of chunks where it occurs, and
# after each merge we subtract the old pairs of the affected chunks and add their new
# pairs. The most frequent pair comes from a heap with lazy deletion: a pair whose count
# changed is pushed again, and a popped entry whose count is out of date is thrown away.

# %%
PRETOKEN = re.compile(r" ?\w+| ?[^\w\s]+|\s+")


class ByteBPE:
    """Byte-level BPE: 256 byte tokens plus one token per merge, in the order learned."""

    def __init__(self, merges):
        self.merges = dict(merges)  # (left, right) -> new token id; ids grow with rank
        self.vocab = {i: bytes([i]) for i in range(256)}
        for (left, right), new in sorted(self.merges.items(), key=lambda item: item[1]):
            self.vocab[new] = self.vocab[left] + self.vocab[right]
        self._cache = {}

    @classmethod
    def train(cls, text, vocab_size):
        chunk_counts = Counter(PRETOKEN.findall(text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        freq = list(chunk_counts.values())
        count, where = Counter(), defaultdict(set)
        for i, word in enumerate(words):
            for pair in pairwise(word):
                count[pair] += freq[i]
                where[pair].add(i)
        heap = [(-c, pair) for pair, c in count.items()]
        heapq.heapify(heap)  # ties: the smallest pair of ids pops first, as in the example
        merges = {}
        while 256 + len(merges) < vocab_size and heap:
            negative, pair = heapq.heappop(heap)
            if -negative != count.get(pair, 0):
                continue  # a stale entry: this pair's count has changed since it was pushed
            if -negative < 2:
                break  # no pair occurs twice: nothing left worth merging
            new = merges[pair] = 256 + len(merges)
            for i in where.pop(pair):
                old, updated = words[i], merge(words[i], pair, new)
                changed = set()
                for p in pairwise(old):
                    count[p] -= freq[i]
                    changed.add(p)
                for p in pairwise(updated):
                    count[p] += freq[i]
                    where[p].add(i)
                    changed.add(p)
                words[i] = updated
                for p in changed - {pair}:
                    if count[p] > 0:
                        heapq.heappush(heap, (-count[p], p))
            del count[pair]
        return cls(merges)

    def _encode_chunk(self, chunk):
        if chunk not in self._cache:
            ids = list(chunk.encode("utf-8"))
            while len(ids) > 1:  # apply the earliest-learned merge present, as in training
                pair = min(pairwise(ids), key=lambda p: self.merges.get(p, math.inf))
                if pair not in self.merges:
                    break
                ids = merge(ids, pair, self.merges[pair])
            self._cache[chunk] = ids
        return self._cache[chunk]

    def encode(self, text):
        return [i for chunk in PRETOKEN.findall(text) for i in self._encode_chunk(chunk)]

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")


def naive_bpe_merges(text, vocab_size):
    """The slow reference: recount every pair of every chunk after every merge."""
    chunk_counts = Counter(PRETOKEN.findall(text))
    words = {tuple(c.encode("utf-8")): f for c, f in chunk_counts.items()}
    merges = {}
    while 256 + len(merges) < vocab_size:
        count = Counter()
        for word, f in words.items():
            for pair in pairwise(word):
                count[pair] += f
        if not count or max(count.values()) < 2:
            break
        best = max(count.values())
        pair = min(p for p, c in count.items() if c == best)
        new = merges[pair] = 256 + len(merges)
        words = {tuple(merge(list(w), pair, new)): f for w, f in words.items()}
    return merges


# %% [markdown]
# Three tests of the teaching implementation, on its own, before it meets real data:
#
# 1. On the worked example (one chunk, no spaces) it learns the same three merges, `aa`,
#    `ab` and `(aa)(ab)`, and encodes the text as five tokens.
# 2. On a small text its incremental counts give exactly the merges of the naive trainer.
# 3. Encoding followed by decoding returns any string unchanged, including accents,
#    Cyrillic, Chinese, emoji and control characters that the training text never
#    contained (they are spelled in bytes).
#
# We also time both trainers on that small text.

# %%
example = ByteBPE.train("aaabdaaabac", 259)
a, b, d_, c = (ord(ch) for ch in "abdc")
assert example.merges == {(a, a): 256, (a, b): 257, (256, 257): 258}
assert example.encode("aaabdaaabac") == [258, d_, 258, a, c]

tiny_text = data.load_text("tinyshakespeare")[:20_000]
fast_time = measure(lambda: ByteBPE.train(tiny_text, 400), repeat=3, warmup=0)
naive_time = measure(lambda: naive_bpe_merges(tiny_text, 400), repeat=1, warmup=0)
fast = ByteBPE.train(tiny_text, 400)
assert fast.merges == naive_bpe_merges(tiny_text, 400)
results.record(
    "bpe_incremental_speedup",
    speed_ratio(naive_time, fast_time),
    description="naive / incremental BPE training time, 20k characters, 144 merges",
)
assert len(fast.merges) == 400 - 256

unicode_samples = [
    "Déjà vu, naïve café",
    "Война и мир",
    "字节对编码",
    "🙂👍🏽 ok",
    "tab\there\r\nnull\x00end",
    "  leading and trailing  ",
    "",
]
for sample in unicode_samples:
    assert "".join(PRETOKEN.findall(sample)) == sample  # pre-tokenization loses nothing
    assert fast.decode(fast.encode(sample)) == sample
print(f"naive trainer {naive_time.seconds:.2f} s, incremental {fast_time.seconds:.3f} s")
print(
    "first merges learned on tiny Shakespeare:",
    [fast.vocab[256 + i].decode("utf-8", "replace") for i in range(12)],
)

# %% [markdown]
# ### The production path and the side-by-side comparison
#
# 000 P1(a) asks for the `tokenizers` library: a BPE model, the BERT pre-tokenizer (split
# on whitespace and isolate every punctuation character) and five special tokens. `[PAD]`
# fills the end of short sentences in a mini-batch, `[UNK]` stands for a character never
# seen in training, `[CLS]` and `[SEP]` are BERT's start and separator tokens, which we use
# to mark where a sentence begins and ends, and `[MASK]` is for masked-language-model
# training, unused here. Word-inner pieces get the prefix `##`, so that a decoder can glue
# them back to the previous piece.
#
# ```{note}
# The source's code snippet writes `BPE(unk_token="[UNK"])`, with the closing quote and
# bracket swapped, and `From` with a capital F; neither runs as printed. The intent is
# `BPE(unk_token="[UNK]")` and `from`.
# ```
#
# The corpus is the source's: the complete works of Shakespeare, *War and Peace* and, as the
# Gutenberg book of our choice, *Pride and Prejudice*, concatenated in that order. We train
# three tokenizers **on the same text with the same vocabulary size** and time them in the
# same run: ours, the library's byte-level BPE (the same algorithm and almost the same
# pre-tokenization as ours, so the fair speed comparison) and the library's BERT-style BPE
# (the one the model below uses). This run trains them on {glue:text}`bpe_text_phrase`: all
# of it in the `cpu` and `gpu` profiles, a prefix of Shakespeare in `smoke`. The library
# trains with every core of the machine (Rust threads), ours with one. After training we
# renumber the BERT-style tokenizer's tokens in a fixed order (`with_sorted_ids`): the library
# numbers single characters in an order that changes from run to run, and without this the
# model's losses below would change in the third decimal every time the notebook runs.

# %%
SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
books = ["shakespeare_complete_works", "war_and_peace", "pride_and_prejudice"]
corpus = "\n".join(data.load_text(name) for name in books)
bpe_text = corpus[: run.bpe_chars]
glue(
    "bpe_text_phrase",
    f"the whole corpus, {len(corpus):,} characters"
    if len(bpe_text) == len(corpus)
    else f"the first {len(bpe_text):,} characters of the {len(corpus):,}-character corpus",
    display=False,
)


def bert_bpe(vocab_size):
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    return tok, trainer


def with_sorted_ids(tok, probe_text):
    """The same tokenizer with its ids in a fixed order: the special tokens, then the others
    sorted as strings.

    The library's BERT-style trainer numbers the single characters (and their `##` forms) in
    the order of a hash map, which changes from run to run. The tokens and every tokenization
    stay the same, but a model's embedding rows, and its losses with them, would not."""
    model = json.loads(tok.to_str())["model"]
    before = tok.encode(probe_text).tokens
    others = sorted(t for t in model["vocab"] if t not in SPECIALS)
    vocab = {t: i for i, t in enumerate([*SPECIALS, *others])}
    merges = [tuple(merge) for merge in model["merges"]]
    options = {k: model[k] for k in ("unk_token", "continuing_subword_prefix")}
    tok.model = models.BPE(vocab, merges, **options)  # as trained: see bert_bpe
    assert tok.encode(probe_text).tokens == before  # only the numbering changed
    return tok


def byte_level_bpe(vocab_size):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    return tok, trainer


def chunks(text, size=10_000):
    """The text in pieces, for the libraries' batch interfaces."""
    return (text[i : i + size] for i in range(0, len(text), size))


start = time.perf_counter()
ours = ByteBPE.train(bpe_text, run.vocab_size)
ours_seconds = time.perf_counter() - start
trained = {}
for label, make in [("library byte-level", byte_level_bpe), ("library BERT", bert_bpe)]:
    tok, trainer = make(run.vocab_size)
    start = time.perf_counter()
    tok.train_from_iterator(chunks(bpe_text), trainer)
    trained[label] = (tok, time.perf_counter() - start)

lib_bytes, lib_bytes_seconds = trained["library byte-level"]
lib_bert, lib_bert_seconds = trained["library BERT"]
lib_bert = with_sorted_ids(lib_bert, bpe_text[:20_000])
n_chars = len(bpe_text)
tokens_per_char = {
    "ours (byte-level)": len(ours.encode(bpe_text)) / n_chars,
    "library byte-level": len(lib_bytes.encode(bpe_text).ids) / n_chars,
    "library BERT": sum(len(e.ids) for e in lib_bert.encode_batch(list(chunks(bpe_text))))
    / n_chars,
}
seconds = {
    "ours (byte-level)": ours_seconds,
    "library byte-level": lib_bytes_seconds,
    "library BERT": lib_bert_seconds,
}
results.record("bpe_ours_seconds", ours_seconds, unit="s", description="our BPE training time")
results.record(
    "bpe_library_seconds",
    lib_bytes_seconds,
    unit="s",
    description="tokenizers byte-level BPE training time, same text and vocabulary",
)
results.record(
    "bpe_speed_ratio",
    ours_seconds / lib_bytes_seconds,
    description="our training time / library byte-level training time",
)
results.record("bpe_ours_tokens_per_char", tokens_per_char["ours (byte-level)"])
results.record("bpe_library_tokens_per_char", tokens_per_char["library byte-level"])
results.record("bpe_bert_tokens_per_char", tokens_per_char["library BERT"])
display(
    Markdown(
        "| tokenizer | training time (s) | tokens per character | vocabulary |\n|---|---|---|---|\n"
        + "\n".join(
            f"| {k} | {seconds[k]:.2f} | {tokens_per_char[k]:.3f} | {v} |"
            for k, v in [
                ("ours (byte-level)", 256 + len(ours.merges)),
                ("library byte-level", lib_bytes.get_vocab_size()),
                ("library BERT", lib_bert.get_vocab_size()),
            ]
        )
    )
)

# Same algorithm, same text, same vocabulary: the compression agrees to 3 %. (The regular
# expressions of the pre-tokenizers differ slightly, e.g. on runs of spaces and digits.)
assert abs(tokens_per_char["ours (byte-level)"] / tokens_per_char["library byte-level"] - 1) < 0.03
assert 256 + len(ours.merges) == run.vocab_size == lib_bytes.get_vocab_size()
assert lib_bert.get_vocab_size() == run.vocab_size
assert all(lib_bert.token_to_id(s) == i for i, s in enumerate(SPECIALS))
assert ours.decode(ours.encode(bpe_text[:50_000])) == bpe_text[:50_000]

# %% [markdown]
# Our trainer took {glue:text}`bpe_ours_seconds:.1f` s and the library's byte-level trainer
# {glue:text}`bpe_library_seconds:.1f` s: ours is {glue:text}`bpe_speed_ratio:.1f` times
# slower. That is a small price for pure Python against Rust, and the incremental counts are
# part of the reason: on the 20,000 characters of the tests above, where the naive trainer
# recounts all pairs of all chunks for each of the 144 merges, the incremental one was
# {glue:text}`bpe_incremental_speedup:.0f` times faster. The naive trainer's work per merge
# grows with the number of distinct chunks, the incremental one's only with the chunks that a
# merge touches, so the gap should widen on a larger text; we time it on the small one only. The
# compression is the same to a few percent, {glue:text}`bpe_ours_tokens_per_char:.3f` tokens per
# character for ours and {glue:text}`bpe_library_tokens_per_char:.3f` for the library, as it should
# be for the same algorithm. The BERT-style tokenizer gives
# {glue:text}`bpe_bert_tokens_per_char:.3f`. It throws whitespace away (the pre-tokenizer splits on
# it), which saves the tokens spent on line breaks and indentation, but it splits off every
# apostrophe and punctuation mark and spends vocabulary on a second copy of each piece with the `##`
# prefix. Here is how the three cut a few sentences:

# %%
examples = [
    "To be, or not to be, that is the question.",
    "Well, Prince, so Genoa and Lucca are now just family estates of the Buonapartes.",
    "It is a truth universally acknowledged, that a single man in possession",
    "Unbelievable: the transformer's attention!",
]
rows = []
for sentence in examples:
    cuts = {
        "ours": [ours.decode([i]) for i in ours.encode(sentence)],
        "byte-level": [lib_bytes.decode([i]) for i in lib_bytes.encode(sentence).ids],
        "BERT": lib_bert.encode(sentence).tokens,
    }
    for name, pieces in cuts.items():
        shown = " ".join("`" + p.replace(" ", "␣").replace("`", "'") + "`" for p in pieces)
        rows.append(f"| {name} | {len(pieces)} | {shown} |")
display(
    Markdown("| tokenizer | tokens | pieces (␣ is a space) |\n|---|---|---|\n" + "\n".join(rows))
)

# %% [markdown]
# Frequent words (`the`, `that`, `is`) are single tokens in all three; names and rare words
# (`Buonapartes`, `Unbelievable`) fall apart into pieces. The byte-level tokenizers attach
# the space to the following word (`␣that`), so a word at the start of a line and the
# same word after a space are different tokens; the BERT one drops spaces and marks pieces
# inside a word with `##` instead.
#
# ## Causal self-attention from tensors
#
# Let $H \in \mathbb{R}^{T \times d}$ hold the features of the $T$ positions of one sequence,
# one row per position. Head $m$ of a self-attention layer projects them to queries, keys
# and values of size $p$,
#
# $$
# Q^m = H W_q^m,\quad K^m = H W_k^m,\quad V^m = H W_v^m,\qquad
# W_q^m, W_k^m, W_v^m \in \mathbb{R}^{d \times p},
# $$
#
# and position $t$ returns an average of the values of the positions $s \le t$, weighted by
# how well their keys match its query:
#
# $$
# h_t'^m = \sum_{s=1}^{t} \alpha^m_{ts}\, v^m_s,\qquad
# \alpha^m_{ts} = \frac{\exp\bigl(q_t^{m\top} k^m_s / \sqrt{p}\bigr)}
#                      {\sum_{u=1}^{t} \exp\bigl(q_t^{m\top} k^m_u / \sqrt{p}\bigr)}.
# $$ (eq-causal-attention)
#
# In matrix form, $H'^m = \operatorname{softmax}\bigl(Q^m K^{m\top}/\sqrt{p} + M\bigr) V^m$
# with the softmax over each row and the *causal mask* $M_{ts} = 0$ for $s \le t$ and
# $-\infty$ for $s > t$. The heads are concatenated into $H' \in \mathbb{R}^{T \times 2p}$
# and projected back to the model width by $W_o \in \mathbb{R}^{2p \times d}$. Dividing by
# $\sqrt p$ keeps the scores of order one: for independent entries with mean zero and
# variance one, $q^\top k$ has variance $p$.
#
# ```{note}
# The equations of 000 P1(b) have three slips; we implement the standard attention of
# {cite}`vaswani2017attention` above.
#
# 1. They put a sigmoid on keys, queries and values, $k^m = \sigma(h w_k^m)$. Attention uses
#    linear projections. After a sigmoid every entry lies in $(0, 1)$, so every scaled score
#    $q^\top k/\sqrt p$ lies in $(0, \sqrt p)$. The softmax turns a difference of scores into
#    a ratio of weights, so no key can get more than $e^{\sqrt p}$ times the weight of
#    another, {glue:text}`sigmoid_ratio_bound:.0f` for $p = 32$: among 128 keys the most a
#    query can give to one of them is {glue:text}`sigmoid_max_weight:.2f` of its attention,
#    and attention cannot become sharp. A key that is larger than another in every entry
#    gets more weight from *every* query, and since the values lie in $(0, 1)^p$ too, every
#    output of a head, an average of values, is positive. The check after Check 1 confirms
#    these bounds.
# 2. The sum runs over $s = 1, \dots, t-1$ and multiplies $v_t$, not $v_s$. With $v_t$ the
#    weights, which sum to one, multiply the same vector and the output is $v_t$ itself:
#    nothing is attended to. With the upper limit $t - 1$ a position may not look at itself
#    and the first position has an empty sum (the softmax of nothing). The sum must run over
#    $s = 1, \dots, t$ of $\alpha_{ts} v_s$, as in {eq}`eq-causal-attention`.
# 3. The dimensions mix $p$ and $d$: the input is $h \in \mathbb{R}^{T \times p}$ with
#    $w_k^m \in \mathbb{R}^{p \times p}$ and $w_o \in \mathbb{R}^{2p \times p}$, and the MLP
#    is $p \to 2p \to p$, but the tokens are embedded in $d = 256$ dimensions and the
#    residual $h + h_{\text{attn}}$ needs both terms of the same width. So
#    $W^m_{q,k,v} \in \mathbb{R}^{d \times p}$, $W_o \in \mathbb{R}^{2p \times d}$, and the
#    MLP is $d \to 2d \to d$ (the source's factor 2, applied to the model width).
# ```
#
# The implementation takes a boolean mask `keep[t, s]` (true where query $t$ may look at key
# $s$), so that the same function serves the causal mask and, for padded batches, a padding
# mask on the keys.


# %%
def attention(q, k, v, keep):
    """Scaled dot-product attention. q, k, v: (..., T, p); keep: bool, broadcastable to
    (..., T, T), True where query t may attend to key s."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_mask(T, pad=None, device=None):
    """Causal mask (T, T), combined with a key padding mask when ``pad`` (B, T) is given:
    the result then has shape (B, 1, T, T), one mask per sequence, shared by the heads."""
    keep = torch.ones(T, T, dtype=torch.bool, device=device).tril()
    if pad is not None:
        keep = keep & ~pad[:, None, None, :]
    return keep


# %% [markdown]
# **Check 1: equal to PyTorch's fused attention.** On random inputs in float64, with the
# causal mask alone and with causal and padding masks together (right padding: sequence $b$
# has `lengths[b]` real tokens), our function must agree with
# `torch.nn.functional.scaled_dot_product_attention` to rounding error, $10^{-12}$. Query
# rows of padding positions are compared as well: they still see the real tokens before
# them, so nothing is undefined.
#
# With right padding and the causal mask a real token never sees a padded key, so that
# comparison cannot show that the padding mask works. We therefore also apply the padding
# mask *alone*, with no causal mask, after writing $10^6$ into the keys and values of the
# padded positions: the output must equal the fused kernel's on the clean inputs. Without
# any mask the same values do change the output, so the test can fail. Finally, left
# padding: a query whose keys are all padding has a row of $-\infty$ scores, and its
# softmax is $0/0$, NaN. The NaN would spread to every real token in the next layer (a
# weight of 0 times NaN is NaN), which is one reason we pad on the right.

# %%
generator = torch.Generator().manual_seed(0)
B, H, T, p = 3, 2, 10, 8
q, k, v = (torch.randn(B, H, T, p, dtype=torch.float64, generator=generator) for _ in range(3))
lengths = torch.tensor([10, 6, 3])
pad = torch.arange(T)[None, :] >= lengths[:, None]  # (B, T), True at padding
for keep in [attention_mask(T), attention_mask(T, pad)]:
    ours_out = attention(q, k, v, keep)
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert torch.allclose(ours_out, torch_out, atol=1e-12, rtol=0)
assert torch.allclose(
    attention(q, k, v, attention_mask(T)),
    F.scaled_dot_product_attention(q, k, v, is_causal=True),
    atol=1e-12,
)
# The padding mask alone (every query sees every real key, none of the padded ones) makes
# the output blind to whatever the padded keys and values hold:
pad_only = ~pad[:, None, None, :]  # (B, 1, 1, T)
k_noise, v_noise = k.clone(), v.clone()
at_padding = pad[:, None, :, None].expand_as(v)
k_noise[at_padding] = 1e6
v_noise[at_padding] = 1e6
clean = F.scaled_dot_product_attention(q, k, v, attn_mask=pad_only)
assert torch.allclose(attention(q, k_noise, v_noise, pad_only), clean, atol=1e-12, rtol=0)
no_mask = torch.ones(T, T, dtype=torch.bool)
assert (attention(q, k_noise, v_noise, no_mask) - clean).abs().amax() > 1.0  # can fail
# Left padding: query 0 of a sequence that starts with padding has no key left to look at,
# and a second layer fed with that output is NaN at every position of the sequence.
left_keep = attention_mask(T, pad.flip(-1))
first_layer = attention(q, k, v, left_keep)
assert first_layer[1, :, 0].isnan().all() and not first_layer[0].isnan().any()
assert attention(first_layer, first_layer, first_layer, left_keep)[1].isnan().all()

# %% [markdown]
# **Check: the sigmoid of 000's equations.** On queries, keys and values passed through a
# sigmoid, with the source's $p = 32$ and $T = 128$ and no causal mask, every scaled score
# lies in $(0, \sqrt p)$, no ratio of two weights in a row exceeds $e^{\sqrt p}$, no weight
# exceeds $e^{\sqrt p}/(e^{\sqrt p} + T - 1)$, and every output lies in $(0, 1)$. The bounds
# are approached when queries and one key are all ones and the other keys all zeros, which
# we check too; and a key raised above another in every entry wins for every query.

# %%
p_sig, T_sig = 32, 128  # the source's head width and context
ratio_bound = math.exp(math.sqrt(p_sig))
weight_bound = ratio_bound / (ratio_bound + T_sig - 1)
glue("sigmoid_ratio_bound", ratio_bound, display=False)
glue("sigmoid_max_weight", weight_bound, display=False)
q_sig, k_sig, v_sig = (
    torch.sigmoid(4 * torch.randn(T_sig, p_sig, dtype=torch.float64, generator=generator))
    for _ in range(3)
)
k_sig[0] = (k_sig[1] + 1) / 2  # key 0 exceeds key 1 in every entry, and stays in (0, 1)
scores_sig = q_sig @ k_sig.T / math.sqrt(p_sig)
weights_sig = torch.softmax(scores_sig, dim=-1)
assert ((scores_sig > 0) & (scores_sig < math.sqrt(p_sig))).all()
assert (weights_sig.amax(-1) / weights_sig.amin(-1) < ratio_bound).all()
assert (weights_sig.amax(-1) < weight_bound).all()
assert (weights_sig[:, 0] > weights_sig[:, 1]).all()  # key 0 wins for every query
out_sig = weights_sig @ v_sig
assert ((out_sig > 0) & (out_sig < 1)).all()
# The extreme case: sigmoid(20) is 1 - 2e-9, sigmoid(-20) is 2e-9, so the bound is met to 1e-6.
extreme_k = torch.full((T_sig, p_sig), -20.0, dtype=torch.float64)
extreme_k[0] = 20.0
extreme = torch.softmax(
    torch.sigmoid(torch.full((1, p_sig), 20.0, dtype=torch.float64))
    @ torch.sigmoid(extreme_k).T
    / math.sqrt(p_sig),
    dim=-1,
)
assert math.isclose(extreme[0, 0].item(), weight_bound, rel_tol=1e-6)

# %% [markdown]
# ### The transposed attention of 004 5.4
#
# 004 (section 5.4) shows a student's formula for $Q, K, V \in \mathbb{R}^{n \times d}$,
#
# $$
# \operatorname{Attention}(Q, K, V) = V \operatorname{softmax}\Bigl(\frac{K^\top Q}{\sqrt d}\Bigr),
# $$
#
# whose shapes work out ($n \times d$ times $d \times d$), so nothing fails loudly. The
# matrix $S = \operatorname{softmax}(K^\top Q/\sqrt d)$ is $d \times d$: it is indexed
# by *features*, and $K^\top Q = \sum_s k_s q_s^\top$ sums over *all* positions. Row $t$ of the
# output is $v_t S$: a linear map of token $t$'s own value vector. So the formula mixes
# features within a token instead of tokens, and since $S$ depends on every position,
# future tokens leak into the present; a causal mask cannot even be written, because $S$
# has no position index. The fix, as 004 says, is $\operatorname{softmax}(QK^\top/\sqrt d)V$.
# We implement both and test the two claims: changing the value of token 0 must change
# later outputs of the correct (causal) layer but no other output of the transposed one;
# changing the last token must leave earlier outputs of the correct layer unchanged but not
# those of the transposed one.


# %%
def transposed_attention(q, k, v):
    """The formula of 004 5.4: V softmax(K^T Q / sqrt d), softmax over each column."""
    return v @ torch.softmax(k.transpose(-2, -1) @ q / math.sqrt(q.shape[-1]), dim=-2)


n, dim = 6, 4
q, k, v = (torch.randn(n, dim, dtype=torch.float64, generator=generator) for _ in range(3))
right = attention(q, k, v, attention_mask(n))
wrong = transposed_attention(q, k, v)
assert wrong.shape == right.shape == (n, dim)

v_changed = v.clone()
v_changed[0] += 1.0  # change the value of token 0
d_right = (attention(q, k, v_changed, attention_mask(n)) - right).abs().amax(dim=1)
d_wrong = (transposed_attention(q, k, v_changed) - wrong).abs().amax(dim=1)
assert (d_right[1:] > 1e-6).all()  # the correct layer mixes token 0 into later tokens
assert (d_wrong[1:] == 0).all() and d_wrong[0] > 1e-6  # the transposed one does not: features

q_future, k_future = q.clone(), k.clone()
q_future[-1] += 1.0
k_future[-1] += 1.0  # change the last token
e_right = (attention(q_future, k_future, v, attention_mask(n)) - right).abs().amax(dim=1)
e_wrong = (transposed_attention(q_future, k_future, v) - wrong).abs().amax(dim=1)
assert (e_right[:-1] == 0).all()  # causal: earlier outputs are exactly unchanged
assert (e_wrong[:-1] > 1e-6).all()  # the transposed formula leaks the future into the past
display(
    Markdown(
        "| output row $t$ | 0 | 1 | 2 | 3 | 4 | 5 |\n|---|---|---|---|---|---|---|\n"
        + f"| correct, token 0's value changed | {' | '.join(f'{x:.2g}' for x in d_right)} |\n"
        + f"| transposed, token 0's value changed | {' | '.join(f'{x:.2g}' for x in d_wrong)} |\n"
        + f"| correct, last token changed | {' | '.join(f'{x:.2g}' for x in e_right)} |\n"
        + f"| transposed, last token changed | {' | '.join(f'{x:.2g}' for x in e_wrong)} |"
    )
)

# %% [markdown]
# The table shows the largest change of each output row. The correct layer spreads token
# 0 into every later row and keeps rows 0-4 exactly fixed when the last token changes; the
# transposed layer does the opposite on both counts.
#
# ## The model
#
# The Transformer of 000 P1(b) is a stack of *post-norm* blocks (normalization after each
# residual sum, as in the original Transformer {cite}`vaswani2017attention`):
#
# $$
# A = \operatorname{LN}\bigl(X + \operatorname{MHA}(X)\bigr),\qquad
# X_{\text{next}} = \operatorname{LN}\bigl(A + \operatorname{MLP}(A)\bigr),\qquad
# \operatorname{MLP}(a) = \operatorname{ReLU}(a W_1) W_2,
# $$
#
# applied to token embeddings plus sine-cosine position codes,
# $P_{t,2i} = \sin(t/10000^{2i/d})$ and $P_{t,2i+1} = \cos(t/10000^{2i/d})$, and followed by
# a linear map to one logit per vocabulary entry. LayerNorm {cite:p}`ba2016layer` standardizes
# each position's vector over its $d$ features. Nothing has a bias (the source's choice;
# `nn.LayerNorm(bias=False)` keeps its gain). Attention is ours, from above: no
# `nn.MultiheadAttention`, `nn.Transformer*` or fused kernel inside the model. The attention
# module can return its intermediate tensors, so that we can assert their shapes.


# %%
def sinusoidal_positions(T, d):
    position = torch.arange(T, dtype=torch.float32)[:, None]
    frequency = torch.exp(-math.log(10_000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    codes = torch.zeros(T, d)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency)
    return codes


class MultiHeadAttention(nn.Module):
    """Heads with queries and keys of width p and values of width p_v (p unless given)."""

    def __init__(self, d, p, heads, dropout=0.0, p_v=None):
        super().__init__()
        self.heads, self.p, self.p_v = heads, p, p_v or p
        # W_q, W_k, W_v of every head, in one matrix: queries, then keys, then values.
        self.qkv = nn.Linear(d, heads * (2 * p + self.p_v), bias=False)
        self.out = nn.Linear(heads * self.p_v, d, bias=False)  # W_o
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, keep, parts=None):
        B, T, _ = x.shape
        qk, v = self.qkv(x).split([2 * self.heads * self.p, self.heads * self.p_v], dim=-1)
        q, k = qk.view(B, T, 2, self.heads, self.p).permute(2, 0, 3, 1, 4)  # (B, heads, T, p)
        v = v.view(B, T, self.heads, self.p_v).transpose(1, 2)  # (B, heads, T, p_v)
        heads_out = attention(q, k, v, keep).transpose(1, 2)  # (B, T, heads, p_v)
        if parts is not None:
            parts.update(keys=k, heads_out=heads_out)
        return self.out(self.dropout(heads_out.reshape(B, T, self.heads * self.p_v)))


class Block(nn.Module):
    def __init__(self, d, p, heads, hidden, dropout=0.0):
        super().__init__()
        self.attn = MultiHeadAttention(d, p, heads, dropout)
        self.norm1 = nn.LayerNorm(d, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(d, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, d, bias=False),
            nn.Dropout(dropout),
        )
        self.norm2 = nn.LayerNorm(d, bias=False)

    def forward(self, x, keep, parts=None):
        x = self.norm1(x + self.attn(x, keep, parts))
        return self.norm2(x + self.mlp(x))


class TransformerLM(nn.Module):
    """Decoder-only Transformer: embeddings + sine-cosine positions, post-norm blocks."""

    def __init__(
        self, vocab, context, d, heads, blocks, p=None, hidden=None, dropout=0.0, pad_id=None
    ):
        super().__init__()
        self.context, self.pad_id = context, pad_id
        p = p or d // heads
        self.embed = nn.Embedding(vocab, d)
        self.register_buffer("positions", sinusoidal_positions(context, d), persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            Block(d, p, heads, hidden or 4 * d, dropout) for _ in range(blocks)
        )
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, tokens, parts=None):
        T = tokens.shape[1]
        pad = None if self.pad_id is None else tokens == self.pad_id
        keep = attention_mask(T, pad, tokens.device)
        x = self.dropout(self.embed(tokens) + self.positions[:T])
        for block in self.blocks:
            x = block(x, keep, parts)
        return self.head(x)


def n_parameters(model):
    return sum(t.numel() for t in model.parameters())


# %% [markdown]
# **Check 2: the tensor shapes of 002 4.3.** For $T$ tokens of width $d_{\text{model}}$ and
# $H$ heads, the key tensor of one head is $T \times d_k$, and the output of multi-head
# attention before the final linear map is $T \times H \times d_v$ (002's answers). In our
# source's model $d_k = d_v = p = 32$, $H = 2$, $T = 128$, $d_{\text{model}} = 256$. With
# $d_k = d_v$ a shape check cannot tell $T \times H \times d_v$ from $T \times H \times d_k$,
# so we also probe one attention layer of the same sizes whose values are wider than its
# keys, $d_v = 48$.
#
# **Check 3: causality of the whole model.** Changing the tokens after position $t$ must
# not change any logit at positions $\le t$: we change the last half of a sequence and
# compare, in float64, to $10^{-12}$ (nothing reaches the past, so only rounding could).

# %%
SOURCE_T, SOURCE_D, SOURCE_P, SOURCE_HEADS = 128, 256, 32, 2


def source_model(**options) -> TransformerLM:
    """The BPE model of 000 P1(b): the one probed here and the one trained below."""
    return TransformerLM(
        run.vocab_size,
        SOURCE_T,
        SOURCE_D,
        SOURCE_HEADS,
        run.lm_blocks,
        p=SOURCE_P,
        hidden=2 * SOURCE_D,
        **options,
    )


probe = source_model().double().eval()
tokens = torch.randint(5, run.vocab_size, (2, SOURCE_T), generator=generator)
results.record("lm_parameters", n_parameters(probe), description="parameters of the BPE model")
parts = {}
logits = probe(tokens, parts)
assert parts["keys"][0, 0].shape == (SOURCE_T, SOURCE_P)  # one head's keys: T x d_k
assert parts["heads_out"][0].shape == (SOURCE_T, SOURCE_HEADS, SOURCE_P)  # T x H x d_v
assert logits.shape == (2, SOURCE_T, run.vocab_size)
wide_values, D_V = {}, 48  # d_v != d_k, so the two shapes can be told apart
wide = MultiHeadAttention(SOURCE_D, SOURCE_P, SOURCE_HEADS, p_v=D_V).double()
x_wide = torch.randn(2, SOURCE_T, SOURCE_D, dtype=torch.float64, generator=generator)
wide_out = wide(x_wide, attention_mask(SOURCE_T), wide_values)
assert wide_values["keys"][0, 0].shape == (SOURCE_T, SOURCE_P)  # T x d_k
assert wide_values["heads_out"][0].shape == (SOURCE_T, SOURCE_HEADS, D_V)  # T x H x d_v
assert wide_out.shape == (2, SOURCE_T, SOURCE_D)  # W_o maps H d_v back to d_model

cut = SOURCE_T // 2
changed = tokens.clone()
changed[:, cut:] = torch.randint(5, run.vocab_size, (2, SOURCE_T - cut), generator=generator)
assert (changed[:, cut:] != tokens[:, cut:]).any()
changed_logits = probe(changed)
assert torch.allclose(changed_logits[:, :cut], logits[:, :cut], atol=1e-12, rtol=0)
assert not torch.allclose(changed_logits[:, cut:], logits[:, cut:])

# %% [markdown]
# **Speed: our attention against the fused kernel.** PyTorch's
# `scaled_dot_product_attention` computes the same function in one fused kernel (on a CPU, a
# blocked "flash"-style loop that never stores the $T \times T$ matrix). We time a forward
# and backward pass of both on a batch the size of our training batches, in float32.

# %%
shape = (run.lm_batch, SOURCE_HEADS, SOURCE_T, SOURCE_P)
qkv = [torch.randn(shape, device=device, requires_grad=True) for _ in range(3)]
causal = attention_mask(SOURCE_T, device=device)


def fwd_bwd(fn):
    def step():
        fn(*qkv).sum().backward()

    return step


ours_time = measure(fwd_bwd(lambda q, k, v: attention(q, k, v, causal)), repeat=run.repeat)
fused_time = measure(
    fwd_bwd(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
    repeat=run.repeat,
)
results.record(
    "attention_ours_ms",
    1e3 * ours_time.seconds,
    unit="ms",
    description="forward+backward of our attention",
)
results.record(
    "attention_fused_ms",
    1e3 * fused_time.seconds,
    unit="ms",
    description="forward+backward of scaled_dot_product_attention",
)
results.record(
    "attention_speed_ratio",
    speed_ratio(ours_time, fused_time),
    description="our attention time / fused attention time",
)
glue("attention_shape", " × ".join(str(s) for s in shape), display=False)
attention_ratio = speed_ratio(ours_time, fused_time)
glue(
    "attention_speed_sentence",
    ratio_verdict(
        attention_ratio,
        above=f"the fused kernel is {attention_ratio:.1f} times faster",
        below=f"ours is {1 / attention_ratio:.1f} times faster at this size",
        within="at this size neither is clearly faster (within timing noise)",
    ),
    display=False,
)
print(f"ours {ours_time}, fused {fused_time}")

# %% [markdown]
# A forward and backward pass of our attention takes {glue:text}`attention_ours_ms:.2f` ms
# on a batch of shape {glue:text}`attention_shape`, the fused kernel
# {glue:text}`attention_fused_ms:.2f` ms: a ratio of {glue:text}`attention_speed_ratio:.2f`.
# Ours writes the $T \times T$ score matrix, the mask and the softmax to memory and reads
# them back for the backward pass; the fused kernel streams over blocks of keys. Here
# {glue:text}`attention_speed_sentence`. The memory traffic of ours grows as $T^2$, so the
# comparison depends on $T$; exercise 6 measures how.

# %% [markdown]
# ## Training on sentences
#
# 000 P1(c) wants a model that completes a sentence, so each training example is one
# sentence. We join the lines of the corpus, cut it after `.`, `!` or `?`, keep sentences of
# at least four words, and encode each as `[CLS] tokens [SEP]`: `[CLS]` gives the first word
# something to be predicted from, and predicting `[SEP]` teaches the model where sentences
# end. A sentence that does not fit in $T + 1 = 129$ tokens with its `[CLS]` and `[SEP]` is
# cut to `[CLS]` and its first 128 tokens and gets no `[SEP]`: it does not end there, and a `[SEP]`
# after the cut would teach the model to stop in mid-sentence. A random 5 % of the sentences is
# held out for validation.
#
# A mini-batch of sentences of unequal length is padded with `[PAD]` on the right to the
# longest one. Padding must not count: the targets at padded positions are set to $-100$,
# which `F.cross_entropy` ignores (`ignore_index`), so the loss is the mean over real
# tokens only. The keys of padded positions are also masked in attention, although with
# right padding and the causal mask a real token never sees them anyway. Two checks on a
# model make this concrete: a sentence's logits inside a padded batch equal its logits
# computed alone, and the loss of the batch equals the mean of the sentences' own losses,
# each weighted by its number of tokens.
#
# Random sentences would make most of a batch padding: one long sentence of *War and Peace*
# pads every short sentence of its batch to its length. So a mini-batch is a random run of
# neighbours in the list of training sentences sorted by length (length bucketing): all
# sentences of a batch have similar lengths, and which lengths come next is still random.
# The validation loss is measured on every $k$-th validation sentence in length order (about
# {glue:text}`lm_val_sentences:,` sentences), which covers short and long sentences alike.

# %%
PAD, CLS, SEP = (lib_bert.token_to_id(s) for s in ["[PAD]", "[CLS]", "[SEP]"])
if run.lm_chars >= len(corpus) and run.bpe_chars >= len(corpus):
    tokenizer = lib_bert  # the production tokenizer: trained above on the whole corpus
else:
    tokenizer, lm_trainer = bert_bpe(run.vocab_size)
    tokenizer.train_from_iterator(chunks(corpus[: run.lm_chars]), lm_trainer)
    tokenizer = with_sorted_ids(tokenizer, corpus[:20_000])
assert [tokenizer.token_to_id(s) for s in ["[PAD]", "[CLS]", "[SEP]"]] == [PAD, CLS, SEP]

flat = re.sub(r"\s+", " ", corpus[: run.lm_chars])
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
lengths_np = np.array([len(s) for s in encoded])
glue("n_sentences", len(encoded), display=False)
glue("n_train_tokens", int(sum(len(s) - 1 for s in train_sentences)), display=False)
glue("median_sentence_tokens", int(np.median(lengths_np)), display=False)
glue("truncated_pct", 100 * n_cut / len(encoded), display=False)


def pad_batch(batch):
    """Token lists -> inputs (B, L) padded with PAD, targets (B, L) with -100 at padding."""
    L = max(len(s) for s in batch) - 1
    inputs = torch.full((len(batch), L), PAD)
    targets = torch.full((len(batch), L), -100)
    for row, s in enumerate(batch):
        inputs[row, : len(s) - 1] = torch.tensor(s[:-1])
        targets[row, : len(s) - 1] = torch.tensor(s[1:])
    return inputs.to(device), targets.to(device)


batch_rng = np.random.default_rng(run.seed)
train_by_length = sorted(train_sentences, key=len)
val_by_length = sorted(val_sentences, key=len)


def sentence_batch():
    """A random run of neighbours in length order: similar lengths, little padding."""
    start = batch_rng.integers(len(train_by_length) - run.lm_batch + 1)
    return pad_batch(train_by_length[start : start + run.lm_batch])


x_demo, y_demo = pad_batch(train_sentences[:3])
assert (x_demo[:, 0] == CLS).all() and ((x_demo == PAD) == (y_demo == -100)).all()
assert x_demo.shape[1] <= SOURCE_T

# Padding changes nothing: an untrained model in float64, three sentences of unequal length.
# The tolerance is rounding: products of different sizes may sum in a different order.
pad_check = source_model(pad_id=PAD).double().eval()
trio = [val_by_length[0], val_by_length[len(val_by_length) // 2], val_by_length[-1]]
x_trio, y_trio = (t.cpu() for t in pad_batch(trio))
assert len({len(s) for s in trio}) == 3 and (x_trio == PAD).any()
with torch.no_grad():
    padded_logits = pad_check(x_trio)
    own_losses, own_counts = [], []
    for row, s in enumerate(trio):
        alone = pad_check(torch.tensor([s[:-1]]))[0]  # the sentence alone, no padding
        assert torch.allclose(padded_logits[row, : len(s) - 1], alone, atol=1e-10, rtol=0)
        own_losses.append(F.cross_entropy(alone, torch.tensor(s[1:])).item())
        own_counts.append(len(s) - 1)
    batch_loss = F.cross_entropy(
        padded_logits.flatten(0, 1), y_trio.flatten(), ignore_index=-100
    ).item()
assert math.isclose(batch_loss, np.average(own_losses, weights=own_counts), rel_tol=1e-12)
assert not math.isclose(batch_loss, np.mean(own_losses), rel_tol=1e-6)  # the weights matter

# %% [markdown]
# The corpus gives {glue:text}`n_sentences:,` sentences, {glue:text}`n_train_tokens:,`
# training tokens; the median sentence has {glue:text}`median_sentence_tokens` tokens
# including `[CLS]` and `[SEP]`, and {glue:text}`truncated_pct:.2f` % of the sentences are
# cut (and have no `[SEP]`).
#
# **The baseline.** A model that ignores the context and always predicts the frequencies
# of the training tokens (a *unigram* model, with one added to every count so that no token
# has probability zero) has as its loss the cross-entropy of the validation tokens under
# those frequencies. We measure it on exactly the tokens of the model's validation loss. A
# Transformer that learned anything from the context must beat it clearly.
#
# **The training loop** is the same for every model in this chapter: AdamW with a short
# linear warm-up and a cosine decay of the learning rate, gradient clipping at norm 1, the
# training loss of each mini-batch recorded, and the validation loss at regular intervals
# (every {glue:text}`lm_eval_every:,` updates for the BPE model) on a fixed set of validation
# batches. Throughput counts the real (non-padding)
# target tokens per second of the updates themselves: building the batches (padding, the copy
# to the device) and the evaluations are excluded.


# %%
def unigram_loss(train, val, vocab):
    targets = np.concatenate([s[1:] for s in train])
    counts = 1 + np.bincount(targets, minlength=vocab)  # add-one: no probability is zero
    log_p = np.log(counts / counts.sum())
    return float(-np.mean(log_p[np.concatenate([s[1:] for s in val])]))


@torch.no_grad()
def target_losses(model, batches, last_only=False):
    """The loss of every target that is not padding (-100), in float64; with `last_only`, of the
    last position of each sequence only."""
    model.eval()
    losses = []
    for inputs, targets in batches:
        logits = model(inputs)
        if last_only:
            logits, targets = logits[:, -1:], targets[:, -1:]
        targets = targets.flatten()
        loss = F.cross_entropy(logits.flatten(0, 1), targets, ignore_index=-100, reduction="none")
        losses.append(loss[targets != -100].double().cpu())
    model.train()
    return torch.cat(losses)


def mean_loss(model, batches):
    return target_losses(model, batches).mean().item()


def train(model, next_batch, steps, eval_batches, eval_every, lr=1e-3, desc="training"):
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * s / steps))),
    )
    history = {
        "train": [],
        "val_step": [0],
        "val": [mean_loss(model, eval_batches)],
        "tokens": 0,
        "batch_tokens": [],
        "seconds": 0.0,
    }
    for step in tqdm(range(1, steps + 1), desc=desc, leave=False):
        inputs, targets = next_batch()
        start = time.perf_counter()
        logits = model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        history["train"].append(loss.item())  # .item() waits for the GPU: timing is honest
        history["seconds"] += time.perf_counter() - start
        history["batch_tokens"].append(int((targets != -100).sum()))
        history["tokens"] += history["batch_tokens"][-1]
        if step % eval_every == 0 or step == steps:
            history["val_step"].append(step)
            history["val"].append(mean_loss(model, eval_batches))
    history["tokens_per_second"] = history["tokens"] / history["seconds"]
    return history


def moving_average(values, window):
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


# %%
torch.manual_seed(run.seed)
lm = source_model(pad_id=PAD)
val_pick = val_by_length[:: max(1, len(val_by_length) // (run.lm_val_batches * run.lm_batch))]
val_batches = [
    pad_batch(val_pick[i : i + run.lm_batch]) for i in range(0, len(val_pick), run.lm_batch)
]
unigram = unigram_loss(train_sentences, val_pick, run.vocab_size)  # the same targets:
assert sum(len(s) - 1 for s in val_pick) == sum(int((t != -100).sum()) for _, t in val_batches)
glue("lm_val_sentences", len(val_pick), display=False)
glue("lm_eval_every", run.lm_eval_every, display=False)
lm_history = train(
    lm, sentence_batch, run.lm_steps, val_batches, run.lm_eval_every, desc="BPE Transformer"
)
results.record("lm_unigram_loss", unigram, description="validation cross-entropy of unigram")
results.record("lm_val_loss", lm_history["val"][-1], description="BPE model validation loss")
results.record(
    "lm_train_loss",
    float(np.mean(lm_history["train"][-50:])),
    description="mean training loss of the last 50 mini-batches",
)
results.record("lm_tokens_per_second", lm_history["tokens_per_second"], unit="tokens/s")
results.record("lm_train_minutes", lm_history["seconds"] / 60, unit="min")
lm_gap = unigram - lm_history["val"][-1]
glue(
    "lm_gap_phrase",
    f"{lm_gap:.2f} nats lower, so the context divides the perplexity by "
    f"e^{lm_gap:.2f} = {math.exp(lm_gap):.1f}"
    if lm_gap > 0
    else f"{-lm_gap:.2f} nats higher: this short run has not learned more than the "
    "frequencies of the tokens",
    display=False,
)
glue("lm_gap_short", f"{abs(lm_gap):.2f} {'below' if lm_gap > 0 else 'above'}", display=False)
glue(
    "lm_train_side",
    "below" if np.mean(lm_history["train"][-50:]) < lm_history["val"][-1] else "above",
    display=False,
)
train_pick = train_by_length[:: max(1, len(train_by_length) // len(val_pick))]
train_eval = mean_loss(
    lm,
    [pad_batch(train_pick[i : i + run.lm_batch]) for i in range(0, len(train_pick), run.lm_batch)],
)
results.record(
    "lm_train_eval_loss",
    train_eval,
    description="BPE model loss on training sentences, measured like validation",
)
glue(
    "lm_batch_tokens_ratio",
    max(lm_history["batch_tokens"]) / min(lm_history["batch_tokens"]),
    display=False,
)
lm_epochs = lm_history["tokens"] / sum(len(s) - 1 for s in train_sentences)
glue("lm_epochs", lm_epochs, display=False)
glue(
    "lm_epochs_phrase",
    "less than one pass on average, too little to learn the training sentences by heart"
    if lm_epochs < 1
    else "more than one pass, so the difference between the two losses shows how much it "
    "has fitted the training sentences in particular",
    display=False,
)
glue(
    "lm_val_trend",
    "was still falling at the last evaluation"
    if lm_history["val"][-1] < lm_history["val"][-2]
    else "had stopped falling by the last evaluation",
    display=False,
)
if run.profile != "smoke":
    # "Clearly below": at least 1 nat, i.e. the context divides the perplexity by e or more.
    assert lm_history["val"][-1] < unigram - 1.0, (lm_history["val"][-1], unigram)
assert lm_history["val"][-1] < lm_history["val"][0]  # training lowered the validation loss

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
window = max(1, run.lm_steps // 50)
smoothed = moving_average(lm_history["train"], window)
ax.plot(
    np.arange(1, len(lm_history["train"]) + 1),
    lm_history["train"],
    color="C0",
    alpha=0.2,
    lw=0.7,
    label="training loss of each mini-batch",
)
ax.plot(
    np.arange(window, window + len(smoothed)),
    smoothed,
    color="C0",
    label=f"training loss, moving average of {window}",
)
ax.plot(lm_history["val_step"], lm_history["val"], "o-", color="C1", label="validation loss")
ax.axhline(unigram, color="gray", ls="--", label="unigram baseline (validation)")
ax.set(
    xlabel="weight updates",
    ylabel="cross-entropy (nats per token)",
    title=f"BPE Transformer ({run.lm_blocks} blocks, vocabulary {run.vocab_size})",
)
ax.legend(loc="center right", bbox_to_anchor=(1, 0.55), fontsize=8)  # clear of the baseline
plt.show()

# %% [markdown]
# The model has {glue:text}`lm_parameters:,` parameters and trained at
# {glue:text}`lm_tokens_per_second:,.0f` tokens per second for
# {glue:text}`lm_train_minutes:.1f` minutes. Its validation loss ends at
# {glue:text}`lm_val_loss:.3f` nats per token against {glue:text}`lm_unigram_loss:.3f` for
# the unigram baseline: {glue:text}`lm_gap_phrase`.
#
# The moving average of the training loss runs {glue:text}`lm_train_side` the validation
# curve (last 50 mini-batches: {glue:text}`lm_train_loss:.3f`), but the two are not
# measured alike: the moving average gives every mini-batch the same weight, whatever its
# number of tokens, and with length bucketing the largest mini-batch of this run had
# {glue:text}`lm_batch_tokens_ratio:.0f` times as many real tokens as the smallest. Measured
# like the validation loss, on about as many training sentences, the training loss is
# {glue:text}`lm_train_eval_loss:.3f` against {glue:text}`lm_val_loss:.3f`. The model saw
# {glue:text}`lm_epochs:.2f` times as many tokens as the training set holds:
# {glue:text}`lm_epochs_phrase`. Its validation loss {glue:text}`lm_val_trend`.
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


# %%
@torch.no_grad()
def sample(model, ids, n_new, temperature=1.0, top_k=None, banned=(), seed=0):
    model.eval()
    rng = torch.Generator(device=device).manual_seed(seed)
    ids = list(ids)
    for _ in range(n_new):
        context = torch.tensor([ids[-model.context :]], device=device)
        logits = model(context)[0, -1] / temperature
        logits[list(banned)] = float("-inf")  # tokens the sampler may never draw
        if top_k is not None:
            kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        ids.append(int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=rng)))
    return ids


def markdown_text(text):
    """Text shown inside a Markdown table: escape what Markdown or MyST would interpret."""
    text = re.sub(r"([\\`*_{}\[\]<>#|$~])", r"\\\1", text)
    return text.replace("\n", " ⏎ ")


prompts = [
    "The Eiffel Tower is in",
    "What say you to my",
    "She looked at him and",
    "The king is dead, and",
    "It was a cold night in",
]


def first_words(text, n):
    """`text` up to the end of its n-th word (a run of letters: punctuation and digits do not
    count), and the number of words kept."""
    words = list(re.finditer(r"[^\W\d_]+", text))
    end = words[n - 1].end() if len(words) >= n else len(text)
    return text[:end].strip(), min(len(words), n)


rows = []
for i, prompt in enumerate(prompts):
    prompt_ids = [CLS, *tokenizer.encode(prompt).ids]
    for label, kwargs in [
        ("τ = 0.8, top-k 40", dict(temperature=0.8, top_k=40)),
        ("τ = 1.0", dict(temperature=1.0)),
    ]:
        out = sample(lm, prompt_ids, 32, banned=range(len(SPECIALS)), seed=i, **kwargs)
        # Decode prompt and completion together, so that a first piece "##s" joins its word.
        shown, whole = tokenizer.decode(prompt_ids), tokenizer.decode(out)
        completion = whole[len(shown) :] if whole.startswith(shown) else whole
        shown_part, n_words = first_words(completion, 8)
        if run.profile != "smoke":
            assert n_words >= 7, completion  # 32 tokens make well over 8 words of English
        rows.append(f"| {markdown_text(prompt)} | {label} | {markdown_text(shown_part)} |")
display(
    Markdown(
        "| prompt | sampling | completion (at most 8 words) |\n|---|---|---|\n" + "\n".join(rows)
    )
)

# %% [markdown]
# The completions string together common words and punctuation in the manner of the
# corpus, but they hold no thought across a sentence, and some words are invented: a piece
# that starts a word followed by `##` pieces that never follow it in the text. The model
# is small. The sampler may not draw special tokens: a `[SEP]` would end a completion, possibly
# before the 7-8 words the source asks for, so we draw 32 tokens and keep the text up to the
# eighth word (a run of letters: punctuation does not count as a word). Five prompts are too few to
# tell the two sampling settings apart; in principle top-$k$ and $\tau < 1$ draw fewer rare tokens,
# and exercise 5 below measures it. (The decoder puts spaces around apostrophes and quotes,
# because the BERT pre-tokenizer threw the original spacing away.)
#
# ## The character-level study
#
# 001 P4 trains a small Transformer on tiny Shakespeare ({glue:text}`tiny_chars:,`
# characters of the plays) one character at a time, then varies the context length and the
# number of heads. We use our model from above, with a vocabulary of the
# {glue:text}`char_vocab` characters and two changes: the hidden layer of each block's MLP is
# $4d$ wide, nanoGPT's convention, where the BPE model above has the source's $2d$; and the
# heads split the width, $p = d/H$, so that they concatenate back to $d$, where the BPE model
# has the source's two heads of $p = 32$ and projects $2p$ back to $d$. In the `gpu` profile
# the main character model also uses dropout ({glue:text}`char_dropout_gpu`), as nanoGPT's
# GPU recipe does. The first
# 90 % of the text is for training and the last 10 % for validation, and the examples are
# random windows of `context + 1` characters (no padding needed). First the generation of
# the untrained model, then the training curves and the generation after training.
#
# The reference numbers are nanoGPT's {cite:p}`karpathy2022nanogpt`, Karpathy's character-level
# Shakespeare recipes on the corpus of char-rnn {cite:p}`karpathy2015unreasonable`. Its
# CPU recipe trains {glue:text}`nanogpt_cpu_recipe`, and reaches a validation loss of about
# {glue:text}`nanogpt_cpu_val:.2f`; its GPU recipe trains {glue:text}`nanogpt_gpu_recipe`,
# and reaches about {glue:text}`nanogpt_gpu_val:.2f`. nanoGPT uses pre-norm blocks, learned
# positions, GELU and an output layer tied to the token embedding; ours are the post-norm
# blocks, sine-cosine positions, ReLU and a separate output layer of this chapter (both are
# bias-free). The main model of this run, from the scale table, trains
# {glue:text}`char_recipe`.

# %%
shakespeare = data.load_text("tinyshakespeare")
chars = sorted(set(shakespeare))
char_to_id = {ch: i for i, ch in enumerate(chars)}
char_ids = torch.tensor([char_to_id[ch] for ch in shakespeare])
split = int(0.9 * len(char_ids))
char_train, char_val = char_ids[:split], char_ids[split:]
assert len(chars) == 65
glue("tiny_chars", len(shakespeare), display=False)

# nanoGPT's shakespeare_char recipes (config/train_shakespeare_char.py, and the smaller one
# its README gives for a CPU) with the validation losses its README reports.
NANOGPT = {
    "cpu": dict(blocks=4, width=128, heads=4, context=64, batch=12, steps=2_000, dropout=0.0),
    "gpu": dict(blocks=6, width=384, heads=6, context=256, batch=64, steps=5_000, dropout=0.2),
}
NANOGPT_VAL = {"cpu": 1.88, "gpu": 1.47}
char_recipe = dict(
    blocks=run.char_blocks,
    width=run.char_width,
    heads=run.char_heads,
    context=run.char_context,
    batch=run.batch,
    steps=run.char_steps,
    dropout=run.char_dropout,
)


def predicted_chars(recipe):
    """Characters predicted in training: every position of every window of every update."""
    return recipe["steps"] * recipe["batch"] * recipe["context"]


def recipe_text(r):
    return (
        f"{r['blocks']} block{'s' * (r['blocks'] > 1)} of width {r['width']} with "
        f"{r['heads']} heads, context "
        f"{r['context']}, mini-batches of {r['batch']} windows, dropout {r['dropout']:g} and "
        f"{r['steps']:,} updates, so {predicted_chars(r):,} predicted characters"
    )


glue("nanogpt_cpu_recipe", recipe_text(NANOGPT["cpu"]), display=False)
glue("nanogpt_gpu_recipe", recipe_text(NANOGPT["gpu"]), display=False)
glue("nanogpt_cpu_val", NANOGPT_VAL["cpu"], display=False)
glue("nanogpt_gpu_val", NANOGPT_VAL["gpu"], display=False)
glue("char_recipe", recipe_text(char_recipe), display=False)


def decode_chars(ids):
    return "".join(chars[i] for i in ids)


def window_batch(source, context, rng):
    starts = torch.randint(len(source) - context - 1, (run.batch,), generator=rng)
    windows = torch.stack([source[s : s + context + 1] for s in starts.tolist()])
    return windows[:, :-1].to(device), windows[:, 1:].to(device)


def char_model(width, heads, blocks, context, dropout=0.0, model_seed=0):
    """A character model (MLP width 4d, the default), its weights drawn from ``model_seed``."""
    torch.manual_seed(model_seed)
    return TransformerLM(len(chars), context, width, heads, blocks, dropout=dropout)


def char_eval_batches(context):
    val_rng = torch.Generator().manual_seed(12345)  # the same validation windows every time
    return [window_batch(char_val, context, val_rng) for _ in range(run.eval_batches)]


LAST_BATCHES = max(1, 4_096 // run.batch)  # about 4,096 windows for the full-context loss


def full_context_losses(model, context, longest=64):
    """Loss of the last prediction of each of LAST_BATCHES batches of validation windows: the only
    one that sees the whole context (position j of a window sees j + 1 characters). The windows
    are drawn once at the `longest` context and cut to their last `context` + 1 characters, so
    that models of every context are scored on the same targets, and their losses can be paired."""
    rng = torch.Generator().manual_seed(54_321)
    batches = []
    for _ in range(LAST_BATCHES):
        inputs, targets = window_batch(char_val, longest, rng)
        batches.append((inputs[:, -context:], targets[:, -context:]))
    return target_losses(model, batches, last_only=True)


def char_experiment(width, heads, blocks, context, steps, dropout=0.0, desc="", model_seed=0):
    model = char_model(width, heads, blocks, context, dropout, model_seed)
    train_rng = torch.Generator().manual_seed(model_seed + 1)
    history = train(
        model,
        lambda: window_batch(char_train, context, train_rng),
        steps,
        char_eval_batches(context),
        max(1, steps // 10),
        desc=desc,
    )
    return model, history


train_words = set(re.findall(r"[a-z]+", decode_chars(char_train.tolist()).lower()))
SPEAKER_LINE = re.compile(r"^[A-Z][A-Za-z ]*:$", re.MULTILINE)  # a name and a colon


def real_word_shares(text, long=5):
    """Shares of the words of a sample (runs of letters, lower-cased) that occur in the
    training text: of all words, and of the words of at least ``long`` letters. The last
    word is left out, since the sample may stop in the middle of it."""
    words = re.findall(r"[a-z]+", text.lower())[:-1]
    longer = [w for w in words if len(w) >= long]
    return tuple(sum(w in train_words for w in ws) / max(1, len(ws)) for ws in (words, longer))


# The prompt begins a speaker's turn as the play text does: a blank line, a name, a colon.
SPEAKER_PROMPT, N_SAMPLE = "\n\nROMEO:\n", 500
prompt_chars = [char_to_id[ch] for ch in SPEAKER_PROMPT]
main_shape = (run.char_width, run.char_heads, run.char_blocks, run.char_context)
untrained = char_model(*main_shape, run.char_dropout).to(device)  # the curve's first point
untrained_batches = char_eval_batches(run.char_context)
untrained_loss = mean_loss(untrained, untrained_batches)
# Jensen: logsumexp(z) >= mean(z) + ln V, with equality only when all logits are equal.
with torch.no_grad():
    untrained.eval()
    jensen_gap = np.mean(  # batches of equal size: the mean of their means is the mean
        [
            (z.logsumexp(-1) - z.mean(-1) - math.log(len(chars))).mean().item()
            for z in (untrained(x).double() for x, _ in untrained_batches)
        ]
    ).item()
SAMPLE_TAU = 0.8  # before and after training alike
before = decode_chars(
    sample(untrained, prompt_chars, N_SAMPLE, temperature=SAMPLE_TAU, seed=1)[len(prompt_chars) :]
)
char_model_trained, char_history = char_experiment(
    *main_shape, run.char_steps, run.char_dropout, desc="character model"
)
# The same weights and windows give the same loss; 1e-5 allows for a GPU's summation order.
assert math.isclose(char_history["val"][0], untrained_loss, rel_tol=1e-5)
assert char_history["tokens"] == predicted_chars(char_recipe)  # windows have no padding
after = decode_chars(
    sample(char_model_trained, prompt_chars, N_SAMPLE, temperature=SAMPLE_TAU, seed=1)[
        len(prompt_chars) :
    ]
)
print(
    f"Prompt: {SPEAKER_PROMPT!r}, temperature {SAMPLE_TAU}\n\nBefore training:\n{before}\n\n"
    f"After training:\n{after}"
)

# %%
char_val_loss = char_history["val"][-1]
on_gpu = run.profile == "gpu"
reference_recipe = "gpu" if on_gpu else "cpu"
reference_val = NANOGPT_VAL[reference_recipe]
# Our acceptance bound, asserted below: a margin over nanoGPT's 1.47 (gpu) and 1.88 (cpu) for the
# differences of recipe stated in the text. The reference itself gets no verdict (rule "beside").
char_bound = 1.6 if on_gpu else 2.1
data_ratio = predicted_chars(char_recipe) / predicted_chars(NANOGPT[reference_recipe])
results.compare(
    "char_val_loss",
    char_val_loss,
    reference_val,
    tolerance=0.0,
    rule="beside",
    source=f"nanoGPT shakespeare_char ({reference_recipe.upper()} recipe)",
    description=(
        f"character-level validation loss (our acceptance bound, asserted: {char_bound:.1f}). "
        f"Ours: post-norm, sine-cosine positions, {recipe_text(char_recipe)}. Reference: "
        f"nanoGPT's {reference_recipe.upper()} recipe, pre-norm, learned positions, "
        f"{recipe_text(NANOGPT[reference_recipe])}; ours predicted {data_ratio:.3g} times as "
        "many characters"
    ),
)
results.record("char_tokens_per_second", char_history["tokens_per_second"], unit="chars/s")
results.record("char_train_minutes", char_history["seconds"] / 60, unit="min")
results.record("char_parameters", n_parameters(char_model_trained))
char_train_loss = float(np.mean(char_history["train"][-50:]))
char_epochs = char_history["tokens"] / len(char_train)
glue("char_train_loss", char_train_loss, display=False)
glue(
    "char_gap_phrase",
    f"{abs(char_val_loss - char_train_loss):.2f} nats "
    + ("below" if char_train_loss < char_val_loss else "above"),
    display=False,
)
glue("char_epochs", char_epochs, display=False)
glue(
    "char_epochs_phrase",
    "so part of the gap is fitting them in particular" if char_epochs > 1 else "less than one pass",
    display=False,
)
glue("char_uniform_loss", math.log(len(chars)), display=False)
glue("char_vocab", len(chars), display=False)
glue("char_dropout_gpu", run.value_in("char_dropout", "gpu"), display=False)
glue("char_initial_loss", char_history["val"][0], display=False)
glue("char_jensen_gap", jensen_gap, display=False)
glue("char_reference_name", reference_recipe.upper(), display=False)
glue("char_reference_val", reference_val, display=False)
glue("char_bound", char_bound, display=False)
glue(
    "char_data_sentence",
    f"Our model predicted as many characters in training as that recipe, "
    f"{predicted_chars(char_recipe):,}; the architecture, the weight decay, the warm-up and the "
    "way the loss is reported (nanoGPT keeps its best evaluation, we report the last) still "
    "differ."
    if abs(data_ratio - 1) < 0.1
    else f"Our model predicted {predicted_chars(char_recipe):,} characters in training, "
    + (f"{data_ratio:.1f} times" if data_ratio > 1 else f"only {data_ratio:.1%} of")
    + f" the {predicted_chars(NANOGPT[reference_recipe]):,} of that recipe, so the "
    "comparison is not like for like.",
    display=False,
)
words_before, long_before = real_word_shares(before)
words_after, long_after = real_word_shares(after)
glue("char_words_before", 100 * words_before, display=False)
glue("char_words_after", 100 * words_after, display=False)
glue("char_long_words_after", 100 * long_after, display=False)
glue(
    "char_long_phrase",
    "most of the longer words are invented" if long_after < 0.5 else "most longer words are real",
    display=False,
)
speaker_lines = SPEAKER_LINE.findall(after)
glue(
    "char_speaker_sentence",
    f"The sample also opens {len(speaker_lines)} new speaker "
    f"turn{'s' if len(speaker_lines) > 1 else ''} by itself, on a line that holds only a "
    f"name and a colon ({', '.join(line[:-1] for line in speaker_lines[:3])})."
    if speaker_lines
    else f"In these {N_SAMPLE} characters it opens no new speaker turn (a line that holds "
    "only a name and a colon).",
    display=False,
)
glue("n_sample_chars", N_SAMPLE, display=False)
# Above the uniform guess: expected, not guaranteed (Jensen bounds the loss of a uniformly drawn
# target, not of the true one; see the text).
assert untrained_loss > math.log(len(chars))
assert jensen_gap > 0  # the numeric check of the inequality; equality needs all logits equal
if run.profile != "smoke":
    assert char_val_loss <= char_bound, char_val_loss  # acceptance: 2.1 (cpu), 1.6 (gpu)
    assert words_after > words_before, (words_after, words_before)

fig, ax = plt.subplots(figsize=(8, 4.5))
window = max(1, run.char_steps // 50)
smoothed = moving_average(char_history["train"], window)
ax.plot(
    np.arange(window, window + len(smoothed)),
    smoothed,
    label=f"training loss, moving average of {window}",
)
ax.plot(char_history["val_step"], char_history["val"], "o-", label="validation loss")
ax.axhline(math.log(len(chars)), color="gray", ls=":", label=f"uniform guess, ln {len(chars)}")
ax.set(
    xlabel="weight updates",
    ylabel="cross-entropy (nats per character)",
    title=f"Character model: d = {run.char_width}, {run.char_heads} heads, "
    f"{run.char_blocks} blocks, context {run.char_context}",
)
ax.legend()
plt.show()

# %% [markdown]
# Before training the validation loss is {glue:text}`char_initial_loss:.3f`, above
# $\ln$ {glue:text}`char_vocab` = {glue:text}`char_uniform_loss:.2f`, the loss of a uniform
# guess: the untrained logits of a position are not all equal, and by Jensen's inequality
# their log-sum-exp exceeds their mean plus $\ln$ {glue:text}`char_vocab` (here by
# {glue:text}`char_jensen_gap:.3f` on average), so a target whose logit is a typical one
# costs more than under the uniform guess. After {glue:text}`char_train_minutes:.1f` minutes
# of training ({glue:text}`char_parameters:,` parameters,
# {glue:text}`char_tokens_per_second:,.0f` characters per second) the validation loss is
# {glue:text}`char_val_loss:.3f` nats per character. Our yardstick is nanoGPT's
# {glue:text}`char_reference_name` recipe, which reaches about
# {glue:text}`char_reference_val:.2f`: we accept our model if its loss is at most
# {glue:text}`char_bound:.1f` (the Reproduction page lists ours beside the reference).
# {glue:text}`char_data_sentence`
#
# Both samples start from the prompt `ROMEO:` on a line of its own after a blank line, the
# way a speaker's turn begins in the play, and continue for
# {glue:text}`n_sample_chars` characters. Counting as a word any run of letters, in lower
# case, {glue:text}`char_words_before:.0f` % of the words of the untrained model's sample
# occur somewhere in the training text, and {glue:text}`char_words_after:.0f` % of the
# trained model's; of its words of five letters or more,
# {glue:text}`char_long_words_after:.0f` % occur there: {glue:text}`char_long_phrase`.
# {glue:text}`char_speaker_sentence` Why a play and not, say, an encyclopedia article (001 P4
# asks)? Training minimized the cross-entropy on these characters and nothing else: the model
# is an estimate of the distribution of the next character *in this text*, and sampling draws
# from that estimate. Names followed by colons, short lines and archaic pronouns are what the
# text is made of; an article's sentences and vocabulary are nowhere in it.
#
# The training loss (moving average of the last 50 mini-batches,
# {glue:text}`char_train_loss:.3f`) lies {glue:text}`char_gap_phrase` the validation loss.
# The model went {glue:text}`char_epochs:.1f` times through the training characters,
# {glue:text}`char_epochs_phrase`; the validation text is the last tenth of the file: other
# scenes, other speakers, other names.
#
# ### Context length and heads
#
# Now we train from scratch five smaller models that share one setting (width
# {glue:text}`study_width`, {glue:text}`study_blocks` blocks, {glue:text}`study_steps:,` updates
# of the same batch size on the same text), so their losses do not compare with the model
# above: context
# lengths 2, 16 and 64 with 4 heads, and 2, 4 and 8 heads with context 64 (the model with
# context 64 and 4 heads is shared by both series). With a fixed width $d$, more heads means
# smaller heads, $p = d/H$: the number of parameters stays the same, only how attention is
# split changes. Each model then writes {glue:text}`study_sample_chars:,` characters after a
# line break, and we count how many of its words occur in the training text.

# %%
study_blocks, study_sample = 2, 1_000
glue("study_sample_chars", study_sample, display=False)
glue("study_width", run.study_width, display=False)
glue("study_blocks", study_blocks, display=False)
glue("study_steps", run.study_steps, display=False)
newline = [char_to_id["\n"]]
configs = {(2, 4), (16, 4), (64, 4), (64, 2), (64, 8)}
study = {}
for context, heads in sorted(configs):  # one progress bar per model, none around them
    model, history = char_experiment(
        run.study_width,
        heads,
        study_blocks,
        context,
        run.study_steps,
        desc=f"context {context}, {heads} heads",
    )
    text = decode_chars(sample(model, newline, study_sample, temperature=0.8, seed=2)[1:])
    study[context, heads] = {
        "history": history,
        "last": full_context_losses(model, context, longest=max(c for c, _ in configs)),
        "sample": text,
        "words": real_word_shares(text),
        "params": n_parameters(model),
    }
    results.record(
        f"study_ctx{context}_heads{heads}_val",
        history["val"][-1],
        description=f"val loss, context {context}, {heads} heads",
    )

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
for ax, series, label in [
    (axes[0], [(c, 4) for c in (2, 16, 64)], "context {0}"),
    (axes[1], [(64, h) for h in (2, 4, 8)], "{1} heads"),
]:
    for i, key in enumerate(series):
        h = study[key]["history"]
        w = max(1, run.study_steps // 25)
        sm = moving_average(h["train"], w)
        ax.plot(
            np.arange(w, w + len(sm)),
            sm,
            color=f"C{i}",
            alpha=0.6,
            label=label.format(*key) + " (train)",
        )
        ax.plot(
            h["val_step"],
            h["val"],
            "o--",
            color=f"C{i}",
            ms=3,
            label=label.format(*key) + " (validation)",
        )
    ax.set(
        xlabel="weight updates",
        title="4 heads, context varied" if ax is axes[0] else "context 64, heads varied",
    )
    ax.legend(fontsize=8)
axes[0].set_ylabel("cross-entropy (nats per character), axis cut above")
# Zoom in on where the curves differ: from the first validation point after step 0 down.
low = min(min(s["history"]["train"]) for s in study.values()) - 0.05
axes[0].set_ylim(low, max(s["history"]["val"][1] for s in study.values()) + 0.15)
fig.suptitle(
    f"Character models, d = {run.study_width}, {study_blocks} blocks, trained from scratch"
)
plt.show()
display(
    Markdown(
        "| context | heads | parameters | validation loss | words in the training text | "
        "words of 5+ letters in it | first 200 characters of the sample (temperature 0.8; "
        "⏎ is a line break) |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(
            f"| {c} | {h} | {study[c, h]['params']:,} | {study[c, h]['history']['val'][-1]:.3f}"
            f" | {100 * study[c, h]['words'][0]:.0f} % | {100 * study[c, h]['words'][1]:.0f} %"
            f" | {markdown_text(study[c, h]['sample'][:200])} |"
            for c, h in sorted(configs)
        )
    )
)

vals = {key: s["history"]["val"][-1] for key, s in study.items()}
heads_spread = max(vals[64, h] for h in (2, 4, 8)) - min(vals[64, h] for h in (2, 4, 8))
results.record(
    "study_heads_spread",
    heads_spread,
    description="max - min val loss over 2, 4, 8 heads at context 64 (one seed each)",
)
context_gain = vals[2, 4] - vals[64, 4]
glue("study_context_gain", context_gain, display=False)
glue(
    "study_context_sentence",
    "Context length matters most."
    if vals[2, 4] > max(vals[16, 4], vals[64, 4]) and context_gain > heads_spread
    else "In this run context length did not matter most.",
    display=False,
)
last = {c: study[c, 4]["last"] for c in (2, 16, 64)}  # losses of the same targets: paired
for c in (2, 16, 64):
    glue(f"study_last_ctx{c}", last[c].mean().item(), display=False)
glue("study_last_windows", LAST_BATCHES * run.batch, display=False)


def mean_and_se(differences):
    """The mean of per-target differences and its standard error."""
    return differences.mean().item(), (differences.std() / math.sqrt(len(differences))).item()


gains_short, gains_long = last[2] - last[16], last[16] - last[64]  # per target
gain_short, se_short = mean_and_se(gains_short)
gain_long, se_long = mean_and_se(gains_long)
_, se_gains = mean_and_se(gains_short - gains_long)
glue("study_gain_se", max(se_short, se_long), display=False)
glue(
    "study_gain_sentence",
    f"Measured there, the loss changes by {-gain_short:+.2f} nats from context 2 to 16 and by "
    f"{-gain_long:+.2f} from 16 to 64"
    + (
        ": most of what predicts the next character lies in the current and the previous word, "
        "while the cost does not shrink, since attention's time and memory grow as the square "
        "of the context."
        if gain_short > gain_long + 2 * se_gains
        else ": characters beyond the last few words still help."
        if gain_long > 2 * se_long
        else "."
    )
    + (
        f" At its last position the context-64 model is even worse than the context-16 one, by "
        f"{-gain_long:.2f} nats, more than twice the standard error: in {run.study_steps:,} "
        "updates this small model did not learn to use more than 16 characters, and the longer "
        "context even cost it a little."
        if gain_long < -2 * se_long
        else ""
    ),
    display=False,
)
for c in (2, 16, 64):
    glue(f"study_words_ctx{c}", 100 * study[c, 4]["words"][0], display=False)
    glue(f"study_long_words_ctx{c}", 100 * study[c, 4]["words"][1], display=False)
glue(
    "study_words_sentence",
    f"Even with context 64, at a validation loss of {vals[64, 4]:.2f} nats per character, "
    "most of the longer words are invented."
    if study[64, 4]["words"][1] < 0.5
    else "With context 64 most of the longer words are real ones.",
    display=False,
)
glue(
    "study_heads_sentence",
    "smaller than the gain from context"
    if heads_spread < context_gain
    else "not smaller than the gain from context",
    display=False,
)
ctx2_val = study[2, 4]["history"]["val"]
glue(
    "study_ctx2_trend",
    "was still falling at the end"
    if ctx2_val[-1] < ctx2_val[-2]
    else "had stopped falling by the end",
    display=False,
)
glue("study_chars_seen", study[64, 4]["history"]["tokens"], display=False)
glue("study_ctx2_chars", study[2, 4]["history"]["tokens"], display=False)
glue("study_epochs", study[64, 4]["history"]["tokens"] / len(char_train), display=False)
assert len({s["params"] for s in study.values()}) == 1  # heads and context cost no parameters
if run.profile != "smoke":
    # At most two characters of context see less than a word; 16 characters see whole words.
    assert vals[2, 4] > vals[16, 4] + 0.1 and vals[2, 4] > vals[64, 4] + 0.1, vals
    assert heads_spread < vals[2, 4] - vals[64, 4], vals  # heads matter less than context

# %% [markdown]
# **Context length.** {glue:text}`study_context_sentence` The validation loss, averaged over
# every position of the windows as in training, ends at {glue:text}`study_ctx2_heads4_val:.3f`
# with context 2, {glue:text}`study_ctx16_heads4_val:.3f` with context 16 and
# {glue:text}`study_ctx64_heads4_val:.3f` with context 64, {glue:text}`study_context_gain:.2f`
# nats below context 2. That average mixes contexts: position $j$ of a window sees only $j + 1$
# characters, so half the predictions of the context-2 model see one character (a bigram
# model) and half see two (a trigram model), and the context-64 model's first 16 positions are
# in the same situation as the context-16 model. To compare the contexts themselves we score
# only the last position of {glue:text}`study_last_windows:,` validation windows, where each
# model sees its whole context: {glue:text}`study_last_ctx2:.3f`,
# {glue:text}`study_last_ctx16:.3f` and {glue:text}`study_last_ctx64:.3f` nats. The windows are
# the same for the three models (cut from the same windows of the longest context), so the
# differences are taken target by target, and their standard errors are at most
# {glue:text}`study_gain_se:.3f` nats; a difference counts below when it exceeds twice its
# standard error. {glue:text}`study_gain_sentence`
#
# What a loss means for the text shows in the table. Counting as a word any run of letters,
# in lower case, {glue:text}`study_words_ctx2:.0f` %, {glue:text}`study_words_ctx16:.0f` %
# and {glue:text}`study_words_ctx64:.0f` % of the words that the models with context 2, 16
# and 64 write occur in the training text, and of their words of five letters or more,
# {glue:text}`study_long_words_ctx2:.0f` %, {glue:text}`study_long_words_ctx16:.0f` % and
# {glue:text}`study_long_words_ctx64:.0f` %. Short words like *the*, *and* and *my* count as
# real even when a model places them at random, so the longer words are the better test.
# {glue:text}`study_words_sentence`
#
# **The number of heads.** 2, 4 and 8 heads end at {glue:text}`study_ctx64_heads2_val:.3f`,
# {glue:text}`study_ctx64_heads4_val:.3f` and {glue:text}`study_ctx64_heads8_val:.3f`, a
# spread of {glue:text}`study_heads_spread:.3f` nats, {glue:text}`study_heads_sentence`.
# The parameter count is identical; more heads let the layer attend to several places at
# once, but each head is narrower ($p = d/H$). We trained one model per setting from one
# seed, so the study does not measure how much the loss moves from seed to seed. Without
# that yardstick we cannot tell whether differences this small come from the heads or from
# the seed, and they do not rank the settings (exercise 8 measures the spread between
# seeds). The samples begin alike because every model starts from the same weights (their
# shapes do not depend on the context or the number of heads), drew its mini-batches from
# the same random numbers and was sampled with the same random numbers; where they part,
# the differences at equal loss are the luck of the draw.
#
# Equal updates are not equal data. A window gives as many predictions as the context is
# long, so the models with context 64 were trained on {glue:text}`study_chars_seen:,`
# predicted characters (about {glue:text}`study_epochs:.1f` passes over the training text)
# and the model with context 2 on only {glue:text}`study_ctx2_chars:,`. Its validation curve
# {glue:text}`study_ctx2_trend`, and part of its gap may be the smaller amount of data
# rather than the short context; exercise 7 separates the two.
#
# ## Summary
#
# - BPE merges the most frequent adjacent pair until the vocabulary is full. Updating pair
#   counts only in the chunks a merge touches made our pure-Python trainer
#   {glue:text}`bpe_incremental_speedup:.0f` times faster than recounting, on a small text.
#   Our incremental byte-level trainer is still {glue:text}`bpe_speed_ratio:.1f` times
#   slower than the Rust library on {glue:text}`bpe_text_phrase`, with the same compression
#   ({glue:text}`bpe_ours_tokens_per_char:.3f` against
#   {glue:text}`bpe_library_tokens_per_char:.3f` tokens per character).
# - Causal attention is $\operatorname{softmax}(QK^\top/\sqrt p + M)V$ with the sum over
#   $s \le t$ of $v_s$; ours equals PyTorch's fused kernel to $10^{-12}$ with causal and
#   padding masks, and the whole model's past logits do not move when the future changes.
#   A sentence padded on the right inside a batch gets the logits it gets alone.
#   The transposed $V\operatorname{softmax}(K^\top Q/\sqrt d)$ mixes features, not tokens,
#   and leaks the future. Forward and backward, our attention took
#   {glue:text}`attention_speed_ratio:.2f` times as long as PyTorch's fused kernel.
# - On padded sentences with a loss that ignores padding, the source's two-head model
#   reached a validation loss of {glue:text}`lm_val_loss:.3f` nats per BPE token,
#   {glue:text}`lm_gap_short` the unigram baseline.
# - At the character level the validation loss reached {glue:text}`char_val_loss:.3f`.
#   {glue:text}`study_context_sentence` The spread between 2, 4 and 8 heads at fixed width
#   was {glue:text}`study_heads_sentence`, and one seed per setting cannot rank them.
#
# ## What to try
#
# 1. **Tie-breaking.** Break ties in the worked example by the *first occurrence* of a pair
#    instead of the smallest codes. Which merges change? Is the final length still 5?
# 2. **Encoding speed.** Our `encode` is cached per chunk. Time it on the whole corpus
#    against the library's `encode_batch`, then remove the cache. Which chunks dominate?
# 3. **The source's equations, literally.** Put the sigmoid on $q, k, v$ and train the
#    character model. How much worse is the validation loss, and why does it still learn?
# 4. **Pre-norm.** Move the LayerNorm before attention and the MLP
#    ($X + \operatorname{MHA}(\operatorname{LN}(X))$) as nanoGPT does. Does training become
#    less sensitive to the learning rate? Try four times the learning rate with both.
# 5. **Temperature.** Measure the fraction of completions that contain a non-word (a word
#    not in the training text) as the temperature goes from 0.5 to 1.5.
# 6. **Long context.** Time our attention and the fused kernel for $T$ = 128, 512 and 2048.
#    Where does ours run out of memory, and why does the fused one not?
# 7. **Equal data.** Give the context-2 model 32 times larger batches, so that it predicts
#    as many characters per update as the context-64 model. How much of its gap remains?
# 8. **Seeds.** Train the models with 2, 4 and 8 heads with three seeds each (`model_seed`
#    of `char_experiment`). How far apart are the losses of one setting, and can you now
#    rank the three settings?
