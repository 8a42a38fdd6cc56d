"""A pool of obfuscators ``x = r^n mod n^2`` computed ahead of time (the offline phase).

Encryption is ``(1 + m*n) * x mod n^2``; with ``x`` precomputed, the online cost is one modular
multiplication per value. Each obfuscator is handed out exactly once: reusing ``x`` for two
ciphertexts would reveal the ratio of their plaintexts' ``g``-powers (``c1 / c2 = g^(m1 - m2)``).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from crypto.errors import CryptoUsageError
from crypto.paillier._obfuscators import OBFUSCATORS
from crypto.random import RandomSource

if TYPE_CHECKING:
    from crypto.paillier._keys import PaillierPublicKey
    from crypto.paillier._private_key import PaillierPrivateKey

__all__ = ["ObfuscatorPool"]


class ObfuscatorPool:
    """Precomputed obfuscators for one public key; :meth:`take` never returns one twice.

    ``obfuscator`` is ``"standard"`` (default) or ``"djn"`` (see ``_obfuscators``). A key owner
    may pass ``private_key`` to fill with the faster CRT method (same distribution as standard).
    Thread-safe.
    """

    def __init__(
        self,
        public_key: PaillierPublicKey,
        *,
        rng: RandomSource | None = None,
        obfuscator: str = "standard",
        private_key: PaillierPrivateKey | None = None,
    ) -> None:
        if obfuscator not in OBFUSCATORS:
            raise CryptoUsageError(
                f"unknown obfuscator {obfuscator!r}: choose one of {OBFUSCATORS}"
            )
        if private_key is not None and private_key.public_key != public_key:
            raise CryptoUsageError("private key does not match the public key")
        self._key = public_key
        self._private_key = private_key
        self._rng = rng
        self._obfuscator = obfuscator
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()

    @property
    def public_key(self) -> PaillierPublicKey:
        return self._key

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __repr__(self) -> str:
        return f"ObfuscatorPool(available={len(self)}, obfuscator={self._obfuscator!r})"

    def fill(self, n: int, *, processes: int | None = None) -> None:
        """Compute ``n`` more obfuscators (over ``processes`` worker processes when given)."""
        if n < 0:
            raise CryptoUsageError("fill count must be non-negative")
        if self._private_key is not None and self._obfuscator == "standard":
            fresh = self._private_key.raw_obfuscators(n, rng=self._rng, processes=processes)
        else:
            fresh = self._key.raw_obfuscators(
                n, rng=self._rng, obfuscator=self._obfuscator, processes=processes
            )
        with self._lock:
            self._items.extend(fresh)

    def take(self, k: int) -> list[Any]:
        """Remove and return ``k`` obfuscators; fewer than ``k`` left raises :class:`CryptoUsageError`."""
        if k < 0:
            raise CryptoUsageError("take count must be non-negative")
        with self._lock:
            if k > len(self._items):
                raise CryptoUsageError(
                    f"obfuscator pool has {len(self._items)} left, {k} needed: fill it first"
                )
            return [self._items.popleft() for _ in range(k)]
