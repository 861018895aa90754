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
# # Causal self-attention from tensors
#
# A language model predicts the token at position $t + 1$ from positions $1, \dots, t$.
# Self-attention lets each position gather information from the others; a *causal* mask
# keeps it from looking ahead. This section writes attention with masks from basic tensor
# operations, proves with asserts that it equals PyTorch's fused kernel and that padding
# cannot leak into it, and examines two wrong versions: the equations of 000, with a sigmoid
# on queries, keys and values, and the transposed formula of 004. Everything runs in float64
# on small random tensors, in seconds.

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

from helpers import profiles
from helpers.glue import glue

run = profiles.setup(
    profile,
    seed=7,
    check_length=(10, 10, 10),  # positions of the random sequences (same at all scales)
)
run

# %% [markdown]
# ## The equations
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
# (for two heads) and projected back to the model width by
# $W_o \in \mathbb{R}^{2p \times d}$. Dividing by $\sqrt p$ keeps the scores of order one:
# for independent entries with mean zero and variance one, $q^\top k$ has variance $p$.
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
#    output of a head, an average of values, is positive. A check below confirms these
#    bounds.
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

# %% tags=["save"]
import math

import torch
import torch.nn.functional as F


def attention(q, k, v, keep):
    """Scaled dot-product attention. q, k, v: (..., T, p); keep: bool, broadcastable to
    (..., T, T), True where query t may attend to key s."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_mask(T, pad=None, device=None):
    """Causal mask (T, T), combined with a key padding mask when ``pad`` (B, T) is
    given: the result then has shape (B, 1, T, T), one mask per sequence, shared by the
    heads."""
    keep = torch.ones(T, T, dtype=torch.bool, device=device).tril()
    if pad is not None:
        keep = keep & ~pad[:, None, None, :]
    return keep


# %% [markdown]
# ## Check 1: equal to PyTorch's fused attention
#
# On random inputs in float64, with the causal mask alone and with causal and padding masks
# together (right padding: sequence $b$ has `lengths[b]` real tokens), our function must
# agree with `torch.nn.functional.scaled_dot_product_attention` to rounding error,
# $10^{-12}$. Query rows of padding positions are compared as well: they still see the real
# tokens before them, so nothing is undefined.

# %%
generator = torch.Generator().manual_seed(run.seed)
B, H, T, p = 3, 2, run.check_length, 8
q, k, v = (torch.randn(B, H, T, p, dtype=torch.float64, generator=generator)
           for _ in range(3))
lengths = torch.tensor([10, 6, 3])
pad = torch.arange(T)[None, :] >= lengths[:, None]  # (B, T), True at padding
for keep in [attention_mask(T), attention_mask(T, pad)]:
    ours_out = attention(q, k, v, keep)
    torch_out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert torch.allclose(ours_out, torch_out, atol=1e-12, rtol=0)
fused_causal = F.scaled_dot_product_attention(q, k, v, is_causal=True)
assert torch.allclose(attention(q, k, v, attention_mask(T)), fused_causal, atol=1e-12)

# %% [markdown]
# With right padding and the causal mask a real token never sees a padded key, so that
# comparison cannot show that the padding mask works. We therefore also apply the padding
# mask *alone*, with no causal mask, after writing $10^6$ into the keys and values of the
# padded positions: the output must equal the fused kernel's on the clean inputs. Without
# any mask the same values do change the output, so the test can fail. Finally, left
# padding: a query whose keys are all padding has a row of $-\infty$ scores, and its
# softmax is $0/0$, NaN. The NaN would spread to every real token in the next layer (a
# weight of 0 times NaN is NaN), which is one reason we pad on the right.

# %%
pad_only = ~pad[:, None, None, :]  # (B, 1, 1, T): every query sees every real key
k_noise, v_noise = k.clone(), v.clone()
at_padding = pad[:, None, :, None].expand_as(v)
k_noise[at_padding] = 1e6
v_noise[at_padding] = 1e6
clean = F.scaled_dot_product_attention(q, k, v, attn_mask=pad_only)
blind = attention(q, k_noise, v_noise, pad_only)
assert torch.allclose(blind, clean, atol=1e-12, rtol=0)
no_mask = torch.ones(T, T, dtype=torch.bool)
assert (attention(q, k_noise, v_noise, no_mask) - clean).abs().amax() > 1.0  # can fail

# Left padding: query 0 of a sequence that starts with padding has no key to look at,
# and a second layer fed with that output is NaN at every position of the sequence.
left_keep = attention_mask(T, pad.flip(-1))
first_layer = attention(q, k, v, left_keep)
assert first_layer[1, :, 0].isnan().all() and not first_layer[0].isnan().any()
assert attention(first_layer, first_layer, first_layer, left_keep)[1].isnan().all()

# %% [markdown]
# ## Check 2: the sigmoid of 000's equations
#
# On queries, keys and values passed through a sigmoid, with the source's $p = 32$ and
# $T = 128$ and no causal mask, every scaled score lies in $(0, \sqrt p)$, no ratio of two
# weights in a row exceeds $e^{\sqrt p}$, no weight exceeds
# $e^{\sqrt p}/(e^{\sqrt p} + T - 1)$, and every output lies in $(0, 1)$. The bounds are
# approached when queries and one key are all ones and the other keys all zeros, which we
# check too; and a key raised above another in every entry wins for every query.

# %%
p_sig, T_sig = 32, 128  # the source's head width and context
ratio_bound = math.exp(math.sqrt(p_sig))
weight_bound = ratio_bound / (ratio_bound + T_sig - 1)
q_sig, k_sig, v_sig = (
    torch.sigmoid(4 * torch.randn(T_sig, p_sig, dtype=torch.float64,
                                  generator=generator))
    for _ in range(3))
k_sig[0] = (k_sig[1] + 1) / 2  # key 0 exceeds key 1 in every entry, and stays in (0, 1)
weights_sig = torch.softmax(q_sig @ k_sig.T / math.sqrt(p_sig), dim=-1)
scores_sig = q_sig @ k_sig.T / math.sqrt(p_sig)
assert ((scores_sig > 0) & (scores_sig < math.sqrt(p_sig))).all()
assert (weights_sig.amax(-1) / weights_sig.amin(-1) < ratio_bound).all()
assert (weights_sig.amax(-1) < weight_bound).all()
assert (weights_sig[:, 0] > weights_sig[:, 1]).all()  # key 0 wins for every query
out_sig = weights_sig @ v_sig
assert ((out_sig > 0) & (out_sig < 1)).all()
# The extreme case: sigmoid(20) = 1 - 2e-9, sigmoid(-20) = 2e-9: bound met to 1e-6.
extreme_k = torch.full((T_sig, p_sig), -20.0, dtype=torch.float64)
extreme_k[0] = 20.0
ones_q = torch.sigmoid(torch.full((1, p_sig), 20.0, dtype=torch.float64))
extreme = torch.softmax(ones_q @ torch.sigmoid(extreme_k).T / math.sqrt(p_sig), dim=-1)
assert math.isclose(extreme[0, 0].item(), weight_bound, rel_tol=1e-6)

# %% tags=["hide-input"]
glue("sigmoid_ratio_bound", ratio_bound, display=False)
glue("sigmoid_max_weight", weight_bound, display=False)
glue("sigmoid_largest_weight", weights_sig.amax().item(), display=False)

# %% [markdown]
# On the random inputs the largest weight any query gives one key is
# {glue:text}`sigmoid_largest_weight:.3f`, below the bound
# {glue:text}`sigmoid_max_weight:.2f`, which the extreme inputs reach to six digits.
#
# ## The transposed attention of 004 5.4
#
# 004 (section 5.4) shows a student's formula for $Q, K, V \in \mathbb{R}^{n \times d}$,
#
# $$
# \operatorname{Attention}(Q, K, V) = V \operatorname{softmax}\Bigl(\frac{K^\top Q}{\sqrt d}
# \Bigr),
# $$
#
# whose shapes work out ($n \times d$ times $d \times d$), so nothing fails loudly. The
# matrix $S = \operatorname{softmax}(K^\top Q/\sqrt d)$ is $d \times d$: it is indexed by
# *features*, and $K^\top Q = \sum_s k_s q_s^\top$ sums over *all* positions. Row $t$ of the
# output is $v_t S$: a linear map of token $t$'s own value vector. So the formula mixes
# features within a token instead of tokens, and since $S$ depends on every position,
# future tokens leak into the present; a causal mask cannot even be written, because $S$
# has no position index. The fix is $\operatorname{softmax}(QK^\top/\sqrt d)V$, as 004's
# solution gives it.
#
# ```{note}
# 004's solution explains the bug backwards. It says the student multiplies the value
# matrix "on the *right*" when it should be "on the left", but in
# $V\operatorname{softmax}(\cdot)$ the matrix $V$ already stands on the left, and in the fix
# it stands on the right. What the solution means is right: in the fix the attention
# weights multiply $V$ from the left, $AV$, so that each output row is a mixture of the rows
# (tokens) of $V$; in the student's formula a $d \times d$ matrix multiplies $V$ from the
# right, like a linear layer, and mixes the columns (features) of each row.
# ```
#
# We implement both and test the two claims: changing the value of token 0 must change
# later outputs of the correct (causal) layer but no other output of the transposed one;
# changing the last token must leave earlier outputs of the correct layer unchanged but not
# those of the transposed one.


# %%
def transposed_attention(q, k, v):
    """The formula of 004 5.4: V softmax(K^T Q / sqrt d), softmax over each column."""
    return v @ torch.softmax(k.transpose(-2, -1) @ q / math.sqrt(q.shape[-1]), dim=-2)


n, dim = 6, 4
q, k, v = (torch.randn(n, dim, dtype=torch.float64, generator=generator)
           for _ in range(3))
right = attention(q, k, v, attention_mask(n))
wrong = transposed_attention(q, k, v)
assert wrong.shape == right.shape == (n, dim)

v_changed = v.clone()
v_changed[0] += 1.0  # change the value of token 0
d_right = (attention(q, k, v_changed, attention_mask(n)) - right).abs().amax(dim=1)
d_wrong = (transposed_attention(q, k, v_changed) - wrong).abs().amax(dim=1)
assert (d_right[1:] > 1e-6).all()  # the correct layer mixes token 0 into later tokens
assert (d_wrong[1:] == 0).all() and d_wrong[0] > 1e-6  # the transposed one does not

q_future, k_future = q.clone(), k.clone()
q_future[-1] += 1.0
k_future[-1] += 1.0  # change the last token
future = attention(q_future, k_future, v, attention_mask(n))
e_right = (future - right).abs().amax(dim=1)
e_wrong = (transposed_attention(q_future, k_future, v) - wrong).abs().amax(dim=1)
assert (e_right[:-1] == 0).all()  # causal: earlier outputs are exactly unchanged
assert (e_wrong[:-1] > 1e-6).all()  # the transposed formula leaks the future

# %% tags=["hide-input"]
def table_row(label, changes):
    return f"| {label} | " + " | ".join(f"{x:.2g}" for x in changes) + " |"


display(Markdown(
    "| output row $t$ | 0 | 1 | 2 | 3 | 4 | 5 |\n|---|---|---|---|---|---|---|\n"
    + "\n".join([table_row("correct, token 0's value changed", d_right),
                 table_row("transposed, token 0's value changed", d_wrong),
                 table_row("correct, last token changed", e_right),
                 table_row("transposed, last token changed", e_wrong)])))

# %% [markdown]
# The table shows the largest change of each output row. The correct layer spreads token
# 0 into every later row and keeps rows 0-4 exactly fixed when the last token changes; the
# transposed layer does the opposite on both counts.
#
# ## What this section showed
#
# Causal attention is $\operatorname{softmax}(QK^\top/\sqrt p + M)V$ with the sum over
# $s \le t$ of $v_s$. Ours equals PyTorch's fused kernel to $10^{-12}$ with causal and
# padding masks, a padding mask makes the output blind to whatever the padded positions
# hold, and left padding produces NaNs that right padding avoids. A sigmoid on queries and
# keys caps how sharp attention can be; the transposed formula mixes features, not tokens,
# and leaks the future.
#
# ## Exercises
#
# 1. **Why $\sqrt p$?** Draw $q, k \in \mathbb{R}^p$ with independent standard normal
#    entries for $p$ = 8, 32 and 128 and measure the standard deviation of $q^\top k$ and of
#    $q^\top k/\sqrt p$. What happens to the softmax of 128 unscaled scores at $p = 128$?
#
#    :::{dropdown} Answer
#    The standard deviation of $q^\top k$ is $\sqrt p$, about 11 at $p = 128$; a softmax of
#    scores spread that widely puts nearly all its weight on one key, and its gradient with
#    respect to the other scores is nearly zero. Scaled, the scores have standard deviation
#    1 at every $p$.
#    :::
#
# 2. **The source's sum.** Implement 000's literal sum, $\sum_{s=1}^{t-1} \alpha_{ts} v_t$,
#    and show with an assert that its output does not depend on the keys.
#
#    :::{dropdown} Hint
#    The weights of one row sum to one (for $t > 1$), so the sum is $v_t$ whatever the
#    weights are; at $t = 1$ it is empty. Compare the output for two random key matrices.
#    :::
#
# 3. **Padding on the left, safely.** Left padding is what many libraries use for
#    generation. Change `attention` so that a query with no key to look at returns zeros
#    instead of NaN, and check that real tokens are unaffected.
#
#    :::{dropdown} Hint
#    Replace the NaN rows after the softmax with `torch.nan_to_num`, or let such a query
#    see itself (set `keep[t, t] = True`); either way assert that the outputs of the real
#    tokens equal those of the same sequence without padding.
#    :::
