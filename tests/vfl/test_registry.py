"""The model registry: versions, stages, promotion policy, rollback, rollout, compatibility."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from vfl.governance import (
    AuditLog,
    EventKind,
    IncompatibleVersion,
    ModelMetadata,
    ModelRegistry,
    PromotionBlocked,
    PromotionPolicy,
    RegistryError,
    SemVer,
    Stage,
    StageTransitionError,
    check_compatibility,
    verify,
)

from ._governance_helpers import StepClock, key


def _meta(auc: float | None = 0.8) -> ModelMetadata:
    return ModelMetadata(
        hyperparameters={"learning_rate": 0.1, "epochs": 5},
        data_version="ab" * 32,
        participants={"bank": "label", "retailer": "feature"},
        training_seconds=12.5,
        metrics={"label": {"train_loss": 0.4}, "feature": {"bytes_sent": 1024.0}},
        validation_metrics={} if auc is None else {"test_auc": auc},
        dp={"epsilon": 3.0, "delta": 1e-5},
        code_version="0.1.0+abc",
        job_id="credit-1",
    )


@pytest.fixture()
def artefact(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights-v1")
    return path


@pytest.fixture()
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "reg.db", party="bank", now=StepClock())


def _production(registry: ModelRegistry, artefact: Path, n: int) -> list[str]:
    versions = []
    for _ in range(n):
        model = registry.register("credit", artefact=artefact, metadata=_meta(), actor="alice")
        registry.promote("credit", model.version, to="staging", actor="alice")
        registry.promote("credit", model.version, actor="alice")
        versions.append(model.version)
    return versions


def _current(registry: ModelRegistry) -> str | None:
    model = registry.production("credit")
    return None if model is None else model.version


def test_semver() -> None:
    assert SemVer.parse("1.2.3") < SemVer.parse("1.10.0")
    assert str(SemVer.parse("1.2.3").bump("major")) == "2.0.0"
    assert str(SemVer.parse("1.2.3").bump("patch")) == "1.2.4"
    for bad in ("1.2", "01.2.3", "1.2.3-rc1", "v1.2.3"):
        with pytest.raises(RegistryError, match="MAJOR.MINOR.PATCH"):
            SemVer.parse(bad)


def test_register_versions_metadata_and_lineage(registry: ModelRegistry, artefact: Path) -> None:
    first = registry.register("credit", artefact=artefact, metadata=_meta(), actor="alice")
    assert (first.version, first.stage) == ("0.1.0", Stage.CANDIDATE)
    second = registry.register(
        "credit", artefact=artefact, metadata=_meta(), actor="alice", parent="0.1.0", bump="major"
    )
    assert second.version == "1.0.0" and second.parent == "0.1.0"
    assert second.metadata == _meta()
    assert second.artefact_sha256 == hashlib.sha256(b"weights-v1").hexdigest()
    with pytest.raises(RegistryError, match="not above"):
        registry.register("credit", artefact=artefact, metadata=_meta(), actor="a", version="0.9.0")
    with pytest.raises(RegistryError, match="no model credit version 9.9.9"):
        registry.register("credit", artefact=artefact, metadata=_meta(), actor="a", parent="9.9.9")
    assert [m.version for m in registry.versions("credit")] == ["0.1.0", "1.0.0"]
    assert stat.S_IMODE(os.stat(registry.path).st_mode) == 0o600
    registry.verify_artefact("credit", "1.0.0")
    artefact.write_bytes(b"swapped")
    with pytest.raises(RegistryError, match="hash changed"):
        registry.verify_artefact("credit", "1.0.0")


def test_stage_transitions_enforced(registry: ModelRegistry, artefact: Path) -> None:
    model = registry.register("credit", artefact=artefact, metadata=_meta(), actor="a")
    with pytest.raises(StageTransitionError, match="from candidate to production"):
        registry.promote("credit", model.version, actor="a")
    registry.transition("credit", model.version, Stage.ARCHIVED, actor="a")
    with pytest.raises(StageTransitionError, match="allowed: none"):
        registry.promote("credit", model.version, to="staging", actor="a")


@pytest.mark.parametrize(
    ("auc", "policy", "message"),
    [
        (None, PromotionPolicy(), "no held-out validation metric 'test_auc'"),
        (0.55, PromotionPolicy(minimum=0.6), "test_auc=0.55 fails >= 0.6"),
    ],
)
def test_promotion_needs_validation_metrics(
    tmp_path: Path, artefact: Path, auc: float | None, policy: PromotionPolicy, message: str
) -> None:
    registry = ModelRegistry(tmp_path / "r.db", party="bank", policy=policy)
    model = registry.register("credit", artefact=artefact, metadata=_meta(auc), actor="a")
    registry.promote("credit", model.version, to="staging", actor="a")
    with pytest.raises(PromotionBlocked, match=message):
        registry.promote("credit", model.version, actor="a")
    assert registry.get("credit", model.version).stage is Stage.STAGING
    assert registry.production("credit") is None


def test_promote_then_rollback_restores_previous(registry: ModelRegistry, artefact: Path) -> None:
    v1, v2, v3 = _production(registry, artefact, 3)
    assert _current(registry) == v3
    assert registry.get("credit", v2).stage is Stage.DEPRECATED
    assert registry.rollback("credit", actor="bob").version == v2
    assert registry.get("credit", v3).stage is Stage.DEPRECATED
    assert registry.rollback("credit", actor="bob").version == v1
    with pytest.raises(RegistryError, match="no previous production version"):
        registry.rollback("credit", actor="bob")
    assert _current(registry) == v1
    history = registry.history("credit")
    assert history[-1]["reason"] == f"rollback from {v2}"


def test_rollback_without_production(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError, match="no production version"):
        registry.rollback("credit", actor="bob")


def test_staged_rollout(registry: ModelRegistry, artefact: Path) -> None:
    (v1,) = _production(registry, artefact, 1)
    v2 = registry.register("credit", artefact=artefact, metadata=_meta(), actor="a").version
    with pytest.raises(RegistryError, match="only staging or production"):
        registry.set_rollout("credit", participant="retailer", version=v2, actor="a")
    registry.promote("credit", v2, to="staging", actor="a")
    registry.set_rollout("credit", participant="retailer", version=v2, actor="a")
    assert registry.rollout("credit") == {"retailer": v2}
    assert registry.version_for("credit", "retailer").version == v2
    assert registry.version_for("credit", "bank").version == v1


def test_every_change_is_audited(tmp_path: Path, artefact: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", party="bank", signing_key=key(1), now=StepClock())
    registry = ModelRegistry(tmp_path / "r.db", party="bank", audit_log=log, now=StepClock())
    _production(registry, artefact, 2)
    registry.rollback("credit", actor="bob")
    registry.set_rollout("credit", participant="retailer", version="0.1.0", actor="bob")
    events = [r.event for r in log.records()]
    assert events == [
        EventKind.MODEL_REGISTERED,
        EventKind.MODEL_STAGE,
        EventKind.MODEL_STAGE,
        EventKind.MODEL_REGISTERED,
        EventKind.MODEL_STAGE,
        EventKind.MODEL_STAGE,
        EventKind.MODEL_ROLLBACK,
        EventKind.MODEL_ROLLOUT,
    ]
    promotion = list(log.records())[5]
    assert promotion.details["replaced"] == "0.1.0" and promotion.actor == "alice"
    log.close()
    assert verify(tmp_path / "audit.db", verify_key=key(1).verify_key).ok


def test_version_compatibility() -> None:
    check_compatibility(
        label="model credit 1.0.0",
        model_format=1,
        protocol_version=1,
        peer="retailer",
        peer_model_formats={1},
        peer_protocols={1},
    )
    with pytest.raises(IncompatibleVersion, match="model format 2; peer retailer supports"):
        check_compatibility(
            label="model credit 2.0.0",
            model_format=2,
            protocol_version=1,
            peer="retailer",
            peer_model_formats={1},
            peer_protocols={1},
        )
    with pytest.raises(IncompatibleVersion, match="protocol version 3; peer retailer speaks"):
        check_compatibility(
            label="model credit 2.0.0",
            model_format=1,
            protocol_version=3,
            peer="retailer",
            peer_model_formats={1},
            peer_protocols={1, 2},
        )


def test_unknown_metadata_key_refused() -> None:
    with pytest.raises(RegistryError, match="unknown model metadata key 'colour'"):
        ModelMetadata.from_dict({"colour": "red"})
