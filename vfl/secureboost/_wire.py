"""Small checked array messages of the SecureBoost protocol (numpy only: never pickle).

Lists of row indices travel as one int64 array ``[k, id_1, len_1, ..., id_k, len_k, rows...]``;
:func:`unpack_lists` checks every length and every index against the agreed row count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from vfl.errors import VflError

__all__ = ["TOPIC", "pack_lists", "unpack_lists", "int_array", "bool_array"]

IntArray = npt.NDArray[np.int64]

TOPIC = {
    "setup": "sb/setup",
    "key": "sb/key",
    "tree": "sb/tree",
    "gh": "sb/gh",
    "rows": "sb/rows",
    "build": "sb/build",
    "hist": "sb/hist",
    "split": "sb/split",
    "split_rows": "sb/split-rows",
    "part": "sb/part",
    "part_bits": "sb/part-bits",
    "predict": "sb/predict",
    "route": "sb/route",
    "bits": "sb/bits",
}


def pack_lists(ids: Sequence[int], lists: Sequence[IntArray]) -> IntArray:
    """``[k, id_1, len_1, ..., rows_1..., rows_k...]`` as one int64 array."""
    head = [len(ids)]
    for i, rows in zip(ids, lists, strict=True):
        head += [int(i), len(rows)]
    body = [np.asarray(r, dtype=np.int64) for r in lists]
    return np.concatenate([np.asarray(head, dtype=np.int64), *body]) if body else np.asarray(head)


def unpack_lists(data: Any, *, n_rows: int, what: str) -> list[tuple[int, IntArray]]:
    """Inverse of :func:`pack_lists`; every row index must be in ``[0, n_rows)`` and unique per list."""
    arr = int_array(data, what)
    if arr.ndim != 1 or arr.size < 1 or not 0 <= arr[0] <= (arr.size - 1) // 2:
        raise VflError(f"peer sent a malformed {what}")
    k = int(arr[0])
    head = arr[1 : 1 + 2 * k].reshape(k, 2)
    if np.any(head[:, 1] < 0) or 1 + 2 * k + int(head[:, 1].sum()) != arr.size:
        raise VflError(f"peer sent a malformed {what}")
    out, pos = [], 1 + 2 * k
    for node, length in head.tolist():
        rows = arr[pos : pos + length]
        pos += length
        if rows.size and (
            rows.min() < 0 or rows.max() >= n_rows or np.unique(rows).size != rows.size
        ):
            raise VflError(f"peer sent a {what} with bad row indices")
        out.append((int(node), rows))
    return out


def int_array(data: Any, what: str, shape: tuple[int, ...] | None = None) -> IntArray:
    """``data`` as an int64 array, checked: an array of integers (of ``shape`` when given)."""
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "iu":
        raise VflError(f"peer sent a malformed {what}")
    if shape is not None and data.shape != shape:
        raise VflError(f"peer sent a {what} of shape {data.shape}, expected {shape}")
    return data.astype(np.int64)


def bool_array(data: Any, what: str, length: int) -> npt.NDArray[np.bool_]:
    """A uint8 array of 0/1 of ``length``, as booleans."""
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.shape != (length,)
        or (data.size and data.max() > 1)
    ):
        raise VflError(f"peer sent a malformed {what} (expected {length} bits)")
    return data.astype(bool)
