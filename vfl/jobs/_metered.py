"""A channel wrapper that counts the payload bytes this party sends (for ``bytes_sent``).

The count is the payload size before the envelope and codec framing: arrays by ``nbytes``,
Paillier ciphertexts by the key's fixed ciphertext width, ints by their byte length, containers
summed. It does not re-encode anything, so it costs nothing next to the transport.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from protocols.channel import Channel

__all__ = ["MeteredChannel", "payload_bytes"]


def payload_bytes(payload: Any) -> int:
    """Approximate encoded size of ``payload`` in bytes."""
    if payload is None or isinstance(payload, bool):
        return 1
    if isinstance(payload, bytes | bytearray):
        return len(payload)
    if isinstance(payload, np.ndarray):
        return int(payload.nbytes)
    if isinstance(payload, int):
        return (payload.bit_length() + 8) // 8
    if isinstance(payload, float):
        return 8
    if isinstance(payload, str):
        return len(payload.encode())
    if isinstance(payload, Mapping):
        return sum(payload_bytes(k) + payload_bytes(v) for k, v in payload.items())
    if isinstance(payload, list | tuple):
        return sum(payload_bytes(v) for v in payload)
    key = getattr(payload, "public_key", None)
    width = getattr(key, "ciphertext_bytes", None)
    size = getattr(payload, "size", None)
    if isinstance(width, int) and isinstance(size, int):
        return width * size
    to_bytes = getattr(payload, "to_bytes", None)
    if callable(to_bytes):
        return len(to_bytes())
    return 0


class MeteredChannel(Channel):
    """Delegates to ``inner`` and adds up :func:`payload_bytes` of every message sent."""

    def __init__(self, inner: Channel) -> None:
        self._inner = inner
        self.bytes_sent = 0
        self.messages_sent = 0

    @property
    def party(self) -> str:
        return self._inner.party

    @property
    def peers(self) -> tuple[str, ...]:
        return self._inner.peers

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        self._inner.send(peer, topic, payload, round=round)
        self.bytes_sent += payload_bytes(payload)
        self.messages_sent += 1

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        return self._inner.recv(peer, topic, timeout=timeout)

    def broadcast(
        self, topic: str, payload: Any, *, peers: Iterable[str] | None = None, round: int = 0
    ) -> None:
        for peer in self.peers if peers is None else peers:
            self.send(peer, topic, payload, round=round)

    def close(self) -> None:
        self._inner.close()
