"""Compressed model updates in FedAvg: the client's encoder (with its error-feedback state) and
the aggregator's decoder. The codecs are :mod:`vfl.compression`; this module only maps a
:class:`TrainTask`'s ``compression`` setting onto them.

How compression composes with secure aggregation: only ``q8``, and not through this module. A
masked update is uniform in its ring, so nothing can be compressed after masking; compressing
before masking needs a codec that is linear with parameters shared by all clients. The secure
round does that itself (:func:`vfl.horizontal._secagg.encode_ring8`: a shared step, an 8-bit
ring); per-client top-k index sets, per-client ranges and error feedback do not add up under the
masks, so the configuration refuses every other compression with ``secure_aggregation``.
"""

from __future__ import annotations

import numpy as np

from vfl.compression import (
    Compressor,
    QuantizedArray,
    SketchedArray,
    SparseArray,
    decompress,
    update_compressor,
)
from vfl.errors import VflError
from vfl.horizontal._messages import ClientUpdate, CompressedUpdate, TrainTask

__all__ = ["UpdateEncoder", "decode_update"]


class UpdateEncoder:
    """One client's update compressor; a new one (and fresh error feedback) whenever the task's
    compression setting changes."""

    def __init__(self, *, seed: int | None = None) -> None:
        self._seed = seed
        self._key: tuple[str, float] | None = None
        self._codec: Compressor | None = None

    def encode(self, update: ClientUpdate, task: TrainTask) -> ClientUpdate | CompressedUpdate:
        key = (task.compression, float(task.compression_ratio))
        if key != self._key:
            self._key = key
            self._codec = update_compressor(key[0], ratio=key[1], seed=self._seed)
        if self._codec is None:
            return update
        payload = self._codec.compress(np.asarray(update.delta))
        if not isinstance(payload, QuantizedArray | SparseArray | SketchedArray):
            raise VflError(f"compressor {key[0]!r} made {type(payload).__name__}, not a payload")
        return CompressedUpdate(update.round, payload, update.num_samples)


def decode_update(msg: ClientUpdate | CompressedUpdate, *, width: int) -> ClientUpdate:
    """The dense :class:`ClientUpdate` of what a client sent; a malformed payload raises
    :class:`VflError` naming the problem."""
    if isinstance(msg, ClientUpdate):
        return msg
    payload = msg.payload
    if not isinstance(payload, QuantizedArray | SparseArray | SketchedArray):
        raise VflError(f"compressed update holds {type(payload).__name__}, not a payload")
    if int(np.prod(payload.shape)) != width:
        raise VflError(f"compressed update has {np.prod(payload.shape)} entries, expected {width}")
    dense = np.asarray(decompress(payload)).ravel()  # the dtype the client compressed
    return ClientUpdate(msg.round, dense, msg.num_samples)
