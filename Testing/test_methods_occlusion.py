"""Occlusion equals Captum's Occlusion and MONAI's OcclusionSensitivity; incremental inference is exact."""

from __future__ import annotations

import pytest
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers.utils import _get_scan_interval

from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from tinynets import small_densenet
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.occlusion_layout import boxes_of, monai_axes
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget


@pytest.fixture(scope="module")
def net_and_input():
    torch.manual_seed(1)
    net = small_densenet()
    x = torch.randn(1, 1, 32, 32, 24)
    x[..., 10:18, 12:20, 6:14] += 2.0
    return net, x


@pytest.mark.parametrize("incremental", [True, False])
def test_occlusion_equals_captum_at_equal_windows(net_and_input, incremental):
    from captum.attr import Occlusion

    net, x = net_and_input
    ours = get_method("occlusion").fn(
        net, x, ClassTarget(1), window=8, stride=(8, 8, 6), incremental=incremental
    )
    assert ours.info["incremental"] is incremental  # the split is found and used, or switched off
    ref = Occlusion(net).attribute(
        x,
        sliding_window_shapes=(1, 8, 8, 8),
        strides=(1, 8, 8, 6),
        baselines=0.0,
        target=1,
        perturbations_per_eval=8,
    )
    # each entry is a difference of two scores: a few float32 ulps of the score itself
    torch.testing.assert_close(ours.map, ref[0, 0], rtol=1e-4, atol=1e-6 * abs(ours.info["score"]))


@pytest.mark.parametrize("incremental", [True, "auto"])
def test_incremental_occlusion_is_exact_on_a_segmentation_region(incremental):
    """Cropped inputs (incremental) and the output cropped to the region box: the same map as full passes."""
    from monai.networks.nets import UNet

    torch.manual_seed(0)
    net = UNet(3, 1, 2, (4, 8, 16), (2, 2), num_res_units=1, norm="batch").eval()
    x = torch.randn(1, 1, 32, 32, 32)
    mask = torch.zeros(32, 32, 32, dtype=torch.bool)
    mask[10:22, 8:20, 12:26] = True
    target = RegionTarget(1, mask)
    fn = get_method("occlusion").fn
    fast = fn(net, x, target, window=8, stride=8, incremental=incremental)
    full = fn(net, x, target, window=8, stride=8, incremental=False)
    assert fast.info["incremental"] is (incremental is True)  # 64 boxes: "auto" keeps full-size inputs
    assert fast.info["output_cropped"] and not full.info["incremental"] and not full.info["output_cropped"]
    # each entry is a difference of two region sums: float rounding scales with the score itself
    scale = max(float(full.map.abs().max()), abs(full.info["score"]))
    torch.testing.assert_close(fast.map, full.map, rtol=1e-4, atol=1e-5 * scale)


def test_monai_layout_equals_dense_patch_slices():
    for shape, window, overlap in [((96, 96, 96), (16, 16, 16), 0.6), ((30, 17, 40), (16, 16, 16), 0.25)]:
        interval = _get_scan_interval(shape, window, 3, (overlap,) * 3)
        ref = [tuple((s.start, s.stop) for s in sl) for sl in dense_patch_slices(shape, window, interval)]
        assert boxes_of(monai_axes(shape, window, overlap)) == ref


def test_occlusion_equals_monai_occlusion_sensitivity():
    from monai.visualize import OcclusionSensitivity

    torch.manual_seed(1)
    net = small_densenet()
    x = torch.randn(1, 1, 24, 28, 20)
    occ_map, _ = OcclusionSensitivity(net, mask_size=8, n_batch=16, verbose=False)(x)
    with torch.no_grad():
        p = torch.sigmoid(net(x))[0, 1]  # MONAI: sigmoid for one input channel
    ours = get_method("occlusion").fn(net, x, ClassTarget(1), window=8, style="monai")
    torch.testing.assert_close(ours.map, (p - occ_map[0, 1]).detach(), rtol=1e-4, atol=1e-6)


def test_bad_window_is_a_one_line_error(net_and_input):
    from XAIMedSlicerLib.errors import XAIError

    net, x = net_and_input
    with pytest.raises(XAIError, match="larger than the volume"):
        get_method("occlusion").fn(net, x, ClassTarget(1), window=64)


def test_sliding_window_occlusion_equals_occluding_the_whole_inference():
    from monai.networks.nets import UNet

    from XAIMedSlicerLib.methods.sliding import SlidingWindowModel

    torch.manual_seed(0)
    net = UNet(3, 1, 2, (4, 8, 16), (2, 2), num_res_units=1, norm="batch").eval()
    wrapped = SlidingWindowModel(net, (16, 16, 16), overlap=0.5, mode="gaussian")
    x = torch.randn(1, 1, 32, 20, 16)
    mask = torch.zeros(32, 20, 16, dtype=torch.bool)
    mask[2:8, 6:12, 4:12] = True
    target = RegionTarget(1, mask)
    fast = get_method("occlusion").fn(wrapped, x, target, window=8, stride=(8, 6, 8))

    class Whole(torch.nn.Module):  # the same function, run as one sliding-window inference per box
        def forward(self, v):
            return torch.cat([wrapped(v[i : i + 1]) for i in range(len(v))])

    full = get_method("occlusion").fn(Whole(), x, target, window=8, stride=(8, 6, 8), incremental=False)
    scale = float(full.map.abs().max())
    torch.testing.assert_close(fast.map, full.map, rtol=1e-4, atol=1e-5 * scale)
    assert fast.info["windows"] < fast.info["windows_total"]
    assert fast.info["boxes_touching_region_windows"] < fast.info["boxes"]


def _trained_like_densenet(seed: int = 0):
    """A small MONAI DenseNet with random batch-norm statistics and shifts (as after training)."""
    from monai.networks.nets import DenseNet

    torch.manual_seed(seed)
    net = DenseNet(
        spatial_dims=3, in_channels=1, out_channels=2, init_features=8, growth_rate=4, block_config=(2, 2)
    )
    gen = torch.Generator().manual_seed(seed)
    for mod in net.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.running_mean.normal_(0.0, 0.3, generator=gen)
            mod.running_var.uniform_(0.5, 2.0, generator=gen)
            mod.weight.data.uniform_(0.5, 1.5, generator=gen)
            mod.bias.data.normal_(0.0, 0.3, generator=gen)
    return net.eval()


@pytest.mark.parametrize(
    ("shape", "window", "stride", "chunk"),
    [((32, 32, 32), 8, 8, None), ((32, 28, 24), (8, 6, 8), (5, 6, 4), 3)],
)
def test_per_layer_incremental_occlusion_equals_full_passes(shape, window, stride, chunk):
    """Each layer recomputed only on the region a box changes: the map of plain full passes."""
    net = _trained_like_densenet()
    x = torch.randn(1, 1, *shape, generator=torch.Generator().manual_seed(3))
    fn = get_method("occlusion").fn
    fast = fn(net, x, ClassTarget(1), window=window, stride=stride, incremental=True, chunk=chunk)
    full = fn(net, x, ClassTarget(1), window=window, stride=stride, incremental=False)
    assert fast.info["incremental_mode"] == "per-layer" and not full.info["incremental"]
    assert fast.info["estimated_fraction"] < 0.8  # the run really skipped work
    scale = max(float(full.map.abs().max()), abs(full.info["score"]))
    torch.testing.assert_close(fast.map, full.map, rtol=1e-5, atol=1e-5 * scale)
    assert abs(fast.info["score"] - full.info["score"]) <= 1e-6 * abs(full.info["score"])


class _InstanceNormNet(torch.nn.Module):
    """Convolutions around an instance norm (a global operation) and a data-dependent branch option."""

    def __init__(self, branch: bool) -> None:
        super().__init__()
        self.branch = branch
        self.a = torch.nn.Conv3d(1, 4, 3, padding=1)
        self.norm = torch.nn.InstanceNorm3d(4, affine=True)
        self.b = torch.nn.Conv3d(4, 2, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        if self.branch and bool(h.mean() > 0):  # not traceable by torch.fx
            h = h * 2
        return self.b(self.norm(h)).mean((2, 3, 4))


@pytest.mark.parametrize("branch", [False, True])
def test_incremental_occlusion_falls_back_exactly(branch):
    """A global operation ends the per-layer regions there; an untraceable model runs full passes."""
    torch.manual_seed(0)
    net = _InstanceNormNet(branch).eval()
    x = torch.randn(1, 1, 16, 16, 16)
    fn = get_method("occlusion").fn
    fast = fn(net, x, ClassTarget(0), window=4, stride=4, incremental=True)
    full = fn(net, x, ClassTarget(0), window=4, stride=4, incremental=False)
    assert fast.info["incremental"] is not branch
    scale = max(float(full.map.abs().max()), abs(full.info["score"]))
    torch.testing.assert_close(fast.map, full.map, rtol=1e-5, atol=1e-5 * scale)


def test_the_one_verifier_accepts_exact_runners_and_rejects_wrong_ones(net_and_input):
    """Every fast runner goes through one check: full-pass scores pass it, off-by-a-little scores fail."""
    from XAIMedSlicerLib.methods.occlusion_layout import captum_axes
    from XAIMedSlicerLib.methods.occlusion_verify import agrees_with_full_passes

    net, x = net_and_input
    net = net.eval()
    boxes = boxes_of(captum_axes(tuple(x.shape[2:]), (8, 8, 8), (8, 8, 8)))
    target = ClassTarget(1)

    def occlude(region, box, start):
        spans = [slice(a - s, b - s) for (a, b), s in zip(box, start, strict=True)]
        region[(slice(None), slice(None), *spans)] = 0.0

    def full(ids):
        out = []
        for i in ids:
            xs = x.clone()
            occlude(xs, boxes[i], (0, 0, 0))
            out.append(target(net(xs)))
        return torch.cat(out)

    picks = [0, len(boxes) // 2, len(boxes) - 1]
    with torch.inference_mode():
        assert agrees_with_full_passes(full, net, x, boxes, picks, occlude, target)
        wrong = full(picks) * 1.01
    assert not agrees_with_full_passes(lambda ids: wrong, net, x, boxes, picks, occlude, target)

    def broken(ids):
        raise RuntimeError("a shape the runner cannot handle")

    assert not agrees_with_full_passes(broken, net, x, boxes, picks, occlude, target)
