"""Obfuscators computed while this party waits for its peers (the offline phase of encryption).

Paillier encryption is ``(1 + m n) x mod n^2`` with an obfuscator ``x`` (``r^n`` or DJN's
``h_s^a``); computing ``x`` is nearly all of its cost and does not depend on ``m``. A
:class:`Precomputer` fills an :class:`crypto.paillier.ObfuscatorPool` in a daemon thread, but only
while the protocol thread is blocked in ``recv`` (``IdleChannel`` sets the ``idle`` event around
every ``recv``), so it uses time that would otherwise be lost waiting and never competes with the
protocol's own arithmetic. The pool hands out every obfuscator once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from crypto.paillier import ObfuscatorPool
from protocols.channel import Channel

__all__ = ["CHUNK", "IdleChannel", "Precomputer"]

CHUNK = 16  # obfuscators per step: a few milliseconds, so the thread yields quickly


class IdleChannel(Channel):
    """Delegates to ``inner``; ``idle`` is set while a ``recv`` is blocked."""

    def __init__(self, inner: Channel, idle: threading.Event) -> None:
        self._inner = inner
        self._idle = idle

    @property
    def party(self) -> str:
        return self._inner.party

    @property
    def peers(self) -> tuple[str, ...]:
        return self._inner.peers

    @property
    def bytes_sent(self) -> int | None:
        return self._inner.bytes_sent

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        self._inner.send(peer, topic, payload, round=round)

    def broadcast(
        self, topic: str, payload: Any, *, peers: Iterable[str] | None = None, round: int = 0
    ) -> None:
        self._inner.broadcast(topic, payload, peers=peers, round=round)

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        self._idle.set()
        try:
            return self._inner.recv(peer, topic, timeout=timeout)
        finally:
            self._idle.clear()

    def attest(self, statement: bytes) -> bytes:
        return self._inner.attest(statement)

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        return self._inner.check_attestation(signer, statement, signature)

    def switch_session(self, session_id: str) -> None:
        self._inner.switch_session(session_id)

    def close(self) -> None:
        self._inner.close()


class Precomputer:
    """Keeps ``pool`` at ``target`` obfuscators, working only while ``idle`` is set."""

    def __init__(self, pool: ObfuscatorPool, *, target: int, idle: threading.Event) -> None:
        self.pool = pool
        self._target = target
        self._idle = idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="obfuscator-precompute", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if len(self.pool) >= self._target or not self._idle.wait(timeout=0.05):
                self._stop.wait(0.005)
                continue
            self.pool.fill(CHUNK)

    def stop(self) -> None:
        """Stop the thread (idempotent); obfuscators left in the pool are discarded with it."""
        self._stop.set()
        self._thread.join()
