"""IG rules: Captum's rules reproduced, the adaptive rule complete, refined where the map changes, repeatable."""

from __future__ import annotations

import pytest
import torch

from test_methods_ig_quadrature import net_and_input  # noqa: F401  (fixture: DenseNet with trained-like norms)
from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.targets import ClassTarget, RegionTarget

CROP = 40


@pytest.fixture(scope="module")
def densenet_case(request):
    """The small DenseNet with non-identity batch norms of the quadrature tests, and its input."""
    return request.getfixturevalue("net_and_input")


@pytest.fixture(scope="module")
def meshnet_case(shared_data):
    """The real pretrained MeshNet on a crop of the real T1; target: its predicted grey matter."""
    from XAIMedSlicerLib.io.volumes import read_volume
    from XAIMedSlicerLib.model.loader import load_model
    from XAIMedSlicerLib.preprocess import prepare_input

    image = read_volume(shared_data("brain/t1_crop.nii.gz"))
    model = load_model(shared_data("models/meshnet/model5_gw_ae"), device="cpu")
    centre = image.index_to_ras((127, 128, 110))
    x = prepare_input(image, model.card.preprocessing, roi=(centre, (CROP,) * 3)).tensor
    net = model.network.eval()
    with torch.no_grad():
        mask = net(x)[0].argmax(0) == 2
    assert int(mask.sum()) > 0
    return net, x, RegionTarget(2, mask)


def _delta(net, x, target) -> float:
    with torch.no_grad():
        return float(target(net(x)).sum() - target(net(torch.zeros_like(x))).sum())


@pytest.mark.parametrize("rule", ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"])
def test_rules_shared_with_captum_give_captums_map(densenet_case, rule):
    from captum.attr import IntegratedGradients

    net, x = densenet_case
    ours = get_method("ig").fn(net, x, ClassTarget(1), steps=7, rule=rule, batch_size=3)
    ref = IntegratedGradients(net).attribute(
        x, baselines=torch.zeros_like(x), target=1, n_steps=7, method=rule, internal_batch_size=3
    )
    torch.testing.assert_close(ours.map, ref[0].sum(0).detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("rule", ["adaptive", "completeness_corrected"])
def test_trapezoid_rules_are_complete_on_a_relu_classifier(densenet_case, rule):
    net, x = densenet_case
    result = get_method("ig").fn(net, x, ClassTarget(0), steps=6, rule=rule)
    delta = _delta(net, x, ClassTarget(0))
    assert abs(float(result.map.sum()) - delta) <= 1e-4 * abs(delta)
    assert result.info["completeness_error"] <= 1e-4
    assert (
        result.info["nodes"][0] == 0.0 and result.info["nodes"][-1] == 1.0 and len(result.info["nodes"]) == 6
    )


def test_adaptive_rule_on_meshnet_region_is_complete_and_closer_than_even_nodes(meshnet_case):
    net, x, target = meshnet_case
    ig = get_method("ig").fn
    reference = ig(net, x, target, steps=65, rule="riemann_trapezoid").map
    adaptive = ig(net, x, target, steps=8)  # the default rule
    even = ig(net, x, target, steps=8, rule="riemann_trapezoid")
    gauss = ig(net, x, target, steps=8, rule="gausslegendre")
    assert adaptive.params["rule"] == "adaptive"
    delta = _delta(net, x, target)
    assert abs(float(adaptive.map.sum()) - delta) <= 1e-4 * abs(delta)
    nodes = adaptive.info["nodes"]
    gaps = {round(b - a, 6) for a, b in zip(nodes[:-1], nodes[1:], strict=True)}
    assert len(nodes) == 8 and len(gaps) > 1  # refined where the map changes

    def error(m: torch.Tensor) -> float:
        return float((m - reference).norm() / reference.norm())

    assert error(adaptive.map) < error(even.map)
    assert error(adaptive.map) < error(gauss.map)


def test_adaptive_rule_same_input_same_map_whatever_the_batches(densenet_case):
    net, x = densenet_case
    ig = get_method("ig").fn
    first = ig(net, x, ClassTarget(1), steps=9)
    again = ig(net, x, ClassTarget(1), steps=9)
    assert torch.equal(first.map, again.map) and first.info["nodes"] == again.info["nodes"]
    single = ig(net, x, ClassTarget(1), steps=9, batch_size=1)
    assert single.info["nodes"] == first.info["nodes"]
    torch.testing.assert_close(single.map, first.map, rtol=1e-4, atol=1e-6 * float(first.map.abs().max()))


def test_adaptive_rule_without_refinement_is_the_corrected_trapezoid(densenet_case):
    net, x = densenet_case
    ig = get_method("ig").fn
    adaptive = ig(net, x, ClassTarget(1), steps=4, rule="adaptive")
    even = ig(net, x, ClassTarget(1), steps=4, rule="completeness_corrected")
    torch.testing.assert_close(adaptive.map, even.map, rtol=0, atol=0)
