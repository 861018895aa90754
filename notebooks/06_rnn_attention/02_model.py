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
# # The model: an RNN, attention and the loss
#
# This section builds the language model of 002 section 7 from `nn.Linear` and
# `nn.Embedding`: a recurrent network keeps a summary of the past in its hidden state, and
# self-attention lets each position look back at *all* earlier outputs and pick what it
# needs. Each module computes the same thing two ways, one step at a time (for generation)
# and a whole sequence at once (for training), and we check that the two agree, that
# attention agrees with PyTorch's fused version, that no position sees the future, and that
# the loss is the average of the right $T - 1$ terms.

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
from helpers import profiles, results
from helpers.glue import glue

run = profiles.setup(
    profile,
    seed=601,
    vocab_size=(1024, 2048, 2048),  # BPE vocabulary, as in section 1
)
run

# %% [markdown]
# ## Four parts
#
# The model has four parts (the source's figure 7; the equations omit the biases, which the
# `nn.Linear` layers below have, except $\mathbf{W}_{h2h}$ and the query, key and value
# maps $\mathbf{W}_q$, $\mathbf{W}_k$, $\mathbf{W}_v$):
#
# 1. an **embedding** $\mathbf{i}_t = \mathbf{E}[x_t]$ of each token;
# 2. an **RNN**: the cell $\mathbf{h}_t = \phi(\mathbf{W}_{i2h}\mathbf{i}_t +
#    \mathbf{W}_{h2h}\mathbf{h}_{t-1})$ with $\phi$ = tanh or ReLU, and an output projection
#    $\hat{\mathbf{y}}_t = \mathbf{W}_{out}\mathbf{h}_t$;
# 3. **self-attention** over the outputs so far: with $\mathbf{q}_t = \mathbf{W}_q
#    \hat{\mathbf{y}}_t$, $\mathbf{k}_n = \mathbf{W}_k \hat{\mathbf{y}}_n$ and $\mathbf{v}_n =
#    \mathbf{W}_v \hat{\mathbf{y}}_n$,
#
#    $$
#    s_n = \frac{\mathbf{k}_n^\top \mathbf{q}_t}{\sqrt{d_k}}, \quad
#    \mathbf{w} = \operatorname{softmax}(s_1, \dots, s_t), \quad
#    \mathbf{a}_t = \mathbf{W}_o \sum_{n=1}^{t} w_n \mathbf{v}_n ;
#    $$ (eq-attention)
#
# 4. a **language-model head**, the logits $\mathbf{g}_t = \mathbf{W}_{LM}\mathbf{a}_t$ and
#    $P(x_{t+1} \mid x_{1:t}) = \operatorname{softmax}(\mathbf{g}_t)$.
#
# The head sees the RNN only through attention: there is no shortcut from $\mathbf{h}_t$ to
# the logits. Dividing by $\sqrt{d_k}$ keeps the scores of order one: if the entries of
# $\mathbf{q}$ and $\mathbf{k}$ are independent with mean zero and variance one,
# $\mathbf{k}^\top\mathbf{q}$ has variance $d_k$. (What separates an RNN from an RNN
# language model, 002 3.2, is answered in
# {doc}`chapter 1 </book/notebooks/01_backprop/05_bptt>`: this is the second, an RNN with an
# embedding, a head over the vocabulary and a next-token objective.)
#
# ```{note}
# 002 7.5.2 says the dot product is divided "by the dimension of the keys" while its
# formula divides by $\sqrt{D_{\text{key}}}$; the square root is right (it is what
# {cite}`vaswani2017attention` and PyTorch's `scaled_dot_product_attention` use, and what
# the variance argument above asks for). Two smaller slips: 7.2 writes the conditional as
# $P(x_{t+1} \mid x_1, \dots, y_x)$ for $P(x_{t+1} \mid x_1, \dots, x_t)$, and it points to
# "Section 5.5" for the model, which is section 7.5.
# ```
#
# ## The recurrent part
#
# `RNNCell` is the cell of item 2, with $\phi$ chosen by name from `ACTIVATIONS`, and `RNN`
# adds the output projection. Each has a `step` for one time step (what generation needs,
# one token at a time) and a `forward` for a whole sequence (what training needs). In
# `RNN.recur` only the product with $\mathbf{W}_{h2h}$ is sequential: the input projections
# of all $T$ steps are one matrix product. The source's `RNN.step` receives all earlier
# hidden states; only the last one is needed, so ours receives $\mathbf{h}_{t-1}$.

# %% tags=["save"]
import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


class RNNCell(nn.Module):
    """One recurrent step: h_t = phi(W_i2h i_t + b + W_h2h h_{t-1})."""

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh"):
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size)
        self.h2h = nn.Linear(hidden_size, hidden_size, bias=False)  # one bias is enough
        self.activation = ACTIVATIONS[activation]

    def forward(self, i_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        return self.activation(self.i2h(i_t) + self.h2h(h_prev))


class RNN(nn.Module):
    """The recurrent backbone: the cell, then a hidden-to-output projection."""

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh"):
        super().__init__()
        self.cell = RNNCell(input_size, hidden_size, activation)
        self.out = nn.Linear(hidden_size, hidden_size)

    def step(self, i_t, h_prev):
        """(B, D) input and (B, H) previous state -> (B, H) state h_t and output y_t."""
        h_t = self.cell(i_t, h_prev)
        return h_t, self.out(h_t)

    def recur(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, T, D) inputs -> (B, T, H) states h_1..h_T from h_0 = 0."""
        batch, length, _ = inputs.shape
        projected = self.cell.i2h(inputs)  # all T input projections in one product
        h = inputs.new_zeros(batch, self.cell.h2h.in_features)
        states = []
        for t in range(length):
            h = self.cell.activation(projected[:, t] + self.cell.h2h(h))
            states.append(h)
        return torch.stack(states, dim=1)

    def forward(self, inputs):
        """(B, T, D) inputs -> (B, T, H) states and (B, T, H) outputs, from h_0 = 0."""
        states = self.recur(inputs)
        return states, self.out(states)


# %% [markdown]
# ## Gradients through time
#
# Training differentiates the loss through the loop of `RNN.recur`: backpropagation through
# time, derived and checked in {doc}`chapter 1 </book/notebooks/01_backprop/05_bptt>` for a
# cell $\mathbf{h}_t = \psi(\mathbf{W}_{hx}\mathbf{x}_t + \mathbf{W}_{hh}\mathbf{h}_{t-1})$
# whose weights and activation are our $\mathbf{W}_{i2h}$, $\mathbf{W}_{h2h}$ and $\phi$.
# Its recursion and its weight gradients carry over unchanged; two things are specific to
# this model. The activation's derivative, which 002 3(b)iv leaves out, is
# $\phi'(\mathbf{z}_t) = 1 - \mathbf{h}_t \odot \mathbf{h}_t$ for tanh (computed from the
# state itself, no need to keep $\mathbf{z}_t$) and $\mathbb{1}[\mathbf{z}_t > 0]$ for
# ReLU; so the gradient from step $t$ reaches $\mathbf{h}_i$ through $t - i$ factors
# $\operatorname{diag}(\phi'(\mathbf{z}_s))\,\mathbf{W}_{h2h}^\top$. The tanh factors lie in
# $(0, 1]$ and can only shrink it: with a contracting $\mathbf{W}_{h2h}$ the gradients from
# distant steps vanish geometrically, and with a large one they can explode wherever the
# units are not saturated; training (section 4) clips the gradient's norm against the
# second. And the output $\hat{\mathbf{y}}_t$ reaches the loss through attention, from the
# predictions at position $t$ and every later one: attention gives the loss at step $t$ a
# path to every earlier $\mathbf{h}_n$ with no power of $\mathbf{W}_{h2h}^\top$ on the way.
# We do not write this backward pass out; autograd records the loop on its tape and runs
# the recursion for us.
#
# ## Causal self-attention
#
# `SelfAttention.step` computes {eq}`eq-attention` for the last position. `forward` does
# all $T$ positions at once: the $T \times T$ score matrix with the entries above the
# diagonal (the future) set to $-\infty$ before the softmax, so that they get weight zero.
# The source recommends a loop over `step` during training; the masked version is what
# makes training fast, as {doc}`section 7 <07_fast_paths>` measures.

# %% tags=["save"]
class SelfAttention(nn.Module):
    """Causal scaled dot-product attention of each output over the outputs so far."""

    def __init__(self, dim: int, d_k: int, d_v: int):
        super().__init__()
        self.d_k = d_k
        self.query = nn.Linear(dim, d_k, bias=False)
        self.key = nn.Linear(dim, d_k, bias=False)
        self.value = nn.Linear(dim, d_v, bias=False)
        self.project = nn.Linear(d_v, dim)  # W_o

    def step(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B, t, H) outputs y_1..y_t -> (B, H) attention output a_t, last position."""
        q = self.query(outputs[:, -1])  # (B, d_k)
        k, v = self.key(outputs), self.value(outputs)  # (B, t, d_k), (B, t, d_v)
        scores = (k @ q.unsqueeze(-1)).squeeze(-1) / math.sqrt(self.d_k)  # (B, t)
        weights = torch.softmax(scores, dim=-1)
        return self.project((weights.unsqueeze(1) @ v).squeeze(1))

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> (B, T, H): every position at once, the future masked out."""
        q, k, v = self.query(outputs), self.key(outputs), self.value(outputs)
        # (B, T, T): row t holds query t against every key n
        scores = q @ k.transpose(1, 2) / math.sqrt(self.d_k)
        length = outputs.shape[1]
        future = torch.ones(length, length, dtype=torch.bool,
                            device=outputs.device).triu(1)
        weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
        return self.project(weights @ v)

    def forward_by_steps(self, outputs: torch.Tensor) -> torch.Tensor:
        """`forward` by calling `step` once per position (the source's way)."""
        return torch.stack([self.step(outputs[:, : t + 1])
                            for t in range(outputs.shape[1])], 1)


# %% [markdown]
# ## The whole model
#
# `RNNLanguageModel` chains the four parts. `make_model` builds one with embedding = hidden
# = `width` and keys = values = `d_kv`, always from the same seed, so that runs of one shape
# start from the same draw.

# %% tags=["save"]
class RNNLanguageModel(nn.Module):
    """Embedding -> RNN -> self-attention -> language-model head."""

    def __init__(self, vocab: int, embed_dim: int, hidden_dim: int, d_k: int, d_v: int,
                 activation: str = "tanh"):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed_dim)
        self.rnn = RNN(embed_dim, hidden_dim, activation)
        self.attention = SelfAttention(hidden_dim, d_k, d_v)
        self.lm_head = nn.Linear(hidden_dim, vocab)

    def forward(self, tokens: torch.Tensor, by_steps: bool = False):
        """(B, T) token ids -> (B, T, V) logits, (B, T, H) RNN states and outputs."""
        states, outputs = self.rnn(self.embedding(tokens))
        attend = self.attention.forward_by_steps if by_steps else self.attention
        return self.lm_head(attend(outputs)), states, outputs


def make_model(vocab: int, width: int, d_kv: int, seed: int,
               device: torch.device | str = "cpu") -> RNNLanguageModel:
    """A fresh model with embed = hidden = width and keys = values = d_kv, seeded."""
    torch.manual_seed(seed)  # every run starts from the same draw of its shape
    return RNNLanguageModel(vocab, width, width, d_kv, d_kv).to(device)


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# %% [markdown]
# ## Checks: step against forward, attention against PyTorch
#
# Three computations of the attention output must agree at every position $t$: our masked
# `forward`, a loop over `step` that only ever sees $\hat{\mathbf{y}}_1, \dots,
# \hat{\mathbf{y}}_t$, and PyTorch's fused `scaled_dot_product_attention` with
# `is_causal=True` (used here only as a reference, never in the model). The RNN's `forward`
# must equal iterating `step`. We check in float64, where agreement to $10^{-12}$ means the
# same computation up to rounding (the values are of order one, and a float64 rounding is
# $10^{-16}$ of that), and also that the output at $t$ does not change when later tokens do
# (causality).

# %%
check_model = make_model(run.vocab_size, 24, 16, run.seed).double()
tokens = torch.randint(0, run.vocab_size, (3, 11))
with torch.no_grad():
    logits, states, outputs = check_model(tokens)
    inputs = check_model.embedding(tokens)
    h, step_states, step_outputs = torch.zeros(3, 24, dtype=torch.float64), [], []
    for t in range(tokens.shape[1]):
        h, y = check_model.rnn.step(inputs[:, t], h)
        step_states.append(h)
        step_outputs.append(y)
    rnn_gap = max((torch.stack(step_states, 1) - states).abs().max().item(),
                  (torch.stack(step_outputs, 1) - outputs).abs().max().item())

    attention = check_model.attention
    masked = attention(outputs)
    by_steps = attention.forward_by_steps(outputs)
    fused = attention.project(F.scaled_dot_product_attention(
        attention.query(outputs), attention.key(outputs), attention.value(outputs),
        is_causal=True))
    attention_gaps = {"step": (masked - by_steps).abs().max().item(),
                      "torch": (masked - fused).abs().max().item()}
    changed = tokens.clone()
    # new tokens from position 7 on
    changed[:, 6:] = (changed[:, 6:] + 1) % run.vocab_size
    changed_logits = check_model(changed)[0]
    causal_gap = (changed_logits[:, :6] - logits[:, :6]).abs().max().item()
    future_effect = (changed_logits[:, 6:] - logits[:, 6:]).abs().max().item()

assert rnn_gap < 1e-12, rnn_gap
assert max(attention_gaps.values()) < 1e-12, attention_gaps
# the past ignores the future (exactly), the future does depend on itself
assert causal_gap == 0.0 and future_effect > 1e-3, (causal_gap, future_effect)

# %% tags=["hide-input"]
results.record("attention_max_gap", max(attention_gaps.values()),
               description="masked attention vs step loop and torch SDPA, max abs diff "
               "(float64)")
glue("rnn_step_gap", rnn_gap, display=False)
glue("future_effect", future_effect, display=False)

# %% [markdown]
# The RNN's two paths agree to {glue:text}`rnn_step_gap:.1e` and all three attention
# computations to {glue:text}`attention_max_gap:.1e`. Changing the tokens from position 7
# on leaves the logits at positions 1 to 6 exactly unchanged, while those from position 7
# on move by up to {glue:text}`future_effect:.2f`.
#
# ## The loss: shifted targets over $T - 1$ positions
#
# The logits at position $t$ predict token $t + 1$. So the targets are the sequence shifted
# by one, the first token is never a target (nothing comes before it in the sequence) and
# the logits at the last position have no target (the next token is not in the sequence):
# the loss averages $-\log P(x_{t+1} \mid x_{1:t})$ over $T - 1$ positions per sequence.

# %% tags=["save"]
def lm_loss(logits: torch.Tensor, tokens: torch.Tensor, reduction: str = "mean"):
    """Cross-entropy of the logits at 1..T-1 against the tokens at 2..T."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                           tokens[:, 1:].reshape(-1), reduction=reduction)


# %% [markdown]
# Two checks: the loss equals that average written as an explicit loop, and it does not
# move when the last position's logits are changed, while it does move when any earlier
# position's are (the check is collapsed below).

# %% tags=["hide-input"]
with torch.no_grad():
    explicit = -sum(torch.log_softmax(logits[b, t], -1)[tokens[b, t + 1]]
                    for b in range(tokens.shape[0]) for t in range(tokens.shape[1] - 1))
    explicit = explicit / (tokens.shape[0] * (tokens.shape[1] - 1))
    loss = lm_loss(logits, tokens)
    moved_last, moved_first = logits.clone(), logits.clone()
    moved_last[:, -1] += torch.randn(run.vocab_size, dtype=torch.float64)
    moved_first[:, 0] += torch.randn(run.vocab_size, dtype=torch.float64)
assert abs(loss - explicit) < 1e-12  # float64, sums of a few dozen terms of order ten
assert lm_loss(moved_last, tokens) == loss
assert abs(lm_loss(moved_first, tokens) - loss) > 1e-4

# %% [markdown]
# ## What this section showed
#
# The model embeds tokens, runs a tanh RNN, attends over the RNN's outputs with causal
# scaled dot-product attention {eq}`eq-attention` and maps the result to logits over the
# vocabulary. Its step-by-step and all-at-once paths, and PyTorch's fused attention, agree
# to rounding; no position sees a later token. Backpropagation through time is chapter 1's,
# with the tanh derivative $1 - \mathbf{h}_t \odot \mathbf{h}_t$ in each factor; attention
# adds a short path from the loss to every earlier state. The loss averages the $T - 1$
# next-token predictions of a sequence.
#
# ## Exercises
#
# 1. **ReLU.** Write chapter 1's BPTT recursion with $\phi'(z) = \mathbb{1}[z > 0]$ and
#    check it against autograd on `RNNCell(3, 4, "relu")` unrolled over five steps.
#
#    :::{dropdown} Hint
#    Keep the pre-activations $\mathbf{z}_t$ in the forward pass: for ReLU the state
#    $\mathbf{h}_t$ tells you where $\mathbf{z}_t > 0$ too ($h > 0$ exactly there), but the
#    general recipe needs $\mathbf{z}_t$. Avoid points where some $z$ is within $10^{-3}$ of
#    zero, or a finite-difference check would straddle the kink.
#    :::
#
# 2. **Without the scale.** Drop the $1/\sqrt{d_k}$ and draw $\mathbf{q}$ and $\mathbf{k}$
#    with standard normal entries for $d_k = 16, 256$. How large is the largest attention
#    weight on average, and what does that do to the gradient of the softmax?
#
#    :::{dropdown} Answer
#    The scores have standard deviation $\sqrt{d_k}$, so for large $d_k$ the softmax puts
#    nearly all weight on one position: the largest weight approaches 1 and the softmax
#    saturates, its Jacobian $\operatorname{diag}(\mathbf{w}) - \mathbf{w}\mathbf{w}^\top$
#    approaches zero, and the attention parameters stop learning.
#    :::
#
# 3. **A shortcut.** Feed $\hat{\mathbf{y}}_t + \mathbf{a}_t$ instead of $\mathbf{a}_t$ to
#    the head (a residual connection). Which check of this section would you extend, and
#    how? After section 4, compare the loss curves: does the plateau at the unigram level
#    get shorter?
#
#    :::{dropdown} Hint
#    The causality check still applies unchanged; the step-versus-forward check must add
#    the same $\hat{\mathbf{y}}_t$ on both paths.
#    :::
