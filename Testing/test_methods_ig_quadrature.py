"""IG quadrature: the completeness-corrected rule is complete at few passes and close to a fine reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test_methods_support import one_thread  # noqa: F401  (autouse fixture)
from tinynets import small_densenet
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.budget import MemoryBudget
from XAIMedSlicerLib.methods.targets import ClassTarget


@pytest.fixture(scope="module")
def net_and_input():
    """A DenseNet whose batch-norm statistics and shifts are not the identity (as after training)."""
    torch.manual_seed(1)
    net = small_densenet()
    gen = torch.Generator().manual_seed(1)
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm3d):
            mod.running_mean.normal_(0, 0.3, generator=gen)
            mod.running_var.uniform_(0.5, 2.0, generator=gen)
            mod.bias.data.normal_(0, 0.3, generator=gen)
    x = torch.randn(1, 1, 20, 24, 16)
    x[..., 6:12, 8:14, 4:10] += 2.0
    return net, x


def test_completeness_corrected_rule_is_complete_and_close_to_the_integral(net_and_input):
    net, x = net_and_input
    ig = get_method("ig").fn
    reference = ig(net, x, ClassTarget(1), steps=64, rule="gausslegendre").map
    corrected = ig(net, x, ClassTarget(1), steps=8, rule="completeness_corrected")
    trapezoid = ig(net, x, ClassTarget(1), steps=8, rule="riemann_trapezoid")
    with torch.no_grad():
        delta = float(net(x)[0, 1] - net(torch.zeros_like(x))[0, 1])
    assert abs(float(corrected.map.sum()) - delta) <= 1e-4 * abs(delta)
    assert corrected.info["completeness_error"] <= 1e-4
    assert trapezoid.info["completeness_error"] > corrected.info["completeness_error"]
    r = np.corrcoef(corrected.map.numpy().ravel(), reference.numpy().ravel())[0, 1]
    assert r >= 0.99
    # the correction moves the map no further from the integral than the trapezoid rule it starts from
    err_c = float((corrected.map - reference).norm())
    err_t = float((trapezoid.map - reference).norm())
    assert err_c <= 1.05 * err_t


def test_budgeted_ig_equals_fixed_batches(net_and_input):
    net, x = net_and_input
    ig = get_method("ig").fn
    auto = ig(net, x, ClassTarget(0), steps=6, rule="gausslegendre", budget=MemoryBudget(max_chunk_cpu=64))
    fixed = ig(net, x, ClassTarget(0), steps=6, rule="gausslegendre", batch_size=1)
    torch.testing.assert_close(auto.map, fixed.map, rtol=1e-4, atol=1e-7)
    assert auto.info["chunks"]["first_chunk"] == 6 and fixed.info["chunks"]["first_chunk"] == 1


def test_unknown_rule_is_a_one_line_error(net_and_input):
    net, x = net_and_input
    with pytest.raises(XAIError, match="unknown IG rule"):
        get_method("ig").fn(net, x, ClassTarget(0), rule="simpson")
