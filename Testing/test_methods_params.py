"""The typed method contract: one declared schema per method, read by the CLI, the pipeline and provenance."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch

from tinynets import BlobClassifier, save_torchscript
from XAIMedSlicerLib.errors import XAIError
from XAIMedSlicerLib.explain import explain
from XAIMedSlicerLib.io.volumes import write_volume
from XAIMedSlicerLib.methods import get_method
from XAIMedSlicerLib.methods.params import RUNTIME, MethodParams
from XAIMedSlicerLib.methods.registry import _REGISTRY
from XAIMedSlicerLib.methods.targets import ClassTarget

torch.set_num_threads(1)


@pytest.mark.parametrize("name", sorted(_REGISTRY))
def test_schema_equals_the_keyword_parameters(name):
    """Every method's keyword parameters and defaults are exactly its declared frozen dataclass."""
    spec = get_method(name)
    assert issubclass(spec.params, MethodParams) and spec.params.__dataclass_params__.frozen
    signature = inspect.signature(spec.fn).parameters
    keywords = {k: p.default for k, p in signature.items() if p.kind is p.KEYWORD_ONLY and k not in RUNTIME}
    declared = {f.name: f.default for f in dataclasses.fields(spec.params)}
    assert keywords == declared
    assert not any(p.kind is p.VAR_KEYWORD for p in signature.values())
    schema = spec.params.schema()
    assert [row["name"] for row in schema] == list(declared)
    json.dumps(schema)  # the CLI, worker, module and web viewer read it as JSON
    assert all(row["help"] for row in schema)
    with pytest.raises(dataclasses.FrozenInstanceError):
        instance = spec.params()
        if schema:
            setattr(instance, schema[0]["name"], schema[0]["default"])
        else:
            instance.x = 1


def test_misspelt_parameter_from_python_is_an_error():
    """Calling a method with a name it does not declare raises a one-line error naming the valid ones."""
    net = BlobClassifier().eval()
    x = torch.zeros(1, 1, 8, 8, 8)
    with pytest.raises(XAIError) as err:
        get_method("ig").fn(net, x, ClassTarget(0), stepz=4)
    text = str(err.value)
    assert "has no parameter 'stepz'" in text and "steps" in text and "\n" not in text
    with pytest.raises(XAIError, match="has no parameter 'samples'"):
        get_method("gradcam").fn(net, x, ClassTarget(0), samples=3)
    # runtime keywords (set by the pipeline) stay accepted
    result = get_method("saliency").fn(net, x, ClassTarget(0), progress=None)
    assert tuple(result.map.shape) == (8, 8, 8)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"stepz": 4}, "has no parameter 'stepz'"),
        ({"steps": 0}, "use a value in 1..inf"),
        ({"steps": "many"}, "not int"),
        ({"rule": "simpson"}, "use one of:"),
    ],
)
def test_explain_rejects_bad_parameters(tmp_path, oblique_volume, params, message):
    image = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    model = save_torchscript(BlobClassifier(), tmp_path / "blob.ts")
    with pytest.raises(XAIError, match=message):
        explain(image, model, "ig", 0, method_params=params)


def test_cli_values_are_typed_by_the_schema():
    """``--param`` strings become the declared types: tuples, None, floats, strings."""
    occ = get_method("occlusion").params
    parsed = occ.parse(
        "occlusion", ["window=8,8,4", "stride=4", "baseline=-1", "activate=none", "chunk=none"]
    )
    assert parsed == {"window": (8, 8, 4), "stride": 4, "baseline": -1, "activate": "none", "chunk": None}
    filled = occ.validate("occlusion", parsed)
    assert filled.window == (8, 8, 4) and filled.overlap == 0.6  # defaults filled in
    cam = get_method("gradcam").params.parse("gradcam", ["layer=1"])
    assert cam == {"layer": "1"}  # a layer named by digits stays a module name
    with pytest.raises(XAIError, match="is not KEY=VALUE"):
        occ.parse("occlusion", ["window"])


def test_provenance_records_every_declared_parameter(tmp_path, oblique_volume):
    """The provenance holds the full filled-in schema, so a rerun with it gives the same map."""
    image = write_volume(oblique_volume, tmp_path / "scan.nrrd")
    model = save_torchscript(BlobClassifier(), tmp_path / "blob.ts")
    first = explain(image, model, "smoothgrad", 0, method_params={"samples": 3})
    recorded = first.provenance["method"]["params"]
    declared = get_method("smoothgrad").params.names()
    assert set(declared) <= set(recorded)
    again = explain(image, model, "smoothgrad", 0, method_params={k: recorded[k] for k in declared})
    np.testing.assert_array_equal(first.attribution.array, again.attribution.array)
