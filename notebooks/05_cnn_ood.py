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
# # Convolutional networks and out-of-distribution tests
#
# A test set drawn from the same distribution as the training set answers one question: how well
# does the model do on *more of the same*? Move every test image up by four pixels, a change a
# person does not even notice, and the question becomes a different one. This chapter trains the
# two-layer perceptron of Chapter 3 and two small convolutional networks on Fashion-MNIST and asks
# it. Convolutions are built for translations, so they should do better; we measure how much
# better, find that it is far less than "invariant", and trace the reason to one layer.
#
# On the way we finish the training story of Chapter 3 with the two tools the source adds on
# top of plain SGD, early stopping and momentum, and we do the arithmetic of convolutions: output
# sizes, and how many parameters weight sharing saves.
#
# **Learning goals.** After this chapter you can
#
# 1. compute the output size of a convolution or pooling layer from its size, padding and
#    stride, and count the parameters of a convolution with and without weight sharing;
# 2. read a train/validation/test curve, place the epoch where early stopping with patience $p$
#    stops, and say what a too-small patience costs;
# 3. explain what the momentum factor $\alpha$ does to the effective step size and pick it from
#    training curves;
# 4. build the three networks of the source in PyTorch, check their parameter counts, and test
#    them on translated and rotated test sets;
# 5. distinguish the *equivariance* of a convolution from the *invariance* of a classifier,
#    verify the first numerically, and show which layer breaks the second and how training with
#    shifted images repairs most of it.
#
# The problems come from two courses: early stopping, momentum and the out-of-distribution tests
# (USC CSCI ML, HW3, problem 3, sections 3.3 to 3.5, cited as **001**) and convolution
# arithmetic and parameter sharing (CMU 10-301/601, HW7, section 2, **002**). The source's
# reference numbers come from TensorFlow; we use PyTorch throughout, so we expect them only to be
# close, and say where they are not.

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
# The scale of this run. Every profile uses the source's split sizes except `smoke`. The `cpu`
# profile caps the number of epochs of the momentum study and of the out-of-distribution models
# (early stopping on the validation set ends most runs before the cap), trains each
# out-of-distribution model with two seeds, and evaluates the shift and rotation sweeps on a
# subset of the test set on a coarser grid. The `gpu` profile trains the out-of-distribution
# models to convergence (a generous cap and patience), with three seeds, and sweeps the full
# grids; the momentum study always runs a fixed number of epochs.

# %%
from helpers import profiles, results

run = profiles.setup(
    profile,
    seed=5,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (the source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    es_epochs=(2, 30, 30),  # epochs of the early-stopping study (the source: 30)
    momentum_epochs=(2, 12, 30),  # epochs per momentum factor
    ood_max_epochs=(1, 15, 60),  # cap on epochs per out-of-distribution model
    ood_patience=(1, 3, 8),  # early-stopping patience of those models
    ood_seeds=(1, 2, 3),  # training seeds per model (accuracies are averaged)
    shift_step=(4, 2, 1),  # grid step (pixels) of the shift heat maps, from -8 to +8
    sweep_images=(200, 1_000, 10_000),  # test images used by the shift and rotation sweeps
    angle_step=(90, 15, 5),  # degrees between the rotation angles of the sweep
    repeat=(2, 5, 7),  # timed runs per benchmark (median reported)
)
run

# %%
import copy
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from myst_nb import glue
from torch import nn
from tqdm.auto import tqdm

from helpers import data
from helpers.timing import measure, speed_ratio

device = run.device
if device.type == "cpu":
    torch.set_num_threads(1)  # see the note below
glue("device_name", profiles.device_name(device), display=False)

# %% [markdown]
# ```{note}
# **One thread on a CPU.** On a CPU this chapter runs PyTorch on one thread. The MLP's
# mini-batches of five images are far too small to split between threads, and on a machine whose
# cores are busy with other work, threads that wait for each other at every operation made
# training many times slower in our trials, not faster. The timings below are one-thread timings.
# ```
#
# ## Convolution arithmetic
#
# A 2-D convolution layer with $C_{\text{in}}$ input channels, $C_{\text{out}}$ output channels
# and a $k\times k$ kernel slides every one of its $C_{\text{out}}$ filters over the input. (Deep
# learning libraries compute a *cross-correlation*, without flipping the kernel; we follow them
# and call it convolution.) For one output channel and an input $X$ with one channel, stride $s$
# and no padding,
#
# $$
# Y_{rc} = \sum_{i=0}^{k-1}\sum_{j=0}^{k-1} X_{sr + i,\; sc + j}\, F_{ij} .
# $$ (eq-conv)
#
# **Output size.** Pad the input with $p$ zeros on every side; its side becomes $n + 2p$. The
# first window starts at position 0 and the last must end inside the padded input, so its start
# $s\,(m - 1)$ satisfies $s\,(m - 1) + k \le n + 2p$. The number of windows along one axis is
# therefore
#
# $$
# m = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .
# $$ (eq-out-size)
#
# With a dilation $d$ (kernel taps $d$ apart) the kernel spans $d(k-1) + 1$ pixels, which
# replaces $k$. Max-pooling uses the same formula; its default stride equals its size, so a
# $2\times2$ pooling halves the side, rounding down. We check {eq}`eq-out-size` against PyTorch
# for a table of cases, the two of 002 (2.1) among them.


# %%
def out_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """eq-out-size: windows of a k-kernel (dilation d, stride s) over n + 2p positions."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


cases = [  # (height, width, kernel, stride, padding, dilation)
    (6, 6, 3, 1, 0, 1),  # 002 2.1(a): 6x6 image, 3x3 filter -> 4x4
    (6, 4, 2, 2, 0, 1),  # 002 2.1(b): 6x4 input, 2x2 filter, stride 2 -> 3x2
    (22, 22, 4, 2, 0, 1),  # 002 2.2(c)
    (28, 28, 7, 1, 0, 1),  # the first layer of the source's CNNs
    (11, 11, 2, 1, 0, 1),  # the second layer of the 3-layer CNN
    (28, 28, 5, 1, 2, 1),  # "same" padding
    (28, 28, 3, 2, 1, 1),  # a stride that does not divide n + 2p - k
    (32, 17, 3, 3, 1, 2),  # dilation and a non-square input
]
rows = ["| input | kernel | stride | padding | dilation | formula | torch |", "|---" * 7 + "|"]
for h, w, k, s, p, d in cases:
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    torch_shape = tuple(conv(torch.zeros(1, 1, h, w)).shape[-2:])
    formula = (out_size(h, k, s, p, d), out_size(w, k, s, p, d))
    assert formula == torch_shape, (h, w, k, s, p, d, formula, torch_shape)
    rows.append(
        f"| {h}x{w} | {k} | {s} | {p} | {d} | {formula[0]}x{formula[1]} | "
        f"{torch_shape[0]}x{torch_shape[1]} |"
    )
for n, k in ((22, 2), (10, 2), (11, 2), (28, 3)):  # max-pooling: stride = kernel by default
    assert out_size(n, k, s=k) == nn.MaxPool2d(k)(torch.zeros(1, 1, n, n)).shape[-1]
display(Markdown("\n".join(rows)))

# %% [markdown]
# The formula and PyTorch agree on every case. 002 2.1(a) also asks for one entry of the output,
# $j = Y_{2,1}$ (third row, second column, counting from zero), of its $6\times6$ image convolved
# with a $3\times3$ Laplacian-like filter. We compute it with {eq}`eq-conv` written as four
# loops, as 002 2.3(a) does, and with `F.conv2d`.

# %%
X_002 = torch.tensor(
    [
        [1, 0, -2, 3, 4, 1],
        [2, 9, 5, 6, 0, -1],
        [0, -3, 1, 3, 4, 4],
        [6, 5, 2, 0, 6, 8],
        [-5, 4, -3, 1, 3, -2],
        [4, 1, 2, 8, 9, 7],
    ],
    dtype=torch.float64,
)
F_002 = -torch.ones(3, 3, dtype=torch.float64)
F_002[1, 1] = 8.0


def conv_loops(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """eq-conv with stride 1 and no padding: one output entry, one window, at a time."""
    k = K.shape[0]
    rows, cols = X.shape[0] - k + 1, X.shape[1] - k + 1
    return torch.tensor(
        [[float((X[r : r + k, c : c + k] * K).sum()) for c in range(cols)] for r in range(rows)],
        dtype=X.dtype,
    )


Y_002 = conv_loops(X_002, F_002)
assert torch.equal(Y_002, F.conv2d(X_002[None, None], F_002[None, None])[0, 0])
glue("entry_j", int(Y_002[2, 1]), display=False)
assert Y_002[2, 1] == 8  # 002's answer

# %% [markdown]
# Both give $j =$ {glue:text}`entry_j`, 002's answer.
#
# ### Parameter sharing
#
# A convolution uses *the same* filter at every position: one $C_{\text{out}}\times
# C_{\text{in}}\times k\times k$ weight tensor, whatever the size of the image. A *locally
# connected* layer has the same connectivity (every output sees one $k\times k$ window) but a
# separate filter at each of the $m_h m_w$ output positions. Without bias, the counts are
#
# $$
# \underbrace{C_{\text{out}} C_{\text{in}} k^2}_{\text{convolution}}
# \qquad\text{and}\qquad
# \underbrace{m_h m_w\, C_{\text{out}} C_{\text{in}} k^2}_{\text{locally connected}} .
# $$ (eq-sharing)
#
# 002 2.2(c)-(e) asks for these numbers for a $22\times22$ grey image and for a $40\times40$ colour
# image, a $4\times4$ filter, stride 2 and one output channel. Rather than multiply, we build both
# layers and count their parameters. PyTorch has no locally connected layer; `F.unfold` (the
# "im2col" operation) cuts the input into its windows, one column per output position, and the
# layer is then one product per position with its own weights.


# %%
class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: a separate filter at every output position."""

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int], k: int, stride: int = 1):
        super().__init__()
        self.k, self.stride = k, stride
        self.out_hw = (out_size(size[0], k, stride), out_size(size[1], k, stride))
        n_pos = self.out_hw[0] * self.out_hw[1]
        self.weight = nn.Parameter(torch.randn(n_pos, c_out, c_in * k * k) / k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.k, stride=self.stride)  # (N, C_in k k, positions)
        y = torch.einsum("ncl,loc->nol", cols, self.weight)  # one filter per position l
        return y.reshape(len(x), -1, *self.out_hw)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


sharing_rows, sharing = [], {}
for label, c_in, n in (("002 2.2(c), (d): 22x22 grey", 1, 22), ("002 2.2(e): 40x40 colour", 3, 40)):
    shared = nn.Conv2d(c_in, 1, 4, stride=2, bias=False)
    local = LocallyConnected2d(c_in, 1, (n, n), 4, stride=2)
    sharing[n] = (n_params(shared), n_params(local))
    sharing_rows.append(
        f"| {label} | {local.out_hw[0]}x{local.out_hw[1]} | {sharing[n][0]:,} | {sharing[n][1]:,} |"
    )
    # With every position's filter set to the shared one, the two layers compute the same map.
    x = torch.randn(2, c_in, n, n)
    with torch.no_grad():
        local.weight.copy_(shared.weight.reshape(1, 1, -1).expand_as(local.weight))
        assert torch.allclose(local(x), shared(x), atol=1e-5)
assert sharing[22] == (16, 1_600) and sharing[40][1] == 17_328  # 002's answers
display(
    Markdown(
        "| layer | output | shared (conv) | unshared (locally connected) |\n"
        "|---|---|---|---|\n" + "\n".join(sharing_rows)
    )
)

# %% [markdown]
# The counts agree with 002's answers (16, 1,600 and 17,328), and the locally connected layer with
# every filter set to the shared one reproduces `nn.Conv2d` exactly, so the two layers differ only
# in sharing. Sharing divides the count by the number of positions, $10\times10$ and
# $19\times19$ here. The saving is not the only gain: a shared filter is trained by every
# position of every image, so a pattern learnt in one corner is recognized in all the others.
# This is the property we will test below.
#
# ### A convolution is a matrix product
#
# The unfold above is also how convolutions are often computed: $Y = W\,\mathrm{unfold}(X)$, one
# matrix product for all positions. Equivalently, for a fixed filter the map $x \mapsto y$ is
# linear, $y = A x$, with $A$ a sparse banded matrix that repeats the filter in every row (002
# 2.3(b)). Its Jacobian is $\partial y / \partial x = A$, and backpropagation multiplies the
# incoming gradient by $A^\top$: $\bar x = A^\top \bar y$, a convolution with the flipped filter.
#
# ```{note}
# 002 2.3(c) gives $\partial y/\partial x = A^\top$. With the usual (numerator-layout) convention,
# where the Jacobian of $y \in \mathbb R^3$ with respect to $x \in \mathbb R^5$ is a $3\times5$
# matrix, the Jacobian is $A$ itself; $A^\top$ is what the backward pass applies to the
# gradient. The source's answer is right in the denominator layout, or as "the matrix that
# backpropagation uses". We check both statements with autograd.
# ```

# %%
w_1d = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
x_1d = torch.randn(5, dtype=torch.float64, requires_grad=True)
A = torch.zeros(3, 5, dtype=torch.float64)
for r in range(3):
    A[r, r : r + 3] = w_1d  # each row is the filter, moved one step to the right
y_1d = F.conv1d(x_1d[None, None], w_1d[None, None])[0, 0]
assert torch.allclose(y_1d, A @ x_1d)
jacobian = torch.autograd.functional.jacobian(
    lambda v: F.conv1d(v[None, None], w_1d[None, None])[0, 0], x_1d.detach()
)
assert torch.allclose(jacobian, A)  # d y / d x = A (3 x 5)
g_1d = torch.randn(3, dtype=torch.float64)
(x_grad,) = torch.autograd.grad(y_1d, x_1d, g_1d)
assert torch.allclose(x_grad, A.T @ g_1d)  # backprop applies A^T

# %% [markdown]
# How fast is the unfold-and-multiply convolution next to PyTorch's own? We time both on a batch
# of 256 Fashion-MNIST-sized images through the first layer of the source's CNN (64 filters of
# $7\times7$).


# %%
def conv_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A stride-1, unpadded convolution as one matrix product over the unfolded windows."""
    c_out, _, k, _ = weight.shape
    m_h, m_w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    cols = F.unfold(x, k)  # (N, C_in k k, m_h m_w)
    y = weight.reshape(c_out, -1) @ cols + bias[:, None]
    return y.reshape(len(x), c_out, m_h, m_w)


bench_conv = nn.Conv2d(1, 64, 7).to(device)
x_bench = torch.rand(256, 1, 28, 28, device=device)
with torch.no_grad():
    assert torch.allclose(
        conv_unfold(x_bench, bench_conv.weight, bench_conv.bias), bench_conv(x_bench), atol=1e-4
    )
    t_unfold = measure(
        lambda: conv_unfold(x_bench, bench_conv.weight, bench_conv.bias), repeat=run.repeat
    )
    t_conv2d = measure(lambda: bench_conv(x_bench), repeat=run.repeat)
results.record(
    "conv_unfold_ms",
    1e3 * t_unfold.seconds,
    unit="ms",
    description="unfold + matmul convolution, 256 images, 64 filters 7x7",
)
results.record(
    "conv_torch_ms",
    1e3 * t_conv2d.seconds,
    unit="ms",
    description="nn.Conv2d, same batch and filters",
)
results.record(
    "conv_speed_ratio",
    speed_ratio(t_unfold, t_conv2d),
    description="time of unfold + matmul / time of nn.Conv2d",
)
k_bench = bench_conv.kernel_size[0]
n_windows = (x_bench.shape[-1] - k_bench + 1) ** 2  # window positions per image
glue("unfold_blowup", k_bench**2 * n_windows / x_bench[0].numel(), display=False)

# %% [markdown]
# On {glue:text}`device_name`, the unfold version took {glue:text}`conv_unfold_ms:.2f` ms and
# `nn.Conv2d` {glue:text}`conv_torch_ms:.2f` ms, a ratio of {glue:text}`conv_speed_ratio:.2f`.
# The arithmetic is the same; what differs is memory. Unfolding copies every pixel into up to
# $k^2 = 49$ columns: the matrix it multiplies holds $49 \cdot 22 \cdot 22$ numbers per image,
# {glue:text}`unfold_blowup:.0f` times as many as the image's 784 pixels, while a
# library convolution picks the algorithm (im2col in blocks, direct, Winograd, FFT) that suits
# the shapes and the hardware.
#
# ## The data: Fashion-MNIST with the source's split
#
# As in Chapter 3, the source (001, 3) trains on 10,000 images, validates on 2,000 and tests on
# 10,000. We draw the training and validation images from the official training set with the
# *same seeded permutation as Chapter 3*, so both chapters train on the same images, and take the
# test images from the official test set. Pixels are scaled to $[0, 1]$; the images keep their
# $1\times28\times28$ shape, and the MLP flattens them itself.

# %%
SPLIT_SEED = 3  # Chapter 3's seed: the same 10,000 training and 2,000 validation images
fashion_train = data.load_fashion_mnist("train")
fashion_test = data.load_fashion_mnist("test")
split = np.random.default_rng(SPLIT_SEED).permutation(len(fashion_train.labels))
train_idx, val_idx = split[: run.n_train], split[run.n_train : run.n_train + run.n_val]
assert not set(train_idx) & set(val_idx)


def as_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1] on the device, and int64 labels."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device)


fm = {
    "train": as_tensors(fashion_train.images[train_idx], fashion_train.labels[train_idx]),
    "val": as_tensors(fashion_train.images[val_idx], fashion_train.labels[val_idx]),
    "test": as_tensors(fashion_test.images[: run.n_test], fashion_test.labels[: run.n_test]),
}
{name: tuple(x.shape) for name, (x, _) in fm.items()}

# %% [markdown]
# ## Training tools: early stopping and momentum
#
# Chapter 3 wrote the two-layer perceptron in NumPy and checked its gradients. Here we use
# PyTorch for every model: the source's MLP, $784 \to 128 \to 10$ with a ReLU (001 3.5 fixes the
# width at 128), trained by SGD with learning rate $\eta = 0.01$ on mini-batches of $B = 5$
# images, Chapter 3's setting. The helpers below train any model for a number of epochs and
# evaluate it after each, in batches so that the whole test set never has to pass at once.


# %%
class MLP(nn.Module):
    """The source's two-layer perceptron: flatten, 784 -> 128, ReLU, 128 -> 10."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )

    def forward(self, x):
        return self.net(x)


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, chunk: int = 1_000) -> torch.Tensor:
    """The model's logits for the images x, in evaluation mode, computed in chunks."""
    model.eval()
    return torch.cat([model(x[i : i + chunk]) for i in range(0, len(x), chunk)])


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model, x).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of correct predictions."""
    return (predictions(model, x) == y).double().mean().item()


def train_epoch(model, opt, x, y, batch_size: int, gen: torch.Generator, augment=None) -> float:
    """One pass over (x, y) in a random order; returns the mean mini-batch loss."""
    model.train()
    order = torch.randperm(len(y), generator=gen).to(x.device)
    total = 0.0
    for start in range(0, len(y), batch_size):
        rows = order[start : start + batch_size]
        xb = x[rows] if augment is None else augment(x[rows], gen)
        loss = F.cross_entropy(model(xb), y[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(rows)
    return total / len(y)


# %% [markdown]
# ### Early stopping, seen from the outside (001 3.3)
#
# Chapter 3 trained with early stopping: keep the parameters of the epoch with the best
# validation accuracy and stop after $p$ epochs (the *patience*) without a new best. To see what
# that rule does, the source trains for 30 epochs *without* stopping and records the training,
# validation and test accuracy after every epoch. From the validation curve alone we can then
# replay the rule for any patience: it stops at the first epoch $t$ with $t - t_{\text{best}}(t)
# = p$, where $t_{\text{best}}(t)$ is the best validation epoch up to $t$, and returns the model
# of $t_{\text{best}}(t)$.


# %%
def early_stop(val_acc: list[float], patience: int) -> tuple[int, int]:
    """Replay early stopping on a validation curve: (epoch it stops at, epoch it returns)."""
    best, best_epoch = -1.0, 0
    for epoch, acc in enumerate(val_acc, 1):
        if acc > best:
            best, best_epoch = acc, epoch
        elif epoch - best_epoch >= patience:
            return epoch, best_epoch
    return len(val_acc), best_epoch


assert early_stop([0.5, 0.6, 0.55, 0.58, 0.7], 2) == (4, 2)  # two epochs without beating 0.6
assert early_stop([0.5, 0.6, 0.55, 0.58, 0.7], 3) == (5, 5)  # never triggered: ends at 5
assert early_stop([0.5, 0.5, 0.5], 1) == (2, 1)  # a tie is not an improvement

torch.manual_seed(run.seed)
es_model = MLP().to(device)
es_opt = torch.optim.SGD(es_model.parameters(), lr=0.01)
es_gen = torch.Generator().manual_seed(run.seed)
es_log = {"loss": [], "train": [], "val": [], "test": []}
start = time.perf_counter()
for _ in tqdm(range(run.es_epochs), desc=f"MLP, {run.es_epochs} epochs"):
    es_log["loss"].append(train_epoch(es_model, es_opt, *fm["train"], 5, es_gen))
    for part in ("train", "val", "test"):
        es_log[part].append(100 * accuracy(es_model, *fm[part]))
results.record("es_seconds", time.perf_counter() - start, unit="s")

# %%
PATIENCES = (1, 2, 3, 5, 10)
es_epochs = np.arange(1, run.es_epochs + 1)
stops = {p: early_stop(es_log["val"], p) for p in PATIENCES}
MAIN_PATIENCE = 5  # Chapter 3's patience in the cpu profile
stop_epoch, best_epoch = stops[MAIN_PATIENCE]
fig, ax = plt.subplots(figsize=(8, 4.5))
for part, marker in (("train", "o"), ("val", "s"), ("test", "^")):
    ax.plot(
        es_epochs,
        es_log[part],
        marker=marker,
        ms=3,
        label={"train": "training", "val": "validation", "test": "test"}[part],
    )
ax.plot(
    best_epoch,
    es_log["val"][best_epoch - 1],
    "k*",
    ms=14,
    label=f"returned by early stopping (p = {MAIN_PATIENCE})",
)
ax.axvline(stop_epoch, color="grey", ls="--", label=f"where p = {MAIN_PATIENCE} stops")
ax.set(
    title="MLP, B = 5, η = 0.01, trained without early stopping",
    xlabel="epoch",
    ylabel="accuracy (%)",
)
ax.legend()
fig.tight_layout()
plt.show()

rows = [
    "| patience $p$ | stops at epoch | returns epoch | its validation acc. (%) | "
    "its test acc. (%) |",
    "|---" * 5 + "|",
]
for p in PATIENCES:
    s, b = stops[p]
    rows.append(f"| {p} | {s} | {b} | {es_log['val'][b - 1]:.2f} | {es_log['test'][b - 1]:.2f} |")
display(Markdown("\n".join(rows)))

final_gap = es_log["train"][-1] - es_log["test"][-1]
results.record("es_train_acc_final", es_log["train"][-1], unit="%")
results.record("es_val_acc_final", es_log["val"][-1], unit="%")
results.record("es_test_acc_final", es_log["test"][-1], unit="%")
results.record("es_train_test_gap_final", final_gap, unit="points")
results.record("es_stop_epoch", stop_epoch, description=f"where patience {MAIN_PATIENCE} stops")
results.record("es_best_epoch", best_epoch, description="the epoch early stopping returns")
results.record("es_test_at_best", es_log["test"][best_epoch - 1], unit="%")
results.record("es_p1_stop_epoch", stops[1][0])
results.record("es_p1_test", es_log["test"][stops[1][1] - 1], unit="%")
results.record("es_best_test_any_epoch", max(es_log["test"]), unit="%")
glue("es_main_patience", MAIN_PATIENCE, display=False)
glue("es_n_epochs", run.es_epochs, display=False)
val_drops = int(np.sum(np.diff(es_log["val"]) < 0))
glue("es_val_drops", val_drops, display=False)
if run.profile != "smoke":
    assert stops[1][0] < stops[MAIN_PATIENCE][0]  # patience 1 stops earlier (the text's point)
    assert es_log["train"][-1] > es_log["train"][4]  # the training accuracy keeps rising
    assert final_gap > 2  # and ends above the test accuracy
    assert val_drops >= 3  # the validation curve is not monotone: it fluctuates

# %% [markdown]
# The training accuracy climbs to {glue:text}`es_train_acc_final:.1f`% after
# {glue:text}`es_n_epochs` epochs; the validation and test accuracies rise quickly during the
# first few epochs and then creep up slowly, with setbacks along the way (the validation
# accuracy fell from one epoch to the next {glue:text}`es_val_drops` times),
# ending at {glue:text}`es_val_acc_final:.1f`% and {glue:text}`es_test_acc_final:.1f`%, a gap of
# {glue:text}`es_train_test_gap_final:.1f` points to the training accuracy. After the early-stopping
# point the network keeps fitting its 10,000 training images and learns little that carries over
# to new ones (001 3.3(ii)).
#
# With patience {glue:text}`es_main_patience` the rule stops at epoch
# {glue:text}`es_stop_epoch` and returns the model of epoch {glue:text}`es_best_epoch`, whose test
# accuracy is {glue:text}`es_test_at_best:.2f`%; the best test accuracy of any epoch was
# {glue:text}`es_best_test_any_epoch:.2f`%, which no rule could pick without looking at the test
# set. **A too-small patience** (001 3.3(iii)) mistakes the noise of the validation curve for the
# end of learning: with $p = 1$ the first epoch whose validation accuracy does not beat the
# previous best ends training, here at epoch {glue:text}`es_p1_stop_epoch`, and the model it
# returns has a test accuracy of {glue:text}`es_p1_test:.2f`%. The table shows the trade-off: a
# larger patience costs more epochs and protects against stopping on a fluctuation, and as long
# as the validation curve still creeps up, it returns a later and better model. How much a
# validation gain means has a scale too: with 2,000 validation images one image is 0.05 points,
# and an accuracy near 85% measured on them is within about
# $\sqrt{0.85 \cdot 0.15 / 2000} \approx 0.8$ points (one standard error) of the accuracy on
# all images of that kind. Most epoch-to-epoch gains after the first few epochs are smaller, so
# picking the best of many epochs by validation accuracy partly picks a lucky sample.
#
# ### Momentum (001 3.4)
#
# SGD with momentum keeps a running *velocity* $v$, initialized to zero, and steps along it:
#
# $$
# v \leftarrow \alpha v + \nabla F(w), \qquad w \leftarrow w - \eta v .
# $$ (eq-momentum)
#
# Unrolled, $v_t = \sum_{s \le t} \alpha^{t-s} \nabla F(w_s)$: a geometrically weighted sum of
# past gradients. If the gradient stays about constant, $v \to \nabla F / (1 - \alpha)$, so the
# *effective* learning rate is $\eta / (1 - \alpha)$: 1.1 times $\eta$ for $\alpha = 0.1$, 10
# times for $\alpha = 0.9$. In directions where successive gradients point the same way the
# steps add up; where they alternate (across a narrow valley, or from the noise of small
# batches) they partly cancel. This is Polyak's heavy ball {cite:p}`polyak1964some`, here with
# stochastic gradients; Nesterov's method, whose rate Chapter 4 derived, is its close relative
# that evaluates the gradient after the momentum step.
#
# {eq}`eq-momentum` is exactly what `torch.optim.SGD(momentum=alpha)` does (with its default
# `dampening=0`); we check that on a few steps before we rely on it.

# %%
torch.manual_seed(0)
probe = nn.Linear(6, 3).double()
w_hand = [p.detach().clone() for p in probe.parameters()]
v_hand = [torch.zeros_like(p) for p in w_hand]
opt_probe = torch.optim.SGD(probe.parameters(), lr=0.1, momentum=0.7)
for _ in range(5):
    xs, ys = torch.randn(4, 6, dtype=torch.float64), torch.randint(0, 3, (4,))
    hand_params = [p.clone().requires_grad_() for p in w_hand]
    hand_loss = F.cross_entropy(F.linear(xs, *hand_params), ys)
    grads = torch.autograd.grad(hand_loss, hand_params)
    for i, g in enumerate(grads):
        v_hand[i] = 0.7 * v_hand[i] + g  # eq-momentum
        w_hand[i] = w_hand[i] - 0.1 * v_hand[i]
    opt_probe.zero_grad()
    F.cross_entropy(probe(xs), ys).backward()
    opt_probe.step()
for p, q in zip(probe.parameters(), w_hand, strict=True):
    assert torch.allclose(p, q, atol=1e-12)

# %% [markdown]
# The source runs $\alpha \in \{0.1, 0.3, 0.5, 0.7, 0.9\}$; we add $\alpha = 0$, plain SGD, as the
# baseline. Every run starts from the same initial weights, sees the same sequence of
# mini-batches ($B = 5$, $\eta = 0.01$) and records the mean training loss of each epoch and the
# final test accuracy.

# %%
ALPHAS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
torch.manual_seed(run.seed)
momentum_init = MLP().to(device).state_dict()
momentum_runs = {}
for alpha in tqdm(ALPHAS, desc="momentum factors"):
    model = MLP().to(device)
    model.load_state_dict(momentum_init)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=alpha)
    gen = torch.Generator().manual_seed(run.seed)
    losses = [train_epoch(model, opt, *fm["train"], 5, gen) for _ in range(run.momentum_epochs)]
    momentum_runs[alpha] = {
        "loss": losses,
        "test": 100 * accuracy(model, *fm["test"]),
        "train": 100 * accuracy(model, *fm["train"]),
    }

fig, ax = plt.subplots(figsize=(8, 4.5))
m_epochs = np.arange(1, run.momentum_epochs + 1)
for alpha in ALPHAS:
    ax.plot(
        m_epochs,
        momentum_runs[alpha]["loss"],
        marker="o",
        ms=3,
        ls="--" if alpha == 0 else "-",
        label=f"α = {alpha}",
    )
ax.set_yscale("log")
ax.set(
    title="MLP, SGD with momentum (B = 5, η = 0.01)",
    xlabel="epoch",
    ylabel="mean training loss of the epoch (nats, log scale)",
)
ax.legend()
fig.tight_layout()
plt.show()

rows = [
    "| $\\alpha$ | effective step $\\eta/(1-\\alpha)$ | first-epoch loss | last-epoch loss "
    "| train acc. (%) | test acc. (%) |",
    "|---" * 6 + "|",
]
for alpha in ALPHAS:
    r = momentum_runs[alpha]
    tag = f"{alpha:g}".replace(".", "")
    results.record(f"momentum_a{tag}_final_loss", r["loss"][-1], unit="nats")
    results.record(f"momentum_a{tag}_test", r["test"], unit="%")
    rows.append(
        f"| {alpha} | {0.01 / (1 - alpha):.3f} | {r['loss'][0]:.3f} | "
        f"{r['loss'][-1]:.3f} | {r['train']:.1f} | {r['test']:.1f} |"
    )
display(Markdown("\n".join(rows)))
best_alpha_test = max(ALPHAS, key=lambda a: momentum_runs[a]["test"])
glue("momentum_best_test_alpha", best_alpha_test, display=False)
glue("momentum_epochs", run.momentum_epochs, display=False)
first_09, first_0 = momentum_runs[0.9]["loss"][0], momentum_runs[0.0]["loss"][0]
first_lowest = min(momentum_runs[a]["loss"][0] for a in ALPHAS)
glue(
    "momentum_a09_start",
    f"It starts as the fastest, though (after the first epoch {first_09:.3f} nats against "
    f"{first_0:.3f} for plain SGD), and falls behind later."
    if first_09 == first_lowest
    else f"It starts faster than plain SGD, though (after the first epoch {first_09:.3f} nats "
    f"against {first_0:.3f}), and falls behind later."
    if first_09 < first_0
    else f"After the first epoch it stands at {first_09:.3f} nats, against {first_0:.3f} for "
    "plain SGD.",
    display=False,
)
sgd_final = momentum_runs[0.0]["loss"][-1]
glue(  # the last epoch if alpha = 0.7 never gets there (possible in the smoke profile)
    "momentum_a07_epochs_to_sgd",
    next(
        (e for e, v in enumerate(momentum_runs[0.7]["loss"], 1) if v <= sgd_final + 1e-12),
        run.momentum_epochs,
    ),
    display=False,
)
final_losses = [momentum_runs[a]["loss"][-1] for a in ALPHAS[:-1]]
if run.profile != "smoke":
    # Up to alpha = 0.7 more momentum means a lower training loss after the same epochs ...
    assert all(a > b for a, b in zip(final_losses, final_losses[1:], strict=False))
    # ... without losing test accuracy against plain SGD (1.5 points: a few times the
    # epoch-to-epoch noise of the test accuracy seen in the early-stopping study) ...
    assert all(momentum_runs[a]["test"] > momentum_runs[0.0]["test"] - 1.5 for a in ALPHAS[:-1])
    # ... while alpha = 0.9 overshoots: it ends with a higher loss than every other run.
    assert momentum_runs[0.9]["loss"][-1] > max(final_losses)

# %% [markdown]
# After {glue:text}`momentum_epochs` epochs, the final training loss falls steadily with
# $\alpha$ up to 0.7: from {glue:text}`momentum_a0_final_loss:.3f` nats for plain SGD and
# {glue:text}`momentum_a01_final_loss:.3f` for $\alpha = 0.1$ to
# {glue:text}`momentum_a05_final_loss:.3f` for $\alpha = 0.5$ and
# {glue:text}`momentum_a07_final_loss:.3f` for $\alpha = 0.7$. With $\alpha = 0.7$ the loss that
# plain SGD reaches after its last epoch is reached after epoch
# {glue:text}`momentum_a07_epochs_to_sgd`. At this small $\eta$ a larger effective step
# $\eta/(1-\alpha)$ is simply a faster one. $\alpha = 0.9$ breaks the pattern: its effective
# step, 0.1, is ten times plain SGD's, and it ends at {glue:text}`momentum_a09_final_loss:.3f`
# nats, above every other run, with a test accuracy of {glue:text}`momentum_a09_test:.1f`%
# against {glue:text}`momentum_a07_test:.1f`% for $\alpha = 0.7$ and
# {glue:text}`momentum_a0_test:.1f`% for plain SGD. {glue:text}`momentum_a09_start` Gradients
# of batches of five images are very noisy, and Chapter 4 measured that stochastic gradient
# methods settle at a noise floor that rises with the step; a plausible reading is that at an
# effective step of 0.1 much of each move follows that noise. The run does not settle the
# question: the curve of $\alpha = 0.9$ is still falling at the last epoch. The test accuracy
# was highest for $\alpha =$ {glue:text}`momentum_best_test_alpha`.
#
# So which $\alpha$? Like the source (which answers 0.5 or 0.7), we would pick $\alpha = 0.7$ at
# this learning rate: it is the fastest of the runs and loses nothing in accuracy. Momentum pays
# while the velocity it builds keeps the step below the size where noise takes over; beyond
# that, more of it costs. Two caveats keep this answer honest.
# First, $\alpha$ and $\eta$ are not independent: much of what $\alpha$ does here, a larger
# $\eta$ would do too, and common practice is to fix $\alpha = 0.9$ and tune $\eta$ (exercise
# 5). Second, "lowest training loss" and "best model" are different questions; the source's
# plot answers the first.
#
# ## Out of distribution: translations and rotations (001 3.5)
#
# ### Three models
#
# The source compares three networks, all with a softmax read-out into ten classes:
#
# - the **MLP** above: $784 \to 128 \to 10$, with $784\cdot128 + 128 + 128\cdot10 + 10 =
#   101{,}770$ parameters;
# - a **2-layer CNN**: 64 filters of $7\times7$ (valid convolution, $28 \to 22$), ReLU,
#   $2\times2$ max-pooling ($22 \to 11$), then a linear layer from the $64\cdot11\cdot11 = 7{,}744$
#   features to 10 classes: $64\cdot49 + 64 + 7{,}744\cdot10 + 10 = 80{,}650$ parameters;
# - a **3-layer CNN**: the same first layer and pooling, then 128 filters of $2\times2\times64$
#   ($11 \to 10$), ReLU, $2\times2$ max-pooling ($10 \to 5$), and a linear layer from
#   $128\cdot5\cdot5 = 3{,}200$ features: $(64\cdot49 + 64) + (64\cdot128\cdot4 + 128) +
#   (3{,}200\cdot10 + 10) = 68{,}106$ parameters.
#
# The CNNs have *fewer* parameters than the MLP, and the deeper CNN fewer than the shallow one,
# because its second pooling shrinks the input of the read-out, the largest layer, from 7,744 to
# 3,200 features. The source does not name the activation of the convolutions; we use ReLU.


# %%
def cnn2() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 64, 7),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 28 -> 22 -> 11
        nn.Flatten(),
        nn.Linear(64 * 11 * 11, 10),
    )


def cnn3() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 64, 7),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 28 -> 22 -> 11
        nn.Conv2d(64, 128, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 11 -> 10 -> 5
        nn.Flatten(),
        nn.Linear(128 * 5 * 5, 10),
    )


ARCHITECTURES = {"MLP": MLP, "2-layer CNN": cnn2, "3-layer CNN": cnn3}
param_counts = {name: n_params(make()) for name, make in ARCHITECTURES.items()}
assert param_counts == {"MLP": 101_770, "2-layer CNN": 80_650, "3-layer CNN": 68_106}
# The sizes that eq-out-size predicts are what flows into each read-out layer.
assert out_size(out_size(28, 7), 2, s=2) == 11 and out_size(out_size(11, 2), 2, s=2) == 5
for make in ARCHITECTURES.values():
    assert make()(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
param_counts

# %% [markdown]
# ### Training
#
# The source trains these models with TensorFlow in a notebook we do not have; its settings are
# not in the text. We train all three the same way: Adam {cite:p}`kingma2015adam` with learning
# rate $10^{-3}$ on mini-batches of 32 images (Keras's defaults), with early stopping on the
# validation accuracy (patience {glue:text}`ood_patience`, at most
# {glue:text}`ood_max_epochs` epochs), and keep the best epoch's parameters. Each model is
# trained {glue:text}`ood_seeds_phrase`; the tables report the mean accuracy over seeds.
# The test sets are built from the original test images: shifted *up* by 4 pixels (the rows that
# leave the top are lost, zeros enter at the bottom), and rotated by 90, 180 and 270 degrees
# counter-clockwise.


# %%
def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move the content of images (..., H, W) by dy rows (down) and dx columns (right).

    What leaves the frame is lost and zeros (black) come in, as on a camera that moved.
    """
    H, W = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0) : H + min(dy, 0), max(dx, 0) : W + min(dx, 0)] = x[
        ..., max(-dy, 0) : H + min(-dy, 0), max(-dx, 0) : W + min(-dx, 0)
    ]
    return out


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate images (N, 1, H, W) counter-clockwise about their centre (bilinear, zeros outside)."""
    if degrees % 90 == 0:  # exact: a permutation of the pixels
        return torch.rot90(x, int(degrees // 90) % 4, dims=(-2, -1))
    t = math.radians(degrees)
    # theta maps each output pixel's (x right, y down) coordinates to where it reads the input.
    theta = torch.tensor(
        [[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0]],
        dtype=x.dtype,
        device=x.device,
    )
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


probe_img = torch.zeros(1, 1, 5, 5)
probe_img[0, 0, 1, 3] = 1.0  # one bright pixel, right of the centre and above it
assert translate(probe_img, -1, 0)[0, 0, 0, 3] == 1  # moved up one row
assert translate(probe_img, 0, -4).sum() == 0  # moved out of the frame: gone
assert rotate(probe_img, 90)[0, 0, 1, 1] == 1  # counter-clockwise: right -> top -> left
# The bilinear rotation agrees with the exact one at 90 degrees (up to interpolation rounding).
x_some = fm["test"][0][:8].cpu()
assert torch.allclose(rotate(x_some, 89.999), rotate(x_some, 90), atol=1e-3)

TEST_SETS = {
    "original": lambda x: x,
    "shifted up 4": lambda x: translate(x, -4, 0),
    "rotated 90": lambda x: rotate(x, 90),
    "rotated 180": lambda x: rotate(x, 180),
    "rotated 270": lambda x: rotate(x, 270),
}
x_test, y_test = fm["test"]
fig, axes = plt.subplots(2, 5, figsize=(10, 4.4))
for col, (name, transform) in enumerate(TEST_SETS.items()):
    for row in range(2):
        axes[row, col].imshow(transform(x_test[row : row + 1])[0, 0].cpu(), cmap="gray_r")
        axes[row, col].set(xticks=[], yticks=[])
    axes[0, col].set_title(name)
axes[0, 0].set_ylabel(data.FASHION_MNIST_CLASSES[int(y_test[0])])
axes[1, 0].set_ylabel(data.FASHION_MNIST_CLASSES[int(y_test[1])])
fig.suptitle("Two test images and their out-of-distribution versions")
fig.tight_layout()
plt.show()


# %%
def shift_augment(max_shift: int):
    """A training-time transform: every image moved by its own random (dy, dx) in ±max_shift."""

    def augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = xb.shape
        dy, dx = torch.randint(-max_shift, max_shift + 1, (2, n, 1), generator=gen).to(xb.device)
        # Pad with zeros, then read each image's window at its own offset: row r of the output
        # is row r - dy of the input, as in `translate`.
        padded = F.pad(xb, (max_shift,) * 4)
        rows = torch.arange(h, device=xb.device) + max_shift - dy  # (n, h)
        cols = torch.arange(w, device=xb.device) + max_shift - dx  # (n, w)
        return padded[
            torch.arange(n, device=xb.device)[:, None, None], 0, rows[:, :, None], cols[:, None, :]
        ][:, None]

    return augment


def fit(make, seed: int, augment=None) -> dict:
    """Adam, batch 32, early stopping on validation accuracy; returns the best model and log."""
    torch.manual_seed(seed)
    model = make().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, best_epoch, val_log = -1.0, None, 0, []
    start = time.perf_counter()
    for epoch in range(1, run.ood_max_epochs + 1):
        train_epoch(model, opt, *fm["train"], 32, gen, augment)
        val_log.append(accuracy(model, *fm["val"]))
        if val_log[-1] > best:
            best, best_state, best_epoch = val_log[-1], copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= run.ood_patience:
            break
    model.load_state_dict(best_state)
    return {
        "model": model.eval(),
        "best_epoch": best_epoch,
        "epochs": epoch,
        "val": best,
        "seconds": time.perf_counter() - start,
    }


AUG_SHIFT = 4
x_few = fm["train"][0][:64]
aug_gen = torch.Generator().manual_seed(0)
x_aug = shift_augment(AUG_SHIFT)(x_few, aug_gen)
aug_gen = torch.Generator().manual_seed(0)
dy_dx = torch.randint(-AUG_SHIFT, AUG_SHIFT + 1, (2, 64, 1), generator=aug_gen)
for i in range(0, 64, 7):  # the vectorized augmentation moves each image as `translate` does
    assert torch.equal(x_aug[i], translate(x_few[i], int(dy_dx[0, i]), int(dy_dx[1, i])))
MODELS = {**ARCHITECTURES, "2-layer CNN + shifts": cnn2}  # the last one: see below
AUGMENT = {"2-layer CNN + shifts": shift_augment(AUG_SHIFT)}
trained = {name: [] for name in MODELS}
for seed in range(run.ood_seeds):
    for name, make in tqdm(MODELS.items(), desc=f"seed {seed}"):
        trained[name].append(fit(make, run.seed + 100 * seed, AUGMENT.get(name)))

# %%
ood_acc = {  # model -> test set -> accuracies (%) of the seeds
    name: {
        ts: [100 * accuracy(f["model"], transform(x_test), y_test) for f in fits]
        for ts, transform in TEST_SETS.items()
    }
    for name, fits in trained.items()
}
mean_acc = {
    name: {ts: float(np.mean(v)) for ts, v in accs.items()} for name, accs in ood_acc.items()
}
train_info = {
    name: (np.mean([f["best_epoch"] for f in fits]), np.mean([f["seconds"] for f in fits]))
    for name, fits in trained.items()
}
KEYS = {
    "MLP": "mlp",
    "2-layer CNN": "cnn2",
    "3-layer CNN": "cnn3",
    "2-layer CNN + shifts": "cnn2_aug",
}
for name, (epochs, seconds) in train_info.items():
    key = KEYS[name]
    results.record(f"{key}_best_epoch", float(epochs), description="mean best validation epoch")
    results.record(f"{key}_train_seconds", float(seconds), unit="s")

# %% [markdown]
# Our accuracies beside the source's. The in-domain accuracies of the CNNs must be within 3
# points of the reference. The source accepts differences of about one point between versions
# of its own framework; a re-implementation in another framework, with training settings the
# source does not give, gets three. The out-of-distribution accuracies depend much more on
# details that the source does not fix (how long the model trained, the optimizer, the
# initialization: nothing in the training objective constrains what a model does on shifted
# images), so any tolerance we could set for them would be arbitrary. We show them beside the
# reference without a verdict; what we do assert are the source's qualitative findings,
# below.

# %%
REFERENCE = {  # 001 3.5, TensorFlow: accuracy (%) per model and test set; None: not given
    "MLP": {
        "original": None,
        "shifted up 4": 47.6,
        "rotated 90": 1.9,
        "rotated 180": 19.7,
        "rotated 270": 5.6,
    },
    "2-layer CNN": {
        "original": 87.9,
        "shifted up 4": 54.7,
        "rotated 90": 5.6,
        "rotated 180": 20.6,
        "rotated 270": 5.3,
    },
    "3-layer CNN": {
        "original": 88.0,
        "shifted up 4": 57.0,
        "rotated 90": 5.4,
        "rotated 180": 5.6,
        "rotated 270": 5.6,
    },
}
SET_KEYS = {
    "original": "in_domain",
    "shifted up 4": "shifted",
    "rotated 90": "rot90",
    "rotated 180": "rot180",
    "rotated 270": "rot270",
}
comparisons = {}
for name, accs in mean_acc.items():
    for ts, ours in accs.items():
        key = f"ood_{KEYS[name]}_{SET_KEYS[ts]}"
        reference = REFERENCE.get(name, {}).get(ts)
        seeds = "1 seed" if run.ood_seeds == 1 else f"mean of {run.ood_seeds} seeds"
        description = f"{name}, test set {ts}: accuracy (%), {seeds}"
        if reference is None:
            results.record(key, ours, unit="%", description=description)
            continue
        in_domain_set = ts == "original"
        comparisons[key] = results.compare(
            key,
            ours,
            reference,
            tolerance=3.0 if in_domain_set else 0.0,
            source="001 3.5",
            rule="within" if in_domain_set else "beside",
            unit="%",
            description=description
            + ("" if in_domain_set else "; not constrained by training, no verdict"),
        )
        glue(f"{key}_diff", ours - reference, display=False)
    results.record(
        f"ood_{KEYS[name]}_seed_spread",
        float(max(np.ptp(v) for ts, v in ood_acc[name].items() if ts != "original")),
        unit="points",
        description="largest max-min range over seeds, out-of-distribution test sets",
    )
    results.record(
        f"ood_{KEYS[name]}_seed_spread_in_domain",
        float(np.ptp(ood_acc[name]["original"])),
        unit="points",
        description="max-min range over seeds, in-domain test set",
    )
for name, count in param_counts.items():
    results.record(f"params_{KEYS[name]}", count)
for smaller, larger, part in (
    ("2-layer CNN", "MLP", "(ii)"),
    ("3-layer CNN", "2-layer CNN", "(iv)"),
):
    assert results.compare(  # 001 asks to verify that each CNN has fewer parameters
        f"params_{KEYS[smaller]}_vs_{KEYS[larger]}",
        param_counts[smaller],
        param_counts[larger],
        tolerance=0,
        rule="at_most",
        source=f"001 3.5 {part}",
        description=f"parameters of the {smaller}, at most those of the {larger} (the "
        "source's claim; the reference is our count of the larger model)",
    ).holds

header = "| model | parameters | " + " | ".join(TEST_SETS) + " |"
rows = [header, "|---" * (len(TEST_SETS) + 2) + "|"]
for name in MODELS:
    cells = []
    for ts in TEST_SETS:
        ref = REFERENCE.get(name, {}).get(ts)
        cells.append(f"**{mean_acc[name][ts]:.1f}**" + (f" ({ref})" if ref is not None else ""))
    count = param_counts[name.removesuffix(" + shifts")]  # the same network, other data
    rows.append(f"| {name} | {count:,} | " + " | ".join(cells) + " |")
display(
    Markdown("Test accuracy (%), ours in bold, the source's in parentheses.\n\n" + "\n".join(rows))
)

# %%
in_domain = {name: mean_acc[name]["original"] for name in MODELS}
shifted = {name: mean_acc[name]["shifted up 4"] for name in MODELS}
glue(
    "ood_seeds_phrase",
    "with one seed" if run.ood_seeds == 1 else f"with {run.ood_seeds} seeds",
    display=False,
)
glue("ood_patience", run.ood_patience, display=False)
glue("ood_max_epochs", run.ood_max_epochs, display=False)
glue("aug_shift", AUG_SHIFT, display=False)
max_rotated = max(mean_acc[n][ts] for n in ARCHITECTURES for ts in TEST_SETS if "rot" in ts)
results.record(
    "ood_max_rotated_acc",
    max_rotated,
    unit="%",
    description="the best accuracy of the three source models on any rotated set",
)
results.record("ood_min_in_domain_acc", min(in_domain[n] for n in ARCHITECTURES), unit="%")
for name in ("MLP", "2-layer CNN", "3-layer CNN"):
    results.record(
        f"ood_{KEYS[name]}_shift_drop",
        in_domain[name] - shifted[name],
        unit="points",
        description=f"{name}: in-domain minus shifted accuracy",
    )
if run.profile != "smoke":
    for key in ("ood_cnn2_in_domain", "ood_cnn3_in_domain"):
        assert comparisons[key].holds, comparisons[key]  # within 3 points of the reference
    assert shifted["3-layer CNN"] > shifted["2-layer CNN"] > shifted["MLP"]  # 001's ordering
    # Every rotated accuracy is far below in-domain: a collapse, not a dip (40 points is
    # several times the largest spread over seeds of any of these accuracies).
    for name in ARCHITECTURES:
        for ts in ("rotated 90", "rotated 180", "rotated 270"):
            assert mean_acc[name][ts] < in_domain[name] - 40, (name, ts, mean_acc[name][ts])
    # The text's reading of 180 degrees: our 3-layer CNN is far from the source's 5.6% and
    # within 10 points of the mean of the other two models.
    cnn3_180 = mean_acc["3-layer CNN"]["rotated 180"]
    assert abs(cnn3_180 - REFERENCE["3-layer CNN"]["rotated 180"]) > 10, cnn3_180
    others_180 = np.mean([mean_acc[m]["rotated 180"] for m in ("MLP", "2-layer CNN")])
    assert abs(cnn3_180 - others_180) < 10, (cnn3_180, others_180)
    assert shifted["2-layer CNN + shifts"] > shifted["2-layer CNN"] + 10  # the remedy works

# %% [markdown]
# Where do the rotated images go? For the first 2-layer CNN we count which class it predicts for
# the images rotated by 90 and by 180 degrees, and, upside down, each class's *recall* (the
# share of its images called by its name) and *precision* (the share of the images called by its
# name that belong to it).

# %%
first_cnn = trained["2-layer CNN"][0]["model"]
pred = {angle: predictions(first_cnn, rotate(x_test, angle)) for angle in (90, 180)}
counts90 = torch.bincount(pred[90], minlength=10)
top90 = int(counts90.argmax())
per_class_180 = [
    100 * (pred[180][y_test == c] == c).float().mean().item() if (y_test == c).any() else 0.0
    for c in range(10)
]
counts180 = torch.bincount(pred[180], minlength=10)
# Precision at 180 degrees: of the rotated images the CNN calls c, the share that are c. A
# class it names for many images of other classes is a default answer, not a recognition.
precision_180 = [
    100 * (y_test[pred[180] == c] == c).float().mean().item() if counts180[c] else 0.0
    for c in range(10)
]
names = data.FASHION_MNIST_CLASSES
recognized = [c for c in range(10) if per_class_180[c] >= 30 and precision_180[c] >= 50]
recognized.sort(key=lambda c: -per_class_180[c])
defaults = [c for c in range(10) if per_class_180[c] >= 30 and precision_180[c] < 50]
glue("rot90_top_share", 100 * counts90[top90].item() / len(y_test), display=False)
rot180_higher = [
    mean_acc[m]["rotated 180"] > max(mean_acc[m]["rotated 90"], mean_acc[m]["rotated 270"])
    for m in ("MLP", "2-layer CNN", "3-layer CNN")
]
glue(
    "rot180_compared",
    "more than at 90 and 270 degrees, all three of them"
    if all(rot180_higher)
    else f"more than at 90 and 270 degrees for {sum(rot180_higher)} of the three",
    display=False,
)


def class_list(classes: list[int]) -> str:
    items = [
        f"{names[c]} ({per_class_180[c]:.0f}% of its images, {precision_180[c]:.0f}% right when "
        "named)"
        for c in classes
    ]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def number_word(n: int) -> str:
    return ["No", "One", "Two", "Three", "Four", "Five"][n] if n <= 5 else str(n)


if recognized:
    rot180_sentence = (
        f"{number_word(len(recognized))} class{'' if len(recognized) == 1 else 'es'} "
        f"{'is' if len(recognized) == 1 else 'are'} still recognized: {class_list(recognized)}."
    )
else:
    rot180_sentence = "No class is recognized in this sense."
if defaults:
    one = len(defaults) == 1
    rot180_sentence += (
        f" {class_list(defaults)} {'has' if one else 'have'} a recall of 30% or more for "
        f"another reason: the CNN gives {'that name' if one else 'their names'} to many "
        "upside-down images of other classes, a default answer rather than a recognition."
    )
glue("rot180_sentence", rot180_sentence, display=False)
glue(
    "rot90_top_class_phrase",
    f'"{names[top90]}"'
    + (
        ", a class whose images are wider than tall, as most rotated garments are"
        if names[top90] == "Bag"
        else ""
    ),
    display=False,
)
display(
    Markdown(
        "| class | share of predictions, rotated 90 (%) | share of predictions, rotated 180 (%)"
        " | recall, rotated 180 (%) | precision, rotated 180 (%) |\n|---|---|---|---|---|\n"
        + "\n".join(
            f"| {names[c]} | {100 * counts90[c].item() / len(y_test):.1f} | "
            f"{100 * counts180[c].item() / len(y_test):.1f} | {per_class_180[c]:.1f} | "
            f"{precision_180[c]:.1f} |"
            for c in range(10)
        )
    )
)

# %% [markdown]
# **In domain**, the 2-layer CNN reaches {glue:text}`ood_cnn2_in_domain:.1f`% and the 3-layer
# CNN {glue:text}`ood_cnn3_in_domain:.1f`% (the source: 87.9% and 88.0%), within the 3 points
# we allow, and the MLP {glue:text}`ood_mlp_in_domain:.1f`% (the source gives no in-domain number
# for it). In domain, our seeds differ by at most
# {glue:text}`ood_mlp_seed_spread_in_domain:.1f` points (MLP),
# {glue:text}`ood_cnn2_seed_spread_in_domain:.1f` (2-layer CNN) and
# {glue:text}`ood_cnn3_seed_spread_in_domain:.1f` (3-layer CNN); on the out-of-distribution
# sets much more, up to {glue:text}`ood_mlp_seed_spread:.1f`,
# {glue:text}`ood_cnn2_seed_spread:.1f` and {glue:text}`ood_cnn3_seed_spread:.1f` points.
#
# **Shifted up by 4 pixels**, every model loses a large part of its accuracy: the MLP falls to
# {glue:text}`ood_mlp_shifted:.1f`% (source 47.6%, a drop of {glue:text}`ood_mlp_shift_drop:.1f`
# points from its in-domain accuracy), the 2-layer CNN to {glue:text}`ood_cnn2_shifted:.1f`%
# (source 54.7%, a drop of {glue:text}`ood_cnn2_shift_drop:.1f`), the 3-layer CNN to
# {glue:text}`ood_cnn3_shifted:.1f`% (source 57.0%, a drop of
# {glue:text}`ood_cnn3_shift_drop:.1f`). The ordering of the source holds: 3-layer CNN > 2-layer
# CNN > MLP. Against the reference, our shifted accuracies differ by
# {glue:text}`ood_mlp_shifted_diff:+.1f` (MLP), {glue:text}`ood_cnn2_shifted_diff:+.1f` (2-layer
# CNN) and {glue:text}`ood_cnn3_shifted_diff:+.1f` points (3-layer CNN). Differences of this
# size are expected: a shifted test set is far from anything the loss saw during training, so
# its accuracy is decided by what the model does *off* the training distribution, which the
# optimizer, the initialization and the number of epochs all change. Averaging over seeds
# reduces the part of the difference that is luck, not the part that is the training recipe.
#
# **Rotated**, all three models collapse, to at most {glue:text}`ood_max_rotated_acc:.1f`%
# against at least {glue:text}`ood_min_in_domain_acc:.1f`% in domain. A 90-degree rotation
# turns trousers into something wide and short and a shirt on its side into nothing the network
# has seen. Below the 10% of guessing, the networks are *systematically* wrong: the 2-layer CNN
# calls {glue:text}`rot90_top_share:.0f`% of the images rotated by 90 degrees
# {glue:text}`rot90_top_class_phrase`. Upside down, we call a class
# *recognized* when the CNN finds at least 30% of its images (three times chance) and at least
# half of the images it gives that name are right. {glue:text}`rot180_sentence` Over all the
# classes, our models score {glue:text}`rot180_compared`: the MLP {glue:text}`ood_mlp_rot180:.1f`%
# (source 19.7%), the 2-layer CNN {glue:text}`ood_cnn2_rot180:.1f`% (20.6%) and the 3-layer CNN
# {glue:text}`ood_cnn3_rot180:.1f`% (where the source has 5.6%, see below). Convolutions
# share weights across *positions*, not across orientations, so nothing in these
# architectures helps with rotations, and the CNNs remain as far from their in-domain
# accuracy as the MLP, as the source finds.
#
# Most of our rotated accuracies are within a few points of the source's (the Reproduction page
# lists each one beside ours). One is not: the 3-layer CNN upside down, where we measure
# {glue:text}`ood_cnn3_rot180:.1f`% against the source's 5.6%, a difference of
# {glue:text}`ood_cnn3_rot180_diff:+.1f` points. Our 3-layer CNN scores about as the other two
# models do at 180 degrees. For the 2-layer CNN the table above shows that a large part of its
# hits upside down are default answers, not recognition, so the source's 3-layer CNN may simply
# have defaulted to a class that happens to score fewer hits.
# We cannot tell from the text why (its three rotated numbers for that model, 5.4%, 5.6% and
# 5.6%, are suspiciously alike, as if that model had put most rotated images into one class),
# and nothing in the architecture forces either outcome: like the shifted accuracies, rotated
# accuracies measure behaviour that the training never constrained, and they vary with the
# optimizer, the initialization and the stopping epoch.
#
# The last row, the 2-layer CNN trained on randomly shifted images, is the remedy discussed at
# the end of the chapter.
#
# ## Beyond the source: how accuracy depends on the shift and the angle
#
# One shift of 4 pixels up is a single point of a larger picture. We move the test images by
# every $(\Delta y, \Delta x)$ on a grid from $-8$ to $+8$ pixels (step
# {glue:text}`shift_step`) and draw each model's accuracy as a heat map; then we rotate them by
# angles from 0 to 360 degrees in steps of {glue:text}`angle_step`. The sweeps use the first
# {glue:text}`sweep_images:,` test images and the first seed of each model.

# %%
SHIFTS = list(range(-8, 9, run.shift_step))
x_sweep, y_sweep = x_test[: run.sweep_images], y_test[: run.sweep_images]
heat = {name: np.zeros((len(SHIFTS), len(SHIFTS))) for name in MODELS}
for name in tqdm(MODELS, desc="shift sweeps"):
    model = trained[name][0]["model"]
    for i, dy in enumerate(SHIFTS):
        for j, dx in enumerate(SHIFTS):
            heat[name][i, j] = 100 * accuracy(model, translate(x_sweep, dy, dx), y_sweep)

fig, axes = plt.subplots(1, len(MODELS), figsize=(4.1 * len(MODELS), 4), sharey=True)
for ax, name in zip(axes, MODELS, strict=True):
    im = ax.imshow(
        heat[name],
        vmin=0,
        vmax=100,
        cmap="viridis",
        origin="upper",
        extent=(
            SHIFTS[0] - run.shift_step / 2,
            SHIFTS[-1] + run.shift_step / 2,
            SHIFTS[-1] + run.shift_step / 2,
            SHIFTS[0] - run.shift_step / 2,
        ),
    )
    ax.plot(0, -4, "rx", ms=8, label="the source's shift (4 up)")
    ax.set(title=name, xlabel="Δx: shift right (pixels)", xticks=range(-8, 9, 4))
    ax.set_yticks(range(-8, 9, 4))
axes[0].set_ylabel("Δy: shift down (pixels)")
axes[0].legend(loc="lower left", fontsize=8)
fig.colorbar(im, ax=axes, label="test accuracy (%)", shrink=0.85)
fig.suptitle("Accuracy on translated test images")
plt.show()

# %%
centre = SHIFTS.index(0)
one_px = [(centre + di, centre + dj) for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))]
i4, j4 = SHIFTS.index(-4), SHIFTS.index(4)
axis4 = {}  # model -> (mean accuracy shifted 4 px vertically, horizontally)
for name in MODELS:
    key = KEYS[name]
    h = heat[name]
    results.record(
        f"sweep_{key}_one_step",
        float(np.mean([h[p] for p in one_px])),
        unit="%",
        description=f"mean accuracy at the 4 shifts one grid step ({run.shift_step} "
        "px) from the centre",
    )
    results.record(
        f"sweep_{key}_corner",
        float(np.mean(h[[0, 0, -1, -1], [0, -1, 0, -1]])),
        unit="%",
        description="mean accuracy at the shifts (±8, ±8)",
    )
    results.record(
        f"sweep_{key}_mean",
        float(h.mean()),
        unit="%",
        description="mean accuracy over the whole shift grid",
    )
    # (record returns nothing: keep the values themselves for the asserts below)
    axis4[name] = (
        float((h[i4, centre] + h[j4, centre]) / 2),
        float((h[centre, i4] + h[centre, j4]) / 2),
    )
    results.record(
        f"sweep_{key}_vertical4",
        axis4[name][0],
        unit="%",
        description="mean accuracy, shifted 4 px up or down",
    )
    results.record(
        f"sweep_{key}_horizontal4",
        axis4[name][1],
        unit="%",
        description="mean accuracy, shifted 4 px left or right",
    )
glue("shift_step", run.shift_step, display=False)
glue("shift_step_phrase", f"{run.shift_step} pixel{'s' * (run.shift_step > 1)}", display=False)
glue("angle_step", run.angle_step, display=False)
glue("sweep_images", run.sweep_images, display=False)
if run.profile != "smoke":  # the CNN degrades more gracefully than the MLP, and the
    assert heat["2-layer CNN"].mean() > heat["MLP"].mean()  # augmented CNN most gracefully
    assert heat["2-layer CNN + shifts"].mean() > heat["3-layer CNN"].mean()
    for name in ("MLP", "2-layer CNN"):  # the asymmetry the text discusses
        vertical, horizontal = axis4[name]
        assert horizontal < vertical, (name, horizontal, vertical)

# %% [markdown]
# Each map is bright at the centre, the unshifted images, and darkens with the distance from it.
# How fast it darkens is what differs between the models. Averaged over the four shifts one grid
# step ({glue:text}`shift_step_phrase`) away from the centre, the MLP keeps
# {glue:text}`sweep_mlp_one_step:.1f`%, the 2-layer CNN {glue:text}`sweep_cnn2_one_step:.1f`% and
# the 3-layer CNN {glue:text}`sweep_cnn3_one_step:.1f`%; over the whole grid the three average
# {glue:text}`sweep_mlp_mean:.1f`%, {glue:text}`sweep_cnn2_mean:.1f`% and
# {glue:text}`sweep_cnn3_mean:.1f`%. None of them is anywhere near invariant: at the corners, 8
# pixels away on both axes, all three are at {glue:text}`sweep_mlp_corner:.0f`%,
# {glue:text}`sweep_cnn2_corner:.0f`% and {glue:text}`sweep_cnn3_corner:.0f`%. The maps are not
# symmetric: a shift by 4 pixels up or down leaves the 2-layer CNN
# {glue:text}`sweep_cnn2_vertical4:.1f`% on average, one by 4 pixels left or right
# {glue:text}`sweep_cnn2_horizontal4:.1f`% (the MLP: {glue:text}`sweep_mlp_vertical4:.1f`% and
# {glue:text}`sweep_mlp_horizontal4:.1f`%): horizontal shifts hurt far more than vertical
# ones. A plausible reading, not a proof: the cues that separate the classes lie mostly along
# the horizontal axis (the sleeves of a shirt or pullover, the gap between trouser legs, the
# toe of a shoe), and a read-out that has learned them at fixed columns loses them when they
# move sideways, while a few rows lost at the top or bottom remove less of them. Exercise 6
# below is one way to test it.

# %%
ANGLES = list(range(0, 361, run.angle_step))
angle_acc = {
    name: [100 * accuracy(trained[name][0]["model"], rotate(x_sweep, a), y_sweep) for a in ANGLES]
    for name in tqdm(MODELS, desc="rotation sweeps")
}
fig, ax = plt.subplots(figsize=(8, 4.5))
for name in MODELS:
    ax.plot(ANGLES, angle_acc[name], marker="o", ms=3, label=name)
ax.axhline(10, color="grey", ls=":", label="chance (10%)")
ax.set(
    title="Accuracy on rotated test images",
    xlabel="rotation angle (degrees, counter-clockwise)",
    ylabel="test accuracy (%)",
    xticks=range(0, 361, 45),
)
ax.legend()
fig.tight_layout()
plt.show()
half_width = {}
for name in MODELS:
    acc = np.array(angle_acc[name])
    # the smallest angle (either direction) at which accuracy falls below half of the 0-degree one
    below = [a for a, v in zip(ANGLES, acc, strict=True) if v < acc[0] / 2 and a <= 180]
    below += [360 - a for a, v in zip(ANGLES, acc, strict=True) if v < acc[0] / 2 and a >= 180]
    half_width[name] = min(below) if below else 180
    results.record(
        f"angle_{KEYS[name]}_half_width",
        half_width[name],
        unit="degrees",
        description="smallest rotation at which accuracy falls below half",
    )

# %% [markdown]
# The rotation curves fall steeply from the upright images and do not come back until the
# images are upright again: each model loses half of its accuracy by
# {glue:text}`angle_mlp_half_width` degrees (MLP), {glue:text}`angle_cnn2_half_width` (2-layer
# CNN) and {glue:text}`angle_cnn3_half_width` (3-layer CNN), and the curves are flat near chance
# or below between 90 and 270 degrees, with the bump at 180 degrees seen above. Training on
# shifted images does not help with rotations: the augmented model loses half of its accuracy
# by {glue:text}`angle_cnn2_aug_half_width` degrees. What a network does not see in training,
# and what its architecture does not build in, it does not handle.
#
# ## Why max-pooling gives only approximate translation invariance
#
# Two properties are easy to confuse. A map $f$ is **equivariant** to translations if moving the
# input moves the output the same way, $f(T_\delta x) = T_\delta f(x)$; it is **invariant** if the
# output does not move at all, $f(T_\delta x) = f(x)$. A classifier should be invariant; a
# convolution is equivariant. By {eq}`eq-conv` with stride 1, shifting $X$ by $\delta$ shifts $Y$
# by $\delta$, exactly, wherever the filter window stays inside the image.
#
# Max-pooling with a $2\times2$ window and stride 2 is equivariant only to shifts by *even*
# numbers of pixels (they move the pooled map by half as many cells); a shift by one pixel
# changes which pixels fall into the same window, so the pooled map is no shifted copy of the
# original, although it is often similar, since a maximum over a window is not changed by a
# one-pixel move of a feature that stays inside it. That is the "approximate" local invariance
# pooling brings, a step of its own grid's worth: one input pixel for a first pooling layer, two
# for a second one, whose grid is already twice as coarse. The last step decides everything: the
# read-out is a fully connected layer on the flattened feature maps. It has a separate weight
# for every (channel, row, column), so a feature that moves to a new cell meets new weights,
# and nothing makes those weights equal. Equivariance all the way up, then a read-out that is
# not invariant: that is why the CNNs above lose a third of their accuracy to a 4-pixel shift.
#
# We check these statements on one test image and the trained 2-layer CNN.

# %%
cnn = trained["2-layer CNN"][0]["model"]
conv_relu, pool, readout = cnn[:2], cnn[2], cnn[4]
img = x_test[:1]
with torch.no_grad():
    fmap = conv_relu(img)  # (1, 64, 22, 22)
    k = 7
    equiv_err = {}
    for dy, dx in ((-4, 0), (3, -2), (-1, 1)):
        shifted_map = conv_relu(translate(img, dy, dx))
        # eq-conv: map(T x)[i, j] = map(x)[i - dy, j - dx] where the window sees no lost pixels
        r0, r1 = max(dy, 0), 28 - k + min(dy, 0)
        c0, c1 = max(dx, 0), 28 - k + min(dx, 0)
        diff = (
            shifted_map[..., r0 : r1 + 1, c0 : c1 + 1]
            - fmap[..., r0 - dy : r1 - dy + 1, c0 - dx : c1 - dx + 1]
        )
        equiv_err[(dy, dx)] = diff.abs().max().item()
    pooled = pool(fmap)  # (1, 64, 11, 11)
    pooled_up4 = pool(conv_relu(translate(img, -4, 0)))
    pooled_up1 = pool(conv_relu(translate(img, -1, 0)))
    # an even shift moves the pooled map by half as many cells (where nothing was lost) ...
    even_err = (pooled_up4[..., :8, :] - pooled[..., 2:10, :]).abs().max().item()
    # ... an odd one does not: compare with the best of the two candidate alignments.
    odd_err = min(
        (pooled_up1[..., :9, :] - pooled[..., s : s + 9, :]).abs().max().item() for s in (0, 1)
    )
    scale = pooled.abs().max().item()
    # The 3-layer CNN's final 5x5 map has cells 4 input pixels apart (two stride-2 poolings):
    # a 4-pixel shift up moves it by exactly one cell, rows 1..4 to rows 0..3.
    features3 = trained["3-layer CNN"][0]["model"][:6]
    final3, final3_up4 = features3(img), features3(translate(img, -4, 0))
    pool3_err = (final3_up4[..., :4, :] - final3[..., 1:5, :]).abs().max().item()
    pool3_err /= final3.abs().max().item()
    probs = {
        name: F.softmax(cnn(t(img)), 1)[0, int(y_test[0])].item()
        for name, t in (
            ("original", lambda z: z),
            ("up 1", lambda z: translate(z, -1, 0)),
            ("up 4", lambda z: translate(z, -4, 0)),
        )
    }
glue("equiv_max_err", max(equiv_err.values()), display=False)
glue("pool_even_err", even_err / scale, display=False)
glue("pool_odd_err", odd_err / scale, display=False)
glue("pool3_shift_err", pool3_err, display=False)
for name, p in probs.items():
    glue(f"prob_{name.replace(' ', '')}", p, display=False)
glue("probe_class", data.FASHION_MNIST_CLASSES[int(y_test[0])], display=False)
assert max(equiv_err.values()) < 1e-5  # the convolution is equivariant (float32 rounding)
assert even_err / scale < 1e-5  # even shifts: the pooled map moves by half
assert odd_err / scale > 1e-2  # odd shifts: it does not, by far more than rounding
assert pool3_err < 1e-5  # the 3-layer CNN's map moves by exactly one cell (float32 rounding)

# %%
channel = int(pooled.flatten(2).max(2).values.argmax())  # the most active feature map
fig, axes = plt.subplots(3, 3, figsize=(10, 9), layout="constrained")  # room for the colour bar
top = fmap[0, channel].max().item()  # one colour scale for all maps: brightness compares
for row, (label, dy) in enumerate((("original", 0), ("shifted up 1", -1), ("shifted up 4", -4))):
    shifted_img = translate(img, dy, 0)
    with torch.no_grad():
        f_map = conv_relu(shifted_img)[0, channel].cpu()
        p_map = pool(conv_relu(shifted_img))[0, channel].cpu()
    axes[row, 0].imshow(shifted_img[0, 0].cpu(), cmap="gray_r")
    axes[row, 1].imshow(f_map, cmap="magma", vmin=0, vmax=top)
    shown = axes[row, 2].imshow(p_map, cmap="magma", vmin=0, vmax=top)
    axes[row, 0].set_ylabel(label)
for ax, title in zip(
    axes[0],
    ("input (28x28)", f"feature map {channel} (22x22)", "2x2 max-pooled (11x11)"),
    strict=True,
):
    ax.set_title(title)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
fig.suptitle("The 2-layer CNN on one test image: the features move with the image")
fig.colorbar(shown, ax=axes[:, 1:], label="activation (ReLU output)", shrink=0.6)
plt.show()

# %% [markdown]
# The first column moves the image, the second shows one of the 64 feature maps, the third
# the same map after pooling. The convolution is equivariant to float32 rounding: where the
# filter window stays inside the image, the feature maps of the shifted images are the shifted
# feature map of the original to within {glue:text}`equiv_max_err:.1e`. After pooling, the
# 4-pixel shift moves the map by exactly two cells (largest relative difference
# {glue:text}`pool_even_err:.1e`), while the 1-pixel shift produces a map that is no shifted copy
# of the original (relative difference {glue:text}`pool_odd_err:.2f` at the best alignment).
# Either way, the features end up *somewhere else*, and the read-out weights there are
# different. The network's probability for the true class ({glue:text}`probe_class`) is
# {glue:text}`prob_original:.3f` for the original image, {glue:text}`prob_up1:.3f` after the
# 1-pixel shift and {glue:text}`prob_up4:.3f` after the 4-pixel shift.
#
# The source attributes the 3-layer CNN's better tolerance to its extra convolution and pooling,
# which would make it more translation invariant. The geometry says otherwise. Its two poolings have
# stride 2 each and its convolutions stride 1, so neighbouring cells of its final $5\times5$ map are
# 4 input pixels apart (each cell sees a window of 12 pixels): a 4-pixel shift moves that map by
# exactly one cell, an exact shifted copy as for the 2-layer CNN (largest relative difference
# {glue:text}`pool3_shift_err:.1e` on the same image), which moves by two of its 11 cells. Relative
# to the size of the map both move about equally, and both read-outs meet new weights. Why the
# 3-layer CNN keeps more accuracy, then, this run does not show; one guess is that its wider,
# overlapping windows make the features of neighbouring cells more alike, so that the weights of
# neighbouring cells learn similar things. More pooling is not invariance in any case; only a
# read-out that ignores position entirely, a global average or maximum over the feature map, could
# be, and with the max-poolings in place only for some shifts: a global average over the last pooled
# map for multiples of 4 pixels, a global maximum (which equals the maximum over the last
# convolution's map, after one pooling) for multiples of 2. The price would be all the
# information about *where* features are, which the classes of Fashion-MNIST partly need (a
# sleeve at the side of the image, not at the bottom).
# See {cite:t}`azulay2019why` for how far from invariant much larger CNNs are, and
# {cite:t}`zhang2019making` for pooling that respects the sampling theorem.
#
# ## One remedy: training on shifted images
#
# If the architecture does not provide invariance, the data can ask for it. The last model of
# the table is the 2-layer CNN, unchanged, trained on images that are each moved by a random
# $(\Delta y, \Delta x)$ with both components uniform in $\{-4, \dots, 4\}$: every epoch shows
# each training image at a fresh position. The validation and test images are not moved.

# %%
aug, base = mean_acc["2-layer CNN + shifts"], mean_acc["2-layer CNN"]
results.record(
    "aug_in_domain_change",
    aug["original"] - base["original"],
    unit="points",
    description="in-domain accuracy: augmented minus plain 2-layer CNN",
)
aug_capped = sum(
    f["epochs"] == run.ood_max_epochs and f["epochs"] - f["best_epoch"] < run.ood_patience
    for f in trained["2-layer CNN + shifts"]
)
glue(
    "aug_budget_sentence",
    f"{aug_capped} of its {run.ood_seeds} runs reached the cap while still improving, so part "
    "of the cost is the training budget, and part is capacity."
    if aug_capped
    else "every run stopped on its patience before the cap, so the cost is not a short budget, "
    "and capacity is the likelier cause.",
    display=False,
)
results.record(
    "aug_shifted_gain",
    aug["shifted up 4"] - base["shifted up 4"],
    unit="points",
    description="shifted-up-4 accuracy: augmented minus plain 2-layer CNN",
)

# %% [markdown]
# Trained on shifted images, the same network keeps {glue:text}`ood_cnn2_aug_shifted:.1f`% on the
# test set shifted up by 4 pixels, {glue:text}`aug_shifted_gain:.1f` points more than the plain
# 2-layer CNN. The price is in domain: {glue:text}`ood_cnn2_aug_in_domain:.1f`%, a change of
# {glue:text}`aug_in_domain_change:+.1f` points. The augmented task is harder: the model's best
# validation epoch was on average {glue:text}`cnn2_aug_best_epoch:.1f`, against
# {glue:text}`cnn2_best_epoch:.1f` for the plain CNN, out of at most
# {glue:text}`ood_max_epochs`; {glue:text}`aug_budget_sentence` The read-out of this
# network is position-specific, so to be invariant it has to learn the same class evidence at
# every position separately, with the same 77,450 weights that the plain CNN spends on centred
# images only. An architecture with the invariance built in (exercise 1) would not pay this
# price in the same way. In its heat map the bright region is much wider, covering most of the
# square of shifts it was trained on ($\pm${glue:text}`aug_shift` pixels): averaged over the whole
# $\pm 8$ grid, it keeps {glue:text}`sweep_cnn2_aug_mean:.1f`%
# against {glue:text}`sweep_cnn2_mean:.1f`% for the plain 2-layer CNN, and
# {glue:text}`sweep_cnn2_aug_corner:.0f`% at the corners. The 4-pixel shift of the source lies
# inside the augmented range, so for this model it is no longer out of distribution; the shifts
# beyond 4 pixels are, and that is where it degrades. Augmentation teaches the invariances we
# can name and generate, not the ones we did not think of: the rotation sweep above shows that
# it gained little or nothing there.

# %% [markdown]
# ## Beyond the source: does the network know when it is lost?
#
# A classifier that fails on rotated images would do less harm if it said so. The simplest test
# reads the network's own output {cite:p}`hendrycks2017baseline`: the largest softmax
# probability $s(x) = \max_c p_c(x)$, the *confidence*, should be high on images like the
# training images and lower on strange ones. If it is, a threshold on $s$ flags the strange
# inputs. How well *any* threshold can do is summarized by the area under the ROC curve (AUROC):
# the probability that a randomly drawn familiar image scores higher than a randomly drawn
# strange one, ties counting one half. A coin scores 0.5, a perfect separation 1.0.
#
# Written as it is defined, the AUROC of $m$ familiar scores $a_i$ and $n$ strange scores $b_j$
# is an average over all $mn$ pairs,
#
# $$
# \mathrm{AUROC} = \frac{1}{mn} \sum_{i=1}^{m} \sum_{j=1}^{n}
#   \Big( [a_i > b_j] + \tfrac12 [a_i = b_j] \Big),
# $$ (eq-auroc-pairs)
#
# $10^8$ pairs for two test sets of $10^4$ images. Sorting does it in
# $O((m+n)\log(m+n))$: rank the pooled $m+n$ scores from 1 (lowest) upward, giving tied scores
# the mean of their ranks, and let $R$ be the sum of the familiar scores' ranks. Each $a_i$'s
# mid-rank counts the scores below it, one half for every other score tied with it, and one for
# itself:
#
# $$
# \mathrm{rank}(a_i) = \#\{j : b_j < a_i\} + \tfrac12 \#\{j : b_j = a_i\}
#   + \#\{k : a_k < a_i\} + \tfrac12 \#\{k \ne i : a_k = a_i\} + 1 .
# $$
#
# Summed over $i$, the familiar-familiar terms count each of the $m(m-1)/2$ pairs of familiar
# scores once, so with the $m$ ones they add up to $m(m+1)/2$; what is left,
# $U = R - m(m+1)/2$, is the Mann-Whitney statistic, the double sum of {eq}`eq-auroc-pairs`:
#
# $$
# \mathrm{AUROC} = \frac{R - m(m+1)/2}{mn}.
# $$ (eq-auroc-ranks)
#
# One numerical trap: a confident network's largest probability can be within $10^{-8}$ of 1,
# and float32 rounds such a value to exactly 1, so confident images would tie. We rank by the
# largest *log*-probability computed in float64 from the logits, which orders the images
# exactly as $s$ does without the ties.


# %%
def auroc(familiar: torch.Tensor, strange: torch.Tensor) -> float:
    """P(a random familiar score > a random strange one), ties 1/2: the rank formula."""
    m, n = len(familiar), len(strange)
    if m == 0 or n == 0:
        raise ValueError(f"AUROC needs scores on both sides, got {m} familiar and {n} strange")
    scores = torch.cat([familiar, strange]).double().cpu()
    sorted_scores, order = scores.sort()
    _, group, counts = torch.unique_consecutive(
        sorted_scores, return_inverse=True, return_counts=True
    )
    mean_rank = counts.cumsum(0) - (counts - 1) / 2  # ranks e-c+1 ... e of a tie group: mean
    ranks = torch.empty_like(scores)
    ranks[order] = mean_rank[group].double()
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def auroc_by_pairs(familiar: torch.Tensor, strange: torch.Tensor) -> float:
    """The definition, pair by pair: O(mn) time and memory."""
    d = familiar.double()[:, None] - strange.double()[None, :]
    return float(((d > 0).double() + 0.5 * (d == 0).double()).mean())


def confidence(model: nn.Module, x: torch.Tensor):
    """(log max_c p_c(x), the predicted class) per image; float64, where float32 rounds to 1."""
    log_conf, predicted = F.log_softmax(logits_of(model, x).double(), dim=1).max(1)
    return log_conf.cpu(), predicted.cpu()


gen_check = torch.Generator().manual_seed(0)
for m_check, n_check in ((1, 1), (7, 3), (300, 500)):
    a_check = torch.randint(0, 6, (m_check,), generator=gen_check).double()  # many ties
    b_check = torch.randn(n_check, generator=gen_check).round()
    assert abs(auroc(a_check, b_check) - auroc_by_pairs(a_check, b_check)) < 1e-12
assert auroc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0  # perfect separation
assert auroc(torch.ones(4), torch.ones(9)) == 0.5  # all tied: a coin

OOD_SETS = [ts for ts in TEST_SETS if ts != "original"]
conf = {name: {ts: [] for ts in TEST_SETS} for name in MODELS}  # mean confidence per seed
ood_auroc = {name: {ts: [] for ts in OOD_SETS} for name in MODELS}  # original vs ts, per seed
error_auroc = {name: [] for name in MODELS}  # right vs wrong answers on the original set
first_scores = {}  # the first 2-layer CNN's log-confidences per test set, for the histogram
for name, fits in trained.items():
    for i, f in enumerate(fits):
        scores = {}
        for ts, t in TEST_SETS.items():
            scores[ts], predicted = confidence(f["model"], t(x_test))
            conf[name][ts].append(scores[ts].exp().mean().item())
            if ts == "original":
                right = predicted == y_test.cpu()
        for ts in OOD_SETS:
            ood_auroc[name][ts].append(auroc(scores["original"], scores[ts]))
        error_auroc[name].append(auroc(scores["original"][right], scores["original"][~right]))
        if name == "2-layer CNN" and i == 0:
            first_scores = scores

mean_conf = {n: {ts: float(np.mean(v)) for ts, v in c.items()} for n, c in conf.items()}
mean_auroc = {n: {ts: float(np.mean(v)) for ts, v in a.items()} for n, a in ood_auroc.items()}
mean_error_auroc = {n: float(np.mean(v)) for n, v in error_auroc.items()}
rows = [
    "| model | " + " | ".join(TEST_SETS) + " | right vs wrong (original) |",
    "|---" * (len(TEST_SETS) + 2) + "|",
]
for name in MODELS:
    cells = [f"{mean_conf[name]['original']:.2f} ({mean_acc[name]['original']:.0f}%)"]
    cells += [
        f"{mean_conf[name][ts]:.2f} ({mean_acc[name][ts]:.0f}%), **{mean_auroc[name][ts]:.2f}**"
        for ts in OOD_SETS
    ]
    rows.append(f"| {name} | " + " | ".join(cells) + f" | **{mean_error_auroc[name]:.2f}** |")
display(
    Markdown(
        "Mean confidence on each test set (accuracy in parentheses) and, in bold, the AUROC of "
        "the confidence for telling the original test images from that set; last column: the "
        "AUROC for telling right answers from wrong ones on the original set. "
        + ("One seed." if run.ood_seeds == 1 else f"Means over {run.ood_seeds} seeds.")
        + "\n\n"
        + "\n".join(rows)
    )
)

# %%
fig, ax = plt.subplots(figsize=(7, 4))
bins = np.logspace(-8, 0, 33)  # 1 - confidence; below 1e-8 is counted in the first bin
for ts, style in (("original", "-"), ("shifted up 4", "--"), ("rotated 90", ":")):
    doubt = (-torch.expm1(first_scores[ts])).clamp(min=1e-8).numpy()  # 1 - s, without rounding
    ax.hist(
        doubt,
        bins=bins,
        histtype="step",
        linestyle=style,
        linewidth=2,
        weights=np.full(len(doubt), 100 / len(doubt)),
        label=ts,
    )
ax.set(
    xlabel="1 - confidence (1 - largest softmax probability; left: near-certain; "
    "first bin: all below 1e-8)",
    ylabel="share of the test images (%)",
    xscale="log",
    title="How sure the 2-layer CNN is, first seed",
)
ax.legend(loc="upper left")
plt.show()
# The rank formula agrees with the pair definition on real scores (a subset: O(mn) memory).
s_orig, s_rot = first_scores["original"][:2_000], first_scores["rotated 90"][:2_000]
assert abs(auroc(s_orig, s_rot) - auroc_by_pairs(s_orig, s_rot)) < 1e-12
sure = math.log(0.99)
glue("sure_original", 100 * (first_scores["original"] > sure).double().mean().item(), display=False)
glue("sure_rot90", 100 * (first_scores["rotated 90"] > sure).double().mean().item(), display=False)

# %%
overconfident = [  # (model, set): mean confidence minus accuracy, on the rotated sets
    mean_conf[n][ts] - mean_acc[n][ts] / 100
    for n in ARCHITECTURES
    for ts in OOD_SETS
    if "rot" in ts
]
glue("conf_cnn2_original", mean_conf["2-layer CNN"]["original"], display=False)
glue("conf_cnn2_rot90", mean_conf["2-layer CNN"]["rotated 90"], display=False)
for key_name in MODELS:
    results.record(
        f"auroc_{KEYS[key_name]}_rot90",
        mean_auroc[key_name]["rotated 90"],
        description=f"{key_name}: AUROC of the max softmax probability, original vs rotated 90",
    )
    results.record(
        f"auroc_{KEYS[key_name]}_errors",
        mean_error_auroc[key_name],
        description=f"{key_name}: AUROC of the max softmax probability, right vs wrong answers",
    )
ood_aurocs = [mean_auroc[n][ts] for n in ARCHITECTURES for ts in OOD_SETS]
glue("auroc_ood_min", min(ood_aurocs), display=False)
glue("auroc_ood_max", max(ood_aurocs), display=False)
error_aurocs = [mean_error_auroc[n] for n in ARCHITECTURES]
glue("auroc_err_min", min(error_aurocs), display=False)
glue("auroc_err_max", max(error_aurocs), display=False)
glue(
    "auroc_err_sentence",
    "higher than on any of the out-of-distribution sets"
    if min(error_aurocs) > max(ood_aurocs)
    else "a range that overlaps the one above",
    display=False,
)
glue(
    "overconf_sentence",
    "On every rotated set, every one of the three models is on average more confident than it "
    f"is accurate, by at least {100 * min(overconfident):.0f} points."
    if min(overconfident) > 0
    else "On some rotated set, a model's mean confidence does not exceed its accuracy: "
    f"the smallest gap is {100 * min(overconfident):.0f} points.",
    display=False,
)
best_ood = max(ood_aurocs)
glue(
    "auroc_verdict_sentence",
    "None of them comes near a detector one could rely on: even the best pair leaves about "
    f"{100 * (1 - best_ood):.0f}% of the familiar-strange pairs ranked the wrong way round."
    if best_ood < 0.95
    else "The best pairs separate well, but the range shows how much the answer depends on "
    "which kind of strangeness one meets.",
    display=False,
)

# %% [markdown]
# The rank formula agrees with the pair-by-pair definition to $10^{-12}$ on random scores with
# many ties and on the network's real scores. The 2-layer CNN's mean confidence is
# {glue:text}`conf_cnn2_original:.2f` on the original test images, where it is right
# {glue:text}`ood_cnn2_in_domain:.0f`% of the time; on the images rotated by 90 degrees it is
# still {glue:text}`conf_cnn2_rot90:.2f`, while it is right on only
# {glue:text}`ood_cnn2_rot90:.0f`%. {glue:text}`overconf_sentence` The histogram of its first
# seed is drawn against $1 - s$ on a log scale, because many answers are nearly certain:
# {glue:text}`sure_rot90:.0f`% of the rotated images get a confidence above 0.99, against
# {glue:text}`sure_original:.0f`% of the original ones.
#
# As a detector of strange inputs, the confidence of the three source models reaches AUROCs
# from {glue:text}`auroc_ood_min:.2f` to {glue:text}`auroc_ood_max:.2f` across the four
# out-of-distribution sets. {glue:text}`auroc_verdict_sentence` On the other question a
# confidence is asked, whether an answer on a familiar image is right, the AUROCs run from
# {glue:text}`auroc_err_min:.2f` to {glue:text}`auroc_err_max:.2f`,
# {glue:text}`auroc_err_sentence`. {cite:t}`hendrycks2017baseline` propose the softmax
# confidence as a *baseline* for both questions, one that better methods should beat, and
# that is what it is here. Training minimized the cross-entropy on centred, upright images
# only; nothing in that objective asks the network to be unsure about anything else, and
# nothing stops a rotated shirt from landing far from every decision boundary.

# %% [markdown]
# ## Summary
#
# - The output side of a convolution or pooling layer is
#   $\lfloor (n + 2p - d(k-1) - 1)/s \rfloor + 1$ {eq}`eq-out-size`. Sharing one filter over all
#   positions divides the parameter count by the number of positions {eq}`eq-sharing`.
# - Early stopping returns the best validation epoch; after it, the training accuracy rises to
#   {glue:text}`es_train_acc_final:.1f`% while the test accuracy stays near
#   {glue:text}`es_test_acc_final:.1f`%. A too-small patience stops on a fluctuation.
# - Momentum $\alpha$ multiplies the effective step by $1/(1 - \alpha)$; here $\alpha = 0.7$ was
#   the best compromise; $\alpha = 0.9$ ended with the highest loss (possibly gradient noise at
#   its tenfold effective step).
# - Out of distribution, the CNNs (in-domain {glue:text}`ood_cnn2_in_domain:.1f`% and
#   {glue:text}`ood_cnn3_in_domain:.1f`%) lose {glue:text}`ood_cnn2_shift_drop:.0f` and
#   {glue:text}`ood_cnn3_shift_drop:.0f` points to a 4-pixel shift, the MLP
#   {glue:text}`ood_mlp_shift_drop:.0f`, and all three fall below chance on rotations by 90 and
#   270 degrees. Convolutions are equivariant, the fully connected read-out is not invariant,
#   and each pooling buys a little local tolerance, no invariance. Training with random shifts
#   recovers most of the shifted accuracy, at a cost of
#   {glue:text}`aug_in_domain_change:+.1f` points in domain here.
# - Confidence is a weak guide out of distribution: on images rotated by 90 degrees the 2-layer
#   CNN is right on {glue:text}`ood_cnn2_rot90:.0f`% with a mean confidence of
#   {glue:text}`conf_cnn2_rot90:.2f`, and its confidence tells original from strange images with
#   AUROCs of {glue:text}`auroc_ood_min:.2f` to {glue:text}`auroc_ood_max:.2f` (three models,
#   four sets).
#
# ## What to try
#
# 1. **Global average pooling.** Replace the read-out of the 3-layer CNN by a global average over
#    each feature map followed by a $128 \to 10$ linear layer. Count its parameters. Prove that
#    its output is invariant to shifts by multiples of 4 pixels that keep the object inside the
#    frame and away from the border of the valid convolution, and show with an example why
#    other shifts are not covered. Then measure its heat map and in-domain accuracy: how far
#    from invariant is it at 1-pixel shifts?
# 2. **Circular shifts.** Replace `translate` by `torch.roll` and pad the convolutions
#    circularly (`padding_mode="circular"`). Which layer now breaks invariance, and by how much?
# 3. **Pooling and aliasing.** Blur each feature map with a $3\times3$ binomial filter before the
#    max-pooling (as in {cite:t}`zhang2019making`). Does the 1-pixel-shift accuracy improve?
# 4. **Rotation augmentation.** Train the 2-layer CNN on images rotated by random multiples of 90
#    degrees. What does it cost in domain, and what do 180-degree rotations now give?
# 5. **Momentum and the learning rate.** Repeat the momentum study with $\eta = 0.01(1-\alpha)$,
#    which keeps the effective step fixed. Do the curves still differ? What does that say about
#    what momentum does beyond a larger step?
# 6. **Which axis carries the cues?** Blank the 4 leftmost or rightmost columns of the test
#    images, then the 4 top or bottom rows, and measure the 2-layer CNN on each. If the reading
#    of the shift heat maps above is right, losing columns should hurt more than losing rows.
# 7. **A better score for strange inputs.** Replace the largest softmax probability by the
#    largest logit, and then by the log-sum-exp of the logits (both need no softmax). Do the
#    AUROCs on the rotated sets move? Why can a score that ignores the other classes' logits
#    not be fooled in the same way, and why can it be fooled in others?
