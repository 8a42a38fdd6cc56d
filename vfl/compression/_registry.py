"""The one registry of compressors: :class:`CompressorName` -> a factory with a real signature.

``q8`` / ``q4``: stochastic quantisation (unbiased, no state). ``topk`` / ``topk-q8`` /
``topk-q4``: top-k with error feedback (``keep`` = fraction kept), values float32 or 8/4-bit;
positions and codes range-coded (:mod:`vfl.compression._sparse_wire`). ``countsketch``: a count
sketch decoded by the median of rows.

A federated job names its update compression in the job file (``[model] compression``) with the
strings of :data:`UPDATE_COMPRESSIONS` (``none``, ``q8``, ``q4``, ``topk``, ``topk+q8``,
``sketch``), each mapped to a registry entry; :func:`update_compressor` builds it from the job's
one ``compression_ratio``. The update sketch has 5 rows whose table holds ``ratio`` of the
entries. It gets no error feedback: its per-entry decoding error can exceed the entry itself (it
is not a contractive compressor), and feeding that error back makes training diverge. It recovers
the heavy entries of heavy-tailed updates; dense updates (a logistic regression's) do not train
with it at 10 % (measured in the tests).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from typing import Any

from vfl.compression._base import Compressor
from vfl.compression._payloads import CompressionError
from vfl.compression._quantize import DEFAULT_BUCKET, Quantizer
from vfl.compression._sketch import CountSketch
from vfl.compression._sparse import SparsitySchedule, TopK

__all__ = [
    "COMPRESSORS",
    "UPDATE_COMPRESSIONS",
    "CompressorName",
    "make_compressor",
    "update_compressor",
]


class CompressorName(enum.StrEnum):
    """A registered compressor (its value is the name in benchmarks and ``stats``)."""

    Q8 = "q8"
    Q4 = "q4"
    TOPK = "topk"
    TOPK_Q8 = "topk-q8"
    TOPK_Q4 = "topk-q4"
    COUNTSKETCH = "countsketch"


def _q8(*, bucket_size: int = DEFAULT_BUCKET, seed: int | None = None) -> Compressor:
    return Quantizer(bits=8, bucket_size=bucket_size, seed=seed)


def _q4(*, bucket_size: int = DEFAULT_BUCKET, seed: int | None = None) -> Compressor:
    return Quantizer(bits=4, bucket_size=bucket_size, seed=seed)


def _topk_with(value_bits: int | None) -> Callable[..., Compressor]:
    def factory(
        *,
        keep: float = 0.1,
        schedule: SparsitySchedule | None = None,
        error_feedback: bool = True,
        seed: int | None = None,
    ) -> Compressor:
        return TopK(
            keep=keep,
            schedule=schedule,
            value_bits=value_bits,
            error_feedback=error_feedback,
            seed=seed,
        )

    return factory


def _countsketch(
    *,
    rows: int = 5,
    cols: int | None = None,
    width_fraction: float = 0.02,
    seed: int = 0,
    top_k: int | None = None,
) -> Compressor:
    return CountSketch(rows=rows, cols=cols, width_fraction=width_fraction, seed=seed, top_k=top_k)


COMPRESSORS: Mapping[CompressorName, Callable[..., Compressor]] = {
    CompressorName.Q8: _q8,
    CompressorName.Q4: _q4,
    CompressorName.TOPK: _topk_with(None),
    CompressorName.TOPK_Q8: _topk_with(8),
    CompressorName.TOPK_Q4: _topk_with(4),
    CompressorName.COUNTSKETCH: _countsketch,
}

#: Job-file names of update compressions -> the registry entry (``None``: send dense updates).
UPDATE_COMPRESSIONS: Mapping[str, CompressorName | None] = {
    "none": None,
    "q8": CompressorName.Q8,
    "q4": CompressorName.Q4,
    "topk": CompressorName.TOPK,
    "topk+q8": CompressorName.TOPK_Q8,
    "sketch": CompressorName.COUNTSKETCH,
}
_SKETCH_ROWS = 5


def make_compressor(name: CompressorName | str, **options: Any) -> Compressor:
    """A new compressor from the registry; ``options`` go to its factory (see each signature)."""
    try:
        key = CompressorName(name)
    except ValueError:
        raise CompressionError(
            f"unknown compressor {str(name)!r}; known: {sorted(COMPRESSORS)}"
        ) from None
    return COMPRESSORS[key](**options)


def update_compressor(name: str, *, ratio: float, seed: int | None = None) -> Compressor | None:
    """A fresh compressor for the job-file name ``name`` (``None`` for ``"none"``); ``ratio`` in
    ``(0, 1]`` is the fraction top-k keeps or the size of the sketch relative to the update."""
    if name not in UPDATE_COMPRESSIONS:
        raise CompressionError(
            f"unknown update compression {name!r}; choose one of {', '.join(UPDATE_COMPRESSIONS)}"
        )
    if not (0.0 < ratio <= 1.0 and math.isfinite(ratio)):
        raise CompressionError(f"compression ratio must be in (0, 1], got {ratio}")
    kind = UPDATE_COMPRESSIONS[name]
    if kind is None:
        return None
    factory = COMPRESSORS[kind]
    if kind in (CompressorName.Q8, CompressorName.Q4):
        return factory(seed=seed)
    if kind is CompressorName.COUNTSKETCH:
        return factory(
            rows=_SKETCH_ROWS, width_fraction=min(1.0, ratio / _SKETCH_ROWS), seed=seed or 0
        )
    return factory(keep=ratio, seed=seed)
