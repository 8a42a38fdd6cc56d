"""Garbled Bloom filters (Dong, Chen, Wen, CCS 2013), vectorised with numpy.

A GBF stores ``w``-byte values under keys: each key ``e`` has ``h`` positions
``H_1(e) .. H_h(e)`` in a table of ``m`` rows, and ``lookup(e) = XOR_j table[H_j(e)]``. Inserting
``(e, v)`` claims the still-empty positions of ``e``, fills all but one of them with random bytes
and sets the last so the XOR is ``v``; after all insertions every empty row gets random bytes, so
``lookup`` of a key that was never inserted is uniformly random and the table reveals nothing
about which keys it holds. With ``m = ceil(h * n / ln 2)`` an insertion finds no free position
with probability about ``2^-h`` (DCW13, section 4); we use ``h = 40``.

Repeated positions of one key are mapped to a sentinel row ``m`` that is always zero, so the XOR
over the positions is the same at insertion and lookup.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from crypto.random import RandomSource
from psi.errors import PSIProtocolError, PSIUsageError

__all__ = ["GBF_HASHES", "gbf_rows", "positions", "build", "lookup"]

GBF_HASHES = 40


def gbf_rows(n: int, *, hashes: int = GBF_HASHES) -> int:
    """Table rows (without the sentinel) for ``n`` keys: ``ceil(h n / ln 2)``, at least ``h``."""
    return max(hashes, math.ceil(hashes * max(n, 1) / math.log(2)))


def positions(
    keys: Sequence[bytes], *, m: int, seed: bytes, hashes: int = GBF_HASHES
) -> np.ndarray:
    """``(n, h)`` int64 positions in ``[0, m]``; repeats within a row replaced by ``m``.

    ``H_j(e)`` = the j-th little-endian u32 of ``SHAKE-256(seed || e)``, mod ``m``;
    the modulo bias is below ``m / 2^32``, negligible for the table sizes used here.
    """
    if m >= 1 << 31:
        raise PSIUsageError("garbled Bloom filter too large")
    raw = bytearray(4 * hashes * len(keys))
    width = 4 * hashes
    base = hashlib.shake_256(seed)
    for i, key in enumerate(keys):
        h = base.copy()
        h.update(key)
        raw[i * width : (i + 1) * width] = h.digest(width)
    pos = np.frombuffer(bytes(raw), dtype="<u4").reshape(len(keys), hashes).astype(np.int64) % m
    pos.sort(axis=1)
    if hashes > 1:
        repeat = np.zeros_like(pos, dtype=bool)
        repeat[:, 1:] = pos[:, 1:] == pos[:, :-1]
        pos[repeat] = m
    return pos


def build(pos: np.ndarray, values: np.ndarray, *, m: int, rng: RandomSource) -> np.ndarray:
    """A ``(m + 1, w)`` uint8 table with ``lookup(pos[i]) == values[i]`` for every ``i``."""
    n, width = values.shape
    table = np.zeros((m + 1, width), dtype=np.uint8)
    used = np.zeros(m + 1, dtype=bool)
    used[m] = True  # the sentinel row stays zero
    fill = np.frombuffer(rng.random_bytes((m + 1) * width), dtype=np.uint8).reshape(m + 1, width)
    for i in range(n):
        row = pos[i]
        free = row[~used[row]]
        if free.size == 0:
            raise PSIUsageError(
                "garbled Bloom filter insertion failed (probability ~2^-40); rerun the session"
            )
        last = free[-1]
        others = free[:-1]
        table[others] = fill[others]
        used[free] = True
        acc = np.bitwise_xor.reduce(table[row], axis=0)  # table[last] is still zero here
        table[last] = acc ^ values[i]
    empty = ~used
    table[empty] = fill[empty]
    table[m] = 0
    return table


def lookup(table: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``(n, w)`` XOR of the table rows at each key's positions."""
    if table.ndim != 2 or int(pos.max(initial=0)) >= table.shape[0]:
        raise PSIProtocolError("garbled Bloom filter has the wrong shape")
    if int(np.count_nonzero(table[-1])):
        raise PSIProtocolError("garbled Bloom filter sentinel row is not zero")
    out = np.empty((pos.shape[0], table.shape[1]), dtype=np.uint8)
    step = 1 << 14  # bounded memory: n x h x w bytes per block
    for start in range(0, pos.shape[0], step):
        out[start : start + step] = np.bitwise_xor.reduce(table[pos[start : start + step]], axis=1)
    return out
