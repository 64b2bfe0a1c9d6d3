"""Mixed precision: bf16/fp16 autocast, kept only where it agrees with fp32 within 1e-2.

``precision`` is ``"auto"`` (bf16, else fp16, on CUDA; fp32 on the CPU), ``"fp32"``, ``"bf16"`` or
``"fp16"``; ``"bf16"`` also runs on a CPU (fast where it has native bf16, e.g. AVX512-BF16). Before
a method uses a reduced precision, :func:`checked_dtype` compares one pass in that precision with fp32
(the target score, and the input gradient when the method needs gradients); if the relative error
exceeds ``tolerance`` the method runs in fp32 and says so. Accumulation over steps, samples and windows
always happens in fp32.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from ..errors import XAIError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def requested_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype asked for, or ``None`` for fp32."""
    if precision not in PRECISIONS:
        raise XAIError(f"unknown precision '{precision}'", f"use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return _DTYPES[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for ``dtype`` on ``device`` (a no-op for fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def fast_layout(x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``x`` in the memory layout its passes run fastest in: channels-last for bf16/fp16 on the CPU.

    oneDNN's reduced-precision 3D convolutions are about 1.4x faster on channels-last inputs (a
    DenseNet121 forward + backward at 96^3 in bf16: 0.40 s against 0.53 s); the network follows the
    input's layout, so its weights are left as they are. fp32 keeps the default layout (there
    channels-last was slower).
    """
    if dtype is None or x.device.type != "cpu" or x.dim() != 5:
        return x
    return x.contiguous(memory_format=torch.channels_last_3d)


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    """``|approx - exact| / |exact|`` in the L2 norm, in fp32."""
    exact = exact.float()
    return float((approx.float() - exact).norm() / exact.norm().clamp_min(1e-12))


def _score_and_grad(model, x, target, dtype, device, gradient: bool):
    if not gradient:
        with torch.inference_mode(), autocast(device, dtype):
            return target(model(x)).float(), None
    from .gradients import point_gradients  # gradients imports this module

    grad, score = point_gradients(model, x, target, dtype)
    return score, grad


def checked_dtype(
    model, x: torch.Tensor, target, precision: str, *, gradient: bool, tolerance: float = 1e-2
) -> tuple[torch.dtype | None, dict]:
    """The autocast dtype to use after checking it against fp32 on ``x`` (one pass in each precision).

    Returns ``(dtype or None, info)`` where ``info`` records the measured relative errors.
    """
    device = x.device
    dtype = requested_dtype(precision, device)
    if dtype is None:
        return None, {"precision": "fp32"}
    name = str(dtype).replace("torch.", "")
    score32, grad32 = _score_and_grad(model, x, target, None, device, gradient)
    score_lo, grad_lo = _score_and_grad(model, x, target, dtype, device, gradient)
    info = {"score_relative_error": relative_error(score_lo, score32)}
    if gradient:
        info["gradient_relative_error"] = relative_error(grad_lo, grad32)
    worst = max(v for k, v in info.items() if k.endswith("relative_error"))
    chosen = dtype if worst <= tolerance else None
    if chosen is None:
        warnings.warn(
            f"{name} differs from fp32 by {worst:.2g} (> {tolerance:g}) on this model; using fp32",
            RuntimeWarning,
            stacklevel=2,
        )
    info["precision"] = name if chosen is not None else "fp32"
    return chosen, info
