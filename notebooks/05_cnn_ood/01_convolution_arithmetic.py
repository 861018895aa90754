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
# # Convolution arithmetic and parameter sharing
#
# A convolution layer is a small filter slid over an image. This section does its
# arithmetic: how large the output is for a given size, padding, stride and dilation; how
# many parameters the layer has, with and without sharing one filter across positions; and
# how the whole layer is one matrix product, whose backward pass is the transposed matrix.
# Every formula is checked against PyTorch. The problems are those of CMU 10-301/601,
# homework 7, section 2 (cited as *002*).

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
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch import nn

from helpers import profiles, results
from helpers.exactness import float32_exact
from helpers.glue import glue
from helpers.timing import measure, speed_ratio

run = profiles.setup(
    profile,
    seed=5,
    repeat=(2, 5, 7),  # timed runs per benchmark (median reported)
)
device = run.device
if device.type == "cpu":
    torch.set_num_threads(1)  # the timings below are one-thread timings
glue("device_name", profiles.device_name(device), display=False)
run

# %% [markdown]
# ## The output size
#
# A 2-D convolution layer with $C_{\text{in}}$ input channels, $C_{\text{out}}$ output
# channels and a $k\times k$ kernel slides each of its $C_{\text{out}}$ filters over the
# input. (Deep-learning libraries compute a *cross-correlation*, without flipping the
# kernel; we follow them and call it convolution.) For one output channel and an input $X$
# with one channel, stride $s$ and no padding,
#
# $$
# Y_{rc} = \sum_{i=0}^{k-1}\sum_{j=0}^{k-1} X_{sr + i,\; sc + j}\, F_{ij} .
# $$ (eq-conv)
#
# Pad the input with $p$ zeros on every side; its side becomes $n + 2p$. The first window
# starts at position 0 and the last must end inside the padded input, so its start
# $s\,(m - 1)$ satisfies $s\,(m - 1) + k \le n + 2p$. The number of windows along one axis
# is therefore
#
# $$
# m = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .
# $$ (eq-out-size)
#
# With a dilation $d$ (kernel taps $d$ apart) the kernel spans $d(k-1) + 1$ pixels, which
# replaces $k$. Max-pooling uses the same formula; its default stride equals its size, so a
# $2\times2$ pooling halves the side, rounding down. We check {eq}`eq-out-size` against
# PyTorch on a table of cases, the two of 002 (2.1) among them.

# %% tags=["save"]
def out_size(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """eq-out-size: windows of a k-kernel (dilation d, stride s) over n + 2p pixels."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def n_params(module) -> int:
    """The number of trainable numbers of a PyTorch module."""
    return sum(p.numel() for p in module.parameters())


# %%
cases = [  # (height, width, kernel, stride, padding, dilation)
    (6, 6, 3, 1, 0, 1),  # 002 2.1(a): 6x6 image, 3x3 filter -> 4x4
    (6, 4, 2, 2, 0, 1),  # 002 2.1(b): 6x4 input, 2x2 filter, stride 2 -> 3x2
    (22, 22, 4, 2, 0, 1),  # 002 2.2(c)
    (28, 28, 7, 1, 0, 1),  # the first layer of the CNNs of this chapter
    (11, 11, 2, 1, 0, 1),  # the second layer of the 3-layer CNN
    (28, 28, 5, 1, 2, 1),  # "same" padding
    (28, 28, 3, 2, 1, 1),  # a stride that does not divide n + 2p - k
    (32, 17, 3, 3, 1, 2),  # dilation and a non-square input
]
sizes = []
for h, w, k, s, p, d in cases:
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, bias=False)
    torch_shape = tuple(conv(torch.zeros(1, 1, h, w)).shape[-2:])
    formula = (out_size(h, k, s, p, d), out_size(w, k, s, p, d))
    assert formula == torch_shape, (h, w, k, s, p, d, formula, torch_shape)
    sizes.append(formula)
for n, k in ((22, 2), (10, 2), (11, 2), (28, 3)):  # max-pooling: stride = kernel
    assert out_size(n, k, s=k) == nn.MaxPool2d(k)(torch.zeros(1, 1, n, n)).shape[-1]

# %% tags=["hide-input"]
display(Markdown(
    "| input | kernel | stride | padding | dilation | output (formula = torch) |\n"
    "|---|---|---|---|---|---|\n" + "\n".join(
        f"| {h}x{w} | {k} | {s} | {p} | {d} | {m_h}x{m_w} |"
        for (h, w, k, s, p, d), (m_h, m_w) in zip(cases, sizes, strict=True))))

# %% [markdown]
# The formula and PyTorch agree on every case of the table, and on four max-poolings.
# 002 2.1(a) also asks for one entry of the output, $j = Y_{2,1}$ (third row, second
# column, counting from zero), of its $6\times6$ image convolved with a $3\times3$
# Laplacian-like filter. We compute it with {eq}`eq-conv` written as loops, as 002 2.3(a)
# does, and with `F.conv2d`.

# %%
X_002 = torch.tensor([[1, 0, -2, 3, 4, 1], [2, 9, 5, 6, 0, -1], [0, -3, 1, 3, 4, 4],
                      [6, 5, 2, 0, 6, 8], [-5, 4, -3, 1, 3, -2], [4, 1, 2, 8, 9, 7]],
                     dtype=torch.float64)
F_002 = -torch.ones(3, 3, dtype=torch.float64)
F_002[1, 1] = 8.0


def conv_loops(X: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """eq-conv with stride 1 and no padding: one output entry, one window, at a time."""
    k = K.shape[0]
    rows, cols = X.shape[0] - k + 1, X.shape[1] - k + 1
    return torch.tensor([[float((X[r: r + k, c: c + k] * K).sum()) for c in range(cols)]
                         for r in range(rows)], dtype=X.dtype)


Y_002 = conv_loops(X_002, F_002)
assert torch.equal(Y_002, F.conv2d(X_002[None, None], F_002[None, None])[0, 0])

# %% tags=["hide-input"]
results.compare("entry_j", float(Y_002[2, 1]), 8.0, tolerance=0.0, rule="within",
                source="002 2.1(a)",
                description="entry Y[2, 1] of the 6x6 image and the 3x3 filter",
                note="integers in float64: exact")

# %% [markdown]
# Loops and library agree exactly (integers in float64), and give $j =$
# {glue:text}`entry_j:.0f`; 002's answer is 8.
#
# ## Parameter sharing
#
# A convolution uses *the same* filter at every position: one $C_{\text{out}}\times
# C_{\text{in}}\times k\times k$ weight tensor, whatever the size of the image. A *locally
# connected* layer has the same connectivity (every output sees one $k\times k$ window)
# but a separate filter at each of the $m_h m_w$ output positions. Without bias, the counts
# are
#
# $$
# \underbrace{C_{\text{out}} C_{\text{in}} k^2}_{\text{convolution}}
# \qquad\text{and}\qquad
# \underbrace{m_h m_w\, C_{\text{out}} C_{\text{in}} k^2}_{\text{locally connected}} .
# $$ (eq-sharing)
#
# 002 2.2(c)-(e) asks for these numbers for a $22\times22$ grey image and a $40\times40$
# colour image, a $4\times4$ filter, stride 2 and one output channel. Rather than multiply,
# we build both layers and count their parameters. PyTorch has no locally connected layer;
# `F.unfold` (the "im2col" operation) cuts the input into its windows, one column per
# output position, and the layer is then one product per position with its own weights.

# %%
class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: a separate filter at every position."""

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int], k: int,
                 stride: int = 1):
        super().__init__()
        self.k, self.stride = k, stride
        self.out_hw = (out_size(size[0], k, stride), out_size(size[1], k, stride))
        n_pos = self.out_hw[0] * self.out_hw[1]
        self.weight = nn.Parameter(torch.randn(n_pos, c_out, c_in * k * k) / k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.k, stride=self.stride)  # (N, C_in k k, positions)
        y = torch.einsum("ncl,loc->nol", cols, self.weight)  # one filter per position l
        return y.reshape(len(x), -1, *self.out_hw)


sharing = {}
for c_in, n in ((1, 22), (3, 40)):
    shared = nn.Conv2d(c_in, 1, 4, stride=2, bias=False)
    local = LocallyConnected2d(c_in, 1, (n, n), 4, stride=2)
    sharing[n] = (n_params(shared), n_params(local), local.out_hw)
    # With every position's filter set to the shared one, both compute the same map
    # (float64: the two sum the same 16 or 48 products in different orders).
    x = torch.randn(2, c_in, n, n, dtype=torch.float64)
    with torch.no_grad():
        shared, local = shared.double(), local.double()
        local.weight.copy_(shared.weight.reshape(1, 1, -1).expand_as(local.weight))
        assert torch.allclose(local(x), shared(x), rtol=0, atol=1e-12)

# %% tags=["hide-input"]
SHARING_REFERENCE = {22: (16, 1_600), 40: (48, 17_328)}  # 002 2.2(c)-(e)
for n, label in ((22, "22x22 grey"), (40, "40x40 colour")):
    for i, kind in enumerate(("conv", "local")):
        reference = SHARING_REFERENCE[n][i]
        if n == 40 and kind == "conv":
            results.record(f"params_{kind}_{n}", sharing[n][i],
                           description=f"{label}, 4x4 filter, stride 2: shared")
            continue
        results.compare(f"params_{kind}_{n}", sharing[n][i], reference, tolerance=0,
                        rule="within", source="002 2.2",
                        description=f"{label}, 4x4 filter, stride 2: "
                        + ("shared" if kind == "conv" else "unshared"),
                        note="counted on the PyTorch layers")
display(Markdown(
    "| image | output | shared (conv) | unshared (locally connected) |\n"
    "|---|---|---|---|\n" + "\n".join(
        f"| {label} | {sharing[n][2][0]}x{sharing[n][2][1]} | {sharing[n][0]:,} | "
        f"{sharing[n][1]:,} ({SHARING_REFERENCE[n][1]:,}) |"
        for n, label in ((22, "22x22 grey"), (40, "40x40 colour")))
    + "\n\nCounted on the layers; 002's answers in parentheses."))

# %% [markdown]
# The counts agree with 002's answers (16, 1,600 and 17,328; 002 does not ask for the
# colour image's shared count), and the locally connected layer with every filter set to
# the shared one reproduces `nn.Conv2d` to float64 rounding, so the two layers differ only
# in sharing. Sharing divides the count by the number of positions, $10\times10$ and
# $19\times19$ here. The saving is not the only gain: a shared filter is trained by every
# position of every image, so a pattern learnt in one corner is recognized in all the
# others. {doc}`Section 4 <04_three_models>` tests how far that carries.
#
# ## A convolution is a matrix product
#
# The unfold above is also how convolutions are often computed: $Y = W\,\mathrm{unfold}(X)$,
# one matrix product for all positions. Equivalently, for a fixed filter the map
# $x \mapsto y$ is linear, $y = A x$, with $A$ a sparse banded matrix that repeats the
# filter in every row (002 2.3(b)). Its Jacobian is $\partial y / \partial x = A$, and
# backpropagation multiplies the incoming gradient by $A^\top$: $\bar x = A^\top \bar y$,
# a convolution with the flipped filter.
#
# ```{note}
# 002 2.3(c) gives $\partial y/\partial x = A^\top$. With the usual (numerator-layout)
# convention, where the Jacobian of $y \in \mathbb R^3$ with respect to $x \in \mathbb R^5$
# is a $3\times5$ matrix, the Jacobian is $A$ itself; $A^\top$ is what the backward pass
# applies to the gradient. The source's answer is right in the denominator layout, or as
# "the matrix that backpropagation uses". We check both statements with autograd.
# ```

# %%
w_1d = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
x_1d = torch.randn(5, dtype=torch.float64, requires_grad=True)
A = torch.zeros(3, 5, dtype=torch.float64)
for r in range(3):
    A[r, r: r + 3] = w_1d  # each row is the filter, moved one step to the right
y_1d = F.conv1d(x_1d[None, None], w_1d[None, None])[0, 0]
jacobian = torch.autograd.functional.jacobian(
    lambda v: F.conv1d(v[None, None], w_1d[None, None])[0, 0], x_1d.detach())
g_1d = torch.randn(3, dtype=torch.float64)
(x_grad,) = torch.autograd.grad(y_1d, x_1d, g_1d)
# float64 sums of three products: agreement to rounding (allclose's default 1e-8)
assert torch.allclose(y_1d, A @ x_1d)
assert torch.allclose(jacobian, A)  # d y / d x = A (3 x 5)
assert torch.allclose(x_grad, A.T @ g_1d)  # backprop applies A^T

# %% [markdown]
# How fast is the unfold-and-multiply convolution next to PyTorch's own? We time both on a
# batch of 256 Fashion-MNIST-sized images through the first layer of the CNNs of this
# chapter (64 filters of $7\times7$). First a check that they compute the same thing: in
# float32 each output sums 49 products, so the two orders of summation differ by a few
# units of float32's $6\times10^{-8}$ relative rounding, far below the tolerance of
# $10^{-4}$. On a recent NVIDIA GPU, cuDNN would by default compute `nn.Conv2d` in TF32, with
# errors near $10^{-4}$ relative; the check therefore runs inside `float32_exact()` (from
# `helpers.exactness`), which turns TF32 off and restores it afterwards.

# %%
def conv_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
    """A stride-1, unpadded convolution: one matrix product over unfolded windows."""
    c_out, _, k, _ = weight.shape
    m_h, m_w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    cols = F.unfold(x, k)  # (N, C_in k k, m_h m_w)
    y = weight.reshape(c_out, -1) @ cols + bias[:, None]
    return y.reshape(len(x), c_out, m_h, m_w)


bench_conv = nn.Conv2d(1, 64, 7).to(device)
x_bench = torch.rand(256, 1, 28, 28, device=device)
w_b, b_b = bench_conv.weight, bench_conv.bias
with torch.no_grad(), float32_exact():
    unfold_error = (conv_unfold(x_bench, w_b, b_b) - bench_conv(x_bench)).abs().max()
    assert unfold_error < 1e-4, unfold_error
with torch.no_grad():  # timed with the library's defaults, as a user would run it
    t_unfold = measure(lambda: conv_unfold(x_bench, w_b, b_b), repeat=run.repeat)
    t_conv2d = measure(lambda: bench_conv(x_bench), repeat=run.repeat)

# %% tags=["hide-input"]
results.record("conv_unfold_max_error", float(unfold_error),
               description="unfold + matmul vs nn.Conv2d, largest difference (float32)")
results.record("conv_unfold_ms", 1e3 * t_unfold.seconds, unit="ms",
               description="unfold + matmul convolution, 256 images, 64 filters 7x7")
results.record("conv_torch_ms", 1e3 * t_conv2d.seconds, unit="ms",
               description="nn.Conv2d, same batch and filters")
results.record("conv_speed_ratio", speed_ratio(t_unfold, t_conv2d),
               description="time of unfold + matmul / time of nn.Conv2d")
k_bench = bench_conv.kernel_size[0]
n_windows = (x_bench.shape[-1] - k_bench + 1) ** 2  # window positions per image
glue("unfold_blowup", k_bench**2 * n_windows / x_bench[0].numel(), display=False)
display(Markdown(
    f"| on {profiles.device_name(device)} | median time (ms) |\n|---|---|\n"
    f"| unfold + matrix product | {1e3 * t_unfold.seconds:.2f} |\n"
    f"| `nn.Conv2d` | {1e3 * t_conv2d.seconds:.2f} |\n"
    f"| ratio | {speed_ratio(t_unfold, t_conv2d):.2f} |"))

# %% [markdown]
# The two agree to {glue:text}`conv_unfold_max_error:.1e` at worst. The table gives the
# times; their ratio depends on the machine. The arithmetic is the same; what differs is
# memory. Unfolding copies every pixel into up to $k^2 = 49$ columns: the matrix it
# multiplies holds $49 \cdot 22 \cdot 22$ numbers per image,
# {glue:text}`unfold_blowup:.0f` times as many as the image's 784 pixels, while a library
# convolution picks the algorithm (im2col in blocks, direct, Winograd, FFT) that suits the
# shapes and the hardware.
#
# ## What this section showed
#
# The output side of a convolution or pooling layer is
# $\lfloor (n + 2p - d(k-1) - 1)/s \rfloor + 1$, checked against PyTorch on eight layers
# and four poolings. Sharing one filter over all positions divides the parameter count by
# the number of positions, without changing what one position computes. A convolution is
# a linear map $y = Ax$ with a banded, weight-sharing $A$; its Jacobian is $A$ and its
# backward pass applies $A^\top$. Computed as one matrix product over the unfolded
# windows, it agrees with the library to float32 rounding, once TF32 is off.
#
# ## Exercises
#
# 1. **A stride that does not fit.** A $28\times28$ image, a $3\times3$ kernel, stride 2,
#    padding 1: which input rows and columns does no window read?
#
#    :::{dropdown} Answer
#    $m = \lfloor (28 + 2 - 3)/2 \rfloor + 1 = 14$ windows start at padded positions
#    $0, 2, \dots, 26$ and end at $28$; the padded input runs from 0 to 29, so the last
#    padded row and column (the zero padding) are never read, and every image pixel is.
#    :::
#
# 2. **Counting with bias.** Redo the counts of the sharing table with a bias per output
#    channel (convolution) and per output unit (locally connected).
#
#    :::{dropdown} Answer
#    The convolution gains one number per output channel: 17 and 49. The locally
#    connected layer gains one per output position: $1{,}600 + 100 = 1{,}700$ and
#    $17{,}328 + 361 = 17{,}689$.
#    :::
#
# 3. **The transposed convolution.** Write $A^\top \bar y$ of the 1-D example as a
#    convolution of $\bar y$, padded with two zeros on each side, with the flipped filter
#    $(3, -2, 1)$, and check it with `F.conv1d`.
#
#    :::{dropdown} Hint
#    `F.conv1d(F.pad(g_1d, (2, 2))[None, None], w_1d.flip(0)[None, None])` gives the five
#    entries of `x_grad`.
#    :::
