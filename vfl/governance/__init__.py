"""Governance: the tamper-evident audit trail and the model registry (issue 9, items 1 and 2).

* :class:`AuditLog` -- per-party, append-only, hash-chained, Ed25519-signed SQLite log;
  :func:`verify` finds the first edited, inserted, deleted or reordered record and truncation
  against peers' :class:`SignedHead` s (exchanged with :func:`exchange_heads`);
  :func:`export_report` writes JSON / CSV reports; :meth:`AuditLog.apply_retention` expires
  round payloads, never the chain.
* :class:`ModelRegistry` -- semantic versions, stages, metadata, lineage, promotion policy,
  rollback, staged rollout; :func:`coordinate_change` / :func:`follow_change` apply a promote or
  rollback at every party; :func:`check_compatibility` refuses a version an old peer cannot handle.
* :class:`Monitor` -- per-round history, convergence and alert rules (plateau, dropouts, silent
  party, slow round) logged and audited; :func:`render_prometheus` exposes it as Prometheus text.
"""

from vfl.governance._audit import DEFAULT_RETENTION, AuditLog
from vfl.governance._coordinate import RegistryChange, coordinate_change, follow_change
from vfl.governance._errors import (
    AuditError,
    AuditTampered,
    GovernanceError,
    IncompatibleVersion,
    PromotionBlocked,
    RegistryError,
    StageTransitionError,
)
from vfl.governance._events import (
    CATEGORIES,
    EventKind,
    category_of,
    record_approval,
    record_crypto,
    record_data_fingerprint,
    record_dp_parameters,
    record_epsilon_spent,
    record_hyperparameters,
    record_job_finished,
    record_job_started,
    record_participants,
    record_psi_result,
    record_round_metrics,
)
from vfl.governance._export import ExportFormat, build_report, export_report
from vfl.governance._heads import exchange_heads
from vfl.governance._model import ModelMetadata, ModelVersion, PromotionPolicy
from vfl.governance._monitor import (
    Alert,
    AlertKind,
    AlertRules,
    Monitor,
    MonitoredRound,
    dropout_rate,
    evaluate_alerts,
    loss_deltas,
    rounds_since_improvement,
    silent_parties,
)
from vfl.governance._prometheus import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from vfl.governance._prometheus import render_prometheus
from vfl.governance._records import AuditRecord, SignedHead
from vfl.governance._registry import ModelRegistry
from vfl.governance._stages import (
    MODEL_FORMAT_VERSION,
    PROTOCOL_VERSION,
    SUPPORTED_MODEL_FORMATS,
    SUPPORTED_PROTOCOLS,
    TRANSITIONS,
    SemVer,
    Stage,
    check_compatibility,
)
from vfl.governance._verify import VerifyResult, load_heads_file, verify, write_heads_file

__all__ = [
    "AuditLog",
    "AuditRecord",
    "SignedHead",
    "DEFAULT_RETENTION",
    "verify",
    "VerifyResult",
    "exchange_heads",
    "load_heads_file",
    "write_heads_file",
    "export_report",
    "build_report",
    "ExportFormat",
    "EventKind",
    "CATEGORIES",
    "category_of",
    "record_job_started",
    "record_job_finished",
    "record_data_fingerprint",
    "record_psi_result",
    "record_participants",
    "record_hyperparameters",
    "record_crypto",
    "record_dp_parameters",
    "record_epsilon_spent",
    "record_round_metrics",
    "record_approval",
    "ModelRegistry",
    "ModelVersion",
    "ModelMetadata",
    "PromotionPolicy",
    "Stage",
    "TRANSITIONS",
    "SemVer",
    "check_compatibility",
    "MODEL_FORMAT_VERSION",
    "PROTOCOL_VERSION",
    "SUPPORTED_MODEL_FORMATS",
    "SUPPORTED_PROTOCOLS",
    "RegistryChange",
    "coordinate_change",
    "follow_change",
    "Monitor",
    "MonitoredRound",
    "Alert",
    "AlertKind",
    "AlertRules",
    "evaluate_alerts",
    "loss_deltas",
    "rounds_since_improvement",
    "dropout_rate",
    "silent_parties",
    "render_prometheus",
    "PROMETHEUS_CONTENT_TYPE",
    "GovernanceError",
    "AuditError",
    "AuditTampered",
    "RegistryError",
    "StageTransitionError",
    "PromotionBlocked",
    "IncompatibleVersion",
]
