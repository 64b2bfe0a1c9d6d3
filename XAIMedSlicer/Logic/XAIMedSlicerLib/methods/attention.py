"""Attention maps for transformer networks (MONAI ViT, UNETR, SwinUNETR), on the input grid.

* ``attention_rollout`` (Abnar and Zuidema 2020): the head-averaged attention of every layer, with the
  residual path as ``0.5 A + 0.5 I``, multiplied through the layers. No gradient is needed.
* ``attention_relevance`` (Chefer et al. 2021): each layer's attention weighted by the gradient of the
  target, ``mean_h (dA * A)^+``, accumulated as ``R <- R + A_bar R``; class-specific.

For a ViT with a class token the map is the class token's row; without one (UNETR, or a ViT
backbone) it is the mean row over all tokens, without the identity. Token ``i`` covers one patch; the
patch grid is resized to the input grid (trilinear). SwinUNETR attends inside shifted windows, so
there is no token-to-token matrix to multiply through: see :mod:`.attention_swin`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import XAIError
from .budget import PeakMemory
from .registry import Attribution, register
from .targets import Target


def first_output(output):
    """MONAI's ViT returns ``(logits, hidden states)``: the target reads the first element."""
    return output[0] if isinstance(output, (tuple, list)) else output


def _sa_blocks(model: nn.Module) -> list[nn.Module]:
    from monai.networks.blocks.selfattention import SABlock

    return [m for m in model.modules() if isinstance(m, SABlock)]


def _swin(model: nn.Module) -> bool:
    from monai.networks.nets.swin_unetr import WindowAttention

    return any(isinstance(m, WindowAttention) for m in model.modules())


@contextmanager
def captured_attention(blocks: list[nn.Module]):
    """Collect every ``SABlock``'s attention probabilities (in the autograd graph) during a forward pass."""
    maps: list[torch.Tensor] = []
    saved = [(b, b.use_flash_attention) for b in blocks if hasattr(b, "use_flash_attention")]
    for b, _ in saved:
        b.use_flash_attention = False  # the fused kernel never materialises the attention matrix
    handles = [b.drop_weights.register_forward_hook(lambda _m, _i, out: maps.append(out)) for b in blocks]
    try:
        yield maps
    finally:
        for h in handles:
            h.remove()
        for b, flag in saved:
            b.use_flash_attention = flag


def patch_grid(model: nn.Module, x: torch.Tensor, n_tokens: int) -> tuple[tuple[int, ...], bool]:
    """The patch grid of a ViT-style model for input ``x`` and whether token 0 is a class token."""
    from monai.networks.blocks.patchembedding import PatchEmbeddingBlock

    embed = next((m for m in model.modules() if isinstance(m, PatchEmbeddingBlock)), None)
    if embed is None:
        raise XAIError("the network has no ViT patch embedding", "use a MONAI ViT or UNETR network")
    size = tuple(x.shape[2:])
    proj = embed.patch_embeddings
    if isinstance(proj, nn.Sequential):  # perceptron: einops Rearrange with p1, p2, p3
        lengths = dict(proj[0].axes_lengths)
        patch = tuple(lengths[f"p{i + 1}"] for i in range(len(size)))
    else:
        patch = tuple(proj.kernel_size)
    grid = tuple(int(s) // int(p) for s, p in zip(size, patch, strict=True))
    n_patches = int(torch.tensor(grid).prod())
    if n_tokens not in (n_patches, n_patches + 1):
        raise XAIError(
            f"{n_tokens} attention tokens do not match the patch grid {grid}", "check the input size"
        )
    return grid, n_tokens == n_patches + 1


def rollout(maps: list[torch.Tensor], grads: list[torch.Tensor] | None) -> torch.Tensor:
    """Token-to-token relevance ``R`` (B, N, N) from per-layer attention (and gradients)."""
    n = maps[0].shape[-1]
    eye = torch.eye(n, dtype=torch.float32, device=maps[0].device)
    rel = eye.expand(maps[0].shape[0], n, n).clone()
    for i, att in enumerate(maps):
        att = att.float()
        if grads is None:
            a = 0.5 * att.mean(1) + 0.5 * eye
            a = a / a.sum(-1, keepdim=True)
            rel = torch.bmm(a, rel)
        else:
            a = (grads[i].float() * att).clamp_min(0).mean(1)
            rel = rel + torch.bmm(a, rel)
    return rel


def token_map(rel: torch.Tensor, grid: tuple[int, ...], cls: bool, size: tuple[int, ...], gradient: bool):
    """Relevance of each patch on the input grid ``size`` (trilinear resize of the patch grid)."""
    if cls:
        tokens = rel[:, 0, 1:]
    else:
        n = rel.shape[-1]
        eye = torch.eye(n, device=rel.device) if gradient else 0.0
        tokens = (rel - eye).mean(1)
    vol = tokens.reshape(tokens.shape[0], 1, *grid)
    mode = "trilinear" if len(grid) == 3 else "bilinear"
    return F.interpolate(vol, size=size, mode=mode, align_corners=False)[0, 0]


def _run(name: str, model, x: torch.Tensor, target, gradient: bool, progress) -> Attribution:
    start = time.perf_counter()
    if _swin(model):
        from .attention_swin import swin_attention_map

        with PeakMemory(x.device) as peak:
            amap, info = swin_attention_map(model, x, target, gradient)
        info.update({**peak.as_dict(), "seconds": time.perf_counter() - start})
        return Attribution(amap.cpu(), signed=False, method=name, params={}, info=info)
    blocks = _sa_blocks(model)
    if not blocks:
        raise XAIError("the network has no self-attention blocks", "use a MONAI ViT, UNETR or SwinUNETR")
    if progress:
        progress(0.1, f"{name}: forward pass")
    with PeakMemory(x.device) as peak:
        with torch.enable_grad() if gradient else torch.inference_mode(), captured_attention(blocks) as maps:
            point = x.detach().requires_grad_(gradient)
            output = first_output(model(point))
            grads = None
            if gradient:
                score = target(output).sum()
                grads = list(torch.autograd.grad(score, maps))
            maps = [m.detach() for m in maps]
        # a 2D network behind the slice adapter (a radiograph): its patch grid is on the 2D input
        from ..model.slice2d import SliceAdapter

        adapter = model if isinstance(model, SliceAdapter) else None
        net_x = adapter.net_input(x) if adapter is not None else x
        grid, cls = patch_grid(model, net_x, maps[0].shape[-1])
        rel = rollout(maps, grads)
        amap = token_map(rel, grid, cls, tuple(net_x.shape[2:]), gradient)
        if adapter is not None:
            amap = adapter.map_to_input(amap, x)
    if progress:
        progress(1.0, f"{name} done")
    info = {**peak.as_dict(), "layers": len(maps), "patch_grid": list(grid), "class_token": cls}
    info["seconds"] = time.perf_counter() - start
    return Attribution(amap.float().cpu(), signed=False, method=name, params={}, info=info)


@register("attention_rollout", signed=False, description="attention rollout of a ViT / UNETR / SwinUNETR")
def attention_rollout(
    model: nn.Module, x: torch.Tensor, target: Target | None = None, *, progress=None
) -> Attribution:
    """Head-averaged attention multiplied through the layers (class independent)."""
    return _run("attention_rollout", model, x, target, False, progress)


@register(
    "attention_relevance",
    signed=False,
    description="gradient-weighted attention relevance of a ViT / UNETR / SwinUNETR (class specific)",
)
def attention_relevance(model: nn.Module, x: torch.Tensor, target: Target, *, progress=None) -> Attribution:
    """Attention weighted by the target's gradient, accumulated through the layers."""
    return _run("attention_relevance", model, x, target, True, progress)
