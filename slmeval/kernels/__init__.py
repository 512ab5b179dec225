"""Triton kernels for scoring: the fused LM-head log-probability (no [T, V] logits).

Importing this package never imports Triton; ``triton_available()`` answers whether the
fused path can be used, and the kernel module is loaded on the first call.
See docs/kernels.md.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["fused_target_logprobs", "triton_available"]


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when Triton imports cleanly (a broken install counts as unavailable)."""
    try:
        importlib.import_module("triton")
        importlib.import_module("triton.language")
    except Exception:  # ImportError, or a Triton build that fails on import
        return False
    return True


def fused_target_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    softcap: float | None = None,
    ignore_index: int = -100,
    check_targets: bool = True,
    splits: int | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """log p(targets[t] | hidden[t]) under the head ``logits = hidden @ weight.T + bias``.

    hidden [T, d] and weight [V, d] in float32 / float16 / bfloat16 (promoted to a common
    dtype when they differ); targets [T] integer ids. Returns [T] float32: 0 where
    ``targets == ignore_index``. With ``softcap`` the logits are ``softcap * tanh(logits /
    softcap)`` (Gemma-style) before the softmax. Products accumulate in fp32; float32 inputs
    use IEEE (not TF32) dots. No gradient is recorded (evaluation only).

    ``check_targets`` raises on ids outside [0, V) (costs one host sync; pass False when the
    caller has validated them — unchecked bad ids yield NaN, never a silent value).
    ``splits`` forces the number of vocabulary splits (testing/benchmarking; default: tuned).
    ``out`` is an optional float32 [T] buffer to write into.

    Runs on CUDA tensors; on CPU only under ``TRITON_INTERPRET=1`` (set before first use).
    """
    if not triton_available():
        raise ImportError("fused_target_logprobs needs Triton (pip install 'slmeval[gpu]'); "
                          "slmeval.scoring.target_logprobs has a torch path that needs none")
    from slmeval.kernels._fused_head import fused_target_logprobs as impl

    return impl(hidden, weight, targets, bias, softcap=softcap, ignore_index=ignore_index,
                check_targets=check_targets, splits=splits, out=out)
