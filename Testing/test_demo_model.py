"""The committed demo classifier: its card, its weights, its preprocessing and its accuracy."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from XAIMedSlicerLib.demo.cases import CLASSES, make_case
from XAIMedSlicerLib.demo.model import CARD_PATH, load_network, model_input, predict

TEST_SEED_BASE = 3_000_000  # disjoint from the training (1_000_000+) and held-aside (2_000_000+) seeds
CARD_KEYS = {
    "format",
    "name",
    "task",
    "classes",
    "network",
    "weights",
    "weights_key_prefix",
    "sha256",
    "preprocessing",
    "gradcam_layer",
    "training",
}


@pytest.fixture(scope="module")
def card():
    assert CARD_PATH.exists(), f"the demo model card is missing: {CARD_PATH}"
    return json.loads(CARD_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def network(card):
    net, _ = load_network(CARD_PATH)
    return net


def test_card_format_and_weights_hash(card):
    assert set(card) == CARD_KEYS
    assert card["format"] == "xaimed-model-card/1" and card["task"] == "classification"
    assert card["classes"] == list(CLASSES) == ["no lesion", "lesion"]
    weights = CARD_PATH.parent / card["weights"]
    assert weights.suffix == ".safetensors" and weights.exists()
    assert weights.stat().st_size + CARD_PATH.stat().st_size < 5 * 1024 * 1024
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == card["sha256"]
    pre = card["preprocessing"]
    assert pre["orientation"] == "RAS" and pre["spacing"] == [3.0, 3.0, 3.0]
    assert max(pre["spatial_size"]) <= 96
    training = card["training"]
    assert training["held_out_cases"] >= 100 and 0.0 <= training["held_out_accuracy"] <= 1.0


def test_weights_load_into_the_named_monai_network(card):
    import monai.networks.nets as nets
    from safetensors.torch import load_file

    net = getattr(nets, card["network"]["name"])(**card["network"]["args"])
    state = load_file(str(CARD_PATH.parent / card["weights"]))
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    # the Grad-CAM layer exists and yields a 3D feature map; the output has one logit per class
    layer = dict(net.named_modules())[card["gradcam_layer"]]
    seen = []
    layer.register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    with torch.no_grad():
        out = net.eval()(torch.zeros(1, 1, *card["preprocessing"]["spatial_size"]))
    assert out.shape == (1, len(card["classes"]))
    assert len(seen) == 1 and len(seen[0]) == 5 and min(seen[0][2:]) > 1


def test_package_preprocessing_equals_the_card_monai_transforms(card):
    """The training inputs are exactly what MONAI's transforms make of the full-resolution case."""
    from monai.data import MetaTensor
    from monai.transforms import (
        Compose,
        Orientation,
        ResizeWithPadOrCrop,
        ScaleIntensityRangePercentiles,
        Spacing,
    )

    pre = card["preprocessing"]
    inten = pre["intensity"]
    assert inten["type"] == "percentile"
    case = make_case(TEST_SEED_BASE + 99, lesion=True)
    chain = Compose(
        [
            Orientation(axcodes=pre["orientation"]),
            Spacing(pixdim=pre["spacing"], mode="bilinear"),
            ScaleIntensityRangePercentiles(
                inten["lower"], inten["upper"], inten["b_min"], inten["b_max"], clip=inten["clip"]
            ),
            ResizeWithPadOrCrop(pre["spatial_size"]),
        ]
    )
    data = torch.from_numpy(
        np.ascontiguousarray(case.image.array.transpose(2, 1, 0))[None].astype(np.float32)
    )
    expected = chain(MetaTensor(data, affine=torch.as_tensor(case.image.ijk_to_ras())))
    got = model_input(case.image, pre)
    assert tuple(got.shape) == (1, 1, *pre["spatial_size"])
    np.testing.assert_allclose(got[0].numpy(), expected.as_tensor().numpy(), atol=1e-6)


def test_committed_model_detects_lesions_in_fresh_cases(card, network):
    """20 fresh seeded cases (10 with a lesion) that training never saw: accuracy >= 0.85."""
    torch.manual_seed(0)
    cases = [make_case(TEST_SEED_BASE + n, lesion=bool(n % 2)) for n in range(20)]
    x = torch.cat([model_input(c.image, card["preprocessing"]) for c in cases])
    labels = np.array([c.label for c in cases])
    probs = predict(network, x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    assert accuracy >= 0.85, f"accuracy {accuracy:.2f} on fresh cases; probabilities {probs[:, 1].round(2)}"


def test_gradcam_of_the_committed_model_points_at_the_lesion():
    """Through the full pipeline (template grid), the Grad-CAM peak lies within 5 mm of the lesion."""
    from XAIMedSlicerLib.demo.run import peak_report
    from XAIMedSlicerLib.explain import explain
    from XAIMedSlicerLib.model.loader import load_model

    model = load_model(CARD_PATH, "cpu")
    distances = []
    for n in range(10):
        case = make_case(TEST_SEED_BASE + 200 + n, lesion=True)
        expl = explain(case.image, model, "gradcam", "lesion")
        assert expl.attribution.same_grid(case.image, tol=1e-4)
        distances.append(
            peak_report(expl.attribution, case.lesion_mask, case.centre_ras)["distance_to_lesion_mm"]
        )
    near = int(np.sum(np.asarray(distances) <= 5.0))
    assert near >= 7, (
        f"the Grad-CAM peak is within 5 mm of the lesion in only {near} of 10 cases: {distances}"
    )
