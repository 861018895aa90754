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
# # Equivariance, invariance and shifted training
#
# {doc}`Section 4 <04_three_models>` found that a 4-pixel shift costs the CNNs a large
# part of their accuracy, although convolutions are built for translations. This section
# goes beyond the source to find out why: it separates the *equivariance* of a convolution
# from the *invariance* a classifier needs, checks both numerically on a trained network,
# maps the accuracy over every shift and angle, and tries one remedy, training on shifted
# images.

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
import numpy as np
import torch
import torch.nn.functional as F

from helpers import data, plots, profiles, results
from helpers.dryrun import capped
from helpers.exactness import float32_exact
from helpers.glue import glue
from helpers.lessons.cnn_ood import (
    ARCHITECTURES,
    KEYS,
    accuracy,
    cnn2,
    fashion_split,
    n_params,
    rotate,
    train_models,
    translate,
)

run = profiles.setup(
    profile,
    seed=5,
    n_train=(1_000, 10_000, 10_000),  # Fashion-MNIST training images (source's split)
    n_val=(200, 2_000, 2_000),  # validation images, for early stopping
    n_test=(1_000, 10_000, 10_000),  # test images
    ood_max_epochs=(1, 15, 60),  # cap on epochs per model (as in section 4)
    ood_patience=(1, 3, 8),  # early-stopping patience (as in section 4)
    shift_step=(4, 2, 1),  # grid step (pixels) of the shift heat maps, from -8 to +8
    sweep_images=(200, 1_000, 10_000),  # test images used by the shift and angle sweeps
    angle_step=(90, 15, 5),  # degrees between the rotation angles of the sweep
)
device = run.device
if device.type == "cpu":
    torch.set_num_threads(1)  # small batches: one thread is faster on a busy machine
fm = fashion_split(run.n_train, run.n_val, run.n_test, device)
x_test, y_test = fm["test"]
run

# %% [markdown]
# ## Shifted training images
#
# Besides the three models of section 4, trained here with its first seed and recipe, we
# train a fourth: the 2-layer CNN, unchanged, on images that are each moved by a random
# $(\Delta y, \Delta x)$ with both components uniform in $\{-4, \dots, 4\}$, so that every
# epoch shows each training image at a fresh position. The validation and test images are
# not moved. The augmentation moves a whole batch at once, by indexing a zero-padded copy;
# we check on a few images that it moves each one as `translate` does.

# %% tags=["save"]
def shift_augment(max_shift: int):
    """A training transform: each image moved by its own random (dy, dx), |.| <= max."""

    def augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, _, h, w = xb.shape
        dy, dx = torch.randint(-max_shift, max_shift + 1, (2, n, 1),
                               generator=gen).to(xb.device)
        # pad with zeros, then read each image's window at its own offset: row r of the
        # output is row r - dy of the input, as in `translate`
        padded = F.pad(xb, (max_shift,) * 4)
        rows = torch.arange(h, device=xb.device) + max_shift - dy  # (n, h)
        cols = torch.arange(w, device=xb.device) + max_shift - dx  # (n, w)
        batch = torch.arange(n, device=xb.device)[:, None, None]
        return padded[batch, 0, rows[:, :, None], cols[:, None, :]][:, None]

    return augment


# %%
AUG_SHIFT = 4
x_few = fm["train"][0][:64]
x_aug = shift_augment(AUG_SHIFT)(x_few, torch.Generator().manual_seed(0))
dy_dx = torch.randint(-AUG_SHIFT, AUG_SHIFT + 1, (2, 64, 1),
                      generator=torch.Generator().manual_seed(0))  # the same draws
for i in range(0, 64, 7):  # a permutation of pixels and zeros: exactly equal
    dy, dx = int(dy_dx[0, i]), int(dy_dx[1, i])
    assert torch.equal(x_aug[i], translate(x_few[i], dy, dx))

MODELS = {**ARCHITECTURES, "2-layer CNN + shifts": cnn2}
trained = train_models(MODELS, [run.seed], fm, run.ood_max_epochs, run.ood_patience,
                       augment={"2-layer CNN + shifts": shift_augment(AUG_SHIFT)})
models = {name: fits[0]["model"] for name, fits in trained.items()}

# %% [markdown]
# ## Equivariance is not invariance
#
# Two properties are easy to confuse. A map $f$ is **equivariant** to translations if
# moving the input moves the output the same way, $f(T_\delta x) = T_\delta f(x)$; it is
# **invariant** if the output does not move at all, $f(T_\delta x) = f(x)$. A classifier
# should be invariant; a convolution is equivariant. By {eq}`eq-conv` of
# {doc}`section 1 <01_convolution_arithmetic>`, with stride 1, shifting $X$ by $\delta$
# shifts $Y$ by $\delta$, exactly, wherever the filter window stays inside the image.
#
# Max-pooling with a $2\times2$ window and stride 2 is equivariant only to shifts by
# *even* numbers of pixels (they move the pooled map by half as many cells); a shift by
# one pixel changes which pixels fall into the same window, so the pooled map is no
# shifted copy of the original, although it is often similar, since a maximum over a
# window is not changed by a one-pixel move of a feature that stays inside it. That is
# the "approximate" local invariance pooling brings, a step of its own grid's worth. The
# last step decides everything: the read-out is a fully connected layer on the flattened
# feature maps. It has a separate weight for every (channel, row, column), so a feature
# that moves to a new cell meets new weights, and nothing makes those weights equal.
#
# We check these statements on one test image and the trained 2-layer CNN. Each check
# compares two float32 computations of the same sums at different positions, so rounding
# alone allows about $10^{-6}$ relative; the tolerance is $10^{-5}$. That holds only if
# every position is computed by the same algorithm, and in float32: on a GPU, cuDNN may
# pick FFT or Winograd convolutions, and TF32, which round differently. The checks run
# inside `float32_exact()`, which asks cuDNN for deterministic algorithms without TF32.

# %%
cnn = models["2-layer CNN"]
conv_relu, pool = cnn[:2], cnn[2]
img, k = x_test[:1], 7
with torch.no_grad(), float32_exact():
    fmap = conv_relu(img)  # (1, 64, 22, 22)
    equiv_err = []
    for dy, dx in ((-4, 0), (3, -2), (-1, 1)):
        moved = conv_relu(translate(img, dy, dx))
        # map(T x)[i, j] = map(x)[i - dy, j - dx] where the window loses no pixels
        r0, r1 = max(dy, 0), 28 - k + min(dy, 0)
        c0, c1 = max(dx, 0), 28 - k + min(dx, 0)
        equiv_err.append((moved[..., r0: r1 + 1, c0: c1 + 1] - fmap[
            ..., r0 - dy: r1 - dy + 1, c0 - dx: c1 - dx + 1]).abs().max().item())
    pooled, scale = pool(fmap), pool(fmap).abs().max().item()  # (1, 64, 11, 11)
    up4, up1 = (pool(conv_relu(translate(img, dy, 0))) for dy in (-4, -1))
    # an even shift moves the pooled map by half as many cells ...
    even_err = (up4[..., :8, :] - pooled[..., 2:10, :]).abs().max().item() / scale
    # ... an odd one does not: the best of the two candidate alignments
    odd_err = min((up1[..., :9, :] - pooled[..., s: s + 9, :]).abs().max().item()
                  for s in (0, 1)) / scale
    # the 3-layer CNN's final 5x5 map has cells 4 input pixels apart (two poolings):
    # a 4-pixel shift up moves it by exactly one cell, rows 1..4 to rows 0..3
    features3 = models["3-layer CNN"][:6]
    final3, final3_up4 = features3(img), features3(translate(img, -4, 0))
    pool3_err = ((final3_up4[..., :4, :] - final3[..., 1:5, :]).abs().max()
                 / final3.abs().max()).item()
assert max(equiv_err) < 1e-5, equiv_err  # the convolution is equivariant
assert even_err < 1e-5, even_err  # even shifts: the pooled map moves by half
assert odd_err > 1e-2, odd_err  # odd shifts: it does not, by far more than rounding
assert pool3_err < 1e-5, pool3_err  # the 3-layer CNN's map moves by one cell

# %% tags=["hide-input"]
glue("equiv_max_err", max(equiv_err), display=False)
glue("pool_even_err", even_err, display=False)
glue("pool_odd_err", odd_err, display=False)
glue("pool3_shift_err", pool3_err, display=False)
with torch.no_grad():
    for label, dy in (("original", 0), ("up1", -1), ("up4", -4)):
        p_true = F.softmax(cnn(translate(img, dy, 0)), 1)[0, int(y_test[0])].item()
        glue(f"prob_{label}", p_true, display=False)
glue("probe_class", data.FASHION_MNIST_CLASSES[int(y_test[0])], display=False)

channel = int(pooled.flatten(2).max(2).values.argmax())  # the most active feature map
fig, axes = plots.figure(ncols=3, nrows=3, height=6.6)
top = fmap[0, channel].max().item()  # one colour scale for all maps
for row, (label, dy) in enumerate((("original", 0), ("up 1", -1), ("up 4", -4))):
    moved_img = translate(img, dy, 0)
    with torch.no_grad():
        f_map = conv_relu(moved_img)[0, channel].cpu()
        p_map = pool(conv_relu(moved_img))[0, channel].cpu()
    axes[row, 0].imshow(moved_img[0, 0].cpu(), cmap="gray_r")
    axes[row, 1].imshow(f_map, cmap="magma", vmin=0, vmax=top)
    shown = axes[row, 2].imshow(p_map, cmap="magma", vmin=0, vmax=top)
    axes[row, 0].set_ylabel(label)
for ax, title in zip(axes[0], ("input (28x28)", f"feature map {channel} (22x22)",
                               "max-pooled (11x11)"), strict=True):
    ax.set_title(title, fontsize=10)
for ax in axes.flat:
    ax.set(xticks=[], yticks=[])
fig.colorbar(shown, ax=axes[:, 2], label="activation", shrink=0.6)
plots.glue_figure("fig_feature_maps", fig)

# %% [markdown]
# ```{glue:figure} fig_feature_maps
# ---
# name: fig-cnn-feature-maps
# alt: >-
#   A test image shifted by 0, 1 and 4 pixels, one feature map of the 2-layer CNN for
#   each, and the same map after max-pooling; the bright features move with the image.
# ---
# The 2-layer CNN on one test image moved up by 0, 1 and 4 pixels (rows): the image, one of
# the 64 feature maps, and the same map after $2\times2$ max-pooling, all maps on one
# colour scale. Look at the features moving with the image, and at the pooled map after
# the 1-pixel shift, which is not a shifted copy of the first.
# ```
#
# The convolution is equivariant to float32 rounding: where the filter window stays inside
# the image, the feature maps of the shifted images in {numref}`fig-cnn-feature-maps` are
# the shifted feature map of the original to within {glue:text}`equiv_max_err:.1e`. After
# pooling, the 4-pixel shift moves the map by exactly two cells (largest relative
# difference {glue:text}`pool_even_err:.1e`), while the 1-pixel shift produces a map that
# is no shifted copy of the original (relative difference {glue:text}`pool_odd_err:.2f` at
# the best alignment). Either way, the features end up *somewhere else*, and the read-out
# weights there are different. The network's probability for the true class
# ({glue:text}`probe_class`) is {glue:text}`prob_original:.3f` for the original image,
# {glue:text}`prob_up1:.3f` after the 1-pixel shift and {glue:text}`prob_up4:.3f` after
# the 4-pixel shift.
#
# The source attributes the 3-layer CNN's better tolerance to its extra convolution and
# pooling, which would make it more translation invariant. The geometry says otherwise.
# Its two poolings have stride 2 each and its convolutions stride 1, so neighbouring cells
# of its final $5\times5$ map are 4 input pixels apart: a 4-pixel shift moves that map by
# exactly one cell, an exact shifted copy (largest relative difference
# {glue:text}`pool3_shift_err:.1e` on the same image), as the 2-layer CNN's map moves by
# two of its 11 cells. Relative to the size of the map both move about equally, and both
# read-outs meet new weights. Why the 3-layer CNN keeps more accuracy, then, this run does
# not show; one guess is that its wider, overlapping windows make the features of
# neighbouring cells more alike, so that the weights of neighbouring cells learn similar
# things. More pooling is not invariance in any case; only a read-out that ignores
# position entirely, a global average or maximum over the feature map, could be, and with
# the max-poolings in place only for some shifts (exercise 1). The price would be all the
# information about *where* features are, which the classes of Fashion-MNIST partly need
# (a sleeve at the side of the image, not at the bottom). See {cite:t}`azulay2019why` for
# how far from invariant much larger CNNs are, and {cite:t}`zhang2019making` for pooling
# that respects the sampling theorem.
#
# ## Accuracy against the shift and the angle
#
# One shift of 4 pixels up is a single point of a larger picture. We move the test images
# by every $(\Delta y, \Delta x)$ on a grid from $-8$ to $+8$ pixels (step
# {glue:text}`shift_step` pixels) and map each model's accuracy; then we rotate them by
# angles from 0 to 360 degrees in steps of {glue:text}`angle_step`. The sweeps use the
# first {glue:text}`sweep_images` test images.

# %%
SHIFTS = list(range(-8, 9, run.shift_step))
ANGLES = list(range(0, 361, run.angle_step))
x_sweep, y_sweep = x_test[: run.sweep_images], y_test[: run.sweep_images]
heat = {name: np.full((len(SHIFTS), len(SHIFTS)), np.nan) for name in models}
grid = [(i, j) for i in range(len(SHIFTS)) for j in range(len(SHIFTS))]
for i, j in capped(grid, what="evaluations"):  # row i: shift dy; column j: shift dx
    x_shifted = translate(x_sweep, SHIFTS[i], SHIFTS[j])
    for name, m in models.items():
        heat[name][i, j] = 100 * accuracy(m, x_shifted, y_sweep)
angle_acc = {name: np.full(len(ANGLES), np.nan) for name in models}
for k in capped(range(len(ANGLES)), what="evaluations"):
    x_rotated = rotate(x_sweep, ANGLES[k])
    for name, m in models.items():
        angle_acc[name][k] = 100 * accuracy(m, x_rotated, y_sweep)

centre, i4, j4 = SHIFTS.index(0), SHIFTS.index(-4), SHIFTS.index(4)
vertical4 = {n: (h[i4, centre] + h[j4, centre]) / 2 for n, h in heat.items()}
horizontal4 = {n: (h[centre, i4] + h[centre, j4]) / 2 for n, h in heat.items()}
if run.profile != "smoke":  # differences of 2 points and more, on 1,000 images or more
    assert heat["2-layer CNN"].mean() > heat["MLP"].mean()  # CNN degrades more gently
    assert heat["2-layer CNN + shifts"].mean() > heat["3-layer CNN"].mean()
    for name in ("MLP", "2-layer CNN"):  # horizontal shifts hurt more (see below)
        assert horizontal4[name] < vertical4[name], (name, horizontal4, vertical4)

# %% tags=["hide-input"]
fig, axes = plots.figure(ncols=2, nrows=2, height=6.4, sharex=True, sharey=True)
half = run.shift_step / 2
for ax, name in zip(axes.flat, models, strict=True):
    im = ax.imshow(heat[name], vmin=0, vmax=100, cmap="viridis", origin="upper",
                   extent=(SHIFTS[0] - half, SHIFTS[-1] + half,
                           SHIFTS[-1] + half, SHIFTS[0] - half))
    ax.plot(0, -4, "rx", ms=8)
    ax.set_title(name, fontsize=10)
    ax.set(xticks=range(-8, 9, 4), yticks=range(-8, 9, 4))
for ax in axes[1]:
    ax.set_xlabel("Δx: shift right (pixels)")
for ax in axes[:, 0]:
    ax.set_ylabel("Δy: shift down (pixels)")
fig.colorbar(im, ax=axes, label="test accuracy (%)", shrink=0.8)
plots.glue_figure("fig_shift_maps", fig)

fig, ax = plots.figure(width=6.5, height=3.6)
for name in models:
    ax.plot(ANGLES, angle_acc[name], marker="o", ms=3, label=name)
ax.axhline(10, color="grey", ls=":", label="chance (10%)")
ax.set(xlabel="rotation angle (degrees, counter-clockwise)", ylabel="test accuracy (%)",
       xticks=range(0, 361, 45))
ax.legend(fontsize=8)
plots.glue_figure("fig_angles", fig)

one_px = [(centre + di, centre + dj) for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1))]
for name, h in heat.items():
    key = KEYS[name]
    results.record(f"sweep_{key}_one_step", float(np.mean([h[p] for p in one_px])),
                   unit="%", description="mean accuracy one grid step from the centre")
    corners = h[[0, 0, -1, -1], [0, -1, 0, -1]]
    results.record(f"sweep_{key}_corner", float(np.mean(corners)), unit="%",
                   description="mean accuracy at the shifts (±8, ±8)")
    results.record(f"sweep_{key}_mean", float(h.mean()), unit="%",
                   description="mean accuracy over the whole shift grid")
    results.record(f"sweep_{key}_vertical4", float(vertical4[name]), unit="%",
                   description="mean accuracy, shifted 4 px up or down")
    results.record(f"sweep_{key}_horizontal4", float(horizontal4[name]), unit="%",
                   description="mean accuracy, shifted 4 px left or right")
    acc = angle_acc[name]  # the smallest rotation, either way, that halves the accuracy
    below = [min(a, 360 - a) for a, v in zip(ANGLES, acc, strict=True)
             if v < acc[0] / 2]
    results.record(f"angle_{key}_half_width", min(below, default=180), unit="degrees",
                   description="smallest rotation at which accuracy falls below half")
    results.record(f"sweep_{key}_in_domain", float(h[centre, centre]), unit="%",
                   description="accuracy on the unshifted sweep images")
drops = [float(100 * (1 - vertical4[n] / heat[n][centre, centre]))
         for n in ARCHITECTURES]
glue("sweep_up_down_loss_min", min(drops), display=False)
glue("sweep_up_down_loss_max", max(drops), display=False)
glue("shift_step", run.shift_step, display=False)
glue("angle_step", run.angle_step, display=False)
glue("sweep_images", f"{run.sweep_images:,}", display=False)

# %% [markdown]
# ```{glue:figure} fig_shift_maps
# ---
# name: fig-cnn-shift-maps
# alt: >-
#   Four heat maps of test accuracy over vertical and horizontal shifts from minus 8 to
#   plus 8 pixels; each is bright at the centre, and the map of the CNN trained on shifted
#   images has a much wider bright region.
# ---
# Test accuracy of each model on images shifted by $(\Delta y, \Delta x)$; the red cross
# marks the source's shift, 4 pixels up. Look at how fast each map darkens away from the
# centre, faster along $\Delta x$ than along $\Delta y$, and at the wide bright square of
# the model trained on shifted images.
# ```
#
# Each map of {numref}`fig-cnn-shift-maps` is bright at the centre, the unshifted images,
# and darkens with the distance from it. How fast it darkens is what differs between the
# models. Averaged over the four shifts one grid step away from the centre, the MLP keeps
# {glue:text}`sweep_mlp_one_step:.1f`%, the 2-layer CNN
# {glue:text}`sweep_cnn2_one_step:.1f`% and the 3-layer CNN
# {glue:text}`sweep_cnn3_one_step:.1f`%; over the whole grid the three average
# {glue:text}`sweep_mlp_mean:.1f`%, {glue:text}`sweep_cnn2_mean:.1f`% and
# {glue:text}`sweep_cnn3_mean:.1f`%. None of them is anywhere near invariant: at the
# corners, 8 pixels away on both axes, they are at {glue:text}`sweep_mlp_corner:.0f`%,
# {glue:text}`sweep_cnn2_corner:.0f`% and {glue:text}`sweep_cnn3_corner:.0f`%, and a shift
# of 4 pixels up or down costs the three models between
# {glue:text}`sweep_up_down_loss_min:.0f`% and {glue:text}`sweep_up_down_loss_max:.0f`%
# of their accuracy: equivariance all the way up, then a read-out that is not invariant.
#
# The maps are not symmetric: a shift by 4 pixels up or down leaves the 2-layer CNN
# {glue:text}`sweep_cnn2_vertical4:.1f`% on average, one by 4 pixels left or right
# {glue:text}`sweep_cnn2_horizontal4:.1f`% (the MLP: {glue:text}`sweep_mlp_vertical4:.1f`%
# and {glue:text}`sweep_mlp_horizontal4:.1f`%). A plausible reading, not a proof: the cues
# that separate the classes lie mostly along the horizontal axis (the sleeves of a shirt
# or pullover, the gap between trouser legs, the toe of a shoe), and a read-out that has
# learned them at fixed columns loses them when they move sideways, while a few rows lost
# at the top or bottom remove less of them. Exercise 3 is one way to test it.
#
# ```{glue:figure} fig_angles
# ---
# name: fig-cnn-angles
# alt: >-
#   Test accuracy of four models against the rotation angle from 0 to 360 degrees; all
#   curves fall steeply from 0 and rise again only near 360, with a bump at 180.
# ---
# Test accuracy against the rotation angle. Look at how quickly every curve falls from
# the upright images, and at how little the training on shifted images (red) changes.
# ```
#
# The rotation curves of {numref}`fig-cnn-angles` fall steeply from the upright images
# and do not come back until the images are upright again: each model loses half of its
# accuracy by {glue:text}`angle_mlp_half_width` degrees (MLP),
# {glue:text}`angle_cnn2_half_width` (2-layer CNN) and {glue:text}`angle_cnn3_half_width`
# (3-layer CNN), and the curves stay near chance or below between 90 and 270 degrees,
# apart from the bump at 180 degrees seen in section 4. Training on shifted images does
# not help with rotations: that model loses half of its accuracy by
# {glue:text}`angle_cnn2_aug_half_width` degrees. What a network does not see in
# training, and what its architecture does not build in, it does not handle.
#
# ## One remedy: training on shifted images
#
# If the architecture does not provide invariance, the data can ask for it. How did the
# 2-layer CNN trained on shifted images do?

# %%
base, aug = "2-layer CNN", "2-layer CNN + shifts"
x_up4 = translate(x_test, -4, 0)
acc_of = {name: {"original": 100 * accuracy(models[name], x_test, y_test),
                 "shifted": 100 * accuracy(models[name], x_up4, y_test)}
          for name in (base, aug)}
shifted_gain = acc_of[aug]["shifted"] - acc_of[base]["shifted"]
in_domain_change = acc_of[aug]["original"] - acc_of[base]["original"]
if run.profile != "smoke":  # the remedy works: 10 points is several seed spreads
    assert shifted_gain > 10, shifted_gain

# %% tags=["hide-input"]
results.record("ood_cnn2_aug_in_domain", acc_of[aug]["original"], unit="%",
               description="2-layer CNN trained on shifted images, test set original")
results.record("ood_cnn2_aug_shifted", acc_of[aug]["shifted"], unit="%",
               description="2-layer CNN trained on shifted images, shifted up 4")
results.record("aug_shifted_gain", shifted_gain, unit="points",
               description="shifted-up-4 accuracy: augmented minus plain 2-layer CNN")
results.record("aug_in_domain_change", in_domain_change, unit="points",
               description="in-domain accuracy: augmented minus plain 2-layer CNN")
for name in (base, aug):
    results.record(f"{KEYS[name]}_best_epoch", trained[name][0]["best_epoch"],
                   description="best validation epoch")
fit_aug = trained[aug][0]
glue("aug_capped", "yes" if fit_aug["epochs"] == run.ood_max_epochs
     and fit_aug["epochs"] - fit_aug["best_epoch"] < run.ood_patience else "no",
     display=False)
glue("readout_params", f"{n_params(cnn2()[4]):,}", display=False)
glue("ood_max_epochs", run.ood_max_epochs, display=False)
glue("aug_shift", AUG_SHIFT, display=False)

# %% [markdown]
# Trained on shifted images, the same network keeps
# {glue:text}`ood_cnn2_aug_shifted:.1f`% on the test set shifted up by 4 pixels,
# {glue:text}`aug_shifted_gain:.1f` points more than the plain 2-layer CNN. The price is
# in domain: {glue:text}`ood_cnn2_aug_in_domain:.1f`%, a change of
# {glue:text}`aug_in_domain_change:+.1f` points. Its best validation epoch was
# {glue:text}`cnn2_aug_best_epoch`, against {glue:text}`cnn2_best_epoch` for the plain
# CNN, out of at most {glue:text}`ood_max_epochs`; a run that reaches the cap while still
# improving would point to the training budget as part of the cost (this one:
# {glue:text}`aug_capped`). The read-out of this network is position-specific, so to be
# invariant it has to learn the same class evidence at every position separately, with
# the same
# {glue:text}`readout_params` read-out weights and biases that the plain CNN spends on
# centred images only. An architecture with the invariance built in (exercise 1) would not
# pay this price in the same way.
#
# In its heat map the bright region is much wider, covering most of the square of shifts
# it was trained on ($\pm${glue:text}`aug_shift` pixels): averaged over the whole $\pm 8$
# grid, it keeps {glue:text}`sweep_cnn2_aug_mean:.1f`% against
# {glue:text}`sweep_cnn2_mean:.1f`% for the plain 2-layer CNN, and
# {glue:text}`sweep_cnn2_aug_corner:.0f`% at the corners. The 4-pixel shift of the source
# lies inside the augmented range, so for this model it is no longer out of distribution;
# the shifts beyond 4 pixels are, and that is where it degrades. Augmentation teaches the
# invariances we can name and generate, not the ones we did not think of: the rotation
# sweep shows that it gained little or nothing there.
#
# ## What this section showed
#
# A convolution is equivariant to translations, to float32 rounding once every position
# is computed alike; a $2\times2$ max-pooling is equivariant only to even shifts; and the
# fully connected read-out is not invariant at all, which is where the accuracy lost to a
# shift goes. Accuracy falls off with the shift, faster sideways than up or down, and with
# the angle, for every model. Training on randomly shifted images buys back most of the
# shifted accuracy for a few points in domain, and nothing for rotations.
#
# ## Exercises
#
# 1. **Global average pooling.** Replace the read-out of the 3-layer CNN by a global
#    average over each feature map followed by a $128 \to 10$ linear layer. Count its
#    parameters. Show that its output is invariant to shifts by multiples of 4 pixels that
#    keep the object inside the frame and away from the border of the valid convolution,
#    and why other shifts are not covered. Then measure its heat map: how far from
#    invariant is it at 1-pixel shifts?
#
#    :::{dropdown} Hint
#    $(64\cdot49 + 64) + (64\cdot128\cdot4 + 128) + (128\cdot10 + 10) = 37{,}386$
#    parameters. A 4-pixel shift moves the final map by one cell, and an average does not
#    care where a cell is; a 1-, 2- or 3-pixel shift changes which pixels share a pooling
#    window, as in the pooled maps above.
#    :::
#
# 2. **Circular shifts and pooling with a blur.** Replace `translate` by `torch.roll` and
#    pad the convolutions circularly (`padding_mode="circular"`): which layer now breaks
#    invariance? Then blur each feature map with a $3\times3$ binomial filter before the
#    max-pooling, as in {cite:t}`zhang2019making`. Does the 1-pixel-shift accuracy improve?
#
#    :::{dropdown} Hint
#    With circular shifts and padding, the convolution and ReLU are exactly equivariant
#    everywhere; what remains are the stride-2 poolings (odd shifts) and the read-out.
#    :::
#
# 3. **Which axis carries the cues?** Blank the 4 leftmost or rightmost columns of the
#    test images, then the 4 top or bottom rows, and measure the 2-layer CNN on each. If
#    the reading of the heat maps is right, losing columns should hurt more than losing
#    rows.
#
#    :::{dropdown} Hint
#    `x.clone()` then `x[..., :, :4] = 0` blanks the left columns; compare the accuracies
#    with the spread that 1,000 test images allow, about 1.1 points.
#    :::
