"""Provenance as node attributes (``XAIMed.*``), so that a saved scene can be audited in Slicer."""

from __future__ import annotations

import json

PREFIX = "XAIMed."
FULL = PREFIX + "provenance"  # the whole record, JSON
# short, human-readable attributes shown in Slicer's node information panel
FIELDS = ("model", "model_sha256", "method", "target", "parameters", "time", "seed", "device")


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=_default)


def _default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def summarize(provenance: dict) -> dict[str, str]:
    """The short attributes of a provenance record (the lead's ``explain`` layout or a flat dict)."""
    model = provenance.get("model", {})
    method = provenance.get("method", {})
    model_name = (model.get("name") or model.get("path")) if isinstance(model, dict) else model
    model_hash = model.get("sha256") if isinstance(model, dict) else provenance.get("model_sha256")
    method_name = method.get("name") if isinstance(method, dict) else method
    params = method.get("params") if isinstance(method, dict) else provenance.get("parameters")
    out = {
        "model": model_name,
        "model_sha256": model_hash,
        "method": method_name,
        "target": provenance.get("target"),
        "parameters": params,
        "time": provenance.get("created") or provenance.get("time"),
        "seed": provenance.get("seed"),
        "device": provenance.get("device"),
    }
    return {k: (v if isinstance(v, str) else _json(v)) for k, v in out.items() if v is not None}


def set_provenance(node, provenance: dict, **extra: str) -> None:
    """Store ``provenance`` on ``node``: the full record as JSON plus one attribute per key field."""
    node.SetAttribute(FULL, _json(provenance))
    for key, value in summarize(provenance).items():
        node.SetAttribute(PREFIX + key, value)
    for key, value in extra.items():
        node.SetAttribute(PREFIX + key, str(value))


def get_provenance(node) -> dict:
    """The provenance record stored on ``node`` ({} when it has none)."""
    text = node.GetAttribute(FULL)
    return json.loads(text) if text else {}


def xaimed_attributes(node) -> dict[str, str]:
    """Every ``XAIMed.*`` attribute of a node."""
    names = node.GetAttributeNames() or ()
    return {name: node.GetAttribute(name) for name in names if name.startswith(PREFIX)}
