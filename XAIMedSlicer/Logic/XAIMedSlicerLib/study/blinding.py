"""Blinding for reader studies: a seeded case order and a secret per-case method-to-label mapping.

The case order comes from the study seed (reproducible, and not secret). The labels ``A, B, C, ...``
are assigned per case by a permutation drawn from ``HMAC-SHA256(secret key, case id)``; the 256-bit
key is made with ``secrets`` when the study is created and stored only in the study database. What
the reader sees (case, position, labels, maps) therefore carries no information on which method is
behind a label, and neither the seed nor the method names nor their order reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import string

from ..errors import XAIError


def new_secret_key() -> str:
    """A fresh 256-bit key, hex-encoded."""
    return secrets.token_hex(32)


def blind_labels(n: int) -> list[str]:
    """``A``, ``B``, ... for ``n`` methods."""
    if not 1 <= n <= 26:
        raise XAIError(f"a reader study needs 1 to 26 methods, got {n}", "compare fewer methods")
    return list(string.ascii_uppercase[:n])


def case_permutation(key: str, case_id: str, methods: list[str]) -> dict[str, str]:
    """Label -> method for one case, from the secret ``key`` (independent of the methods' order)."""
    digest = hmac.new(bytes.fromhex(key), case_id.encode("utf-8"), hashlib.sha256).digest()
    shuffled = sorted(methods)
    random.Random(int.from_bytes(digest, "big")).shuffle(shuffled)
    return dict(zip(blind_labels(len(methods)), shuffled, strict=True))


def case_order(case_ids: list[str], seed: int) -> list[str]:
    """The fixed random reading order of ``case_ids`` for a study seed."""
    order = list(case_ids)
    random.Random(f"xaimed-case-order:{int(seed)}").shuffle(order)
    return order
