"""helpers.precision: the autocast paths a GPU takes, exercised on the CPU."""

import pytest
import torch
from torch import nn

from helpers.precision import mixed_precision


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.GELU(), nn.Linear(32, 4))


def train(choice: str, steps: int = 40) -> tuple[list[float], nn.Module, torch.dtype]:
    model = tiny_model()
    amp = mixed_precision(torch.device("cpu"), choice)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(64, 16, generator=generator)
    targets = torch.randint(0, 4, (64,), generator=generator)
    losses = []
    for _ in range(steps):
        with amp.autocast():
            logits = model(inputs)
            loss = nn.functional.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        amp.backward_step(loss, optimizer, model.parameters(), max_norm=1.0)
        losses.append(loss.item())
    return losses, model, logits.dtype


@pytest.mark.parametrize(("choice", "dtype"), [("bf16", torch.bfloat16),
                                                ("fp16", torch.float16),
                                                ("fp32", torch.float32)])
def test_each_precision_trains_and_keeps_float32_weights(choice, dtype):
    losses, model, logits_dtype = train(choice)
    assert logits_dtype == dtype  # autocast really changed the arithmetic (or did not)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    # 40 AdamW steps on 64 fixed points: the loss falls by far more than rounding could move
    # it (bf16 keeps 8 bits of mantissa: about 0.4% relative error per product)
    assert losses[-1] < 0.5 * losses[0], losses


def test_the_mixed_runs_follow_the_float32_run():
    reference, _, _ = train("fp32")
    for choice in ("bf16", "fp16"):
        losses, _, _ = train(choice)
        # the same trajectory up to rounding: within 5% of float32's loss at every 10th step
        for ours, exact in zip(losses[::10], reference[::10], strict=True):
            assert abs(ours - exact) <= 0.05 * exact, (choice, losses[::10], reference[::10])


def test_the_scaler_skips_an_update_that_overflowed():
    model = tiny_model()
    amp = mixed_precision(torch.device("cpu"), "fp16")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    scale = amp.scaler.get_scale()
    with amp.autocast():
        loss = model(torch.randn(8, 16)).sum() * float("inf")
    amp.backward_step(loss, optimizer, model.parameters(), max_norm=1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert amp.scaler.get_scale() < scale


def test_auto_is_float32_on_a_cpu_and_names_are_checked():
    amp = mixed_precision(torch.device("cpu"))
    assert amp.dtype is None and amp.scaler is None and amp.name == "float32"
    assert mixed_precision(torch.device("cpu"), "fp16").name == "float16 with loss scaling"
    assert mixed_precision(torch.device("cpu"), "bf16").name == "bfloat16"
    with pytest.raises(ValueError, match="valid: auto, bf16, fp16, fp32"):
        mixed_precision(torch.device("cpu"), "tf32")
