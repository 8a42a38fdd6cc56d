"""Local models for horizontal training: parameters as one flat float array, local SGD.

Every model implements :class:`LocalModel`: ``get_params()`` / ``set_params()`` move the whole
model to and from one flat array (what travels between clients and the aggregator), and
``train()`` runs local minibatch SGD on the proximal objective of FedProx (Li et al., "Federated
Optimization in Heterogeneous Networks", MLSys 2020, eq. 2)::

    h(w; w_g) = F(w) + (mu / 2) * ||w - w_g||^2

so ``mu = 0`` is plain FedAvg local training (McMahan et al., "Communication-Efficient Learning of
Deep Networks from Decentralized Data", AISTATS 2017, Algorithm 1, ClientUpdate). The torch models are in :mod:`vfl.horizontal._torch`, imported
only when used, so a party process that trains a logistic model never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vfl.errors import ConfigError

__all__ = [
    "LocalModel",
    "LocalTraining",
    "LogisticModel",
    "ModelFactory",
    "logistic_factory",
]


@dataclass(frozen=True)
class LocalTraining:
    """Local training settings of one round: epochs of minibatch SGD on the proximal objective."""

    epochs: int = 1
    learning_rate: float = 0.1
    batch_size: int = 64
    mu: float = 0.0
    l2: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"local.epochs must be >= 0, got {self.epochs}")
        if not self.learning_rate > 0:
            raise ConfigError(f"local.learning_rate must be > 0, got {self.learning_rate}")
        if self.batch_size < 1:
            raise ConfigError(f"local.batch_size must be >= 1, got {self.batch_size}")
        if self.mu < 0 or self.l2 < 0:
            raise ConfigError("local.mu and local.l2 must be >= 0")


class LocalModel(Protocol):
    """A model a client trains locally; the flat parameter array is its wire form."""

    def get_params(self) -> np.ndarray: ...

    def set_params(self, params: np.ndarray) -> None: ...

    def train(
        self, x: np.ndarray, y: np.ndarray, *, settings: LocalTraining, rng: np.random.Generator
    ) -> None:
        """Local SGD from the current parameters; the proximal anchor is the starting point."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


ModelFactory = Callable[[int], LocalModel]
"""Builds a fresh model for ``n_features`` inputs (same initial parameters on every call)."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


class LogisticModel:
    """Binary logistic regression ``p = sigmoid(x . w + b)``; params are ``[w..., b]`` (float64).

    Gradient of the mean log-loss on a batch B plus the proximal and L2 terms::

        g_w = X_B^T (p - y) / |B| + l2 * w + mu * (w - w_g)
        g_b = mean(p - y) + mu * (b - b_g)
    """

    def __init__(self, n_features: int) -> None:
        if n_features < 1:
            raise ConfigError(f"a logistic model needs at least one feature, got {n_features}")
        self._params = np.zeros(n_features + 1, dtype=np.float64)

    def get_params(self) -> np.ndarray:
        return self._params.copy()

    def set_params(self, params: np.ndarray) -> None:
        if params.shape != self._params.shape:
            raise ConfigError(f"expected {self._params.shape} parameters, got {params.shape}")
        self._params = np.asarray(params, dtype=np.float64).copy()

    def train(
        self, x: np.ndarray, y: np.ndarray, *, settings: LocalTraining, rng: np.random.Generator
    ) -> None:
        anchor = self._params.copy()
        w = self._params.copy()
        n = x.shape[0]
        for _ in range(settings.epochs):
            order = rng.permutation(n)
            for start in range(0, n, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                xb, yb = x[idx], y[idx]
                err = _sigmoid(xb @ w[:-1] + w[-1]) - yb
                grad = np.empty_like(w)
                grad[:-1] = xb.T @ err / idx.size + settings.l2 * w[:-1]
                grad[-1] = err.mean()
                if settings.mu:
                    grad += settings.mu * (w - anchor)
                w -= settings.learning_rate * grad
        self._params = w

    def per_sample_grads(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of each row's log-loss at ``params``: row ``i`` is ``[(p_i - y_i) x_i,
        p_i - y_i]`` with ``p_i = sigmoid(x_i . w + b)`` (for DP-SGD's per-sample clipping)."""
        w = np.asarray(params, dtype=np.float64)
        xb = np.asarray(x, dtype=np.float64)
        err = _sigmoid(xb @ w[:-1] + w[-1]) - np.asarray(y, dtype=np.float64)
        return np.hstack([err[:, None] * xb, err[:, None]])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(x @ self._params[:-1] + self._params[-1])


def logistic_factory() -> ModelFactory:
    """Factory of zero-initialised :class:`LogisticModel`."""
    return LogisticModel
