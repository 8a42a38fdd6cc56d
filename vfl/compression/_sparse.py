"""Top-k sparsification with error feedback, Rice-coded indices, and sparsity schedules.

Top-k keeps the ``k`` entries of largest magnitude. With *error feedback* (Seide et al. 2014,
"1-bit SGD"; Stich, Cordonnier, Jaggi, "Sparsified SGD with Memory", NeurIPS 2018) each party
keeps a residual ``e``: it compresses ``a = x + e`` and keeps ``e <- a - decode(payload)``, so
what is skipped (or lost to value quantisation) is sent later and nothing is lost:
``sum(decoded sent) + e_T = sum(inputs)``.

Indices are stored as gaps between sorted positions, Rice-coded with the parameter ``k`` that
minimises the size (Golomb 1966 / Rice 1979): about ``H(f)/f`` bits per kept entry at density
``f`` (~5 bits at 10 %), instead of 32. Values are float32, or 8/4-bit quantised
(:mod:`vfl.compression._quantize`).

The fraction kept can follow a schedule: :class:`ConstantSparsity`, the exponential warm-up of
Lin et al., "Deep Gradient Compression" (ICLR 2018, Section 3.3), or :class:`AdaptiveSparsity`,
which raises the fraction when the residual grows large relative to the update and lowers it when
the residual is small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vfl.compression._base import Compressor, dtype_str
from vfl.compression._payloads import FORMAT_VERSION, CompressionError, QuantizedArray, SparseArray
from vfl.compression._quantize import DEFAULT_BUCKET, dequantize, quantize

__all__ = [
    "SparsitySchedule",
    "ConstantSparsity",
    "WarmupSparsity",
    "AdaptiveSparsity",
    "TopK",
    "rice_encode",
    "rice_decode",
    "sparsify",
    "densify",
]


def rice_encode(indices: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Rice-code strictly increasing indices; returns ``(k, unary_bits, remainder_bits)``."""
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        return 0, np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.uint8)
    gaps = np.diff(idx, prepend=-1) - 1
    if np.any(gaps < 0):
        raise CompressionError("indices must be strictly increasing")
    best_k = min(range(33), key=lambda k: int(np.sum(gaps >> k)) + idx.size * (1 + k))
    q = gaps >> best_k
    total = int(q.sum()) + idx.size
    unary = np.ones(total, dtype=np.uint8)
    unary[np.cumsum(q + 1) - 1] = 0
    if best_k:
        rem = gaps & ((1 << best_k) - 1)
        shifts = np.arange(best_k - 1, -1, -1, dtype=np.int64)
        rbits = ((rem[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    else:
        rbits = np.zeros(0, dtype=np.uint8)
    return best_k, np.packbits(unary), np.packbits(rbits)


def rice_decode(
    *, count: int, k: int, unary: np.ndarray, remainders: np.ndarray, size: int
) -> np.ndarray:
    """Inverse of :func:`rice_encode`; checks every index is below ``size``."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    bits = np.unpackbits(unary)
    zeros = np.flatnonzero(bits == 0)
    if zeros.size < count:
        raise CompressionError("sparse index stream is truncated")
    q = np.diff(zeros[:count], prepend=-1) - 1
    if int(q.max()) > size >> k:  # bound the gaps before shifting, so nothing can overflow
        raise CompressionError(f"sparse index gap out of range for size {size}")
    if k:
        rbits = np.unpackbits(remainders)[: count * k].reshape(count, k).astype(np.int64)
        rem = rbits @ (1 << np.arange(k - 1, -1, -1, dtype=np.int64))
    else:
        rem = np.zeros(count, dtype=np.int64)
    gaps = (q.astype(np.int64) << k) + rem
    if float(gaps.sum(dtype=np.float64)) + count > size + 1:
        raise CompressionError(f"sparse indices run past size {size}")
    idx = np.cumsum(gaps + 1) - 1
    if idx[-1] >= size:
        raise CompressionError(f"sparse index {int(idx[-1])} out of range for size {size}")
    return idx


def sparsify(
    x: np.ndarray,
    *,
    k: int,
    value_bits: int | None = None,
    rng: np.random.Generator | None = None,
    dtype: str | None = None,
) -> SparseArray:
    """The ``k`` largest-magnitude entries of ``x``; ``dtype`` is the decoded dtype (``x``'s)."""
    arr = np.asarray(x)
    flat = arr.astype(np.float64, copy=False).ravel()
    k = max(0, min(int(k), flat.size))
    if k == flat.size:
        idx = np.arange(flat.size)
    elif k == 0:
        idx = np.zeros(0, dtype=np.int64)
    else:
        idx = np.sort(np.argpartition(-np.abs(flat), k - 1)[:k])
    rice_k, unary, rbits = rice_encode(idx)
    kept = flat[idx]
    values: np.ndarray | QuantizedArray
    if value_bits is None:
        values = kept.astype(np.float32)
    else:
        values = quantize(
            kept.astype(np.float32),
            bits=value_bits,
            bucket_size=DEFAULT_BUCKET,
            rng=rng if rng is not None else np.random.default_rng(),
        )
    return SparseArray(
        version=FORMAT_VERSION,
        shape=tuple(int(s) for s in arr.shape),
        dtype=dtype or dtype_str(arr),
        count=k,
        rice_k=rice_k,
        unary=unary,
        remainders=rbits,
        values=values,
    )


def densify(payload: SparseArray) -> np.ndarray:
    """The dense array of a :class:`SparseArray` (zeros where nothing was sent)."""
    size = int(np.prod(payload.shape, dtype=np.int64))
    idx = rice_decode(
        count=payload.count,
        k=payload.rice_k,
        unary=payload.unary,
        remainders=payload.remainders,
        size=size,
    )
    if isinstance(payload.values, QuantizedArray):
        values = dequantize(payload.values).astype(np.float64)
    else:
        values = payload.values.astype(np.float64)
    out = np.zeros(size, dtype=np.float64)
    out[idx] = values
    return out.astype(np.dtype(payload.dtype)).reshape(payload.shape)


class SparsitySchedule(Protocol):
    """The fraction of entries to keep in a round, given the last residual ratio."""

    def fraction(self, *, round: int, residual_ratio: float) -> float: ...


@dataclass(frozen=True)
class ConstantSparsity:
    """Always keep ``keep`` of the entries."""

    keep: float

    def __post_init__(self) -> None:
        if not 0.0 < self.keep <= 1.0:
            raise CompressionError(f"kept fraction must be in (0, 1], got {self.keep}")

    def fraction(self, *, round: int, residual_ratio: float) -> float:
        return self.keep


@dataclass(frozen=True)
class WarmupSparsity:
    """Exponential warm-up (Lin et al. 2018): ``f_t = f_0 (f_T / f_0)^(t / T)``, then ``f_T``."""

    start: float
    final: float
    warmup_rounds: int

    def __post_init__(self) -> None:
        if not (0.0 < self.final <= self.start <= 1.0) or self.warmup_rounds < 1:
            raise CompressionError("warm-up needs 0 < final <= start <= 1 and warmup_rounds >= 1")

    def fraction(self, *, round: int, residual_ratio: float) -> float:
        t = min(max(round, 0), self.warmup_rounds) / self.warmup_rounds
        return float(self.start * (self.final / self.start) ** t)


@dataclass
class AdaptiveSparsity:
    """Multiplicative control of the kept fraction from the error-feedback residual.

    With ``r = ||e|| / ||x + e||`` after the previous round: ``f <- f * factor`` if
    ``r > target_ratio`` (too much is being held back), ``f <- f / factor`` if
    ``r < target_ratio / 2``; always clamped to ``[low, high]``.
    """

    keep: float
    low: float = 0.01
    high: float = 0.5
    target_ratio: float = 0.9
    factor: float = 1.25

    def __post_init__(self) -> None:
        if not (0.0 < self.low <= self.keep <= self.high <= 1.0) or self.factor <= 1.0:
            raise CompressionError("adaptive sparsity needs 0 < low <= keep <= high <= 1")

    def fraction(self, *, round: int, residual_ratio: float) -> float:
        if round > 0 and math.isfinite(residual_ratio):
            if residual_ratio > self.target_ratio:
                self.keep *= self.factor
            elif residual_ratio < self.target_ratio / 2:
                self.keep /= self.factor
        self.keep = min(self.high, max(self.low, self.keep))
        return self.keep


class TopK(Compressor):
    """Top-k with error feedback (one instance per party and tensor stream).

    ``keep`` (a fraction) or ``schedule`` chooses ``k = ceil(f * size)``; ``value_bits`` (8 or 4)
    quantises the kept values; ``error_feedback=False`` drops what is skipped (biased).
    """

    def __init__(
        self,
        *,
        keep: float = 0.1,
        schedule: SparsitySchedule | None = None,
        value_bits: int | None = None,
        error_feedback: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if value_bits not in (None, 4, 8):
            raise CompressionError(f"value bits must be None, 4 or 8, got {value_bits}")
        self.schedule: SparsitySchedule = schedule or ConstantSparsity(keep)
        self.value_bits = value_bits
        self.error_feedback = error_feedback
        self.name = "topk" if value_bits is None else f"topk-q{value_bits}"
        self.residual: np.ndarray | None = None
        self.round = 0
        self._residual_ratio = math.nan
        self._rng = np.random.default_rng(seed)

    def _compress(self, x: np.ndarray) -> SparseArray:
        acc = x.astype(np.float64)
        if self.error_feedback:
            if self.residual is not None and self.residual.shape != acc.shape:
                raise CompressionError(
                    f"array shape {acc.shape} differs from the residual's {self.residual.shape}"
                )
            if self.residual is not None:
                acc = acc + self.residual
        f = self.schedule.fraction(round=self.round, residual_ratio=self._residual_ratio)
        payload = sparsify(
            acc,
            k=math.ceil(f * acc.size),
            value_bits=self.value_bits,
            rng=self._rng,
            dtype=dtype_str(x),
        )
        if self.error_feedback:
            sent = densify(payload).astype(np.float64)
            self.residual = acc - sent
            norm = float(np.linalg.norm(acc))
            self._residual_ratio = float(np.linalg.norm(self.residual)) / norm if norm else 0.0
        self.round += 1
        return payload

    def decompress(self, payload: SparseArray) -> np.ndarray:
        return densify(payload)
