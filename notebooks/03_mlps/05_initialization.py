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
# # Initialization of a deep network
#
# How large should the initial weights be? This section takes the network of 003, problem
# 4, a tanh MLP with eight hidden layers, predicts from a variance argument how the scale
# of the activations and of the gradients changes from layer to layer for four
# initializations, checks the prediction, and trains the four networks to see which of
# them learn at all.

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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers import data, plots, profiles, results
from helpers.dryrun import capped
from helpers.glue import glue

run = profiles.setup(
    profile,
    seed=3,
    init_train=(2_000, 60_000, 60_000),  # MNIST training images
    init_test=(1_000, 10_000, 10_000),  # MNIST test images
    init_epochs=(1, 5, 5),  # SGD epochs per initialization
)
torch.set_num_threads(1)  # one thread, as in the rest of the chapter
run

# %% [markdown]
# ## How the scale propagates
#
# Take the network of 003, problem 4: MNIST {cite:p}`lecun1998gradient` images (784 inputs)
# through 8 hidden layers of width $n = 50$ with tanh, then a linear layer to 10 logits.
# (We read "depth 8" as eight hidden tanh layers; the output layer comes on top.) Every
# weight is drawn from $\mathcal U(-d, d)$, every bias is zero. How large are the
# activations $h_l = \tanh(W_l h_{l-1})$ at layer $l$?
#
# A weight from $\mathcal U(-d, d)$ has variance $d^2/3$. If the weights are independent of
# the incoming activations, each pre-activation $u_{l,i} = \sum_j W_{l,ij} h_{l-1,j}$ is a
# sum of $n_{\text{in}}$ such terms, so
#
# $$
# \mathbb E\, u_{l,i}^2 = n_{\text{in}} \frac{d^2}{3}\, \overline{h_{l-1}^2},
# \qquad \text{a gain of } \gamma = \sqrt{n_{\text{in}} d^2/3} \text{ in scale per layer,}
# $$ (eq-init-gain)
#
# where $\overline{h^2}$ is the mean square of the previous layer's activations. Near 0,
# $\tanh u \approx u$, so as long as the activations are small the scale is multiplied by
# $\gamma$ at every layer; once they are large, tanh saturates at $\pm1$. For the hidden
# layers ($n_{\text{in}} = 50$):
#
# - $d = 0.01$: $\gamma \approx 0.041$, the signal shrinks 25-fold per layer, by $10^{-10}$
#   over seven layers: the deep activations *vanish*;
# - $d = 0.1$: $\gamma \approx 0.41$, still a geometric decay, $0.41^7 \approx 2\cdot10^{-3}$;
# - $d = 2$: $\gamma \approx 8.2$, every unit is driven deep into saturation, $|h| \approx 1$;
# - Xavier, $d = \sqrt{6/(n_{\text{in}} + n_{\text{out}})}$: for the $50\times50$ layers
#   $d^2/3 = 2/(n_{\text{in}} + n_{\text{out}}) = 1/50$, so $\gamma = 1$ exactly.
#
# The backward pass is the same argument run backwards. The gradient with respect to
# $h_{l-1}$ is $W_l^\top (\tanh'(u_l) \odot \bar h_l)$, so its scale is multiplied by
# $\sqrt{n_{\text{out}} d^2/3}$ times the typical $\tanh'(u_l)$ per layer. Small $d$: the
# gradient shrinks on its way down to the first layers (vanishing gradients). Large $d$:
# $\tanh' \approx 0$ in saturation and the gradient is multiplied by a large weight and a
# tiny derivative, in a fragile balance that no learning rate suits. Xavier's choice
# {cite:p}`glorot2010understanding`, $\operatorname{Var} W = 2/(n_{\text{in}} + n_{\text{out}})$,
# is the compromise between keeping the forward gain ($n_{\text{in}}\operatorname{Var}W = 1$)
# and the backward gain ($n_{\text{out}}\operatorname{Var}W = 1$) at one, with tanh used in
# its linear range.
#
# ## The network and the probe
#
# The model keeps the post-activations of every hidden layer when asked to, with
# `retain_grad` so that their gradients survive the backward pass. We measure, on one batch
# of 256 training images, the mean absolute post-activation of each layer (the signed mean
# is close to zero for every $d$ by the symmetry of tanh and of the weights, and says
# nothing about the scale) and the Frobenius norm of the gradient of the loss with respect
# to it. The images are standardized with the training set's pixel mean and deviation.

# %%
mnist_train, mnist_test = data.load_mnist("train"), data.load_mnist("test")
pixel_mean = mnist_train.images.mean() / 255
pixel_std = mnist_train.images.std() / 255


def mnist_tensors(split, n):
    x = (torch.from_numpy(split.images[:n]).float().reshape(-1, 784) / 255 - pixel_mean)
    return x / pixel_std, torch.from_numpy(split.labels[:n]).long()


Xm_train, ym_train = mnist_tensors(mnist_train, run.init_train)
Xm_test, ym_test = mnist_tensors(mnist_test, run.init_test)


class DeepTanh(nn.Module):
    def __init__(self, depth: int = 8, width: int = 50, n_in: int = 784,
                 n_out: int = 10):
        super().__init__()
        sizes = [n_in] + [width] * depth
        pairs = zip(sizes[:-1], sizes[1:], strict=True)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.out = nn.Linear(width, n_out)

    def forward(self, x, keep: list | None = None):
        for layer in self.hidden:
            x = torch.tanh(layer(x))
            if keep is not None:
                x.retain_grad()
                keep.append(x)
        return self.out(x)

    def init_uniform(self, d):
        """Weights ~ U(-d, d) (d = 'xavier': sqrt(6 / (fan_in + fan_out)) per layer),
        biases 0."""
        for layer in [*self.hidden, self.out]:
            fan_out, fan_in = layer.weight.shape
            bound = math.sqrt(6 / (fan_in + fan_out)) if d == "xavier" else d
            nn.init.uniform_(layer.weight, -bound, bound)
            nn.init.zeros_(layer.bias)
        return self


def layer_stats(model: DeepTanh, x, y):
    """Mean |h_l| and ||dloss/dh_l||_F for every hidden layer l, on one batch."""
    keep = []
    loss = F.cross_entropy(model(x, keep), y)
    model.zero_grad()
    loss.backward()
    model.zero_grad()  # unused parameter gradients: the probe must not train
    return (np.array([h.detach().abs().mean().item() for h in keep]),
            np.array([h.grad.norm().item() for h in keep]))


INITS = {"d = 0.01": 0.01, "d = 0.1": 0.1, "d = 2.0": 2.0, "Xavier": "xavier"}
probe_gen = torch.Generator().manual_seed(run.seed)
probe_rows = torch.randperm(len(ym_train), generator=probe_gen)[:256]
X_probe, y_probe = Xm_train[probe_rows], ym_train[probe_rows]

torch.manual_seed(run.seed)
deep = {name: DeepTanh().init_uniform(d) for name, d in INITS.items()}
stats_before = {name: layer_stats(m, X_probe, y_probe) for name, m in deep.items()}

# %% [markdown]
# ## The gain, measured
#
# First, a check that code and {eq}`eq-init-gain` agree: in the regimes where tanh is
# nearly linear ($d = 0.01$ and $d = 0.1$), the mean absolute activation should shrink from
# one hidden layer to the next by the predicted gain $\gamma$. We compare the geometric mean
# of the measured ratios over layers 2 to 8 with $\gamma$. A single layer's ratio
# fluctuates with its random $50\times50$ matrix: the squared gain is a sum of 50 squares,
# whose relative spread is about $\sqrt{2/50} = 20\%$, so the gain itself, its square root,
# fluctuates by about 10%, and the geometric mean of seven independent layers by about
# $10\%/\sqrt7 \approx 4\%$ (less still, since each layer's ratio is averaged over a batch
# of inputs). For $d = 0.01$, where tanh is linear to within a percent, we therefore allow
# 10%, more than two such standard deviations. For $d = 0.1$ tanh is no longer quite
# linear: the first layer sees 784 inputs with a gain of
# $\sqrt{784 \cdot 0.01/3} \approx 1.6$, so its units are partly saturated, and tanh bends
# the larger activations of the next layers below the linear prediction; we allow 20% there.

# %%
gain_check = {}
for name, d, tol in (("d = 0.01", 0.01, 0.1), ("d = 0.1", 0.1, 0.2)):  # see the text
    act = stats_before[name][0]
    measured = float(np.exp(np.mean(np.log(act[1:] / act[:-1]))))
    predicted = math.sqrt(50 * d**2 / 3)
    gain_check[name] = (measured, predicted)
    assert abs(measured / predicted - 1) < tol, (name, measured, predicted)

# %% tags=["hide-input"]
glue("gain_measured_001", gain_check["d = 0.01"][0], display=False)
glue("gain_predicted_001", gain_check["d = 0.01"][1], display=False)
glue("gain_measured_01", gain_check["d = 0.1"][0], display=False)
glue("gain_predicted_01", gain_check["d = 0.1"][1], display=False)

# %% [markdown]
# The measured per-layer gains are {glue:text}`gain_measured_001:.3f` for $d = 0.01$
# (predicted {glue:text}`gain_predicted_001:.3f`) and {glue:text}`gain_measured_01:.3f` for
# $d = 0.1$ (predicted {glue:text}`gain_predicted_01:.3f`).
#
# ## Training the four networks
#
# Now we train each of the four networks for {glue:text}`init_epochs` epochs of SGD with
# learning rate 0.01 and batches of 128, recording the training and test accuracy after
# every epoch, and repeat the measurement on the same probe batch afterwards.

# %%
def accuracy_t(model, x, y, chunk=10_000) -> float:
    with torch.no_grad():
        return sum((model(x[i : i + chunk]).argmax(1) == y[i : i + chunk]).sum().item()
                   for i in range(0, len(y), chunk)) / len(y)


curves = {}
for name, model in deep.items():
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    shuffle = torch.Generator().manual_seed(run.seed)
    curve = {"train": [accuracy_t(model, Xm_train, ym_train)],
             "test": [accuracy_t(model, Xm_test, ym_test)]}
    for _ in capped(range(run.init_epochs)):  # capped: see section 2
        for rows in capped(torch.randperm(len(ym_train), generator=shuffle).split(128)):
            loss = F.cross_entropy(model(Xm_train[rows]), ym_train[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve["train"].append(accuracy_t(model, Xm_train, ym_train))
        curve["test"].append(accuracy_t(model, Xm_test, ym_test))
    curves[name] = curve
stats_after = {name: layer_stats(m, X_probe, y_probe) for name, m in deep.items()}

# %% tags=["hide-input"]
layers = np.arange(1, 9)
fig, axes = plots.figure(ncols=2, nrows=2, height=5.6, sharex=True, sharey="row")
for col, stats in enumerate((stats_before, stats_after)):
    for name, (act, grad) in stats.items():
        axes[0, col].semilogy(layers, act, marker="o", ms=3, label=name)
        axes[1, col].semilogy(layers, grad, marker="o", ms=3, label=name)
    axes[1, col].set(xlabel="hidden layer l")
axes[0, 0].set(ylabel="mean |h_l|", title="at initialization")
axes[0, 1].set(title=f"after {run.init_epochs} epochs")
axes[1, 0].set(ylabel="‖∂L/∂h_l‖ (batch of 256)")
axes[0, 0].legend(fontsize=7)
plots.glue_figure("fig_init_layers", fig)

fig, ax = plots.figure(width=6.0, height=3.6)
for i, (name, curve) in enumerate(curves.items()):
    epochs = range(len(curve["train"]))  # 0 (before training) to init_epochs
    ax.plot(epochs, 100 * np.array(curve["train"]), marker="o", ms=3, color=f"C{i}",
            label=f"{name}, train")
    ax.plot(epochs, 100 * np.array(curve["test"]), marker="s", ms=3, ls="--", color=f"C{i}",
            label=f"{name}, test")
ax.set(xlabel="epoch", ylabel="accuracy (%)")
ax.legend(fontsize=7, ncol=2)
plots.glue_figure("fig_init_accuracy", fig)

# %% [markdown]
# ```{glue:figure} fig_init_layers
# ---
# name: fig-mlp-init-layers
# alt: >-
#   Four log-scale panels over the eight hidden layers: mean absolute activation (top) and
#   gradient norm (bottom), at initialization (left) and after training (right), one line
#   per initialization.
# ---
# The scale of the activations (top) and of the gradients with respect to them (bottom),
# layer by layer, at initialization (left) and after training (right). Look at the slopes:
# steep falls for small $d$, flat lines at 1 for $d = 2$, a gentle slope for Xavier, and
# how little training changes them.
# ```
#
# ```{glue:figure} fig_init_accuracy
# ---
# name: fig-mlp-init-accuracy
# alt: >-
#   Training and test accuracy per epoch for the four initializations: Xavier climbs above
#   90 percent, d = 2 stays far below it, the two small d stay near 11 percent.
# ---
# Training (solid) and test (dashed) accuracy of the four depth-8 tanh networks per epoch
# of SGD. Only the Xavier network learns in this budget.
# ```

# %%
# the accuracy of always answering the most frequent digit
share_majority = np.bincount(ym_test.numpy()).max() / len(ym_test)
before, after = stats_before, stats_after
assert before["d = 0.01"][0][-1] < 1e-6  # vanishing activations at layer 8
assert before["d = 2.0"][0].min() > 0.8  # saturation: |h| close to 1 at every layer
assert 0.1 < before["Xavier"][0][-1] < 1.0  # Xavier: a steady, unsaturated scale
# vanishing gradients
assert before["d = 0.01"][1][0] < 1e-6 * before["d = 0.01"][1][-1]
assert before["d = 2.0"][1][0] > 10 * before["d = 2.0"][1][-1]  # exploding gradients
assert 0.1 < before["Xavier"][1][0] / before["Xavier"][1][-1] < 10  # neither
after_001, before_001 = after["d = 0.01"][0], before["d = 0.01"][0]
assert np.allclose(after_001[:4], before_001[:4], rtol=0.01)  # layers 1-4 unchanged
assert after_001[3] < 1e-3  # after training: the middle layers are still silent ...
assert after_001[-1] > 100 * before_001[-1]  # ... while layer 8 grew through its bias
assert after["d = 2.0"][0].min() > 0.8  # ... and d = 2 is still saturated
if run.profile != "smoke":
    for name in ("d = 0.01", "d = 0.1"):  # chance level: the majority digit, every time
        assert abs(curves[name]["test"][-1] - share_majority) < 0.5 / len(ym_test), name
    assert curves["Xavier"]["test"][-1] > 0.85
    assert curves["d = 2.0"]["test"][-1] < curves["Xavier"]["test"][-1] - 0.5

# %% tags=["hide-input"]
tags = {"d = 0.01": "d001", "d = 0.1": "d01", "d = 2.0": "d2", "Xavier": "xavier"}
for name, tag in tags.items():
    act, grad = stats_before[name]
    results.record(f"init_{tag}_test_acc", 100 * curves[name]["test"][-1], unit="%",
                   description=f"depth-8 tanh MLP, {name}, test accuracy after training")
    results.record(f"init_{tag}_train_acc", 100 * curves[name]["train"][-1], unit="%")
    glue(f"init_{tag}_act8", float(act[-1]), display=False)
    glue(f"init_{tag}_act1", float(act[0]), display=False)
    glue(f"init_{tag}_grad_ratio", float(grad[0] / grad[-1]), display=False)
glue("init_epochs", run.init_epochs, display=False)
glue("init_majority_pct", 100 * float(share_majority), display=False)
glue("init_majority_digit", int(np.bincount(ym_test.numpy()).argmax()), display=False)
glue("init_d001_after_act1", float(after_001[0]), display=False)
glue("init_d001_after_act4", float(after_001[3]), display=False)
glue("init_d001_after_act8", float(after_001[-1]), display=False)

# %% [markdown]
# At initialization the four settings are the four regimes of {eq}`eq-init-gain`
# ({numref}`fig-mlp-init-layers`, left). With $d = 0.01$ the mean $|h_l|$ falls from
# {glue:text}`init_d001_act1:.1e` at layer 1 to {glue:text}`init_d001_act8:.1e` at layer 8,
# and the gradient falls on the way down by the same mechanism: the gradient at layer 1 is
# {glue:text}`init_d001_grad_ratio:.0e` times the one at layer 8. The network's output does
# not depend on its input in any measurable way and the first layers receive essentially
# no gradient, so training cannot start: after {glue:text}`init_epochs` epochs the test
# accuracy is {glue:text}`init_d001_test_acc:.2f`%, chance level. It is exactly the share of
# the most frequent digit in the test set ({glue:text}`init_majority_digit`, with
# {glue:text}`init_majority_pct:.2f`%), as the check above asserts: an output that ignores
# the image gives every image the same class, and training on the cross-entropy makes that
# the most frequent class. With $d = 0.1$ the decay is milder
# ({glue:text}`init_d01_act8:.1e` at layer 8, layer-1 gradient
# {glue:text}`init_d01_grad_ratio:.1e` times layer 8's), but still too strong for SGD at
# $\eta = 0.01$: the logits hardly depend on the image, the loss surface is nearly flat,
# and {glue:text}`init_epochs` epochs leave the network at the same chance level,
# {glue:text}`init_d01_test_acc:.2f`%.
#
# With $d = 2$ every layer is saturated (mean $|h_l|$ of {glue:text}`init_d2_act8:.2f` at
# layer 8): the units behave like random sign functions of their input. The gradient now
# *grows* on its way down, to {glue:text}`init_d2_grad_ratio:.0f` times its size at layer 8
# when it reaches layer 1: each layer multiplies it by large weights ($\gamma \approx 8$) and
# by a $\tanh'$ that is small but, for the few units near zero, not small enough. These
# exploding, erratic gradients do not help: a step of SGD moves the saturated units little
# and the rest chaotically, and the network reaches only
# {glue:text}`init_d2_test_acc:.1f`% ({numref}`fig-mlp-init-accuracy`). Xavier keeps
# $|h_l|$ within a small factor over eight layers ({glue:text}`init_xavier_act1:.2f` at
# layer 1, {glue:text}`init_xavier_act8:.2f` at layer 8; tanh bends the larger activations
# below the linear gain $\gamma = 1$, hence the slow decline) in the unsaturated range of
# tanh, and the gradient reaching layer 1 is {glue:text}`init_xavier_grad_ratio:.2f` times
# that at layer 8: neither vanishing nor exploding, every layer learns from the first step,
# and the network reaches {glue:text}`init_xavier_test_acc:.1f`% test accuracy (training
# accuracy {glue:text}`init_xavier_train_acc:.1f`%) in {glue:text}`init_epochs` epochs.
#
# After training (right-hand panels) the bad regimes persist, which is the point: a bad
# initialization is not repaired by a few epochs of SGD at a small learning rate. With
# $d = 0.01$ the first four layers' activations have not changed by even 1%, because their
# weights received essentially no gradient. Layer 1 was never silent: it sees 784 pixels,
# with a gain of $\sqrt{784 \cdot 10^{-4}/3} \approx 0.16$, and keeps its mean $|h_1|$ of
# {glue:text}`init_d001_after_act1:.2f`. The middle layers are as silent as before (layer 4:
# {glue:text}`init_d001_after_act4:.1e`). Only the last layers' activations grew, through
# their biases, whose gradients come from above and do not cross the silent layers: layer 8
# went from {glue:text}`init_d001_act8:.1e` to {glue:text}`init_d001_after_act8:.1e`. With
# $d = 2$ every layer is still saturated. Depth makes all of this worse, since the
# per-layer gain $\gamma$ is raised to the power of the depth: by {eq}`eq-init-gain`, with
# $d = 0.1$ a network of two hidden layers would lose a factor of $\gamma \approx 0.41$
# between them, against $\gamma^7 \approx 2\cdot10^{-3}$ over our eight (we do not train
# one here).
#
# ## What this section showed
#
# The scale of the initial weights sets a gain per layer, $\gamma = \sqrt{n_{\text{in}}
# \operatorname{Var} W}$, and depth raises it to a power: below 1 the activations and
# gradients vanish geometrically, far above 1 tanh saturates and the gradients turn large
# and erratic. The measured gains match the prediction within a few percent where tanh is
# linear. Only the initialization that keeps $\gamma$ at one, Xavier's, trains the
# eight-layer network in five epochs; the two small scales leave it at the accuracy of
# always answering the most frequent digit, and training does not repair any of the bad
# starts.
#
# ## Exercises
#
# 1. **ReLU and He initialization** {cite:p}`he2015delving`. Replace tanh by ReLU in the
#    depth-8 network. Redo the variance argument of {eq}`eq-init-gain` (half of the units
#    are zero) and show that the gain is 1 for $\operatorname{Var} W = 2/n_{\text{in}}$.
#    Verify with the plots.
#
#    :::{dropdown} Hint
#    For a ReLU, $\mathbb E\,h^2 = \tfrac12 \mathbb E\,u^2$ when $u$ is symmetric, so the
#    mean square is multiplied by $\tfrac12 n_{\text{in}} \operatorname{Var} W$ per layer;
#    it stays constant for $\operatorname{Var} W = 2/n_{\text{in}}$. Measure the mean
#    square, not the mean absolute value, to compare with this prediction.
#    :::
#
# 2. **Depth.** Train the $d = 0.1$ network with two hidden layers instead of eight. Does it
#    learn in five epochs?
#
#    :::{dropdown} Hint
#    With two hidden layers the signal loses one factor $\gamma \approx 0.41$ between them
#    instead of seven, and the first layer's gain from 784 inputs is about 1.6: expect it
#    to train, if more slowly than Xavier.
#    :::
