"""Compression of array payloads: 8/4-bit stochastic quantisation, top-k with error feedback
and sparsity schedules (positions and value codes range-coded), count sketch. Every compressor turns a float array into a typed payload
(a ``@message_type`` dataclass the ``struct`` codec carries over any channel) and records the
bytes before (as float32) and after in ``compressor.stats``. A receiver needs no compressor:
:func:`decompress` reads any payload.

>>> import numpy as np
>>> comp = make_compressor("q8", seed=0)
>>> payload = comp.compress(np.linspace(-1, 1, 4096, dtype=np.float32))
>>> decompress(payload).shape, round(comp.stats[-1].ratio, 2)
((4096,), 3.79)
"""

import numpy as np

from vfl.compression._base import Compressor
from vfl.compression._payloads import (
    FORMAT_VERSION,
    REFERENCE_DTYPE,
    CompressionError,
    CompressionStats,
    QuantizedArray,
    SketchedArray,
    payload_nbytes,
)
from vfl.compression._quantize import Quantizer, dequantize, quantize
from vfl.compression._registry import (
    COMPRESSORS,
    UPDATE_COMPRESSIONS,
    CompressorName,
    make_compressor,
    update_compressor,
)
from vfl.compression._sketch import CountSketch, sketch, unsketch
from vfl.compression._sparse import (
    AdaptiveSparsity,
    ConstantSparsity,
    SparsitySchedule,
    TopK,
    WarmupSparsity,
    densify,
    sparsify,
)
from vfl.compression._sparse_wire import SPARSE_FORMAT_VERSION, SparseArray, sparse_breakdown

__all__ = [
    "COMPRESSORS",
    "FORMAT_VERSION",
    "REFERENCE_DTYPE",
    "SPARSE_FORMAT_VERSION",
    "UPDATE_COMPRESSIONS",
    "AdaptiveSparsity",
    "CompressionError",
    "CompressionStats",
    "Compressor",
    "CompressorName",
    "ConstantSparsity",
    "CountSketch",
    "QuantizedArray",
    "Quantizer",
    "SketchedArray",
    "SparseArray",
    "SparsitySchedule",
    "TopK",
    "WarmupSparsity",
    "decompress",
    "densify",
    "dequantize",
    "make_compressor",
    "payload_nbytes",
    "quantize",
    "sketch",
    "sparse_breakdown",
    "sparsify",
    "unsketch",
    "update_compressor",
]


def decompress(payload: QuantizedArray | SparseArray | SketchedArray) -> np.ndarray:
    """Decode any compressed payload back to a dense array of its original shape and dtype."""
    if isinstance(payload, QuantizedArray):
        return dequantize(payload)
    if isinstance(payload, SparseArray):
        return densify(payload)
    if isinstance(payload, SketchedArray):
        return unsketch(payload)
    raise CompressionError(f"not a compressed payload: {type(payload).__qualname__}")
