"""Label-leakage defence: per-sample clipping and Gaussian noise on the cut-layer gradient.

The label party computes ``delta_i = dL/dz_i`` (the gradient at the interactive layer's output
for sample ``i``; it depends on the label ``y_i`` and on the model, not on other samples' labels).
Everything a feature party receives about labels is computed from ``delta``: its embedding
gradient ``delta W_H^T``. The defence replaces, in that path only, each per-sample gradient
``g_i = b * delta_i`` (``b`` = batch size, undoing the mean over the batch) by

    g~_i = g_i * min(1, C / ||g_i||) + N(0, sigma^2 C^2 I)

and sends ``delta~_i = g~_i / b`` on. Guarantee (Gaussian differential privacy, Dong, Roth and Su,
"Gaussian Differential Privacy", JRSS-B 2022, Thm 2.7 and Cor 3.3): for two labels of sample ``i``
the clipped gradients differ by at most ``2C``, so one release is ``mu``-GDP for the label with
``mu = 2 / sigma``; ``T`` releases of the same sample (one per epoch) compose to
``mu_T = 2 sqrt(T) / sigma``. The trade-off curve of ``mu``-GDP is that of testing ``N(0, 1)``
against ``N(mu, 1)``, whose ROC area is ``Phi(mu / sqrt 2)``; so **any** label-inference attack
on one sample from everything the feature party receives (the norm and direction attacks of
Li et al., "Label Leakage and Protection in Two-party Split Learning", ICLR 2022, included) has
ROC AUC at most ``Phi(sqrt(2 T) / sigma)`` (:func:`leak_auc_bound`). Post-processing keeps this:
``delta~ W_H^T`` is a function of ``delta~`` and of weights the feature party does not know.

The weight gradient ``h^T delta`` travels only masked (see the protocol page), so it is not noised.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from crypto.random import RandomSource
from vfl.split_nn._config import DefenceConfig
from vfl.split_nn._random import gaussian

__all__ = ["defend", "leak_auc_bound"]

FloatArray = npt.NDArray[np.float64]


def defend(
    delta: FloatArray, *, config: DefenceConfig, rng: RandomSource | None = None
) -> FloatArray:
    """``delta~`` from ``delta`` (``b x m``, gradient of the batch-mean loss) as in the module doc.

    Returns ``delta`` unchanged when the defence is off (``noise_multiplier == 0``).
    """
    if not config.enabled:
        return delta
    b = delta.shape[0]
    per_sample = delta * b
    norms = np.linalg.norm(per_sample, axis=1, keepdims=True)
    clipped = per_sample * np.minimum(1.0, config.clip / np.maximum(norms, 1e-12))
    noise = gaussian(per_sample.shape, std=config.noise_multiplier * config.clip, rng=rng)
    return np.asarray((clipped + noise) / b, dtype=np.float64)


def leak_auc_bound(*, noise_multiplier: float, releases: int) -> float:
    """Upper bound ``Phi(sqrt(2 T) / sigma)`` on any label attack's AUC after ``T`` releases.

    >>> round(leak_auc_bound(noise_multiplier=10.0, releases=2), 3)
    0.579
    """
    if noise_multiplier <= 0:
        return 1.0
    mu_over_sqrt2 = math.sqrt(2.0 * releases) / noise_multiplier
    return 0.5 * (1.0 + math.erf(mu_over_sqrt2 / math.sqrt(2.0)))
