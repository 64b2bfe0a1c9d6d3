"""Attention rollout and relevance for MONAI ViT, UNETR and SwinUNETR, mapped to the input grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget


@pytest.fixture(scope="module")
def vit():
    from monai.networks.nets import ViT

    torch.manual_seed(0)
    return ViT(
        1,
        (32, 32, 24),
        (8, 8, 8),
        hidden_size=48,
        mlp_dim=96,
        num_layers=3,
        num_heads=4,
        classification=True,
        num_classes=2,
        save_attn=True,
    ).eval()


def test_rollout_equals_a_direct_computation_from_monais_saved_attention(vit):
    torch.manual_seed(1)
    x = torch.randn(1, 1, 32, 32, 24)
    ours = get_method("attention_rollout").fn(vit, x, ClassTarget(1))
    with torch.no_grad():
        vit(x)
    rel = np.eye(1 + 4 * 4 * 3)
    for block in vit.blocks:  # MONAI keeps each layer's attention with save_attn=True
        a = block.attn.att_mat[0].mean(0).double().numpy()
        a = 0.5 * a + 0.5 * np.eye(len(a))
        rel = (a / a.sum(-1, keepdims=True)) @ rel
    tokens = torch.from_numpy(rel[0, 1:]).float().reshape(1, 1, 4, 4, 3)
    ref = F.interpolate(tokens, size=(32, 32, 24), mode="trilinear", align_corners=False)[0, 0]
    torch.testing.assert_close(ours.map, ref, rtol=1e-4, atol=1e-7)
    assert ours.info["class_token"] and ours.info["patch_grid"] == [4, 4, 3]


def test_relevance_is_class_specific_and_uses_the_gradient(vit):
    torch.manual_seed(2)
    x = torch.randn(1, 1, 32, 32, 24)
    fn = get_method("attention_relevance").fn
    a, b = fn(vit, x, ClassTarget(0)).map, fn(vit, x, ClassTarget(1)).map
    assert a.shape == b.shape == (32, 32, 24)
    assert float(a.min()) >= 0 and float(b.min()) >= 0
    assert not torch.allclose(a, b)
    # a network built for fused (flash) attention gives the same map: the matrix is materialised for it
    import copy

    fused = copy.deepcopy(vit)
    for blk in fused.blocks:
        blk.attn.use_flash_attention, blk.attn.save_attn = True, False
    torch.testing.assert_close(fn(fused, x, ClassTarget(1)).map, b, rtol=1e-4, atol=1e-8)
    assert all(blk.attn.use_flash_attention for blk in fused.blocks)


def test_unetr_relevance_for_a_region_is_on_the_input_grid():
    from monai.networks.nets import UNETR

    torch.manual_seed(3)
    net = UNETR(1, 3, (32, 32, 32), feature_size=8, hidden_size=48, mlp_dim=96, num_heads=4).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    mask = torch.zeros(32, 32, 32, dtype=torch.bool)
    mask[8:20, 8:20, 8:20] = True
    out = get_method("attention_relevance").fn(net, x, RegionTarget(1, mask))
    assert out.map.shape == (32, 32, 32) and not out.info["class_token"]
    assert torch.isfinite(out.map).all() and float(out.map.max()) > 0


def test_swin_window_mapping_inverts_monais_partition():
    from monai.networks.nets.swin_unetr import SwinTransformerBlock, window_partition

    from XAIMedSlicerLib.methods.attention_swin import _token_grid

    block = SwinTransformerBlock(12, 3, (4, 4, 4), (2, 2, 2), 2.0)
    grid = torch.arange(1 * 6 * 8 * 5, dtype=torch.float32).reshape(1, 6, 8, 5)
    # what the block does before attention: pad to whole windows, shift, partition
    padded = F.pad(grid[..., None], (0, 0, 0, 3, 0, 0, 0, 2))
    shifted = torch.roll(padded, shifts=(-2, -2, -2), dims=(1, 2, 3))
    windows = window_partition(shifted, (4, 4, 4))[..., 0]
    torch.testing.assert_close(_token_grid(windows, block, (1, 6, 8, 5)), grid)


@pytest.mark.parametrize("name", ["attention_rollout", "attention_relevance"])
def test_swinunetr_maps(name):
    from monai.networks.nets import SwinUNETR

    torch.manual_seed(4)
    net = SwinUNETR(
        in_channels=1, out_channels=2, feature_size=12, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)
    )
    net = net.eval()
    x = torch.randn(1, 1, 64, 64, 64)
    mask = torch.zeros(64, 64, 64, dtype=torch.bool)
    mask[20:40, 20:40, 20:40] = True
    out = get_method(name).fn(net, x, RegionTarget(1, mask))
    assert out.map.shape == (64, 64, 64) and out.info["blocks"] == 4
    assert abs(float(out.map.sum()) - 1.0) < 1e-3 and float(out.map.min()) >= 0


def test_a_cnn_gets_a_clear_error():
    from tinynets import small_densenet
    from XAIMedSlicerLib.errors import XAIError

    with pytest.raises(XAIError, match="self-attention"):
        get_method("attention_rollout").fn(small_densenet(), torch.randn(1, 1, 16, 16, 16), ClassTarget(0))
