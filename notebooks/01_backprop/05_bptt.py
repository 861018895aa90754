# ---
# jupyter:
#   jupytext:
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
# # Backpropagation through time
#
# A recurrent network applies the *same* weights at every time step: parameter sharing along
# time instead of space. Unrolled over a sequence it becomes an ordinary computational graph,
# and backpropagation on that graph is called backpropagation through time (BPTT). This
# section derives it for a recurrent network with any activation, checks it on the identity
# activation of the source problem and on the tanh that chapter 6's language model uses, and
# shows how the repeated multiplication by one matrix makes gradients vanish or explode.

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

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import FD_TOL, ROUNDING_TOL, numerical_gradient, relative_error

F64 = torch.float64
run = profiles.setup(
    profile,
    seed=16,
    check_trials=(3, 100, 300),  # random problems on which the gradients are checked
)
torch.set_num_threads(1)  # small tensors: a second thread only waits on a busy machine
run

# %% [markdown]
# ## The network, unrolled
#
# Section 3.1 of 002 takes a recurrent network with a softmax output and a cross-entropy
# loss summed over $T = 3$ steps: for $t = 1, \dots, T$,
#
# $$
# \begin{aligned}
# \mathbf{z}_t &= \mathbf{W}_{hh}\mathbf{h}_{t-1} + \mathbf{W}_{hx}\mathbf{x}_t, &
# \mathbf{h}_t &= \psi(\mathbf{z}_t), &
# \mathbf{o}_t &= \mathbf{W}_{hy}\mathbf{h}_t,\\
# \hat{\mathbf{y}}_t &= \operatorname{softmax}(\mathbf{o}_t), &
# J_t &= -\textstyle\sum_i y_{t,i} \ln \hat y_{t,i}, &
# J &= \textstyle\sum_{t=1}^T J_t,
# \end{aligned}
# $$ (bp-rnn-forward)
#
# with $\mathbf{x}_t\in\mathbb{R}^3$, $\mathbf{h}_t\in\mathbb{R}^4$ and one-hot labels
# $\mathbf{y}_t\in\mathbb{R}^2$, so $\mathbf{W}_{hx}$ is $4\times 3$, $\mathbf{W}_{hh}$ is
# $4\times 4$ and $\mathbf{W}_{hy}$ is $2\times 4$. The source's activation $\psi$ is the
# identity (a linear RNN); we keep $\psi$ general, because the language model of
# {doc}`chapter 6 <../../chapters/06_rnn_attention>` uses $\psi = \tanh$. The source
# leaves the initial state $\mathbf{h}_0$ unspecified. It is often zero, which makes the
# $t = 1$ term of $\partial J/\partial\mathbf{W}_{hh}$ vanish; we take a random
# $\mathbf{h}_0$ so that the checks exercise that term too.
#
# Unrolling the loop in time turns the recurrence into a graph with one copy of the cell per
# step and the weights shared between the copies ({numref}`fig-bp-rnn-unrolled`).

# %% tags=["hide-input"]
def draw_unrolled_rnn(T: int = 3) -> plt.Figure:
    """The computational graph of eq. (bp-rnn-forward), unrolled for T steps."""
    fig, ax = plots.figure(height=4.6)
    rows = {"x": 0, "z": 1, "h": 2, "o": 3, "yhat": 4, "J": 5}
    text = {"x": r"$\mathbf{x}_{t}$", "z": r"$\mathbf{z}_{t}$", "h": r"$\mathbf{h}_{t}$",
            "o": r"$\mathbf{o}_{t}$", "yhat": r"$\hat{\mathbf{y}}_{t}$", "J": r"$J_{t}$"}
    pos = {(name, t): (2.6 * t, row) for t in range(1, T + 1) for name, row in rows.items()}
    pos[("h", 0)] = (0.6, 2)
    total = (2.6 * (T + 1) / 2, 6.2)

    def node(xy, label, color="white"):
        ax.text(*xy, label, ha="center", va="center", fontsize=11,
                bbox=dict(boxstyle="round,pad=0.3", fc=color, ec="black"))

    def edge(a, b, label="", color="black"):
        ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color=color,
                                                        shrinkA=13, shrinkB=13))
        if label:
            ax.text((a[0] + b[0]) / 2 + 0.12, (a[1] + b[1]) / 2, label, fontsize=9, color=color)

    node(pos[("h", 0)], r"$\mathbf{h}_0$", "lightyellow")
    for t in range(1, T + 1):
        for name in rows:
            node(pos[(name, t)], text[name].replace("{t}", str(t)),
                 "lightyellow" if name == "x" else "white")
        label_xy = (pos[("J", t)][0] + 1.0, pos[("J", t)][1] - 0.5)
        node(label_xy, rf"$\mathbf{{y}}_{t}$", "lightyellow")
        edge(pos[("x", t)], pos[("z", t)], r"$\mathbf{W}_{hx}$")
        edge(pos[("h", t - 1)], pos[("z", t)], r"$\mathbf{W}_{hh}$")
        edge(pos[("z", t)], pos[("h", t)], r"$\psi$")
        edge(pos[("h", t)], pos[("o", t)], r"$\mathbf{W}_{hy}$")
        edge(pos[("o", t)], pos[("yhat", t)], "softmax")
        edge(pos[("yhat", t)], pos[("J", t)], "CE")
        edge(label_xy, pos[("J", t)])
        edge(pos[("J", t)], total)
    node(total, r"$J = \sum_t J_t$", "lightblue")
    ax.set_xlim(-0.5, 2.6 * T + 1.6)
    ax.set_ylim(-0.6, 6.7)
    ax.axis("off")  # a diagram: its axes have no units
    return fig


plots.glue_figure("fig_rnn_unrolled", draw_unrolled_rnn())

# %% [markdown]
# ```{glue:figure} fig_rnn_unrolled
# ---
# name: fig-bp-rnn-unrolled
# alt: >-
#   A diagram of the recurrent network unrolled over three steps: inputs x1 to x3 at the
#   bottom, hidden states linked left to right through W_hh, outputs and losses above,
#   summed into J at the top.
# ---
# The recurrent network of {eq}`bp-rnn-forward` unrolled over $T = 3$ steps. Inputs and
# labels are shaded; the same $\mathbf{W}_{hx}$, $\mathbf{W}_{hh}$ and $\mathbf{W}_{hy}$
# label an edge at every step.
# ```
#
# ## The backward recursion
#
# Write $\mathbf{g}_v = \partial J / \partial v$ for any node $v$, a vector of $v$'s shape.
#
# **Top of the graph.** $J$ is a plain sum, so $\partial J / \partial J_t = 1$. For softmax
# followed by cross-entropy with a one-hot (or any probability) vector $\mathbf{y}_t$, using
# $\partial \hat y_{t,i}/\partial o_{t,k} = \hat y_{t,i}(\mathbb{1}[i = k] - \hat y_{t,k})$
# and $\sum_i y_{t,i} = 1$:
#
# $$
# \mathbf{g}_{\mathbf{o}_t} = \hat{\mathbf{y}}_t - \mathbf{y}_t .
# $$ (bp-rnn-go)
#
# **The hidden states.** $\mathbf{h}_t$ reaches $J$ along two edges of the graph: up into
# $\mathbf{o}_t$, and right into $\mathbf{z}_{t+1}$ (for $t < T$). Each edge is a linear
# map, and the backward pass multiplies by its transpose; the activation acts entry by
# entry, so its backward pass multiplies entry by entry by its derivative:
#
# $$
# \mathbf{g}_{\mathbf{h}_t} = \mathbf{W}_{hy}^\top \mathbf{g}_{\mathbf{o}_t}
#   + \mathbf{W}_{hh}^\top \mathbf{g}_{\mathbf{z}_{t+1}},
# \qquad \mathbf{g}_{\mathbf{z}_t} = \psi'(\mathbf{z}_t) \odot \mathbf{g}_{\mathbf{h}_t},
# \qquad \mathbf{g}_{\mathbf{z}_{T+1}} := \mathbf{0} .
# $$ (bp-rnn-recursion)
#
# For the identity, $\psi' = 1$ and $\mathbf{g}_{\mathbf{z}_t} = \mathbf{g}_{\mathbf{h}_t}$;
# running the recursion from $t = T$ down to 1 and unrolling it then gives the source's
# closed form, a sum of matrix powers over all later outputs:
#
# $$
# \mathbf{g}_{\mathbf{h}_t} = \sum_{s = t}^{T} \bigl(\mathbf{W}_{hh}^\top\bigr)^{s - t}
#   \mathbf{W}_{hy}^\top \mathbf{g}_{\mathbf{o}_s} \qquad (\psi = \text{identity}).
# $$ (bp-rnn-powers)
#
# **The shared weights.** $\mathbf{W}_{hh}$ is used at every step; at step $t$ it enters
# only through $\mathbf{z}_t = \mathbf{W}_{hh}\mathbf{h}_{t-1} + \dots$, where
# $\partial z_{t,i} / \partial W_{hh,ij} = h_{t-1,j}$. The contribution of step $t$ is
# therefore the outer product $\mathbf{g}_{\mathbf{z}_t}\mathbf{h}_{t-1}^\top$, and, as for
# every shared parameter, the contributions add:
#
# $$
# \frac{\partial J}{\partial \mathbf{W}_{hh}} = \sum_{t=1}^T \mathbf{g}_{\mathbf{z}_t}
#   \mathbf{h}_{t-1}^\top,
# \qquad
# \frac{\partial J}{\partial \mathbf{W}_{hx}} = \sum_{t=1}^T \mathbf{g}_{\mathbf{z}_t}
#   \mathbf{x}_{t}^\top,
# \qquad
# \frac{\partial J}{\partial \mathbf{W}_{hy}} = \sum_{t=1}^T \mathbf{g}_{\mathbf{o}_t}
#   \mathbf{h}_{t}^\top .
# $$ (bp-rnn-dW)
#
# Stack the $\mathbf{g}_{\mathbf{z}_t}$ as the rows of a $T \times 4$ matrix
# $\mathbf{G}_z$ and the states $\mathbf{h}_0, \dots, \mathbf{h}_{T-1}$ as the rows of
# $\mathbf{H}_{<}$: the first sum is the single product $\mathbf{G}_z^\top \mathbf{H}_{<}$,
# the same pattern as $\boldsymbol\Delta^\top\mathbf{X}$ in
# {doc}`section 3 <03_matrix_form>`, with time in place of the batch.
#
# ```{note}
# **Four remarks on the source.** (1) Its closed form writes the sum as
# "$\sum_{t\ge i}^{3}$"; it means {eq}`bp-rnn-powers`, $s$ running from $t$ to $T$. (2) In the
# work for $\mathbf{g}_{\mathbf{o}_t}$ (3(b)ii), the first line of the chain rule carries a
# minus sign in front of a sum whose factors $\partial J_t/\partial \hat y_{t,i} = -y_{t,i} /
# \hat y_{t,i}$ already contain it: one minus too many. The next line drops it again, so the
# result, $\hat{\mathbf{y}}_t - \mathbf{y}_t$, is right. (3) Its derivation of
# $\partial J/\partial\mathbf{W}_{hh}$ (3(b)iv) multiplies $\mathbf{g}_{\mathbf{h}_i}$ by
# "$(\partial\mathbf{h}_i/\partial\mathbf{W}_{hh})^\top$", which taken literally treats
# $\mathbf{h}_i$ as depending on $\mathbf{W}_{hh}$ only through step $i$. The careful version
# is the one above: differentiate each *use* of $\mathbf{W}_{hh}$ (through $\mathbf{z}_t$,
# holding $\mathbf{h}_{t-1}$ fixed) and let the total derivative $\mathbf{g}_{\mathbf{h}_t}$,
# which already contains every later path, carry the rest. (4) Its answer,
# $\sum_i \mathbf{g}_{\mathbf{h}_i}\mathbf{h}_{i-1}^\top$, is right for the identity
# activation of the question, where $\mathbf{g}_{\mathbf{z}_i} = \mathbf{g}_{\mathbf{h}_i}$;
# for tanh or ReLU the factor $\psi'(\mathbf{z}_i)$ must be applied first, as in
# {eq}`bp-rnn-dW`.
# ```
#
# ## The code
#
# The forward pass keeps every state; the backward pass runs {eq}`bp-rnn-recursion` from the
# last step to the first and then forms {eq}`bp-rnn-dW` as matrix products. It takes the
# output gradients $\mathbf{g}_{\mathbf{o}_t}$ as an argument, so that the experiment at the
# end of the section can feed it its own.

# %%
ACTIVATIONS = {  # psi and its derivative psi'
    "identity": (lambda z: z, torch.ones_like),
    "tanh": (torch.tanh, lambda z: 1 - torch.tanh(z) ** 2),
}


def rnn_forward(P: dict, xs: torch.Tensor, h0: torch.Tensor, act: str = "identity"):
    """Eq. (bp-rnn-forward): states h_0..h_T (T+1, H), pre-activations z_1..z_T (T, H)
    and logits o_1..o_T (T, n_out)."""
    psi = ACTIVATIONS[act][0]
    hs, zs = [h0], []
    for x in xs:
        zs.append(P["W_hh"] @ hs[-1] + P["W_hx"] @ x)
        hs.append(psi(zs[-1]))
    hs = torch.stack(hs)
    return hs, torch.stack(zs), hs[1:] @ P["W_hy"].T


def rnn_loss(P: dict, xs, ys, h0, act: str = "identity") -> torch.Tensor:
    *_, os = rnn_forward(P, xs, h0, act)
    return -(ys * torch.log_softmax(os, dim=1)).sum()


def bptt(P: dict, hs, zs, xs, g_o, act: str = "identity",
         transpose: bool = True) -> dict:
    """Eqs. (bp-rnn-recursion), (bp-rnn-dW), given g_o (T, n_out) and the forward pass.

    transpose=False replaces W_hh^T by W_hh: a deliberate bug, for demonstration only.
    """
    d_psi = ACTIVATIONS[act][1]
    W_back = P["W_hh"].T if transpose else P["W_hh"]
    g_h = torch.zeros_like(hs)  # g_h[t] for t = 1..T; g_h[0] becomes dJ/dh0
    g_z = torch.zeros_like(zs)  # g_z[t - 1] holds g_{z_t}
    g_z_next = torch.zeros_like(hs[0])
    for t in range(len(xs), 0, -1):
        g_h[t] = P["W_hy"].T @ g_o[t - 1] + W_back @ g_z_next
        g_z[t - 1] = d_psi(zs[t - 1]) * g_h[t]
        g_z_next = g_z[t - 1]
    g_h[0] = W_back @ g_z_next
    return {"W_hh": g_z.T @ hs[:-1], "W_hx": g_z.T @ xs, "W_hy": g_o.T @ hs[1:],
            "h0": g_h[0], "g_h": g_h}


def rnn_grads(P: dict, xs, ys, h0, act: str = "identity",
              transpose: bool = True) -> dict:
    hs, zs, os = rnn_forward(P, xs, h0, act)
    g_o = torch.softmax(os, dim=1) - ys  # eq. (bp-rnn-go)
    return bptt(P, hs, zs, xs, g_o, act, transpose)


def random_rnn_problem(gen: torch.Generator, T: int, n_in=3, n_h=4, n_out=2):
    P = {"W_hh": torch.randn(n_h, n_h, generator=gen, dtype=F64) / math.sqrt(n_h),
         "W_hx": torch.randn(n_h, n_in, generator=gen, dtype=F64),
         "W_hy": torch.randn(n_out, n_h, generator=gen, dtype=F64)}
    xs = torch.randn(T, n_in, generator=gen, dtype=F64)
    labels = torch.randint(n_out, (T,), generator=gen)
    h0 = torch.randn(n_h, generator=gen, dtype=F64)
    return P, xs, F.one_hot(labels, n_out).to(F64), h0


# %% [markdown]
# ## Checks
#
# For the source's sizes ($T = 3$) and for a longer sequence with more units ($T = 12$, 5
# inputs, 6 hidden units, 3 classes), with both activations: the weight gradients
# {eq}`bp-rnn-dW` and $\partial J/\partial\mathbf{h}_0$ agree with autograd and with finite
# differences, and for the identity the recursion agrees with the closed form
# {eq}`bp-rnn-powers`. The tolerances are those of {doc}`section 2 <02_gradient_checking>`.

# %%
EPS = 1e-6


def rnn_grads_autograd(P: dict, xs, ys, h0, act: str) -> dict:
    leaves = {k: v.detach().clone().requires_grad_()
              for k, v in {**P, "h0": h0}.items()}
    rnn_loss(leaves, xs, ys, leaves["h0"], act).backward()
    return {k: v.grad for k, v in leaves.items()}


def rnn_grads_fd(P: dict, xs, ys, h0, act: str, eps: float = EPS) -> dict:
    variables = {k: v.clone() for k, v in {**P, "h0": h0}.items()}

    def loss():
        return rnn_loss(variables, xs, ys, variables["h0"], act)

    return {k: numerical_gradient(loss, v, eps=eps) for k, v in variables.items()}


gen = torch.Generator().manual_seed(run.seed)
errors = {}  # (activation, compared with) -> largest relative error
for act in ACTIVATIONS:
    for T, sizes in ((3, (3, 4, 2)), (12, (5, 6, 3))):
        for _ in range(run.check_trials):
            P, xs, ys, h0 = random_rnn_problem(gen, T, *sizes)
            hand = rnn_grads(P, xs, ys, h0, act)
            auto = rnn_grads_autograd(P, xs, ys, h0, act)
            fd = rnn_grads_fd(P, xs, ys, h0, act)
            for name in auto:
                for against, other in (("autograd", auto), ("finite differences", fd)):
                    errors[act, against] = max(errors.get((act, against), 0.0),
                                               relative_error(hand[name], other[name]))
            if act == "identity":  # eq. (bp-rnn-powers)
                *_, os = rnn_forward(P, xs, h0)
                g_o = torch.softmax(os, dim=1) - ys
                for t in range(1, T + 1):
                    powers = sum(torch.linalg.matrix_power(P["W_hh"].T, s - t)
                                 @ P["W_hy"].T @ g_o[s - 1] for s in range(t, T + 1))
                    errors[act, "closed form"] = max(
                        errors.get((act, "closed form"), 0.0),
                        relative_error(hand["g_h"][t], powers),
                    )
for (act, against), err in errors.items():
    tolerance = FD_TOL if against == "finite differences" else ROUNDING_TOL
    assert err < tolerance, (act, against, err)

# %% tags=["hide-input"]
display(Markdown("| activation | compared with | largest relative error |\n|---|---|---:|\n"
                 + "\n".join(f"| {act} | {against} | {err:.1e} |"
                             for (act, against), err in errors.items())))
results.record("rnn_autograd_max_rel_err",
               max(errors[act, "autograd"] for act in ACTIVATIONS),
               description="BPTT (identity and tanh): hand gradients vs autograd")
results.record("rnn_fd_max_rel_err",
               max(errors[act, "finite differences"] for act in ACTIVATIONS),
               description="BPTT (identity and tanh): hand gradients vs centred differences")

# %% [markdown]
# The recursion matches the closed form, autograd (largest relative error
# {glue:text}`rnn_autograd_max_rel_err:.0e`) and finite differences
# ({glue:text}`rnn_fd_max_rel_err:.0e`), for both activations.
#
# This is also where the choice of step made in {doc}`section 2 <02_gradient_checking>`
# shows. For the identity the loss depends on $\mathbf{W}_{hh}$ through its powers up to the
# $T$-th, so its third derivatives are large for $T = 12$. On the same long problems, a step
# of $10^{-5}$ instead of $10^{-6}$ makes the check worse, truncation error overtaking
# rounding:

# %%
gen = torch.Generator().manual_seed(run.seed)
err_step = {1e-6: 0.0, 1e-5: 0.0}
for _ in range(run.check_trials):
    P, xs, ys, h0 = random_rnn_problem(gen, 12, 5, 6, 3)
    hand = rnn_grads(P, xs, ys, h0)["W_hh"]
    for eps in err_step:
        fd = rnn_grads_fd(P, xs, ys, h0, "identity", eps)["W_hh"]
        err_step[eps] = max(err_step[eps], relative_error(hand, fd))
assert err_step[1e-5] > err_step[1e-6], err_step

# %% tags=["hide-input"]
glue("rnn_whh_err_eps6", err_step[1e-6], display=False)
glue("rnn_whh_err_eps5", err_step[1e-5], display=False)

# %% [markdown]
# The worst relative error of $\partial J/\partial\mathbf{W}_{hh}$ grows from
# {glue:text}`rnn_whh_err_eps6:.0e` to {glue:text}`rnn_whh_err_eps5:.0e`.
#
# **The transpose bug.** $\mathbf{W}_{hh}$ is square, so writing $\mathbf{W}_{hh}$ where
# {eq}`bp-rnn-recursion` has $\mathbf{W}_{hh}^\top$ produces gradients of the right shape,
# finite and plausible-looking. Only a numerical check sees it:

# %%
P, xs, ys, h0 = random_rnn_problem(gen, 3)
buggy = rnn_grads(P, xs, ys, h0, transpose=False)
fd = rnn_grads_fd(P, xs, ys, h0, "identity")
err_bug = relative_error(buggy["W_hh"], fd["W_hh"])
assert err_bug > 1e4 * FD_TOL, "the check missed the missing transpose"

# %% tags=["hide-input"]
glue("rnn_bug_err", err_bug, display=False)

# %% [markdown]
# The relative error in $\partial J/\partial\mathbf{W}_{hh}$ is {glue:text}`rnn_bug_err:.2f`.
#
# ## Vanishing and exploding gradients
#
# In {eq}`bp-rnn-powers`, the signal from the output at step $s$ reaches $\mathbf{h}_t$
# multiplied by $(\mathbf{W}_{hh}^\top)^{s-t}$. Over a long sequence, a matrix power grows or
# shrinks like $\rho^{s-t}$, where $\rho$ is the spectral radius of $\mathbf{W}_{hh}$ (its
# largest eigenvalue in absolute value). To see it, we put the whole loss at the last of
# $T = 60$ steps ($\mathbf{g}_{\mathbf{o}_s} = 0$ for $s < T$) and follow
# $\lVert \mathbf{g}_{\mathbf{h}_t} \rVert$ back in time, for a random $\mathbf{W}_{hh}$
# rescaled to $\rho = 0.8$, $1$ and $1.2$, with the identity activation.

# %%
T_long = 60
gen = torch.Generator().manual_seed(run.seed)
P, xs, _, h0 = random_rnn_problem(gen, T_long, n_in=3, n_h=16, n_out=2)
g_o_last = torch.zeros(T_long, 2, dtype=F64)
g_o_last[-1] = torch.tensor([0.5, -0.5], dtype=F64)  # y_hat - y for a 50/50 guess
norms = {}
for rho in (0.8, 1.0, 1.2):
    P_rho = dict(P, W_hh=P["W_hh"] * rho / torch.linalg.eigvals(P["W_hh"]).abs().max())
    hs, zs, _ = rnn_forward(P_rho, xs, h0)
    g_h = bptt(P_rho, hs, zs, xs, g_o_last)["g_h"][1:]  # g_h for t = 1..T
    norms[rho] = g_h.norm(dim=1).flip(0).numpy()  # index = lag T - t
ratio = {rho: float(n[-1] / n[0]) for rho, n in norms.items()}
assert ratio[0.8] < 1e-3 < 1e3 < ratio[1.2], ratio

# %% tags=["hide-input"]
fig, ax = plots.figure(width=6.0, height=3.8)
lags = np.arange(T_long)
for rho, n in norms.items():
    line, = ax.semilogy(lags, n, label=rf"$\rho = {rho}$")
    ax.semilogy(lags, n[0] * rho**lags, ":", color=line.get_color(), lw=1)
ax.plot([], [], "k:", lw=1, label=r"$\rho^{T-t}$ (dotted)")
ax.set(xlabel="lag $T - t$ (time steps)",
       ylabel=r"$\Vert \partial J / \partial \mathbf{h}_t \Vert$ (nats per unit)")
ax.legend()
plots.glue_figure("fig_rnn_norms", fig)
glue("rnn_vanish_ratio", ratio[0.8], display=False)
glue("rnn_explode_ratio", ratio[1.2], display=False)
glue("rnn_lag_max", T_long - 1, display=False)

# %% [markdown]
# ```{glue:figure} fig_rnn_norms
# ---
# name: fig-bp-rnn-norms
# alt: >-
#   Gradient norm against the lag on a log scale for three spectral radii: it falls along a
#   straight line for 0.8, stays roughly level for 1 and rises along a straight line for 1.2.
# ---
# The norm of $\partial J/\partial\mathbf{h}_t$ when the loss sits at the last of 60 steps,
# against the distance in time, for $\mathbf{W}_{hh}$ scaled to three spectral radii. The
# dotted lines are $\rho^{T-t}$.
# ```
#
# Across {glue:text}`rnn_lag_max` steps the gradient norm shrinks by a factor
# {glue:text}`rnn_vanish_ratio:.0e` for $\rho = 0.8$ and grows by
# {glue:text}`rnn_explode_ratio:.0e` for $\rho = 1.2$, tracking the dotted $\rho^{T-t}$
# lines once the largest eigenvalue dominates ({numref}`fig-bp-rnn-norms`). This is the
# vanishing and exploding gradient problem, and BPTT makes it plain that it is a property of
# the matrix power, present even in a linear network.
#
# A saturating activation such as $\tanh$ turns each step's factor $\mathbf{W}_{hh}^\top$
# into $\mathbf{W}_{hh}^\top \mathbf{D}_{t+1}$ with $\mathbf{D}_{t+1} =
# \operatorname{diag}(\psi'(\mathbf{z}_{t+1})) = \operatorname{diag}(1 - \mathbf{h}_{t+1}
# \odot \mathbf{h}_{t+1})$, by {eq}`bp-rnn-recursion`. The diagonal entries lie in $(0, 1]$,
# so in the spectral norm $\lVert \mathbf{W}_{hh}^\top \mathbf{D}_{t+1} \rVert \le
# \lVert \mathbf{W}_{hh} \rVert$: saturation can only lower the bound
# $\lVert \mathbf{W}_{hh} \rVert^{s-t}$ on how much the signal can grow. It need not lower
# the spectral radius, though: for $\mathbf{W}_{hh} = \bigl[\begin{smallmatrix} 1 & 1 \\ -1 &
# -1 \end{smallmatrix}\bigr]$, $\mathbf{W}_{hh}^\top$ has $\rho = 0$ (its square is zero),
# while $\mathbf{W}_{hh}^\top \operatorname{diag}(1, 0)$, the limit of a saturated second unit,
# has $\rho = 1$. The cell below checks this example. Vanishing and exploding gradients are
# the reason for gated cells such as the LSTM {cite:p}`hochreiter1997long` and for gradient
# clipping.

# %%
W_example = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=F64)
# nilpotent: rho 0
assert torch.equal(W_example.T @ W_example.T, torch.zeros(2, 2, dtype=F64))
saturated = W_example.T @ torch.diag(torch.tensor([1.0, 0.0], dtype=F64))
radius = float(torch.linalg.eigvals(saturated).abs().max())
# one saturated unit raises the spectral radius to 1
assert abs(radius - 1) < 1e-12, radius

# %% [markdown]
# ## RNN or RNN language model? (002 3.2)
#
# 002 asks which statements about "RNN" and "RNN-LM" are true. An RNN is an architecture: a
# cell applied step by step with shared weights, mapping a sequence to a sequence of
# states, as in {eq}`bp-rnn-forward`. An RNN language model is one use of it: an embedding
# turns tokens into inputs, the states feed an output layer over the vocabulary, and the
# whole is trained to predict each next token, that is, to maximise the probability of the
# training text. So both process sequences (the claim that a plain RNN cannot is false); a
# language model is not only an encoder, since it generates text token by token (false
# too); it does add layers for predicting the next token (true); and next-token likelihood
# is its objective, while an RNN in general is trained for whatever the task needs (a label
# per sequence, a tag per step), so that claim is true as well. Chapter 6 builds such a
# language model, with the tanh cell whose BPTT was checked here; there autograd runs the
# recursion.
#
# ## What this section showed
#
# Unrolled in time, a recurrent network is an ordinary graph with shared weights, and BPTT
# is backpropagation on it: the state gradients run backwards through
# $\mathbf{W}_{hh}^\top$ and the activation's derivative, and each weight gradient adds one
# outer product per step. The recursion agrees with autograd and finite differences for the
# identity and for tanh, and with the source's closed form for the identity. That closed form
# is a sum of matrix powers, which is why gradients across many steps shrink or grow
# geometrically with the spectral radius of $\mathbf{W}_{hh}$.
#
# ## Exercises
#
# 1. **Tanh and the spectral radius.** Repeat the gradient-norm experiment with
#    `act="tanh"` (compute the forward pass with tanh, then call `bptt` with it). What happens
#    for $\rho = 1.2$, and why?
#
#    :::{dropdown} Hint
#    The states grow until the tanh saturates; then $\psi'(\mathbf{z}_t)$ is small and each
#    factor $\mathbf{W}_{hh}^\top\mathbf{D}_{t+1}$ shrinks the signal. Exploding gradients
#    turn into vanishing ones once the units saturate.
#    :::
#
# 2. **Truncated BPTT.** Stop the recursion after $K$ steps back from each output (set the
#    contribution of $\mathbf{g}_{\mathbf{o}_s}$ to zero beyond $t < s - K$). Measure the
#    relative error of $\partial J/\partial\mathbf{W}_{hh}$ against the full gradient as a
#    function of $K$, for $\rho = 0.8$ and $\rho = 1.0$.
#
#    :::{dropdown} Hint
#    For the identity, the dropped terms are those of {eq}`bp-rnn-powers` with $s - t > K$,
#    of size about $\rho^{K}$: the error falls geometrically for $\rho < 1$ and hardly at
#    all for $\rho = 1$.
#    :::
#
# 3. **The initial state.** Show that $\partial J/\partial\mathbf{h}_0 = \mathbf{W}_{hh}^\top
#    \mathbf{g}_{\mathbf{z}_1}$ and explain why, with $\mathbf{h}_0 = \mathbf{0}$, the $t = 1$
#    term of $\partial J/\partial\mathbf{W}_{hh}$ vanishes while
#    $\partial J/\partial\mathbf{h}_0$ does not.
#
#    :::{dropdown} Answer
#    $\mathbf{h}_0$ enters the graph only through
#    $\mathbf{z}_1 = \mathbf{W}_{hh}\mathbf{h}_0 + \dots$, so its gradient is the transpose
#    times $\mathbf{g}_{\mathbf{z}_1}$. The $t = 1$
#    term of {eq}`bp-rnn-dW` is $\mathbf{g}_{\mathbf{z}_1}\mathbf{h}_0^\top$, zero when
#    $\mathbf{h}_0 = \mathbf{0}$; the gradient with respect to $\mathbf{h}_0$ depends on
#    $\mathbf{W}_{hh}$, not on $\mathbf{h}_0$.
#    :::
