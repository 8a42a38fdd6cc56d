"""Configuration of a horizontal job: one frozen dataclass, validated on construction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from vfl.compression import UPDATE_COMPRESSIONS
from vfl.errors import ConfigError
from vfl.horizontal._aggregators import AGGREGATORS
from vfl.horizontal._dp import DpMode, DpSpec
from vfl.horizontal._models import LocalTraining
from vfl.horizontal._validation import ValidationPolicy

__all__ = ["FedConfig", "Mode"]


class Mode(Enum):
    """``sync``: rounds with a deadline. ``async``: FedBuff-style buffered, staleness-weighted."""

    SYNC = "sync"
    ASYNC = "async"


@dataclass(frozen=True)
class FedConfig:
    """Settings of the aggregator and of the clients' local training.

    FedProx is ``local.mu > 0`` (Li et al., MLSys 2020); personalisation is
    ``personalise_epochs > 0`` (k local epochs after global training, metrics before and after,
    at ``personalise_learning_rate``, default the local learning rate).
    ``clients_per_round=None`` samples every client. In async mode, ``concurrency`` clients train
    at once and the model is updated every ``buffer_size`` updates; ``rounds`` counts those updates
    of the model (Nguyen et al., "Federated Learning with Buffered Asynchronous Aggregation",
    AISTATS 2022, Alg. 1). ``secure_aggregation`` double-masks updates so the aggregator sees
    only their sum, and recovers from dropouts by secret sharing (:mod:`vfl.horizontal._secagg`).
    ``compression`` (``none``, ``q8``, ``q4``, ``topk``, ``topk+q8``, ``sketch``) compresses the
    clients' updates; ``compression_ratio`` is the fraction top-k keeps / the sketch's size.
    With ``secure_aggregation`` only ``q8`` (an 8-bit masking ring with a shared step) composes.
    ``dp`` adds differential privacy (:mod:`vfl.horizontal._dp`): record-level DP-SGD in the
    clients or central DP at the aggregator, accounted and budgeted per client.
    """

    rounds: int = 20
    clients_per_round: int | None = None
    min_clients: int = 1
    round_timeout: float = 60.0
    aggregator: str = "fedavg"
    aggregator_options: Mapping[str, Any] = field(default_factory=dict)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    server_lr: float = 1.0
    local: LocalTraining = field(default_factory=LocalTraining)
    personalise_epochs: int = 0
    personalise_learning_rate: float | None = None
    seed: int = 0
    mode: Mode = Mode.SYNC
    buffer_size: int = 3
    concurrency: int = 5
    staleness_exponent: float = 0.5
    secure_aggregation: bool = False
    compression: str = "none"
    compression_ratio: float = 0.1
    dp: DpSpec | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {self.rounds}")
        if self.clients_per_round is not None and self.clients_per_round < 1:
            raise ConfigError(f"clients_per_round must be >= 1, got {self.clients_per_round}")
        if self.min_clients < 1:
            raise ConfigError(f"min_clients must be >= 1, got {self.min_clients}")
        if not self.round_timeout > 0:
            raise ConfigError(f"round_timeout must be > 0, got {self.round_timeout}")
        if self.aggregator not in AGGREGATORS:
            raise ConfigError(
                f"aggregator: unknown {self.aggregator!r}; choose one of {', '.join(AGGREGATORS)}"
            )
        if not self.server_lr > 0:
            raise ConfigError(f"server_lr must be > 0, got {self.server_lr}")
        if self.personalise_epochs < 0:
            raise ConfigError(f"personalise_epochs must be >= 0, got {self.personalise_epochs}")
        if self.personalise_learning_rate is not None and not self.personalise_learning_rate > 0:
            raise ConfigError("personalise_learning_rate must be > 0")
        if self.buffer_size < 1 or self.concurrency < 1:
            raise ConfigError("buffer_size and concurrency must be >= 1")
        if self.secure_aggregation and (
            self.aggregator != "fedavg"
            or self.mode is not Mode.SYNC
            or self.validation.max_norm is not None
            or self.validation.norm_ratio is not None
        ):
            raise ConfigError(
                "secure_aggregation needs aggregator 'fedavg', sync mode and no norm bounds "
                "(the aggregator only sees the sum)"
            )
        if self.compression not in UPDATE_COMPRESSIONS:
            raise ConfigError(
                f"compression: unknown {self.compression!r}; "
                f"choose one of {', '.join(UPDATE_COMPRESSIONS)}"
            )
        if not 0 < self.compression_ratio <= 1:
            raise ConfigError(f"compression_ratio must be in (0, 1], got {self.compression_ratio}")
        if self.secure_aggregation and self.compression not in ("none", "q8"):
            raise ConfigError(
                f"compression {self.compression!r} does not compose with secure_aggregation "
                "(per-client index sets and ranges do not add up under the masks; use 'q8')"
            )
        if self.dp is not None:
            self._check_dp(self.dp)
        if self.staleness_exponent < 0:
            raise ConfigError(f"staleness_exponent must be >= 0, got {self.staleness_exponent}")

    def _check_dp(self, dp: DpSpec) -> None:
        if self.mode is not Mode.SYNC:
            raise ConfigError("dp needs sync mode (the accountant charges one round per task)")
        if dp.mode is DpMode.RECORD and self.personalise_epochs > 0:
            raise ConfigError(
                "personalise_epochs trains without DP: not allowed with dp = 'record'"
            )
        if dp.mode is DpMode.RECORD and self.local.epochs < 1:
            raise ConfigError("dp = 'record' needs local_epochs >= 1")
        if dp.mode is DpMode.CENTRAL and self.aggregator != "fedavg":
            # With secure_aggregation the clients clip (TrainTask.clip_norm) and the aggregator
            # noises the unmasked sum once.
            raise ConfigError(
                "dp = 'central' needs aggregator 'fedavg' (the aggregator clips each update)"
            )
