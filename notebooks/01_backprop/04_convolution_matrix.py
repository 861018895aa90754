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
# # Convolution as a matrix
#
# The mini CNN of {doc}`section 1 <01_chain_rule>` slid its filter over the input by index
# arithmetic. There is a more useful way to see it: a convolution (in deep learning, a
# cross-correlation: the filter is not flipped) is a linear map of its input, so it is
# multiplication by a matrix, and its backward pass can be read off that matrix. This section
# follows section 2 of 002 through the arithmetic of a convolution, the size of its output,
# the matrix, the parameters that the matrix shares, and the backward pass, and checks each
# step against PyTorch's own convolution.

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
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from helpers import plots, profiles, results
from helpers.glue import glue
from helpers.gradcheck import relative_error

F64 = torch.float64

run = profiles.setup(
    profile,
    seed=15,
    check_trials=(3, 100, 300),  # random points at which each identity is checked
)
torch.set_num_threads(1)  # small tensors: a second thread only waits on a busy machine
run

# %% [markdown]
# ## The arithmetic of a convolution
#
# 002 2.1 convolves a $6\times 6$ image $\mathbf{X}$ with a $3\times 3$ filter $\mathbf{F}$,
# with stride 1 and no padding, and asks for the entry $j$ of the $4 \times 4$ output, in row
# 3, column 2 (entry $(2, 1)$ when counting from zero, as the code does). Output entry
# $(r, c)$ is the sum of the elementwise product of $\mathbf{F}$ with the window of
# $\mathbf{X}$ whose top-left corner is $(r, c)$.
# Two loops run over the outputs and two over the filter's taps, and either pair can be left
# to NumPy. `conv_windows` loops over the outputs and lets a slice cut out each window;
# `conv_taps` loops over the taps and multiplies each by a shifted copy of the whole image.

# %%
X_img = np.array([[1, 0, -2, 3, 4, 1],
                  [2, 9, 5, 6, 0, -1],
                  [0, -3, 1, 3, 4, 4],
                  [6, 5, 2, 0, 6, 8],
                  [-5, 4, -3, 1, 3, -2],
                  [4, 1, 2, 8, 9, 7]], dtype=float)
F_img = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=float)


def conv_windows(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Stride 1, no padding: at each output, the kernel times the window under it."""
    k = kernel.shape[0]
    corners = [range(extent - k + 1) for extent in image.shape]
    return np.array([[(image[r:r + k, c:c + k] * kernel).sum() for c in corners[1]]
                     for r in corners[0]])


def conv_taps(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The same sum in the other order.

    Tap (i, j) sees input (r + i, c + j) of output (r, c).
    """
    k = kernel.shape[0]
    rows, cols = image.shape[0] - k + 1, image.shape[1] - k + 1
    return sum(kernel[i, j] * image[i:i + rows, j:j + cols]
               for i in range(k) for j in range(k))


# %%
Y_img = conv_windows(X_img, F_img)
Y_torch = F.conv2d(torch.tensor(X_img)[None, None],
                   torch.tensor(F_img)[None, None])[0, 0]
# small integers: float arithmetic is exact
assert np.array_equal(Y_img, Y_torch.numpy())
assert np.array_equal(conv_taps(X_img, F_img), Y_img)
assert Y_img[2, 1] == 8  # 002 2.1(a): entry j

# %% tags=["hide-input"]
display(Markdown("$$\\mathbf{Y} = \\begin{bmatrix}" + r" \\ ".join(
    " & ".join(f"{v:.0f}" for v in row) for row in Y_img) + "\\end{bmatrix}$$"))
comparison = results.compare("conv_example_j", float(Y_img[2, 1]), 8, tolerance=0,
                             source="002 2.1(a)",
                             description="entry j (row 3, column 2) of the 3x3 convolution")

# %% [markdown]
# Entry $j$ is {glue:text}`conv_example_j:.0f`, as the source says, and both functions agree
# exactly with PyTorch's `conv2d` on the whole output. This filter (8 at the centre, $-1$
# around it, summing to zero) is a discrete Laplacian-like edge detector: it returns 0 on any
# constant patch. It is also symmetric under a half-turn, so the flipped (textbook)
# convolution would have given the same numbers; for general filters the two differ.
#
# 002 2.3(a) writes the convolution as four nested loops, over $r$, $c$, $i$, $j$, and
# leaves blank the index of the input pixel that multiplies the filter entry
# $\mathbf{F}[i, j]$. The answer is $\mathbf{X}[r + i, c + j]$: the window of output
# $(r, c)$ starts at input pixel $(r, c)$, and tap $(i, j)$ lies $i$ rows below and $j$
# columns to the right of that corner. It is the index that both functions above use, one
# in the slice of a window and the other in the slice of a shifted image. With stride $s$
# the corner moves to $(s r, s c)$ and the index becomes $\mathbf{X}[s r + i, s c + j]$.
#
# The size of the output follows from counting the positions of the window: with input
# size $n$, filter size $k$, padding $p$ and stride $s$,
#
# $$
# n_\text{out} = \left\lfloor \frac{n + 2p - k}{s} \right\rfloor + 1 .
# $$ (bp-conv-size)
#
# For 002 2.1(b), a $6 \times 4$ input with a $2\times 2$ filter, stride 2 and no padding:

# %%
def conv_output_size(n: int, k: int, stride: int = 1, padding: int = 0) -> int:
    """Eq. (bp-conv-size)."""
    return (n + 2 * padding - k) // stride + 1


out_shape = (conv_output_size(6, 2, stride=2), conv_output_size(4, 2, stride=2))
torch_shape = F.conv2d(torch.zeros(1, 1, 6, 4), torch.zeros(1, 1, 2, 2),
                       stride=2).shape[-2:]
assert out_shape == tuple(torch_shape), (out_shape, torch_shape)
assert out_shape == (3, 2)  # 002 2.1(b)

# %% tags=["hide-input"]
for name, ours, reference, side in (("conv_out_height", out_shape[0], 3, "height"),
                                    ("conv_out_width", out_shape[1], 2, "width")):
    results.compare(name, ours, reference, tolerance=0, source="002 2.1(b)",
                    description=f"output {side} for a 6x4 input, 2x2 filter, stride 2")

# %% [markdown]
# The output is {glue:text}`conv_out_height:.0f` $\times$
# {glue:text}`conv_out_width:.0f`, as the source says and PyTorch confirms.
#
# ## The matrix
#
# A convolution is linear in its input. In one dimension (002 2.3(b)), a filter
# $\mathbf{w} = (w_1, w_2, w_3)$ on an input $\mathbf{x} \in \mathbb{R}^5$ gives three
# outputs $y_r = w_1 x_r + w_2 x_{r+1} + w_3 x_{r+2}$, that is $\mathbf{y} =
# \mathbf{A}\mathbf{x}$ with a banded matrix whose rows are shifted copies of the filter:
#
# $$
# \mathbf{A} = \begin{bmatrix}
# w_1 & w_2 & w_3 & 0 & 0\\
# 0 & w_1 & w_2 & w_3 & 0\\
# 0 & 0 & w_1 & w_2 & w_3
# \end{bmatrix}.
# $$ (bp-conv-matrix)
#
# Row $r$ holds the filter in the columns of the window that output $r$ reads; with stride
# $s$ each row moves $s$ columns to the right of the one above it.

# %%
def conv1d_matrix(w: torch.Tensor, n: int, stride: int = 1) -> torch.Tensor:
    """The matrix A of eq. (bp-conv-matrix): y = A x is w cross-correlated with x."""
    k = len(w)
    A = torch.zeros(conv_output_size(n, k, stride), n, dtype=w.dtype)
    for r in range(A.shape[0]):
        A[r, r * stride:r * stride + k] = w
    return A


print("A for w = (1, 2, 3) and n = 5:\n",
      conv1d_matrix(torch.tensor([1.0, 2.0, 3.0]), 5))

# %% [markdown]
# An image works the same way once it is flattened into a vector. For a $C \times n \times n$
# image, flattened channel by channel and row by row, and a filter of $C \times k \times k$
# weights with one output channel, the matrix has one row per output pixel and one column per
# input value. The row of output $(r, c)$ holds the filter's weights in the columns of the
# window whose corner is $(s r, s c)$, in every channel, and zeros elsewhere.

# %%
def conv2d_matrix(w: torch.Tensor, n: int, stride: int = 1) -> torch.Tensor:
    """The matrix of a one-output-channel convolution with filter w (C x k x k) on a
    C x n x n image: rows are output pixels, columns the input values in (channel, row,
    column) order."""
    C, k, _ = w.shape
    n_out = conv_output_size(n, k, stride)
    A = torch.zeros(n_out, n_out, C, n, n, dtype=w.dtype)
    for r in range(n_out):
        for c in range(n_out):
            A[r, c, :, r * stride:r * stride + k, c * stride:c * stride + k] = w
    return A.reshape(n_out * n_out, C * n * n)


# %% [markdown]
# ## Parameter sharing
#
# The same weights appear in every row: that is parameter sharing. 002 2.2 asks what the
# learned parameters of a convolutional layer are (the filter weights, 2.2(a)), what its
# hyperparameters are (2.2(b)), and how many parameters three layers have, all without bias
# and with one output channel: (c) a $22 \times 22$ grey image, one $4\times 4$ filter,
# stride 2; (d) the same layer without sharing, each output pixel computed by a filter of
# its own; (e) a $40\times 40 \times 3$ colour image, $4\times 4$ filters over all three
# channels, stride 2, without sharing.
#
# ```{note}
# 002 2.2(b) counts the input size among the hyperparameters of the layer, next to the
# stride, the padding and the filter size. The input size is not a choice of the layer's
# designer: it is a property of the data the layer is applied to. A convolutional layer's
# weights do not depend on it at all, which is why one layer can run on images of any size.
# The hyperparameters are the stride, the padding, the filter size (and the number of output
# channels).
# ```
#
# The matrix makes the counting concrete. We build it for each layer from random weights and
# check it against PyTorch: multiplying the flattened image by the matrix must give
# `F.conv2d` with the same stride and channels. A random image makes this a strict test:
# a matrix with a wrong, missing or extra entry would change the product by a weight times
# an input value, not by rounding. On a matrix that has passed it, the shared layer's
# parameters are the *distinct* non-zero entries (random weights are all different), and the
# unshared layer, which has the same connections but a weight of its own on each, has as
# many parameters as the matrix has *non-zero* entries.

# %%
# channels, size, filter, stride
layers = {"grey": (1, 22, 4, 2), "colour": (3, 40, 4, 2)}
gen = torch.Generator().manual_seed(run.seed)
shared, unshared, err_conv2d = {}, {}, 0.0
for name, (C, n, k, stride) in layers.items():
    w = torch.randn(C, k, k, generator=gen, dtype=F64)
    x = torch.randn(C, n, n, generator=gen, dtype=F64)
    A = conv2d_matrix(w, n, stride)
    y_torch = F.conv2d(x[None], w[None], stride=stride).flatten()
    err_conv2d = max(err_conv2d, relative_error(A @ x.flatten(), y_torch))
    shared[name] = len(torch.unique(A[A != 0]))
    unshared[name] = int(torch.count_nonzero(A))
    assert shared[name] == C * k * k, (name, shared[name])  # whatever the image size
    assert unshared[name] == conv_output_size(n, k, stride) ** 2 * C * k * k, name
assert err_conv2d < 1e-12, err_conv2d  # sums of at most 48 products: rounding only
# 002 2.2
assert (shared["grey"], unshared["grey"], unshared["colour"]) == (16, 1600, 17328)

# %% tags=["hide-input"]
sizes = {"params_shared": ("grey", shared, 16, "002 2.2(c)", "a shared"),
         "params_unshared": ("grey", unshared, 1600, "002 2.2(d)", "an unshared"),
         "params_unshared_rgb": ("colour", unshared, 17328, "002 2.2(e)", "an unshared")}
for result, (layer, counts, reference, source, what) in sizes.items():
    C, n, k, stride = layers[layer]
    results.compare(result, counts[layer], reference, tolerance=0, source=source,
                    description=f"parameters of {what} {k}x{k} stride-{stride} layer "
                                f"on a {n}x{n}x{C} image")
C, n, k, stride = layers["grey"]
n_out = conv_output_size(n, k, stride)
glue("params_shared_matrix_shape", f"{n_out * n_out} × {C * n * n}", display=False)
glue("params_shared_rgb", shared["colour"], display=False)
glue("conv2d_matrix_err", err_conv2d, display=False)

# %% [markdown]
# Both matrices reproduce `F.conv2d` to {glue:text}`conv2d_matrix_err:.0e`. For the
# $22\times 22$ grey image the matrix is {glue:text}`params_shared_matrix_shape`; its non-zero
# entries carry only {glue:text}`params_shared:.0f` distinct weights, but there are
# {glue:text}`params_unshared:.0f` of them, one per connection, so that many parameters when
# each of the $10 \times 10$ output pixels has its own filter. For the
# $40 \times 40 \times 3$ colour image the unshared layer has
# {glue:text}`params_unshared_rgb:.0f` parameters and the shared one
# {glue:text}`params_shared_rgb`. All agree with the source and with the formulas
# $C k^2$ (shared, whatever the image size) and $n_\text{out}^2\, C k^2$ (unshared).
# {numref}`fig-bp-conv-matrix` shows where the 16 weights of the grey layer sit.

# %% tags=["hide-input"]
labels = conv2d_matrix(torch.arange(1.0, 17.0).view(1, 4, 4), 22, stride=2).numpy()
shown = np.ma.masked_equal(labels, 0)  # white where input and output are not connected
fig, (ax_all, ax_zoom) = plots.figure(nrows=2, height=5.6)
ax_all.imshow(shown, cmap="viridis", aspect="auto", interpolation="nearest")
ax_all.set(xlabel="input value (row-major index in the 22 × 22 image)",
           ylabel="output pixel", title="the whole matrix")
image = ax_zoom.imshow(shown[:20, :132], cmap="viridis", aspect="auto",
                       interpolation="nearest")
for boundary in range(22, 132, 22):
    ax_zoom.axvline(boundary - 0.5, color="gray", lw=0.5)
ax_zoom.set(xlabel="input value (first 6 image rows; grey lines: new image row)",
            ylabel="output pixel", title="the first 20 rows")
fig.colorbar(image, ax=[ax_all, ax_zoom], label="which filter weight (1 to 16)")
plots.glue_figure("fig_conv_matrix", fig)

# %% [markdown]
# ```{glue:figure} fig_conv_matrix
# ---
# name: fig-bp-conv-matrix
# alt: >-
#   The 100 by 484 matrix of a 4 by 4, stride-2 convolution on a 22 by 22 image, coloured by
#   which of the 16 filter weights each entry holds; a zoom on the first 20 rows shows each
#   row made of four runs of four colours, shifted right by two columns from row to row.
# ---
# The matrix of the grey layer of 002 2.2(c), each non-zero entry coloured by the filter
# weight it holds (white: no connection). Each row reads four image rows, four values from
# each; the next output pixel moves the window two columns right (the stride), and after ten
# outputs it moves down two image rows. Every row holds the same 16 weights.
# ```
#
# Besides the hundredfold saving, sharing builds in an assumption that suits images (002
# 2.2(f)): a pattern means the same thing wherever it appears, so a detector learned at one
# position works at every other, and the layer is equivariant to translations by multiples
# of the stride.
#
# ## The backward pass
#
# Because $\mathbf{y} = \mathbf{A}\mathbf{x}$ is linear in $\mathbf{x}$, its Jacobian, the
# matrix of partial derivatives $\partial y_r / \partial x_c$ with one row per output, is
# $\mathbf{A}$ itself. In the backward pass, an upstream gradient $\mathbf{g} = \partial \ell
# / \partial \mathbf{y}$ becomes
#
# $$
# \frac{\partial \ell}{\partial \mathbf{x}} = \mathbf{A}^\top \mathbf{g},
# \qquad
# \frac{\partial \ell}{\partial w_k} = \sum_r g_r\, x_{r + k - 1} .
# $$ (bp-conv-backward)
#
# The first is a *transposed convolution* (each $g_r$ is spread back over the inputs its
# output read), which is how PyTorch's `conv_transpose1d` is defined. The second is the
# parameter-sharing sum we met in {eq}`bp-cnn-dw`: the mini CNN's layer is exactly
# {eq}`bp-conv-matrix` with a two-tap filter and $\mathbf{A} = \begin{bmatrix} w_1 & w_2 &
# 0\\ 0 & w_1 & w_2\end{bmatrix}$, and its $\partial\ell/\partial w_1 = g_1 x_1 + g_2 x_2$
# with $g_k = \partial \ell / \partial a_k$.
#
# A note on conventions: 002's answer to 2.3(c) writes $\partial\mathbf{y}/\partial
# \mathbf{x} = \mathbf{A}^\top$. That is the *denominator layout*, in which
# $\partial\mathbf{y}/\partial\mathbf{x}$ has one row per input; in the Jacobian layout used
# here (and by `torch.autograd.functional.jacobian`) it is $\mathbf{A}$. The two say the same
# thing: the forward pass multiplies by $\mathbf{A}$, the backward pass by $\mathbf{A}^\top$.
#
# Now the checks, for random $\mathbf{w}$, $\mathbf{x}$, $\mathbf{g}$, and a longer input
# ($n = 12$) as well as the source's $n = 5$. (1) $\mathbf{A}\mathbf{x}$ equals PyTorch's
# `conv1d`. (2) Autograd's Jacobian equals $\mathbf{A}$ *exactly*: every entry is one weight
# times one, with nothing to round. (3) The backward pass, autograd's gradient with respect
# to $\mathbf{x}$ for the loss $\ell = \mathbf{g}^\top\mathbf{y}$, equals
# $\mathbf{A}^\top\mathbf{g}$ and `conv_transpose1d`. (4) The filter gradient equals the sum
# in {eq}`bp-conv-backward`, itself a cross-correlation of $\mathbf{x}$ with $\mathbf{g}$.

# %%
def conv1d(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv1d(x.view(1, 1, -1), w.view(1, 1, -1)).view(-1)


err_conv = 0.0
for n in (5, 12):
    for _ in range(run.check_trials):
        w = torch.randn(3, generator=gen, dtype=F64, requires_grad=True)
        x = torch.randn(n, generator=gen, dtype=F64, requires_grad=True)
        A = conv1d_matrix(w.detach(), n)
        y = conv1d(x, w)
        g = torch.randn(len(y), generator=gen, dtype=F64)
        (g @ y).backward()
        jacobian = torch.autograd.functional.jacobian(partial(conv1d, w=w.detach()), x)
        assert torch.equal(jacobian, A)  # (2) exact
        grad_w = torch.stack([sum(g[r] * x[r + k] for r in range(len(g)))
                              for k in range(3)])
        transposed = F.conv_transpose1d(g.view(1, 1, -1),
                                        w.detach().view(1, 1, -1)).view(-1)
        err_conv = max(
            err_conv,
            relative_error(A @ x.detach(), y.detach()),  # (1)
            relative_error(A.T @ g, x.grad),  # (3)
            relative_error(transposed, x.grad),  # (3) again
            relative_error(grad_w.detach(), w.grad),  # (4)
            relative_error(conv1d(x.detach(), g), w.grad),  # (4) as a correlation
        )
# sums of a handful of products: rounding in the 16th digit
assert err_conv < 1e-12, err_conv

# %% [markdown]
# The same holds in two dimensions, with stride and channels: for the colour layer of 002
# 2.2(e), autograd's gradient of $\ell = \mathbf{g}^\top \mathbf{y}$ with respect to the
# image, flattened, is $\mathbf{A}^\top \mathbf{g}$ for the matrix `conv2d_matrix` builds.

# %%
C, n, k, stride = layers["colour"]
err_conv2d_backward = 0.0
for _ in range(run.check_trials):
    w = torch.randn(C, k, k, generator=gen, dtype=F64)
    x = torch.randn(C, n, n, generator=gen, dtype=F64, requires_grad=True)
    y = F.conv2d(x[None], w[None], stride=stride).flatten()
    g = torch.randn(len(y), generator=gen, dtype=F64)
    (g @ y).backward()
    A = conv2d_matrix(w, n, stride)
    err_conv2d_backward = max(err_conv2d_backward,
                              relative_error(A.T @ g, x.grad.flatten()))
assert err_conv2d_backward < 1e-12, err_conv2d_backward

# %% tags=["hide-input"]
results.record("conv_matrix_max_rel_err", max(err_conv, err_conv2d_backward),
               description="convolution as a matrix: forward and backward vs PyTorch")
glue("check_points", run.check_trials, display=False)

# %% [markdown]
# All of them hold at {glue:text}`check_points` random points for each input length and for
# the colour layer (largest relative error {glue:text}`conv_matrix_max_rel_err:.0e`, and the
# Jacobian exactly). Notice
# what a transpose bug would look like here: using $\mathbf{A}$ instead of
# $\mathbf{A}^\top$ in the backward pass multiplies a $3\times 5$ matrix by a 3-vector, which
# fails before any number is compared. Non-square matrices guard their own transposes. The
# recurrent network of {doc}`the next section <05_bptt>` has a square weight matrix, where
# only numbers can tell.
#
# ## What this section showed
#
# A convolution is multiplication by a sparse matrix whose rows are shifted copies of the
# filter; in two dimensions, with stride and channels, the same construction reproduces
# PyTorch's `conv2d` to rounding. The matrix answers the questions of 002 section 2 at a
# glance: output sizes are numbers of rows, a shared layer's parameters are its distinct
# entries, an unshared layer's are its non-zero entries. And because the forward pass
# multiplies by $\mathbf{A}$, the backward pass multiplies by $\mathbf{A}^\top$: a
# transposed convolution for the input, and the parameter-sharing sum of {eq}`bp-cnn-dw`
# for the filter.
#
# ## Exercises
#
# 1. **Strides and padding.** Generalise `conv1d_matrix` to padding $p$ and stride $s$,
#    check $\mathbf{y} = \mathbf{A}\mathbf{x}$ against `F.conv1d(..., stride=s, padding=p)`,
#    and show that $\mathbf{A}^\top\mathbf{g}$ equals `F.conv_transpose1d` with the same
#    stride and padding. For which input lengths do you need `output_padding`, and what does
#    it correspond to in $\mathbf{A}$?
#
#    :::{dropdown} Hint
#    Padding adds $p$ zero inputs at each end: build $\mathbf{A}$ for length $n + 2p$ and
#    drop its first and last $p$ columns. With stride $s$, all lengths $n$ with the same
#    $\lfloor (n + 2p - k)/s \rfloor$ give the same output length, so the transposed
#    convolution cannot tell them apart and returns the shortest; `output_padding`
#    $= (n + 2p - k) \bmod s$ adds the missing positions at the end. In the $\mathbf{A}$ of
#    the padded input they are its last $(n + 2p - k) \bmod s$ columns, which no window
#    reads: zero columns, so their entries of $\mathbf{A}^\top\mathbf{g}$ are zero.
#    :::
#
# 2. **A layer without sharing.** Write the unshared layer of 002 2.2(d) with `F.unfold`,
#    which cuts every window of the image out into one column, and a weight tensor with one
#    filter per output pixel. Check that its matrix has exactly the non-zero pattern of
#    `conv2d_matrix` for the same layer, and count its parameters.
#
#    :::{dropdown} Hint
#    `F.unfold(x[None], k, stride=s)` has shape $(1, C k^2, n_\text{out}^2)$; with weights
#    $\mathbf{V}$ of the same shape the output is `(V * patches).sum(1)`. Its matrix (apply it
#    to the unit images, or take autograd's Jacobian) has $\mathbf{V}$'s entries where
#    `conv2d_matrix` has the shared ones: $n_\text{out}^2 C k^2 = 1600$ parameters.
#    :::
#
# 3. **The filter gradient in two dimensions.** Show that for stride $s$,
#    $\partial\ell/\partial w_{c,i,j} = \sum_{r,q} g_{r,q}\, x_{c,\,s r + i,\, s q + j}$, and
#    compute it with a single `F.conv2d` call. Check it against autograd for the colour layer.
#
#    :::{dropdown} Answer
#    It is a cross-correlation of each input channel with $\mathbf{g}$, whose taps are $s$
#    apart: `F.conv2d(x[:, None], g.view(1, 1, m, m), dilation=s)` with $m = n_\text{out}$,
#    cut to its first $k \times k$ entries (it is larger when the last inputs are read by no
#    window).
#    :::
