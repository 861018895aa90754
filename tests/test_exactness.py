"""helpers.exactness: TF32 off and cuDNN deterministic inside, every flag restored after."""

from __future__ import annotations

import pytest
import torch

from helpers.exactness import EXACT_FLAGS, current_flags, float32_exact


@pytest.fixture
def loose_flags():
    """Start from the opposite of every exact flag (as on an Ampere GPU with benchmark on)."""
    before = current_flags()
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True
    yield {name: not value for name, value in EXACT_FLAGS.items()}
    torch.backends.cudnn.allow_tf32 = before["cudnn.allow_tf32"]
    torch.backends.cuda.matmul.allow_tf32 = before["cuda.matmul.allow_tf32"]
    torch.backends.cudnn.deterministic = before["cudnn.deterministic"]
    torch.backends.cudnn.benchmark = before["cudnn.benchmark"]


def test_flags_are_exact_inside_and_restored_after(loose_flags) -> None:
    assert current_flags() == loose_flags
    with float32_exact():
        assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert torch.backends.cudnn.deterministic is True
        assert torch.backends.cudnn.benchmark is False
        assert current_flags() == EXACT_FLAGS
    assert current_flags() == loose_flags


def test_flags_are_restored_after_an_exception(loose_flags) -> None:
    with pytest.raises(RuntimeError, match="inside"), float32_exact():
        assert current_flags() == EXACT_FLAGS
        raise RuntimeError("a check failed inside")
    assert current_flags() == loose_flags


def test_nesting_restores_the_outer_state(loose_flags) -> None:
    with float32_exact():
        with float32_exact():
            assert current_flags() == EXACT_FLAGS
        assert current_flags() == EXACT_FLAGS
    assert current_flags() == loose_flags
