"""The compressors a federated run can put on its model updates, by job-file name.

``q8`` / ``q4``: stochastic quantisation (unbiased, no state). ``topk`` / ``topk+q8``: top-k with
error feedback (``ratio`` = fraction kept), values float32 or 8-bit; positions and 8-bit codes
range-coded (:mod:`vfl.compression._sparse_wire`). ``sketch``: a 5-row count
sketch whose table holds ``ratio`` of the entries (decoded by the median of rows). The sketch
gets no error feedback: its per-entry decoding error can exceed the entry itself (it is not a
contractive compressor), and feeding that error back makes training diverge. It recovers the
heavy entries of heavy-tailed updates; dense updates (a logistic regression's) do not train
with it at 10 % (measured in the tests).
"""

from __future__ import annotations

import math

from vfl.compression._base import Compressor
from vfl.compression._payloads import CompressionError
from vfl.compression._quantize import Quantizer
from vfl.compression._sketch import CountSketch
from vfl.compression._sparse import TopK

__all__ = ["UPDATE_COMPRESSIONS", "update_compressor"]

UPDATE_COMPRESSIONS = ("none", "q8", "q4", "topk", "topk+q8", "sketch")
_SKETCH_ROWS = 5


def update_compressor(name: str, *, ratio: float, seed: int | None = None) -> Compressor | None:
    """A fresh compressor for ``name`` (``None`` for ``"none"``); ``ratio`` in ``(0, 1]``."""
    if name not in UPDATE_COMPRESSIONS:
        raise CompressionError(
            f"unknown update compression {name!r}; choose one of {', '.join(UPDATE_COMPRESSIONS)}"
        )
    if not (0.0 < ratio <= 1.0 and math.isfinite(ratio)):
        raise CompressionError(f"compression ratio must be in (0, 1], got {ratio}")
    if name == "none":
        return None
    if name in ("q8", "q4"):
        return Quantizer(bits=int(name[1]), seed=seed)
    if name == "topk":
        return TopK(keep=ratio, seed=seed)
    if name == "topk+q8":
        return TopK(keep=ratio, value_bits=8, seed=seed)
    return CountSketch(rows=_SKETCH_ROWS, width_fraction=min(1.0, ratio / _SKETCH_ROWS),
                       seed=seed or 0)  # fmt: skip
