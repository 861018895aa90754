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
# # The decoder-only Transformer
#
# With attention in hand ({doc}`section 2 <02_causal_attention>`), the model of 000 P1(b)
# is a few lines more: token embeddings plus position codes, a stack of blocks that each
# combine attention with a small MLP, and a linear map to one logit per vocabulary entry.
# This section builds it, checks the tensor shapes that 002 asks about, proves that no
# logit sees the future, and times our attention against PyTorch's fused kernel. The later
# sections train this model.

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
import torch
from IPython.display import Markdown, display

from helpers import profiles, results
from helpers.glue import glue
from helpers.lessons.bpe_transformer import attention, attention_mask
from helpers.timing import measure_alternately, round_ratios, speed_ratio

run = profiles.setup(
    profile,
    seed=7,
    vocab_size=(512, 1024, 2048),  # BPE vocabulary of the model
    lm_blocks=(2, 2, 4),  # Transformer blocks of the BPE model (the source: 2-4)
    lm_batch=(8, 32, 64),  # sentences per mini-batch (the batch that is timed)
    repeat=(2, 10, 20),  # timing rounds
)
run

# %% [markdown]
# ## The blocks
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
# a linear map to one logit per vocabulary entry. LayerNorm {cite:p}`ba2016layer`
# standardizes each position's vector over its $d$ features. Nothing has a bias (the
# source's choice; `nn.LayerNorm(bias=False)` keeps its gain). Attention is ours, from
# section 2: no `nn.MultiheadAttention`, `nn.Transformer*` or fused kernel inside the model.
# The attention module can return its intermediate tensors, so that we can assert their
# shapes.
#
# The position codes are the formula above, one row per position (click to show).

# %% tags=["save", "hide-input"]
import math

from torch import nn


def sinusoidal_positions(T, d):
    position = torch.arange(T, dtype=torch.float32)[:, None]
    exponent = torch.arange(0, d, 2, dtype=torch.float32) / d
    frequency = torch.exp(-math.log(10_000.0) * exponent)
    codes = torch.zeros(T, d)
    codes[:, 0::2] = torch.sin(position * frequency)
    codes[:, 1::2] = torch.cos(position * frequency)
    return codes


# %% [markdown]
# One linear map computes the queries, keys and values of every head at once: its output
# of width $H(2p + p_v)$ is split into the queries and keys ($2Hp$ columns) and the values
# ($Hp_v$), and reshaped so that the heads become a batch dimension, $(B, H, T, p)$. Our
# `attention` then works on all heads of all sequences in one call, and the outputs of the
# heads are laid side by side again, $(B, T, H p_v)$, before $W_o$. Dropout, when used,
# acts on the embeddings, on the heads' outputs before $W_o$ and after the MLP.

# %% tags=["save"]
class MultiHeadAttention(nn.Module):
    """Heads with queries and keys of width p, values of width p_v (p unless given)."""

    def __init__(self, d, p, heads, dropout=0.0, p_v=None):
        super().__init__()
        self.heads, self.p, self.p_v = heads, p, p_v or p
        # W_q, W_k, W_v of every head, in one matrix: queries, then keys, then values.
        self.qkv = nn.Linear(d, heads * (2 * p + self.p_v), bias=False)
        self.out = nn.Linear(heads * self.p_v, d, bias=False)  # W_o
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, keep, parts=None):
        B, T, _ = x.shape
        widths = [2 * self.heads * self.p, self.heads * self.p_v]
        qk, v = self.qkv(x).split(widths, dim=-1)
        # (B, heads, T, p) each
        q, k = qk.view(B, T, 2, self.heads, self.p).permute(2, 0, 3, 1, 4)
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
        self.mlp = nn.Sequential(nn.Linear(d, hidden, bias=False), nn.ReLU(),
                                 nn.Linear(hidden, d, bias=False), nn.Dropout(dropout))
        self.norm2 = nn.LayerNorm(d, bias=False)

    def forward(self, x, keep, parts=None):
        x = self.norm1(x + self.attn(x, keep, parts))
        return self.norm2(x + self.mlp(x))


# %% [markdown]
# The model adds the code of position $t$ to the $t$-th token and, when it is given the id
# of the padding token, masks padded keys (section 2's padding mask).

# %% tags=["save"]
class TransformerLM(nn.Module):
    """Decoder-only Transformer: embeddings + sine-cosine positions, post-norm
    blocks."""

    def __init__(self, vocab, context, d, heads, blocks, p=None, hidden=None,
                 dropout=0.0, pad_id=None):
        super().__init__()
        self.context, self.pad_id = context, pad_id
        p = p or d // heads
        self.embed = nn.Embedding(vocab, d)
        self.register_buffer("positions", sinusoidal_positions(context, d),
                             persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, p, heads, hidden or 4 * d, dropout)
                                    for _ in range(blocks))
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


SOURCE_T, SOURCE_D, SOURCE_P, SOURCE_HEADS = 128, 256, 32, 2


def source_model(vocab_size, blocks, **options) -> TransformerLM:
    """The BPE model of 000 P1(b): T = 128, d = 256, two heads of p = 32, MLP 2d."""
    return TransformerLM(vocab_size, SOURCE_T, SOURCE_D, SOURCE_HEADS, blocks,
                         p=SOURCE_P, hidden=2 * SOURCE_D, **options)


# %% [markdown]
# ## Check 3: the tensor shapes of 002 4.3
#
# For $T$ tokens of width $d_{\text{model}}$ and $H$ heads, the key tensor of one head is
# $T \times d_k$, and the output of multi-head attention before the final linear map is
# $T \times H \times d_v$ (002's answers). In our source's model $d_k = d_v = p = 32$,
# $H = 2$, $T = 128$, $d_{\text{model}} = 256$. With $d_k = d_v$ a shape check cannot tell
# $T \times H \times d_v$ from $T \times H \times d_k$, so we also probe one attention layer
# of the same sizes whose values are wider than its keys, $d_v = 48$.

# %%
generator = torch.Generator().manual_seed(run.seed)
probe = source_model(run.vocab_size, run.lm_blocks).double().eval()
tokens = torch.randint(5, run.vocab_size, (2, SOURCE_T), generator=generator)
parts = {}
logits = probe(tokens, parts)
assert parts["keys"][0, 0].shape == (SOURCE_T, SOURCE_P)  # one head's keys: T x d_k
assert parts["heads_out"][0].shape == (SOURCE_T, SOURCE_HEADS, SOURCE_P)  # T x H x d_v
assert logits.shape == (2, SOURCE_T, run.vocab_size)

# %% [markdown]
# The same checks on the layer with wider values, $d_v = 48$ (click to show):

# %% tags=["hide-input"]
wide_parts, D_V = {}, 48  # d_v != d_k, so the two shapes can be told apart
wide = MultiHeadAttention(SOURCE_D, SOURCE_P, SOURCE_HEADS, p_v=D_V).double()
x_wide = torch.randn(2, SOURCE_T, SOURCE_D, dtype=torch.float64, generator=generator)
wide_out = wide(x_wide, attention_mask(SOURCE_T), wide_parts)
assert wide_parts["keys"][0, 0].shape == (SOURCE_T, SOURCE_P)  # T x d_k
assert wide_parts["heads_out"][0].shape == (SOURCE_T, SOURCE_HEADS, D_V)  # T x H x d_v
assert wide_out.shape == (2, SOURCE_T, SOURCE_D)  # W_o maps H d_v back to d_model

# %% tags=["hide-input"]
results.record("lm_parameters", n_parameters(probe),
               description="parameters of the BPE model")

# %% [markdown]
# With a vocabulary of {glue:text}`vocab_size` and {glue:text}`lm_blocks` blocks the model
# has {glue:text}`lm_parameters:,` parameters.
#
# ## Check 4: causality of the whole model
#
# Changing the tokens after position $t$ must not change any logit at positions $\le t$:
# we change the last half of a sequence and compare, in float64, to $10^{-12}$ (nothing
# reaches the past, so only rounding could). The later half must change, or the test
# would prove nothing.

# %%
cut = SOURCE_T // 2
changed = tokens.clone()
changed[:, cut:] = torch.randint(5, run.vocab_size, (2, SOURCE_T - cut),
                                 generator=generator)
assert (changed[:, cut:] != tokens[:, cut:]).any()
changed_logits = probe(changed)
assert torch.allclose(changed_logits[:, :cut], logits[:, :cut], atol=1e-12, rtol=0)
assert not torch.allclose(changed_logits[:, cut:], logits[:, cut:])

# %% [markdown]
# ## Speed: our attention against the fused kernel
#
# PyTorch's `scaled_dot_product_attention` computes the same function in one fused kernel
# (on a CPU, a blocked "flash"-style loop that never stores the $T \times T$ matrix). We
# time a forward and backward pass of both on a batch the size of the training batches of
# section 4, in float32, alternating the two so that a slow spell of the machine hits both.
# The sections that train set up the device with one helper (click to show): on a CPU it
# uses one thread, because on a shared machine more threads made these small models
# slower; on an NVIDIA GPU of the Ampere generation or later it allows TF32 matrix
# products, several times faster in float32. Older GPUs such as the T4 have no TF32, and
# there the setting changes nothing.

# %% tags=["save", "hide-input"]
def configure_device(device):
    """Threads and matrix-product precision for this chapter's small models."""
    if device.type == "cpu":
        # Our models are small (widths 32-256). On a CPU shared with other jobs,
        # PyTorch's worker threads wait for each other whenever one of them is
        # descheduled: on a busy 2-core machine, two threads ran 3-7 times slower
        # than one.
        torch.set_num_threads(1)
    if device.type == "cuda":
        # Float32 matrix products in TF32 (a 10-bit mantissa, float32's range) on the
        # tensor cores of Ampere and later GPUs (A100, H100, RTX 30xx and newer):
        # several times faster there, and accurate enough for training. Older GPUs,
        # such as the Turing T4 of Colab's free tier, have no TF32: there this setting
        # changes nothing. The exactness checks run in float64, which it never affects.
        torch.set_float32_matmul_precision("high")


# %% [markdown]
# The timing itself is plumbing (click to show); the table follows it.

# %% tags=["hide-input"]
device = run.device
configure_device(device)
shape = (run.lm_batch, SOURCE_HEADS, SOURCE_T, SOURCE_P)
qkv = [torch.randn(shape, device=device, requires_grad=True) for _ in range(3)]
causal = attention_mask(SOURCE_T, device=device)


def ours_step():
    attention(*qkv, causal).sum().backward()


def fused_step():
    fused = torch.nn.functional.scaled_dot_product_attention(*qkv, is_causal=True)
    fused.sum().backward()


ours_time, fused_time = measure_alternately([ours_step, fused_step], rounds=run.repeat)

# %% tags=["hide-input"]
results.record("attention_ours_ms", 1e3 * ours_time.seconds, unit="ms",
               description="forward+backward of our attention")
results.record("attention_fused_ms", 1e3 * fused_time.seconds, unit="ms",
               description="forward+backward of scaled_dot_product_attention")
results.record("attention_speed_ratio", speed_ratio(ours_time, fused_time),
               description="our attention time / fused attention time")
ratios = round_ratios(ours_time, fused_time)
glue("attention_shape", " × ".join(str(s) for s in shape), display=False)
glue("vocab_size", run.vocab_size, display=False)
glue("lm_blocks", run.lm_blocks, display=False)
display(Markdown(
    "| forward + backward | median (ms) | fastest (ms) |\n|---|---|---|\n"
    f"| our attention | {1e3 * ours_time.seconds:.2f} | {1e3 * ours_time.best:.2f} |\n"
    f"| fused kernel | {1e3 * fused_time.seconds:.2f} | {1e3 * fused_time.best:.2f} |\n"
    f"| ratio ours / fused | {speed_ratio(ours_time, fused_time):.2f} "
    f"(rounds: {min(ratios):.2f} to {max(ratios):.2f}) | |"))

# %% [markdown]
# The table gives the times on a batch of shape {glue:text}`attention_shape` (batch, heads,
# $T$, $p$) and the ratio of the medians, {glue:text}`attention_speed_ratio:.2f`, with its
# range over the rounds. Ours writes the $T \times T$ score matrix, the mask and the softmax
# to memory and reads them back for the backward pass; the fused kernel streams over blocks
# of keys. At $T = 128$ these matrices are small, so the difference is modest and depends on
# the machine; the memory traffic of ours grows as $T^2$, and exercise 2 measures how the
# comparison changes with $T$.
#
# ## What this section showed
#
# The decoder-only Transformer is embeddings plus sine-cosine positions, post-norm blocks
# of our attention and a ReLU MLP, and a linear head. Its tensors have the shapes of 002's
# answers (with $d_v \ne d_k$ to tell them apart), and its past logits do not move, to
# rounding, when the future changes. Our attention costs little more than the fused kernel
# at the source's context length.
#
# ## Exercises
#
# 1. **Pre-norm.** Move the LayerNorm before attention and the MLP,
#    $X + \operatorname{MHA}(\operatorname{LN}(X))$, as GPT-2 and nanoGPT do. Do the checks
#    of this section still pass? Which one would fail if you forgot the causal mask?
#
#    :::{dropdown} Answer
#    All pass: normalization acts on each position alone and cannot move information
#    between positions. Without the causal mask, Check 4 fails: the logits of the first half
#    change when the second half does.
#    :::
#
# 2. **Long context.** Time our attention and the fused kernel for $T$ = 128, 512 and 2048.
#    Where does ours run out of memory, and why does the fused one not?
#
#    :::{dropdown} Hint
#    Ours stores a $B \times H \times T \times T$ score matrix, and the softmax and the mask
#    of the same size, for the backward pass: at $T = 2048$, batch 32 and two heads that is
#    about 1 GB per float32 copy. The fused kernel keeps only blocks of it and recomputes
#    them in the backward pass.
#    :::
#
# 3. **Counting parameters.** Derive the parameter count of the model by hand from $V$,
#    $d$, $p$, the number of heads and blocks, and compare it with `n_parameters`.
#
#    :::{dropdown} Answer
#    Embedding and head $2Vd$; per block $3 \cdot 2p \cdot d$ for $W_q, W_k, W_v$, $2p d$
#    for $W_o$, $2 \cdot 2d^2$ for the MLP and $2d$ for the two LayerNorm gains. The
#    positions are a buffer, not parameters.
#    :::
