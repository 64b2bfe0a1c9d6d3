"""Attention maps of SwinUNETR: windowed attention mapped back through the shifted windows.

Each Swin block attends inside windows of a (cyclically shifted) token grid. For every block the
relevance a key token receives (summed over queries, averaged over heads; weighted by the gradient of
the target for ``attention_relevance``) is put back in place by the block's own inverse window
partition and shift, resized to the input grid and normalised to sum 1. The map is the mean over blocks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention import first_output


def _blocks(model: nn.Module) -> list[nn.Module]:
    from monai.networks.nets.swin_unetr import SwinTransformerBlock

    return [m for m in model.modules() if isinstance(m, SwinTransformerBlock)]


def _token_grid(values: torch.Tensor, block: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Per-window key values ``(B * nW, n)`` back on the block's token grid ``(B, d, h, w)``."""
    from monai.networks.nets.swin_unetr import get_window_size, window_reverse

    b, *spatial = shape
    window, shift = get_window_size(tuple(spatial), block.window_size, block.shift_size)
    padded = [s + (w - s % w) % w for s, w in zip(spatial, window, strict=True)]
    grid = window_reverse(values.reshape(-1, *window, 1), window, [b, *padded])[..., 0]
    if any(s > 0 for s in shift):
        grid = torch.roll(grid, shifts=tuple(shift), dims=tuple(range(1, len(spatial) + 1)))
    return grid[(slice(None), *[slice(0, s) for s in spatial])]


def swin_attention_map(
    model: nn.Module, x: torch.Tensor, target, gradient: bool
) -> tuple[torch.Tensor, dict]:
    """Mean over Swin blocks of each block's key-token relevance on the input grid."""
    blocks = _blocks(model)
    maps: dict[int, torch.Tensor] = {}
    shapes: dict[int, tuple[int, ...]] = {}
    handles = []
    for i, blk in enumerate(blocks):
        handles.append(
            blk.register_forward_pre_hook(
                lambda _m, args, i=i: shapes.__setitem__(i, tuple(args[0].shape[:-1]))
            )
        )
        handles.append(
            blk.attn.attn_drop.register_forward_hook(lambda _m, _i, out, i=i: maps.__setitem__(i, out))
        )
    try:
        context = torch.enable_grad() if gradient else torch.inference_mode()
        with context:
            point = x.detach().requires_grad_(gradient)
            output = first_output(model(point))
            order = sorted(maps)
            grads = None
            if gradient:
                grads = torch.autograd.grad(target(output).sum(), [maps[i] for i in order])
    finally:
        for h in handles:
            h.remove()
    size = tuple(x.shape[2:])
    total = torch.zeros(size, dtype=torch.float32, device=x.device)
    for k, i in enumerate(order):
        att = maps[i].detach().float()
        if gradient:
            att = (grads[k].float() * att).clamp_min(0)
        keys = att.mean(1).sum(1)  # (B * nW, n): attention each key token receives
        grid = _token_grid(keys, blocks[i], shapes[i])[:1, None]
        up = F.interpolate(grid, size=size, mode="trilinear", align_corners=False)[0, 0]
        total += up / up.sum().clamp_min(1e-12)
    return total / max(1, len(order)), {"blocks": len(order), "kind": "swin"}
