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

__all__ = ["BLOCK_BYTES", "PayloadHasher", "payload_digest"]

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
    """Incremental digest over data arriving in pieces of any size."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._hashes: list[bytes] = []
        self.size = 0

    def update(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        self.size += len(view)
        pos = 0
        if self._pending:
            take = min(BLOCK_BYTES - len(self._pending), len(view))
            self._pending += view[:take]
            pos = take
            if len(self._pending) < BLOCK_BYTES:
                return
            self._hashes.append(hashlib.sha256(self._pending).digest())
            self._pending = bytearray()
        while len(view) - pos >= BLOCK_BYTES:
            self._hashes.append(hashlib.sha256(view[pos : pos + BLOCK_BYTES]).digest())
            pos += BLOCK_BYTES
        self._pending += view[pos:]

    def digest(self) -> bytes:
        hashes = list(self._hashes)
        if self._pending:
            hashes.append(hashlib.sha256(self._pending).digest())
        return _finish(self.size, hashes)


def _blocks(parts: Iterable[Buffer]) -> Iterator[Buffer]:
    """The payload's blocks, as views where a block lies inside one part (no copy)."""
    pending = bytearray()
    for part in parts:
        view = memoryview(part).cast("B")
        pos = 0
        if pending:
            take = min(BLOCK_BYTES - len(pending), len(view))
            pending += view[:take]
            pos = take
            if len(pending) < BLOCK_BYTES:
                continue
            yield bytes(pending)
            pending = bytearray()
        while len(view) - pos >= BLOCK_BYTES:
            yield view[pos : pos + BLOCK_BYTES]
            pos += BLOCK_BYTES
        pending += view[pos:]
    if pending:
        yield bytes(pending)


def _sha256(block: Buffer) -> bytes:
    return hashlib.sha256(block).digest()


def payload_digest(parts: Iterable[Buffer]) -> bytes:
    """The digest of the concatenation of ``parts``; large payloads are hashed on 2 threads
    (``hashlib`` releases the GIL), without concatenating them."""
    parts = list(parts)
    size = sum(memoryview(p).nbytes for p in parts)
    if size < _PARALLEL_FROM:
        return _finish(size, map(_sha256, _blocks(parts)))
    with ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="vfl-digest") as pool:
        return _finish(size, pool.map(_sha256, _blocks(parts)))
