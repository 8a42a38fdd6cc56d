"""Masks and noise drawn from an injected :class:`crypto.random.RandomSource`.

Masks protect values in the protocol, so they come from the OS CSPRNG by default (``rng=None``);
tests pass ``SeededRandom`` for exact runs. ``uniform``: 53 random bits per value mapped to
``[-bound, bound)``; ``gaussian``: Box-Muller on two such uniforms.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crypto.random import RandomSource, resolve

__all__ = ["uniform", "gaussian"]

FloatArray = npt.NDArray[np.float64]


def _unit(shape: tuple[int, ...], rng: RandomSource | None) -> FloatArray:
    """Uniform floats in ``[0, 1)`` with 53 random bits each."""
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.frombuffer(resolve(rng).random_bytes(8 * count), dtype="<u8")
    return ((raw >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(shape)


def uniform(shape: tuple[int, ...], *, bound: float, rng: RandomSource | None = None) -> FloatArray:
    """Uniform mask in ``[-bound, bound)``."""
    return (2.0 * _unit(shape, rng) - 1.0) * bound


def gaussian(shape: tuple[int, ...], *, std: float, rng: RandomSource | None = None) -> FloatArray:
    """Gaussian noise ``N(0, std^2)`` per entry (Box-Muller: ``sqrt(-2 ln u1) cos(2 pi u2)``)."""
    u1 = 1.0 - _unit(shape, rng)  # in (0, 1]
    u2 = _unit(shape, rng)
    return std * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
