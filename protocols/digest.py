"""The payload digest signed inside every envelope: a one-level SHA-256 hash list.

::

    digest = SHA-256( "vfl/payload/v1" | u64 size | SHA-256(block_0) | SHA-256(block_1) | ... )

with blocks of ``BLOCK_BYTES`` (1 MiB; the last one may be shorter; an empty payload has no
blocks). It is as binding as SHA-256 of the whole payload (a collision in the list needs a
SHA-256 collision), but the blocks can be hashed in parallel by the sender and one at a time, in
bounded memory, by a receiver that streams the payload to disk. Blocks are independent of how the
transport cuts the stream into chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

__all__ = ["BLOCK_BYTES", "PayloadHasher", "payload_digest", "recut"]

BLOCK_BYTES = 1 << 20
_DOMAIN = b"vfl/payload/v1"
_PARALLEL_FROM = 8 * BLOCK_BYTES
_WORKERS = 2

Buffer = bytes | bytearray | memoryview


def _finish(size: int, block_hashes: Iterable[bytes]) -> bytes:
    outer = hashlib.sha256(_DOMAIN + size.to_bytes(8, "big"))
    for h in block_hashes:
        outer.update(h)
    return outer.digest()


class PayloadHasher:
    """Incremental digest over data arriving in pieces of any size (hashed in place: no copies)."""

    def __init__(self) -> None:
        self._block = hashlib.sha256()
        self._block_len = 0
        self._hashes: list[bytes] = []
        self.size = 0

    def update(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        self.size += len(view)
        pos, end = 0, len(view)
        if self._block_len:
            take = min(BLOCK_BYTES - self._block_len, end)
            self._block.update(view[:take])
            self._block_len += take
            pos = take
            if self._block_len < BLOCK_BYTES:
                return
            self._hashes.append(self._block.digest())
            self._block, self._block_len = hashlib.sha256(), 0
        while end - pos >= BLOCK_BYTES:
            self._hashes.append(hashlib.sha256(view[pos : pos + BLOCK_BYTES]).digest())
            pos += BLOCK_BYTES
        if pos < end:
            self._block.update(view[pos:])
            self._block_len = end - pos

    def digest(self) -> bytes:
        hashes = list(self._hashes)
        if self._block_len:
            hashes.append(self._block.digest())
        return _finish(self.size, hashes)


def recut(parts: Iterable[Buffer], size: int) -> Iterator[tuple[memoryview, ...]]:
    """``parts`` re-cut into consecutive pieces of ``size`` bytes (the last may be shorter), each
    given as the views of the parts it spans: nothing is copied. Used for the digest's blocks and
    for the gRPC transport's chunks."""
    pieces: list[memoryview] = []
    filled = 0
    for part in parts:
        view = memoryview(part).cast("B")
        pos, end = 0, len(view)
        if filled:
            take = min(size - filled, end)
            pieces.append(view[:take])
            filled += take
            pos = take
            if filled < size:
                continue
            yield tuple(pieces)
            pieces, filled = [], 0
        while end - pos >= size:
            yield (view[pos : pos + size],)
            pos += size
        if pos < end:
            pieces.append(view[pos:])
            filled = end - pos
    if filled:
        yield tuple(pieces)


def _sha256(block: tuple[memoryview, ...]) -> bytes:
    if len(block) == 1:
        return hashlib.sha256(block[0]).digest()
    h = hashlib.sha256()
    for piece in block:
        h.update(piece)
    return h.digest()


def payload_digest(parts: Iterable[Buffer]) -> bytes:
    """The digest of the concatenation of ``parts``; large payloads are hashed on 2 threads
    (``hashlib`` releases the GIL), without concatenating or copying them."""
    parts = list(parts)
    size = sum(memoryview(p).nbytes for p in parts)
    if size < _PARALLEL_FROM:
        return _finish(size, map(_sha256, recut(parts, BLOCK_BYTES)))
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="vfl-digest") as pool:
        return _finish(size, pool.map(_sha256, recut(parts, BLOCK_BYTES)))
