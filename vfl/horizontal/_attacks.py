"""Byzantine clients for robustness experiments: they wrap an honest :class:`FedClient` and
replace its update. Used by the tests and ``vfl bench fedavg`` to measure the robust aggregators.

* ``sign_flip``: ``-scale * u`` (a scaled sign-flipping attack, as in Allen-Zhu et al. 2021 and
  Karimireddy et al. 2021, Sec. 7);
* ``gaussian``: ``N(0, sigma^2 I)`` noise in place of the update (Blanchard et al. 2017, Sec. 5);
* ``alie``: "A Little Is Enough" (Baruch, Baruch & Goldberg, NeurIPS 2019, Alg. 3): the attacker
  estimates the coordinate-wise mean ``mu_j`` and standard deviation ``sigma_j`` of honest updates
  from updates computed on ``shards`` disjoint parts of its own data, and sends
  ``mu_j - z sigma_j`` with ``z = Phi^{-1}((n - s)/n)``, ``s = floor(n/2 + 1) - f`` (Sec. 3).
"""

from __future__ import annotations

from enum import Enum
from statistics import NormalDist

import numpy as np

from vfl.errors import ConfigError
from vfl.horizontal._client import FedClient
from vfl.horizontal._messages import ClientReport, ClientUpdate, Finish, ProfileSummary, TrainTask
from vfl.horizontal._models import LocalTraining

__all__ = ["Attack", "ByzantineClient", "alie_z"]


class Attack(Enum):
    SIGN_FLIP = "sign_flip"
    GAUSSIAN = "gaussian"
    ALIE = "alie"


def alie_z(*, n: int, f: int) -> float:
    """ALIE's ``z_max`` (Baruch et al. 2019, Sec. 3): ``Phi^{-1}((n - s) / n)``,
    ``s = floor(n/2 + 1) - f``.

    >>> round(alie_z(n=10, f=2), 4)
    0.2533
    """
    s = n // 2 + 1 - f
    if not 0 < n - s < n:
        raise ConfigError(f"ALIE needs 0 < s < n, got n={n}, f={f}")
    return NormalDist().inv_cdf((n - s) / n)


class ByzantineClient:
    """An honest client's data and model with a corrupted update."""

    def __init__(
        self,
        honest: FedClient,
        attack: Attack,
        *,
        scale: float = 10.0,
        sigma: float = 1.0,
        n_clients: int = 10,
        n_byzantine: int = 2,
        shards: int = 5,
        seed: int = 0,
    ) -> None:
        self.honest = honest
        self.attack = attack
        self.scale = scale
        self.sigma = sigma
        self.z = alie_z(n=n_clients, f=n_byzantine) if attack is Attack.ALIE else 0.0
        self.shards = shards
        self._rng = np.random.default_rng([seed, 0xBAD])

    def summary(self) -> ProfileSummary:
        return self.honest.summary()

    def finish(self, final: Finish) -> ClientReport:
        return self.honest.finish(final)

    def fit(self, task: TrainTask) -> ClientUpdate:
        honest = self.honest.fit(task)
        delta = np.asarray(honest.delta)
        if self.attack is Attack.SIGN_FLIP:
            bad = -self.scale * delta
        elif self.attack is Attack.GAUSSIAN:
            bad = self._rng.normal(0.0, self.sigma, size=delta.shape)
        else:
            bad = self._alie(task)
        return ClientUpdate(task.round, bad.astype(delta.dtype), honest.num_samples)

    def _alie(self, task: TrainTask) -> np.ndarray:
        settings = LocalTraining(
            epochs=task.epochs,
            learning_rate=task.learning_rate,
            batch_size=task.batch_size,
            mu=task.mu,
            l2=task.l2,
        )
        x, y = self.honest.x_train, self.honest.y_train
        parts = np.array_split(self._rng.permutation(y.size), self.shards)
        model = self.honest.model
        deltas = []
        for idx in parts:
            model.set_params(task.params)
            model.train(x[idx], y[idx], settings=settings, rng=self._rng)
            deltas.append(model.get_params() - task.params)
        stack = np.stack(deltas).astype(np.float64)
        out: np.ndarray = stack.mean(axis=0) - self.z * stack.std(axis=0)
        return out
