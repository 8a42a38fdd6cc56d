"""Splitting a pooled data set over simulated clients (for experiments and benchmarks)."""

from __future__ import annotations

import numpy as np

from vfl.errors import ConfigError

__all__ = ["dirichlet_split"]


def dirichlet_split(
    y: np.ndarray, *, n_clients: int, alpha: float, seed: int = 0, min_size: int = 10
) -> list[np.ndarray]:
    """Label-skewed split (Hsu, Qi & Brown, "Measuring the Effects of Non-Identical Data
    Distribution", 2019): for each class ``k``, proportions ``p_k ~ Dir(alpha * 1_n)`` over the
    clients, and the class's rows are dealt out by ``p_k``. Redrawn (up to 100 times) until every
    client has at least ``min_size`` rows. Returns row indices per client.
    """
    if n_clients < 2 or not alpha > 0:
        raise ConfigError(
            f"dirichlet_split needs n_clients >= 2 and alpha > 0, got {n_clients}, {alpha}"
        )
    y = np.asarray(y).ravel()
    rng = np.random.default_rng([seed, 0xD1])
    for _ in range(100):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for k in np.unique(y):
            rows = rng.permutation(np.flatnonzero(y == k))
            cuts = (np.cumsum(rng.dirichlet(np.full(n_clients, alpha))) * rows.size).astype(int)
            for i, chunk in enumerate(np.split(rows, cuts[:-1])):
                parts[i].append(chunk)
        out = [np.sort(np.concatenate(p)) for p in parts]
        if min(p.size for p in out) >= min_size:
            return out
    raise ConfigError(f"no Dirichlet({alpha}) split gives every client {min_size} rows")
