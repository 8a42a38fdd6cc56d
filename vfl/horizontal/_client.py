"""The client side: local data, local training, and the loop that answers the aggregator.

:class:`FedClient` holds the state (data, model, validation split); :func:`run_client` is the
transport loop over a :class:`~protocols.channel.Channel`. Anything with ``summary``, ``fit`` and
``finish`` methods (:class:`Participant`) can take part -- the Byzantine clients of
:mod:`vfl.horizontal._attacks` wrap a :class:`FedClient` this way.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from protocols.channel import Channel
from vfl.errors import ConfigError, VflError
from vfl.horizontal._compress import UpdateEncoder
from vfl.horizontal._dp_accounting import ClientPrivacy
from vfl.horizontal._heterogeneity import client_summary
from vfl.horizontal._messages import (
    TOPIC_PROFILE,
    TOPIC_REPORT,
    TOPIC_TASK,
    TOPIC_UPDATE,
    ClientReport,
    ClientUpdate,
    Finish,
    ProfileSummary,
    TrainTask,
)
from vfl.horizontal._models import LocalModel, LocalTraining, ModelFactory
from vfl.horizontal._secagg_round import client_secure_round
from vfl.metrics import auc

__all__ = ["FedClient", "Participant", "ClientResult", "run_client"]

_log = logging.getLogger("vfl.horizontal")


class Participant(Protocol):
    """What :func:`run_client` drives."""

    def summary(self) -> ProfileSummary: ...

    def fit(self, task: TrainTask) -> ClientUpdate: ...

    def finish(self, final: Finish) -> ClientReport: ...


def _safe_auc(y: np.ndarray, p: np.ndarray) -> float:
    try:
        return auc(y, p)
    except VflError:
        return math.nan


class FedClient:
    """One client's data and model. ``val_fraction`` of the rows (seeded) are held out locally to
    measure the global model and the personalised one."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        model_factory: ModelFactory,
        val_fraction: float = 0.2,
        seed: int = 0,
        privacy: ClientPrivacy | None = None,
    ) -> None:
        self.privacy = privacy
        """Record-level DP: local training is DP-SGD, accounted; the profile carries no data."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if x.ndim != 2 or x.shape[0] != y.size or y.size < 2:
            raise ConfigError(f"client data: need x (n, d) and y (n,), got {x.shape} and {y.shape}")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self._rng = np.random.default_rng([seed, 0xC11E])
        perm = self._rng.permutation(y.size)
        n_val = int(round(val_fraction * y.size))
        val, train = perm[:n_val], perm[n_val:]
        self.x_train, self.y_train = x[train], y[train]
        self.x_val, self.y_val = x[val], y[val]
        self.model: LocalModel = model_factory(x.shape[1])

    @property
    def num_samples(self) -> int:
        return int(self.y_train.size)

    def summary(self) -> ProfileSummary:
        if self.privacy is not None:  # label counts and quantiles are not DP: send neither
            return ProfileSummary({}, np.zeros((0, self.x_train.shape[1])), self.num_samples)
        counts, sketch = client_summary(self.x_train, self.y_train)
        return ProfileSummary(counts, sketch, self.num_samples)

    def local_update(self, params: np.ndarray, settings: LocalTraining) -> np.ndarray:
        """Train from ``params`` on this client's rows; return ``new - params``."""
        self.model.set_params(params)
        if self.privacy is not None:
            self.privacy.train(self.model, self.x_train, self.y_train, settings=settings)
        else:
            self.model.train(self.x_train, self.y_train, settings=settings, rng=self._rng)
        delta: np.ndarray = self.model.get_params() - params
        return delta.astype(params.dtype)

    def fit(self, task: TrainTask) -> ClientUpdate:
        settings = LocalTraining(
            epochs=task.epochs,
            learning_rate=task.learning_rate,
            batch_size=task.batch_size,
            mu=task.mu,
            l2=task.l2,
        )
        return ClientUpdate(task.round, self.local_update(task.params, settings), self.num_samples)

    def evaluate(self, params: np.ndarray) -> float:
        """AUC of ``params`` on the local validation rows (NaN if they hold one class)."""
        self.model.set_params(params)
        return _safe_auc(self.y_val, self.model.predict_proba(self.x_val))

    def finish(self, final: Finish) -> ClientReport:
        metrics = {"auc_global": self.evaluate(final.params), "num_val": float(self.y_val.size)}
        if final.personalise_epochs > 0:
            settings = LocalTraining(
                epochs=final.personalise_epochs,
                learning_rate=final.learning_rate,
                batch_size=final.batch_size,
            )
            self.model.set_params(final.params)
            self.model.train(self.x_train, self.y_train, settings=settings, rng=self._rng)
            metrics["auc_personalised"] = _safe_auc(
                self.y_val, self.model.predict_proba(self.x_val)
            )
        return ClientReport(metrics)


@dataclass(frozen=True)
class ClientResult:
    """What a client did: rounds it trained, and its final report (None if it never got one)."""

    rounds_trained: tuple[int, ...]
    report: ClientReport | None


def run_client(
    channel: Channel,
    participant: Participant,
    *,
    aggregator: str,
    idle_timeout: float = 600.0,
) -> ClientResult:
    """Answer the aggregator until it sends :class:`Finish`: profile, then one update per task.

    A ``secure`` task runs the secure-aggregation steps (:mod:`vfl.horizontal._secagg_round`):
    the client sends ``mask(n_i * delta_i)``. A task naming a ``compression`` gets its update
    compressed, with this client's error-feedback state kept here across rounds.
    """
    channel.send(aggregator, TOPIC_PROFILE, participant.summary())
    encoder = UpdateEncoder()
    trained: list[int] = []
    while True:
        msg = channel.recv(aggregator, TOPIC_TASK, timeout=idle_timeout)
        if isinstance(msg, Finish):
            report = participant.finish(msg)
            channel.send(aggregator, TOPIC_REPORT, report)
            return ClientResult(tuple(trained), report)
        if not isinstance(msg, TrainTask):
            raise VflError(f"unexpected message on {TOPIC_TASK}: {type(msg).__name__}")
        if msg.secure:
            fit = functools.partial(participant.fit, msg)
            if client_secure_round(channel, msg, fit, aggregator=aggregator,
                                   timeout=idle_timeout):  # fmt: skip
                trained.append(msg.round)
            continue
        update = encoder.encode(participant.fit(msg), msg)
        channel.send(aggregator, TOPIC_UPDATE, update, round=msg.round)
        trained.append(msg.round)
        _log.debug("%s: sent update for round %d", channel.party, msg.round)
