"""A registered model version: its metadata, the record the registry keeps, the promotion policy."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vfl.governance._errors import PromotionBlocked, RegistryError
from vfl.governance._stages import Stage

__all__ = ["ModelMetadata", "ModelVersion", "PromotionPolicy", "sha256_file"]


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelMetadata:
    """What a model version records about how it was made.

    ``metrics`` maps participant type (``label``, ``feature``, ...) to its training metrics;
    ``validation_metrics`` are measured on held-out data and gate promotion to production.
    """

    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    data_version: str = ""
    participants: Mapping[str, str] = field(default_factory=dict)
    training_seconds: float = 0.0
    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    validation_metrics: Mapping[str, float] = field(default_factory=dict)
    dp: Mapping[str, Any] | None = None
    code_version: str = ""
    job_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "hyperparameters": dict(self.hyperparameters),
            "data_version": self.data_version,
            "participants": dict(self.participants),
            "training_seconds": self.training_seconds,
            "metrics": {k: dict(v) for k, v in self.metrics.items()},
            "validation_metrics": dict(self.validation_metrics),
            "dp": None if self.dp is None else dict(self.dp),
            "code_version": self.code_version,
            "job_id": self.job_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        unknown = set(data) - set(cls().to_dict())
        if unknown:
            raise RegistryError(f"unknown model metadata key {sorted(unknown)[0]!r}")
        return cls(**data)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: str
    stage: Stage
    created: str
    metadata: ModelMetadata
    parent: str | None
    artefact_path: str
    artefact_sha256: str
    model_format: int
    protocol_version: int

    @property
    def label(self) -> str:
        return f"model {self.name} {self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "stage": str(self.stage),
            "created": self.created,
            "metadata": self.metadata.to_dict(),
            "parent": self.parent,
            "artefact_path": self.artefact_path,
            "artefact_sha256": self.artefact_sha256,
            "model_format": self.model_format,
            "protocol_version": self.protocol_version,
        }


@dataclass(frozen=True)
class PromotionPolicy:
    """Promotion to production needs ``validation_metrics[metric]`` better than ``minimum``."""

    metric: str = "test_auc"
    minimum: float = 0.5
    higher_is_better: bool = True

    def check(self, model: ModelVersion) -> None:
        value = model.metadata.validation_metrics.get(self.metric)
        if value is None:
            raise PromotionBlocked(
                f"{model.label} cannot go to production: no held-out validation metric "
                f"{self.metric!r}"
            )
        good = value >= self.minimum if self.higher_is_better else value <= self.minimum
        if not good:
            sign = ">=" if self.higher_is_better else "<="
            raise PromotionBlocked(
                f"{model.label} cannot go to production: {self.metric}={value:g} fails "
                f"{sign} {self.minimum:g}"
            )
