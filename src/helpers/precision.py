"""Mixed precision for the training loops: which arithmetic, chosen once per device.

    amp = precision.mixed_precision(device)
    with amp.autocast():
        loss = loss_fn(model(inputs), targets)
    optimizer.zero_grad(set_to_none=True)
    amp.backward_step(loss, optimizer, model.parameters(), max_norm=1.0)

On an NVIDIA GPU of compute capability 8.0 or more (A100, H100, RTX 30xx and newer) the
matrix products run in bfloat16 under autocast: float32's range, so no loss scaling. Older
GPUs (the Turing T4 of Colab's free tier, capability 7.5) have no fast bfloat16, so they get
float16 with a gradient scaler, which multiplies the loss before the backward pass so that
small gradients do not underflow float16, and skips an update whose gradients overflowed.
On a CPU (or Apple MPS) the default is float32 throughout: bfloat16 is fast only on CPUs
with AMX or AVX-512 BF16 units. Weights, optimizer state and the update itself stay
float32 in every case; autocast changes only the arithmetic of the forward pass.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

Choice = Literal["auto", "bf16", "fp16", "fp32"]
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


@dataclass(frozen=True)
class MixedPrecision:
    """The arithmetic of one training run: autocast's dtype (None: float32) and the scaler."""

    device_type: str
    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None

    @property
    def name(self) -> str:
        """'bfloat16', 'float16 with loss scaling' or 'float32', for a table or a record."""
        if self.dtype is None:
            return "float32"
        name = str(self.dtype).removeprefix("torch.")
        return f"{name} with loss scaling" if self.scaler is not None else name

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context the forward pass and the loss run in."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        parameters: Iterable[torch.Tensor],
        max_norm: float | None = None,
    ) -> None:
        """Backward pass, gradient clipping at ``max_norm`` (if given), optimizer step.

        With a scaler the gradients are unscaled before clipping, and an update whose
        gradients hold an inf or a NaN is skipped (the scale is lowered for the next one).
        """
        if self.scaler is None:
            loss.backward()
            if max_norm is not None:
                torch.nn.utils.clip_grad_norm_(parameters, max_norm)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if max_norm is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        self.scaler.step(optimizer)
        self.scaler.update()


def mixed_precision(device: torch.device, choice: Choice = "auto") -> MixedPrecision:
    """The arithmetic for training on ``device``: see the module docstring for ``auto``.

    ``bf16``, ``fp16`` and ``fp32`` force one (the tests exercise the autocast paths on a
    CPU this way); ``fp16`` always comes with a gradient scaler.
    """
    if choice == "auto":
        if device.type != "cuda":
            choice = "fp32"
        else:
            major, _ = torch.cuda.get_device_capability(device)
            choice = "bf16" if major >= 8 else "fp16"
    if choice not in DTYPES:
        raise ValueError(f"unknown precision {choice!r}; valid: auto, {', '.join(DTYPES)}")
    dtype = DTYPES[choice]
    scaler = torch.amp.GradScaler(device.type) if choice == "fp16" else None
    return MixedPrecision(device.type, dtype, scaler)
