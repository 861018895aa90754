"""Float32 arithmetic that a check can call exact: no TF32, one cuDNN algorithm.

On Ampere and later NVIDIA GPUs (A100, H100), PyTorch lets cuDNN convolutions use TF32 by
default: their inputs are rounded to a 10-bit mantissa, an error near 1e-4 relative (rms)
and several times that at worst, far above float32's 6e-8. A check that compares two float32
computations with a float32 tolerance (an unfolded convolution against ``nn.Conv2d``, a
feature map against its shifted copy) would then fail on the GPU and pass on the CPU. cuDNN
may also pick a different algorithm per call (FFT, Winograd, implicit GEMM) when
``benchmark`` is on or when ``deterministic`` is off, and two algorithms round differently,
so "the same sum at every position" no longer holds to rounding.

``float32_exact()`` turns TF32 off for convolutions and matrix products, asks cuDNN for
deterministic algorithms and no benchmarking, and restores every flag on the way out, even
when the body raises::

    with float32_exact():
        assert torch.allclose(conv_unfold(x, w, b), conv(x), atol=1e-4)

On a CPU the flags change nothing (they are read only by CUDA kernels), so the checks inside
run the same everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

#: The flags the context manager sets, and the value each has inside it.
EXACT_FLAGS: dict[str, bool] = {
    "cudnn.allow_tf32": False,
    "cuda.matmul.allow_tf32": False,
    "cudnn.deterministic": True,
    "cudnn.benchmark": False,
}


def _holder(name: str) -> tuple[object, str]:
    """The object that holds a flag named as in EXACT_FLAGS, and the attribute's name."""
    *path, attribute = name.split(".")
    obj: object = torch.backends
    for part in path:
        obj = getattr(obj, part)
    return obj, attribute


def current_flags() -> dict[str, bool]:
    """The present value of every flag that ``float32_exact`` sets."""
    return {name: bool(getattr(*_holder(name))) for name in EXACT_FLAGS}


@contextlib.contextmanager
def float32_exact() -> Iterator[None]:
    """No TF32 and deterministic cuDNN inside the block; the old flags restored after."""
    saved = current_flags()
    try:
        for name, value in EXACT_FLAGS.items():
            setattr(*_holder(name), value)
        yield
    finally:
        for name, value in saved.items():
            setattr(*_holder(name), value)
