"""The parsed job file (DESIGN.md "The job file"): frozen sections every layer may read.

:func:`vfl.jobs.parse_job` builds a :class:`Job`; the learning packages receive it through
:class:`vfl.core.PartyContext` and never import :mod:`vfl.jobs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vfl.errors import ConfigError

__all__ = [
    "CryptoSection",
    "EvaluationSection",
    "Job",
    "JobSection",
    "MonitorSection",
    "PartySection",
]


@dataclass(frozen=True)
class JobSection:
    id: str
    type: str
    label_party: str | None = None
    aggregator: str | None = None
    model_name: str | None = None


@dataclass(frozen=True)
class PartySection:
    name: str
    data: Path
    id_column: str
    test_data: Path | None = None
    label_column: str | None = None
    features: tuple[str, ...] | None = None


@dataclass(frozen=True)
class CryptoSection:
    scheme: str = "paillier"
    key_bits: int = 2048
    obfuscator: str = "djn"
    precision_bits: int = 16


@dataclass(frozen=True)
class EvaluationSection:
    test_fraction: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class MonitorSection:
    """``[monitor]``: thresholds of the alert rules (vfl.governance.AlertRules)."""

    plateau_rounds: int = 5
    min_delta: float = 0.0
    max_dropout: float = 0.2
    silent_rounds: int = 3
    round_time_limit: float | None = None


@dataclass(frozen=True)
class Job:
    """A parsed job file. ``model`` is the settings its kind's ``parse_model`` returned."""

    job: JobSection
    parties: Mapping[str, PartySection]
    crypto: CryptoSection
    evaluation: EvaluationSection
    model: Any
    psi: Mapping[str, Any] = field(default_factory=dict)
    digest: str = ""
    model_table: Mapping[str, Any] = field(default_factory=dict)
    monitor: MonitorSection = field(default_factory=MonitorSection)

    @property
    def model_name(self) -> str:
        """The registry name of this job's model: ``job.model_name``, else ``TYPE-PARTY-PARTY...``.

        Runs of the same job type over the same parties share a name, so each new version's
        parent is the previous version (lineage)."""
        return self.job.model_name or "-".join([self.job.type, *sorted(self.parties)])

    def party(self, name: str) -> PartySection:
        if name not in self.parties:
            raise ConfigError(
                f"party {name!r} is not in this job file (parties: {', '.join(sorted(self.parties))}); is this the right file?"
            )
        return self.parties[name]

    @property
    def feature_parties(self) -> list[str]:
        return sorted(p for p in self.parties if p != self.job.label_party)

    def check_data(
        self, name: str, df: pd.DataFrame, *, what: str = "data", features: bool = True
    ) -> None:
        """Columns this party's ``data``/``test_data`` must have; errors before any training.

        ``features=False`` (a kind that reads no features, such as ``psi``) checks only the id
        and label columns."""
        section = self.party(name)
        if section.id_column not in df.columns:
            raise ConfigError(f"parties.{name}.{what}: id column {section.id_column!r} is missing")
        if section.label_column is not None and section.label_column not in df.columns:
            raise ConfigError(
                f"parties.{name}.{what}: label column {section.label_column!r} is missing"
            )
        if not features:
            return
        lp = self.job.label_party
        label = self.parties[lp].label_column if lp is not None and lp in self.parties else None
        if name != self.job.label_party and label is not None and label in df.columns:
            raise ConfigError(
                f"parties.{name}.{what}: holds the label column {label!r}, but {name} is a feature party; remove it from its data"
            )
        columns = (
            list(section.features)
            if section.features is not None
            else [c for c in df.columns if c not in (section.id_column, section.label_column)]
        )
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ConfigError(
                f"parties.{name}.{what}: feature column(s) missing: {', '.join(missing)}"
            )
        if not columns:
            raise ConfigError(f"parties.{name}.{what}: no feature columns")
        for column in columns:
            if not pd.api.types.is_numeric_dtype(df[column]) or pd.api.types.is_bool_dtype(
                df[column]
            ):
                raise ConfigError(
                    f"parties.{name}.{what}: feature column {column!r} is not numeric (dtype {df[column].dtype})"
                )
