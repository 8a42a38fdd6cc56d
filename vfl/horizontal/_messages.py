"""Wire messages of the horizontal protocol (typed, frozen; encoded by the ``struct`` codec).

Topics: ``fl/profile`` and ``fl/secagg-key`` (client -> aggregator, once), ``fl/task`` (aggregator -> client: a
:class:`TrainTask` or the final :class:`Finish`), ``fl/update`` (client -> aggregator, tagged with
the round it answers), ``fl/report`` (client -> aggregator after :class:`Finish`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from protocols.messages import message_type

__all__ = [
    "TOPIC_PROFILE",
    "TOPIC_TASK",
    "TOPIC_UPDATE",
    "TOPIC_REPORT",
    "TOPIC_SECAGG_KEY",
    "SecAggKey",
    "ProfileSummary",
    "TrainTask",
    "Finish",
    "ClientUpdate",
    "ClientReport",
]

TOPIC_PROFILE = "fl/profile"
TOPIC_TASK = "fl/task"
TOPIC_UPDATE = "fl/update"
TOPIC_REPORT = "fl/report"
TOPIC_SECAGG_KEY = "fl/secagg-key"


@message_type("fl.SecAggKey")
@dataclass(frozen=True)
class SecAggKey:
    """A client's X25519 public key for secure aggregation (sent once, after the profile)."""

    public_key: bytes


@message_type("fl.ProfileSummary")
@dataclass(frozen=True)
class ProfileSummary:
    """A client's label counts and per-feature quantile sketch (``(q, d)``), for the profile."""

    label_counts: dict[str, int]
    quantiles: np.ndarray
    num_samples: int


@message_type("fl.TrainTask")
@dataclass(frozen=True)
class TrainTask:
    """Train from ``params`` for one round (``round`` is the model version in async mode)."""

    round: int
    params: np.ndarray
    epochs: int
    learning_rate: float
    batch_size: int
    mu: float
    l2: float
    peers: dict[str, bytes] = field(default_factory=dict)
    """Secure aggregation: every participant's X25519 public key (empty: updates in clear)."""


@message_type("fl.Finish")
@dataclass(frozen=True)
class Finish:
    """Training is over: the final global parameters, and local fine-tuning epochs (may be 0)."""

    params: np.ndarray
    personalise_epochs: int
    learning_rate: float
    batch_size: int


@message_type("fl.ClientUpdate")
@dataclass(frozen=True)
class ClientUpdate:
    """``delta = local params - params of round``; ``num_samples`` weights FedAvg."""

    round: int
    delta: np.ndarray
    num_samples: int


@message_type("fl.ClientReport")
@dataclass(frozen=True)
class ClientReport:
    """Local validation metrics of the global model, and after personalisation if it ran."""

    metrics: dict[str, float]
