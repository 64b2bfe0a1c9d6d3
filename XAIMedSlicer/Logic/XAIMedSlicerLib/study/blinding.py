"""Blinding for reader studies: a seeded case order and a secret per-case method-to-label mapping.

The case order comes from the study seed (reproducible, and not secret). The labels ``A, B, C, ...``
are assigned per case by a Williams Latin square over the reading positions (counterbalanced: each
method under each label, and after each other method, equally often), with the methods placed in the
square by a permutation drawn from ``HMAC-SHA256(secret key)``; the 256-bit key is made with
``secrets`` when the study is created and stored only in the study database. What
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


def williams_square(n: int) -> list[list[int]]:
    """Rows of a Williams (balanced) Latin square on ``n`` items: ``n`` rows for even ``n``, ``2n`` for odd.

    Over all rows each item sits in each column equally often, and each item follows each other item
    (in adjacent columns) equally often, so neither position nor carry-over favours a method.
    """
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(v + r) % n for v in first] for r in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def case_permutation(key: str, position: int, methods: list[str]) -> dict[str, str]:
    """Label -> method for the case at reading ``position`` (1-based): counterbalanced and secret.

    Consecutive cases run through the rows of a Williams square, so every method is shown under every
    label (and after every other method) equally often in each block of rows; which method is which
    item of the square is a permutation drawn from ``HMAC-SHA256(secret key)``, independent of the
    methods' order, so the labels reveal nothing without the key.
    """
    digest = hmac.new(bytes.fromhex(key), b"xaimed-method-order", hashlib.sha256).digest()
    secret = sorted(methods)
    random.Random(int.from_bytes(digest, "big")).shuffle(secret)
    rows = williams_square(len(methods))
    row = rows[(int(position) - 1) % len(rows)]
    return dict(zip(blind_labels(len(methods)), [secret[i] for i in row], strict=True))


def case_order(case_ids: list[str], seed: int) -> list[str]:
    """The fixed random reading order of ``case_ids`` for a study seed."""
    order = list(case_ids)
    random.Random(f"xaimed-case-order:{int(seed)}").shuffle(order)
    return order
