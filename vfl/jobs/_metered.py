"""A channel wrapper that counts payload bytes per peer, both ways, and when each peer was last heard.

The count is the payload size before the envelope and codec framing: arrays by ``nbytes``,
Paillier ciphertexts by the key's fixed ciphertext width, ints by their byte length, containers
and typed messages (dataclasses) summed over their items and fields. It does not re-encode anything, so it costs nothing next to the transport. The counters
feed ``bytes_sent`` of the result, the per-peer figures of ``status.json`` and the monitor's
silent-party rule (a peer whose received bytes did not grow during a round was silent in it).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocols.channel import Channel

__all__ = ["MeteredChannel", "PeerTraffic", "payload_bytes"]


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
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        return sum(payload_bytes(getattr(payload, f.name)) for f in dataclasses.fields(payload))
    key = getattr(payload, "public_key", None)
    width = getattr(key, "ciphertext_bytes", None)
    size = getattr(payload, "size", None)
    if isinstance(width, int) and isinstance(size, int):
        return width * size
    to_bytes = getattr(payload, "to_bytes", None)
    if callable(to_bytes):
        return len(to_bytes())
    return 0


@dataclass(frozen=True)
class PeerTraffic:
    """What this party exchanged with one peer so far; ``last_seen`` is unix time or ``None``."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    last_seen: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_seen": self.last_seen,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        }


class MeteredChannel(Channel):
    """Delegates to ``inner`` and counts :func:`payload_bytes` per peer, sent and received.

    ``now`` is the injected wall clock for ``last_seen`` (default :func:`time.time`). Thread-safe:
    protocols may send from a helper thread while the main thread receives.
    """

    def __init__(self, inner: Channel, *, now: Callable[[], float] | None = None) -> None:
        self._inner = inner
        self._now = now or time.time
        self._lock = threading.Lock()
        self._traffic: dict[str, PeerTraffic] = {}

    @property
    def party(self) -> str:
        return self._inner.party

    @property
    def peers(self) -> tuple[str, ...]:
        return self._inner.peers

    def _add(self, peer: str, *, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            old = self._traffic.get(peer, PeerTraffic())
            self._traffic[peer] = PeerTraffic(
                bytes_sent=old.bytes_sent + sent,
                bytes_received=old.bytes_received + received,
                messages_sent=old.messages_sent + (1 if not received else 0),
                messages_received=old.messages_received + (1 if received else 0),
                last_seen=self._now() if received else old.last_seen,
            )

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        self._inner.send(peer, topic, payload, round=round)
        self._add(peer, sent=payload_bytes(payload))

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        payload = self._inner.recv(peer, topic, timeout=timeout)
        self._add(peer, received=max(1, payload_bytes(payload)))
        return payload

    def broadcast(
        self, topic: str, payload: Any, *, peers: Iterable[str] | None = None, round: int = 0
    ) -> None:
        for peer in self.peers if peers is None else peers:
            self.send(peer, topic, payload, round=round)

    def close(self) -> None:
        self._inner.close()

    # -- counters -----------------------------------------------------------------------------

    def traffic(self) -> dict[str, PeerTraffic]:
        """Per-peer counters now (a copy); peers never talked to are absent."""
        with self._lock:
            return dict(self._traffic)

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return sum(t.bytes_sent for t in self._traffic.values())

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return sum(t.bytes_received for t in self._traffic.values())

    @property
    def messages_sent(self) -> int:
        with self._lock:
            return sum(t.messages_sent for t in self._traffic.values())
