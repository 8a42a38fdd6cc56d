"""Count sketch of an array (Charikar, Chen, Farach-Colton, "Finding frequent items in data
streams", ICALP 2002), as used for federated updates by FetchSGD (Rothchild et al., ICML 2020).

With ``R`` rows of width ``W``, hash functions ``h_r: [d] -> [W]`` and signs ``s_r: [d] -> {+-1}``
the sketch is ``S[r, c] = sum_{i: h_r(i) = c} s_r(i) x_i``. Each row gives the unbiased estimate
``s_r(i) S[r, h_r(i)]`` of ``x_i`` (the other entries in the bucket cancel in expectation); the
decoder returns the median over rows. The sketch is linear: sketches of several parties' updates
under the same seed add up to the sketch of the sum. The hashes are derived from ``seed`` with
numpy's PCG64 (they need to be shared, not secret); ``seed`` travels in the payload.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from vfl.compression._base import Compressor, dtype_str
from vfl.compression._payloads import FORMAT_VERSION, CompressionError, SketchedArray

__all__ = ["CountSketch", "sketch", "unsketch"]


def _rows(seed: int, rows: int, cols: int, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(h_r, s_r)`` for each row, generated one row at a time (memory ``O(size)``)."""
    gen = np.random.Generator(np.random.PCG64(seed))
    for _ in range(rows):
        buckets = gen.integers(0, cols, size=size, dtype=np.int64)
        signs = gen.integers(0, 2, size=size, dtype=np.int8).astype(np.float64) * 2 - 1
        yield buckets, signs


def sketch(x: np.ndarray, *, rows: int, cols: int, seed: int) -> SketchedArray:
    """The ``rows x cols`` count sketch of ``x`` (float32 table)."""
    if not 1 <= rows <= 16 or cols < 1:
        raise CompressionError("count sketch needs 1..16 rows and a positive width")
    arr = np.asarray(x)
    flat = arr.astype(np.float64, copy=False).ravel()
    table = np.stack(
        [
            np.bincount(buckets, weights=signs * flat, minlength=cols)
            for buckets, signs in _rows(seed, rows, cols, flat.size)
        ]
    )
    return SketchedArray(
        version=FORMAT_VERSION,
        shape=tuple(int(s) for s in arr.shape),
        dtype=dtype_str(arr),
        rows=rows,
        cols=cols,
        seed=seed,
        table=table.astype(np.float32).ravel(),
    )


def unsketch(payload: SketchedArray, *, top_k: int | None = None) -> np.ndarray:
    """Median-of-rows estimate of every entry; ``top_k`` keeps only the largest estimates."""
    size = int(np.prod(payload.shape, dtype=np.int64))
    table = payload.table.astype(np.float64).reshape(payload.rows, payload.cols)
    estimates = np.empty((payload.rows, size), dtype=np.float64)
    for r, (buckets, signs) in enumerate(_rows(payload.seed, payload.rows, payload.cols, size)):
        estimates[r] = signs * table[r, buckets]
    out = np.median(estimates, axis=0)
    if top_k is not None and 0 <= top_k < size:
        mask = np.zeros(size, dtype=bool)
        if top_k:
            mask[np.argpartition(-np.abs(out), top_k - 1)[:top_k]] = True
        out = np.where(mask, out, 0.0)
    return out.astype(np.dtype(payload.dtype)).reshape(payload.shape)


class CountSketch(Compressor):
    """Count-sketch compressor: ``rows x cols`` float32 table instead of ``d`` floats.

    ``cols`` defaults to ``ceil(size * width_fraction)``; ``top_k`` makes the decoder keep only
    the ``top_k`` largest estimates (FetchSGD's heavy-hitter recovery).
    All parties of a round must use the same ``seed`` for the sketches to be summable.
    """

    name = "countsketch"

    def __init__(
        self,
        *,
        rows: int = 5,
        cols: int | None = None,
        width_fraction: float = 0.02,
        seed: int = 0,
        top_k: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 < width_fraction <= 1.0:
            raise CompressionError(f"width fraction must be in (0, 1], got {width_fraction}")
        self.rows, self.cols, self.width_fraction = rows, cols, width_fraction
        self.seed, self.top_k = seed, top_k

    def _compress(self, x: np.ndarray) -> SketchedArray:
        cols = self.cols or max(1, math.ceil(x.size * self.width_fraction))
        return sketch(x, rows=self.rows, cols=cols, seed=self.seed)

    def decompress(self, payload: SketchedArray) -> np.ndarray:
        return unsketch(payload, top_k=self.top_k)
