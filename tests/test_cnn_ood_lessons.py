"""helpers.lessons.cnn_ood: the training loop reads the loss back once per epoch, not per step.

At a batch of 5 images an epoch is thousands of steps; a `.item()` per step would make a GPU
wait for every step (issue 25). The test counts the calls of `torch.Tensor.item`.
"""

from __future__ import annotations

import torch

from helpers.lessons.cnn_ood import MLP, train_epoch


def test_train_epoch_reads_the_loss_once_per_epoch_not_per_step(monkeypatch) -> None:
    calls = []
    real_item = torch.Tensor.item

    def counting_item(self):
        calls.append(1)
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    torch.manual_seed(0)
    x, y = torch.rand(100, 1, 28, 28), torch.randint(0, 10, (100,))
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    epochs, steps_per_epoch = 3, 100 // 5
    losses = [train_epoch(model, opt, x, y, 5, gen) for _ in range(epochs)]
    assert len(calls) <= 2 * epochs < steps_per_epoch, len(calls)
    assert all(isinstance(loss, float) and loss > 0 for loss in losses)


def test_train_epoch_returns_the_mean_loss_of_its_steps() -> None:
    """The device-side sum gives what a per-step read would have given."""
    torch.manual_seed(1)
    x, y = torch.rand(30, 1, 28, 28), torch.randint(0, 10, (30,))
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # no step: the loss is fixed
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model(x), y).item()
    got = train_epoch(model, opt, x, y, 5, torch.Generator().manual_seed(0))
    assert abs(got - expected) < 1e-6, (got, expected)
