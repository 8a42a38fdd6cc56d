"""L2 clipping: fixed, and adaptive quantile clipping (Andrew, Thakkar, McMahan, Ramaswamy,
"Differentially Private Learning with Adaptive Clipping", NeurIPS 2021).

Fixed clipping scales an update ``x`` to ``x * min(1, C / ||x||_2)``, which bounds the L2
sensitivity of a sum of clipped updates by ``C`` (add/remove one contributor).

Adaptive clipping tracks the ``gamma``-quantile of the contributors' update norms. Each round every
contributor reports the bit ``b_i = 1[||x_i|| <= C]``; the server forms the noisy fraction
``b = (sum_i b_i + N(0, sigma_b^2)) / n`` and updates geometrically (Andrew et al., Eq. (2))::

    C <- C * exp(-eta * (b - gamma))

Releasing the noisy count costs privacy too; Andrew et al. (Theorem 1) keep the total cost equal
to a plain Gaussian mechanism with noise multiplier ``z`` by giving the update itself the
multiplier ``z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2)`` (:func:`split_noise_multiplier`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from crypto.random import RandomSource

__all__ = ["clip_l2", "AdaptiveClipper", "split_noise_multiplier"]


def clip_l2(x: np.ndarray, *, clip_norm: float) -> tuple[np.ndarray, float]:
    """``x * min(1, C / ||x||_2)`` as ``float64``, and the norm before clipping."""
    if not clip_norm > 0:
        raise ValueError(f"clip norm must be positive, got {clip_norm}")
    arr = np.asarray(x, dtype=np.float64)
    norm = float(np.linalg.norm(arr.ravel()))
    if not math.isfinite(norm):
        raise ValueError("cannot clip an update with non-finite entries")
    if norm <= clip_norm:
        return arr.copy(), norm
    return arr * (clip_norm / norm), norm


def split_noise_multiplier(*, noise_multiplier: float, count_stddev: float) -> float:
    """Noise multiplier left for the update when the clipped-count query uses ``count_stddev``.

    ``z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2)`` (Andrew et al. 2021, Theorem 1); needs
    ``sigma_b > z / 2``.
    """
    if noise_multiplier <= 0 or count_stddev <= 0:
        raise ValueError("noise multiplier and count stddev must be positive")
    rest = noise_multiplier**-2 - (2 * count_stddev) ** -2
    if rest <= 0:
        raise ValueError(
            f"count stddev {count_stddev} must exceed half the noise multiplier {noise_multiplier}"
        )
    return float(rest**-0.5)


@dataclass(kw_only=True)
class AdaptiveClipper:
    """Geometric quantile tracking of the clip norm (Andrew et al. 2021, Algorithm 1).

    ``target_quantile`` is ``gamma``, ``learning_rate`` is ``eta``, ``count_stddev`` is
    ``sigma_b``, the noise on the count of unclipped contributors (Andrew et al. suggest
    ``expected contributors / 20``). ``count_stddev=0`` releases the clip norm without noise,
    which is *not* differentially private: it warns (:class:`InsecureNoiseWarning`).
    """

    clip_norm: float
    count_stddev: float
    target_quantile: float = 0.5
    learning_rate: float = 0.2

    def __post_init__(self) -> None:
        if not self.clip_norm > 0:
            raise ValueError(f"clip norm must be positive, got {self.clip_norm}")
        if not 0.0 < self.target_quantile < 1.0:
            raise ValueError(f"target quantile must be in (0, 1), got {self.target_quantile}")
        if self.learning_rate <= 0 or self.count_stddev < 0:
            raise ValueError("learning rate must be positive and count stddev non-negative")
        if self.count_stddev == 0:
            from vfl.privacy._mechanisms import InsecureNoiseWarning

            warnings.warn(
                "adaptive clipping with count_stddev=0 releases the clip norm without noise: "
                "not differentially private",
                InsecureNoiseWarning,
                stacklevel=3,
            )

    def clip(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        """Clip with the current norm; also returns the contributor's bit ``||x|| <= C``."""
        clipped, norm = clip_l2(x, clip_norm=self.clip_norm)
        return clipped, norm <= self.clip_norm

    def update(self, bits: list[bool] | np.ndarray, *, rng: RandomSource | None = None) -> float:
        """Update ``C`` from the round's bits (noised with ``count_stddev``); returns new ``C``.

        The count noise is drawn with the exact discrete Gaussian sampler
        (:func:`vfl.privacy._sampler.discrete_gaussian`), as the count is an integer.
        """
        from vfl.privacy._sampler import discrete_gaussian

        arr = np.asarray(bits, dtype=bool)
        if arr.size == 0:
            raise ValueError("adaptive clipping needs at least one contributor's bit")
        count = float(arr.sum())
        if self.count_stddev > 0:
            count += discrete_gaussian(self.count_stddev**2, rng)
        fraction = count / arr.size
        self.clip_norm *= math.exp(-self.learning_rate * (fraction - self.target_quantile))
        return self.clip_norm
