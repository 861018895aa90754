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
# # Token selection and generation
#
# A language model gives a distribution over the next token; generating text means picking
# one token from it, feeding it back, and repeating. This section writes the two ways of
# picking that 002 7.6 asks for, greedy and temperature sampling, and a `generate` loop that
# uses the model's one-step path, and checks on an untrained model that the loop computes
# exactly the model that training trains.

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
# the data of section 1: "sample", "full" or None (the profile's default)
tinystories: Literal["sample", "full"] | None = None

# %% tags=["hide-input"]
from helpers import profiles, results
from helpers.glue import glue
from helpers.lessons.rnn_attention import load_corpus, make_model

run = profiles.setup(
    profile,
    seed=601,
    vocab_size=(1024, 2048, 2048),  # BPE vocabulary, as in section 1
    seq_len=(32, 64, 128),  # tokens per training sequence, as in section 1
    full_train_stories=(300, 20_000, 200_000),  # stories of the full data, as in section 1
    full_val_stories=(50, 1_000, 30_000),
)
corpus = load_corpus(tinystories, run)  # section 1: the stories and our tokenizer
run

# %% [markdown]
# ## Greedy and temperature
#
# To generate, we pick the next token from the logits $\mathbf{g}$ of the last position:
# **greedy** takes $\arg\max$; **temperature sampling** draws from
# $Q_\tau = \operatorname{softmax}(\mathbf{g}/\tau)$. For $\tau = 1$ that is the model's own
# distribution; $\tau < 1$ sharpens it towards its most likely tokens and $\tau > 1$
# flattens it towards uniform. As $\tau \to 0$, $Q_\tau$ tends to the point mass on the
# $\arg\max$ (if it is unique: every other token's probability relative to the top one is
# $e^{-(g_{\max} - g_i)/\tau} \to 0$), so sampling at $\tau = 0$ is defined as that limit,
# and must give the greedy choice.

# %% tags=["save"]
import torch
import torch.nn.functional as F


def greedy(logits: torch.Tensor, generator=None) -> torch.Tensor:
    return logits.argmax(dim=-1)


def temperature_distribution(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Q = softmax(logits / temperature); at temperature 0 its limit, the arg-max."""
    if temperature == 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(torch.float64)
    return torch.softmax(logits.double() / temperature, dim=-1)


def select_token(logits: torch.Tensor, temperature: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """One token per row of (B, V) logits, drawn from the temperature's distribution."""
    q = temperature_distribution(logits, temperature)
    token = torch.multinomial(q.cpu(), 1, generator=generator).squeeze(-1)
    return token.to(logits.device)


def sample_at(temperature: float):
    """A selector like `greedy` that samples at `temperature`."""
    return lambda logits, generator=None: select_token(logits, temperature, generator)


# %% [markdown]
# ## The generation loop
#
# `generate` runs the prefix through `forward` once, keeps the last RNN state and all
# outputs, and then calls `step` once per new token: the RNN state carries the past, and
# attention gets the list of outputs so far. Generation stops at the end-of-story token or
# after a maximum number of tokens. The model is put in evaluation mode for the loop and
# given back in the mode it had.

# %% tags=["save"]
@torch.no_grad()
def generate(model, prefix: list[int], max_new: int, select, eos_id: int,
             generator: torch.Generator | None = None, keep_logits: bool = False):
    """Continue `prefix` (token ids) by up to `max_new` tokens chosen by `select`."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logits, states, outputs = model(torch.tensor([prefix], device=device))  # the prefix
    h, next_logits = states[:, -1], logits[:, -1]
    new, all_logits = [], [next_logits]
    for _ in range(max_new):
        token = select(next_logits, generator=generator)
        new.append(token.item())
        if new[-1] == eos_id:
            break
        h, y = model.rnn.step(model.embedding(token), h)  # one step of the RNN ...
        outputs = torch.cat([outputs, y.unsqueeze(1)], dim=1)
        next_logits = model.lm_head(model.attention.step(outputs))  # ... and attention
        all_logits.append(next_logits)
    model.train(was_training)
    return (new, torch.cat(all_logits)) if keep_logits else new


# %% [markdown]
# ## Checks on an untrained model
#
# Greedy and temperature 0 must generate the same tokens. That holds by construction,
# since `temperature_distribution` defines $\tau = 0$ as the arg-max point mass; what is
# checked is that `generate` treats the two selectors alike. The logits produced step by
# step during generation must equal the logits of one `forward` over the whole generated
# sequence, so that `step` gives the model that training trained (in float32, where the
# same operations grouped differently round differently, by about $10^{-7}$ of values of
# order one: we allow $10^{-4}$). And the sampling branch, $\tau > 0$, must approach that
# point mass as $\tau$ shrinks (the second cell below, collapsed).

# %%
gen_model = make_model(corpus.vocab_size, 32, 16, run.seed, run.device)
prompt_text = "Once upon a time there was a"  # the prompt of 002 5.4(b)
prompt_ids = [corpus.eos_id] + corpus.tokenizer.encode(prompt_text).ids
greedy_ids, stepped_logits = generate(gen_model, prompt_ids, 12, greedy, corpus.eos_id,
                                      keep_logits=True)
zero_ids = generate(gen_model, prompt_ids, 12, sample_at(0.0), corpus.eos_id,
                    torch.Generator().manual_seed(0))
assert greedy_ids == zero_ids
with torch.no_grad():
    full = torch.tensor([prompt_ids + greedy_ids], device=run.device)
    full_logits = gen_model(full)[0][0, len(prompt_ids) - 1 :]
step_vs_forward = (full_logits[: len(stepped_logits)] - stepped_logits).abs().max()
step_vs_forward = step_vs_forward.item()
assert step_vs_forward < 1e-4, step_vs_forward
assert gen_model.training  # generate gave the model back in the mode it had

# %% tags=["hide-input"]
# the sampling branch approaches the point mass as tau shrinks
probe = full_logits  # every position's logits: each row one distribution
point_mass = temperature_distribution(probe, 0)
q_distance = {tau: (temperature_distribution(probe, tau) - point_mass)
              .abs().sum(-1).max().item() for tau in (1.0, 0.1, 0.01, 1e-4)}
distances = list(q_distance.values())
assert all(a > b for a, b in zip(distances, distances[1:], strict=False)), q_distance

# %% tags=["hide-input"]
results.record("step_vs_forward_gap", step_vs_forward,
               description="generation logits, step path vs full forward, max abs diff")
glue("q_distance_1", q_distance[1.0], display=False)
glue("q_distance_small", q_distance[1e-4], display=False)
print(corpus.tokenizer.decode(greedy_ids))

# %% [markdown]
# The step path and the full forward agree to {glue:text}`step_vs_forward_gap:.1e`. The
# largest $L_1$ distance (twice the total variation) between $Q_\tau$ and the point mass
# falls from {glue:text}`q_distance_1:.2f` at $\tau = 1$ to
# {glue:text}`q_distance_small:.1e` at $\tau = 10^{-4}$. The untrained model's greedy
# continuation, printed above, is a string of unrelated tokens: the next sections train
# the model, and {doc}`section 6 <06_final_model>` generates from a trained one.
#
# ## What this section showed
#
# Greedy decoding and temperature sampling are two ways of reading one distribution: the
# temperature rescales the logits before the softmax, and its limit $\tau \to 0$ is the
# greedy choice. Generation runs the prefix through `forward` once and then `step` per
# token, carrying the RNN state and the list of outputs; its logits equal those of a full
# forward pass over the generated text.
#
# ## Exercises
#
# 1. **A key-value cache.** `SelfAttention.step` recomputes the keys and values of all
#    earlier outputs at every generated token. Keep them in a cache instead and measure how
#    the time per generated token grows with the length before and after.
#
#    :::{dropdown} Hint
#    Without a cache, the $t$-th token costs $O(t)$ key and value projections and the whole
#    text $O(n^2)$; with one, each token adds one key and one value, and only the $t$ dot
#    products remain linear in $t$.
#    :::
#
# 2. **Ties.** What does `greedy` do when two logits are exactly equal, and what does the
#    limit $\tau \to 0$ of $Q_\tau$ give then?
#
#    :::{dropdown} Answer
#    `argmax` returns the first of the tied tokens. The limit of $Q_\tau$ is uniform over
#    the tied tokens, so at a tie "temperature 0" as we define it and the limit differ;
#    with float logits from a trained model exact ties are vanishingly rare.
#    :::
#
# 3. **Top-k.** Write a selector that samples only among the $k$ most likely tokens (at
#    temperature 1). What does $k = 1$ give?
#
#    :::{dropdown} Answer
#    Set every logit below the $k$-th largest to $-\infty$ (`torch.topk`), then sample
#    from the softmax. With $k = 1$ only the arg-max remains: greedy decoding.
#    :::
