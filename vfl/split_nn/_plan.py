"""What every party derives identically from the shared config: splits, batch order, handshake.

Rows are in PSI order at every party (row ``i`` is the same customer everywhere), so the
validation rows and each epoch's batch order are computed locally from ``seed`` and never sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from protocols.channel import Channel
from vfl.errors import VflError
from vfl.split_nn._config import SplitNNConfig
from vfl.split_nn._messages import TOPIC_HELLO, Hello, receive

__all__ = ["split_rows", "batches", "chunks", "handshake"]

IntArray = npt.NDArray[np.int64]


def split_rows(n_rows: int, config: SplitNNConfig) -> tuple[IntArray, IntArray]:
    """``(train positions, validation positions)``: a seeded permutation, the validation rows first."""
    order = np.random.default_rng([config.seed, 0x5A11]).permutation(n_rows).astype(np.int64)
    n_val = int(round(n_rows * config.validation_fraction))
    if n_rows - n_val < 2:
        raise VflError(f"{n_rows} rows are too few to train a split NN")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def batches(rows: IntArray, *, batch_size: int, seed: int, epoch: int) -> Iterator[IntArray]:
    """The epoch's mini-batches: ``rows`` shuffled by ``(seed, epoch)``, cut into ``batch_size``."""
    order = rows[np.random.default_rng([seed, epoch]).permutation(rows.size)]
    for start in range(0, order.size, batch_size):
        yield order[start : start + batch_size]


def chunks(n_rows: int, batch_size: int) -> Iterator[IntArray]:
    """Inference batches in row order."""
    for start in range(0, n_rows, batch_size):
        yield np.arange(start, min(start + batch_size, n_rows), dtype=np.int64)


def handshake(channel: Channel, peer: str, *, label_side: bool, info: Hello) -> Hello:
    """Exchange :class:`Hello` messages and check the shared fields (config, rows, train) agree."""
    if label_side:
        channel.send(peer, TOPIC_HELLO, info)
        other = receive(channel, peer, TOPIC_HELLO, Hello)
    else:
        other = receive(channel, peer, TOPIC_HELLO, Hello)
        channel.send(peer, TOPIC_HELLO, info)
    for key in ("config", "rows", "train"):
        mine, theirs = getattr(info, key), getattr(other, key)
        if mine != theirs:
            raise VflError(f"{peer} disagrees on {key}: {theirs!r} != {mine!r}")
    return other
