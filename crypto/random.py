"""Randomness for the crypto layer: the OS CSPRNG by default, a seeded source for tests.

Every function in :mod:`crypto` that needs randomness takes ``rng: RandomSource | None``;
``None`` means :data:`SYSTEM_RANDOM` (``os.urandom`` via :mod:`secrets`). Tests pass
``SeededRandom(seed)`` to get exact, repeatable known-answer vectors. A seeded source is **not**
secure and says so in its ``repr``.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Protocol, runtime_checkable

__all__ = ["RandomSource", "SystemRandom", "SeededRandom", "SYSTEM_RANDOM", "resolve"]


@runtime_checkable
class RandomSource(Protocol):
    """A source of uniformly random bytes and integers."""

    def random_bytes(self, n: int) -> bytes:
        """Return ``n`` uniformly random bytes."""
        ...

    def randbelow(self, upper: int) -> int:
        """Return a uniform integer in ``[0, upper)``; ``upper`` must be positive."""
        ...


class SystemRandom:
    """The operating system's CSPRNG (``secrets``). The default everywhere."""

    def random_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)

    def randbelow(self, upper: int) -> int:
        if upper <= 0:
            raise ValueError("upper bound must be positive")
        return secrets.randbelow(upper)

    def __repr__(self) -> str:
        return "SystemRandom()"


class SeededRandom:
    """Deterministic SHAKE-256 stream from a seed. For tests only -- never for real keys.

    ``randbelow`` uses rejection sampling over the byte stream, so it is exactly uniform.
    """

    def __init__(self, seed: int | bytes) -> None:
        if isinstance(seed, int):
            seed = seed.to_bytes(32, "big", signed=False)
        self._seed = bytes(seed)
        self._counter = 0

    def random_bytes(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("n must be non-negative")
        out = hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(n)
        self._counter += 1
        return out

    def randbelow(self, upper: int) -> int:
        if upper <= 0:
            raise ValueError("upper bound must be positive")
        nbits = upper.bit_length()
        nbytes = (nbits + 7) // 8
        excess = nbytes * 8 - nbits
        while True:
            value = int.from_bytes(self.random_bytes(nbytes), "big") >> excess
            if value < upper:
                return value

    def __repr__(self) -> str:
        return "SeededRandom(<insecure: for tests only>)"


SYSTEM_RANDOM: RandomSource = SystemRandom()


def resolve(rng: RandomSource | None) -> RandomSource:
    """Return ``rng`` or the system CSPRNG when ``rng`` is ``None``."""
    return SYSTEM_RANDOM if rng is None else rng
