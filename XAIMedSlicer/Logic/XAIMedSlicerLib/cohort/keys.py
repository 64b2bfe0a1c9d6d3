"""The content hash of one result: image file bytes, model weights, method and canonical parameters."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import XAIError
from ..model.weights import sha256_of

KEY_VERSION = 1  # bump when the result layout or the task's computation changes


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (or of a folder's files in sorted order)."""
    path = Path(path)
    if not path.exists():
        raise XAIError(f"file not found: {path}", "fix the path in cases.csv (relative to the CSV)")
    return sha256_of(path)


def model_sha256(path: str | os.PathLike) -> str:
    """The model's hash: its file or folder, and for a card (``.json``) also the weights it names."""
    path = Path(path)
    digest = file_sha256(path)
    if path.suffix == ".json" and path.is_file():
        try:
            weights = json.loads(path.read_text(encoding="utf-8")).get("weights")
        except (json.JSONDecodeError, AttributeError):
            weights = None
        if weights and (path.parent / weights).exists():
            digest = hashlib.sha256(f"{digest}{sha256_of(path.parent / weights)}".encode()).hexdigest()
    return digest


def canonical(params: dict | None) -> str:
    """Parameters as canonical JSON (sorted keys, no spaces), so equal settings hash equally."""
    return json.dumps(params or {}, sort_keys=True, separators=(",", ":"), default=str)


def result_key(
    image_sha: str, model_sha: str, method: str, params: dict | None = None, extra: dict | None = None
) -> str:
    """The hex key of one result; ``extra`` holds what else changes it (target, labels, mask, metrics)."""
    text = canonical(
        {
            "v": KEY_VERSION,
            "image": image_sha,
            "model": model_sha,
            "method": method,
            "params": json.loads(canonical(params)),
            "extra": json.loads(canonical(extra)),
        }
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]
