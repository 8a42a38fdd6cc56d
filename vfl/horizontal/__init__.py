"""Horizontal federated learning: FedAvg / FedProx over the secure channel layer, with update
validation, robust aggregation, stragglers, checkpoints, personalisation and a heterogeneity
profile. See docs/protocols/fedavg.md for the roles, messages and leakage table.
"""

from typing import TYPE_CHECKING, Any

from vfl.horizontal._aggregator import FedResult, run_aggregator
from vfl.horizontal._aggregators import (
    AGGREGATORS,
    DEFAULT_ROBUST,
    Aggregate,
    Aggregator,
    make_aggregator,
)
from vfl.horizontal._attacks import Attack, ByzantineClient, alie_z
from vfl.horizontal._buffered import run_buffered_aggregator
from vfl.horizontal._checkpoint import load_checkpoint, save_checkpoint
from vfl.horizontal._client import ClientResult, FedClient, Participant, run_client
from vfl.horizontal._clustered import ClusteredResult, cosine_clusters, run_clustered_aggregator
from vfl.horizontal._config import FedConfig, Mode
from vfl.horizontal._dp import DpMode, DpPlan, DpSpec, dp_sgd_train, parse_dp, plan_dp
from vfl.horizontal._dp_accounting import ClientPrivacy, JobPrivacy
from vfl.horizontal._heterogeneity import (
    chi2_sf,
    chi_square_homogeneity,
    client_summary,
    ks_statistic,
    profile,
    save_profile,
    wasserstein1,
)
from vfl.horizontal._job import FedJobModel, parse_fedavg_model, run_fedavg_job
from vfl.horizontal._kind import FEDAVG, FedAvgKind, report_round
from vfl.horizontal._messages import (
    ClientReport,
    ClientUpdate,
    CompressedUpdate,
    Finish,
    ProfileSummary,
    TrainTask,
)
from vfl.horizontal._models import (
    LocalModel,
    LocalTraining,
    LogisticModel,
    ModelFactory,
    logistic_factory,
)
from vfl.horizontal._partition import dirichlet_split
from vfl.horizontal._server import FedServer, RoundRecord, staleness_weight
from vfl.horizontal._simulate import AGGREGATOR_NAME, simulate
from vfl.horizontal._validation import (
    Reputation,
    ValidationPolicy,
    Verdict,
    validate_round,
    validate_update,
)

__all__ = [
    "AGGREGATORS",
    "AGGREGATOR_NAME",
    "DEFAULT_ROBUST",
    "FEDAVG",
    "Aggregate",
    "Aggregator",
    "Attack",
    "ByzantineClient",
    "ClientPrivacy",
    "ClientReport",
    "ClientResult",
    "ClientUpdate",
    "ClusteredResult",
    "CompressedUpdate",
    "DpMode",
    "DpPlan",
    "DpSpec",
    "FedAvgKind",
    "FedClient",
    "FedConfig",
    "FedJobModel",
    "FedResult",
    "FedServer",
    "Finish",
    "JobPrivacy",
    "LocalModel",
    "LocalTraining",
    "LogisticModel",
    "Mode",
    "ModelFactory",
    "Participant",
    "ProfileSummary",
    "Reputation",
    "RoundRecord",
    "TorchModel",
    "TrainTask",
    "ValidationPolicy",
    "Verdict",
    "alie_z",
    "chi2_sf",
    "chi_square_homogeneity",
    "client_summary",
    "cosine_clusters",
    "dirichlet_split",
    "dp_sgd_train",
    "ks_statistic",
    "load_checkpoint",
    "logistic_factory",
    "make_aggregator",
    "mlp_factory",
    "parse_dp",
    "parse_fedavg_model",
    "plan_dp",
    "profile",
    "report_round",
    "run_aggregator",
    "run_buffered_aggregator",
    "run_client",
    "run_clustered_aggregator",
    "run_fedavg_job",
    "save_checkpoint",
    "save_profile",
    "simulate",
    "staleness_weight",
    "validate_round",
    "validate_update",
    "wasserstein1",
]

if TYPE_CHECKING:
    from vfl.horizontal._torch import TorchModel, mlp_factory


def __getattr__(name: str) -> Any:
    """``TorchModel`` and ``mlp_factory`` import torch, so they load on first use."""
    if name in ("TorchModel", "mlp_factory"):
        from vfl.horizontal import _torch

        return getattr(_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
