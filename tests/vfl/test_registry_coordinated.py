"""Coordinated promote / rollback over the in-memory network: every party ends on one version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.governance import (
    ModelMetadata,
    ModelRegistry,
    PromotionBlocked,
    RegistryChange,
    RegistryError,
    Stage,
    coordinate_change,
    follow_change,
)

from ._governance_helpers import StepClock

PARTIES = ("bank", "retailer")


def _registries(tmp_path: Path, *, retailer_auc: float = 0.8) -> dict[str, ModelRegistry]:
    artefact = tmp_path / "model.bin"
    artefact.write_bytes(b"weights")
    registries = {}
    for party in PARTIES:
        registry = ModelRegistry(tmp_path / f"{party}.db", party=party, now=StepClock())
        for i, auc in enumerate((0.7, 0.75, retailer_auc if party == "retailer" else 0.8)):
            model = registry.register(
                "credit",
                artefact=artefact,
                metadata=ModelMetadata(validation_metrics={"test_auc": auc}),
                actor=party,
            )
            registry.promote("credit", model.version, to="staging", actor=party)
            if i < 2:
                registry.promote("credit", model.version, actor=party)
        registries[party] = registry
    return registries


def _run(registries: dict[str, ModelRegistry], change: RegistryChange) -> dict[str, object]:
    net = InMemoryNetwork(list(PARTIES), job_id="registry", seed=0)

    def bank(channel: Channel) -> object:
        return coordinate_change(channel, registries["bank"], change, actor="bank", timeout=10.0)

    def retailer(channel: Channel) -> object:
        return follow_change(
            channel, registries["retailer"], coordinator="bank", actor="retailer", timeout=10.0
        )

    functions: dict[str, Callable[[Channel], object]] = {"bank": bank, "retailer": retailer}
    return run_parties(functions, network=net, timeout=30.0)


def _production(registries: dict[str, ModelRegistry]) -> dict[str, str | None]:
    out = {}
    for party, registry in registries.items():
        current = registry.production("credit")
        out[party] = None if current is None else current.version
    return out


def test_promote_then_rollback_at_every_party(tmp_path: Path) -> None:
    registries = _registries(tmp_path)
    assert _production(registries) == {"bank": "0.2.0", "retailer": "0.2.0"}
    result = _run(registries, RegistryChange("promote", "credit", "0.3.0"))
    assert result == {"bank": "0.3.0", "retailer": "0.3.0"}
    assert _production(registries) == {"bank": "0.3.0", "retailer": "0.3.0"}
    result = _run(registries, RegistryChange("rollback", "credit"))
    assert result == {"bank": "0.2.0", "retailer": "0.2.0"}
    assert _production(registries) == {"bank": "0.2.0", "retailer": "0.2.0"}
    for registry in registries.values():
        assert registry.get("credit", "0.3.0").stage is Stage.DEPRECATED


def test_refusal_at_one_party_changes_nothing_anywhere(tmp_path: Path) -> None:
    registries = _registries(tmp_path, retailer_auc=0.4)
    with pytest.raises(RegistryError, match="refused by retailer: .*test_auc=0.4 fails"):
        _run(registries, RegistryChange("promote", "credit", "0.3.0"))
    assert _production(registries) == {"bank": "0.2.0", "retailer": "0.2.0"}
    # the follower saw the abort and returned cleanly; its registry is untouched
    assert registries["retailer"].get("credit", "0.3.0").stage is Stage.STAGING


def test_change_validation() -> None:
    with pytest.raises(RegistryError, match="unknown registry action"):
        RegistryChange("delete", "credit")
    with pytest.raises(RegistryError, match="needs a version"):
        RegistryChange("promote", "credit")
    assert issubclass(PromotionBlocked, RegistryError)


def test_a_version_an_old_peer_cannot_load_is_refused_by_that_peer(tmp_path: Path) -> None:
    """The coordinator's version uses a model format this code does not support: the follower
    (standing in for an older release) votes no, naming itself and the formats it knows."""
    registries = _registries(tmp_path)
    artefact = tmp_path / "model-v2.bin"
    artefact.write_bytes(b"weights in a newer format")
    newer = registries["bank"].register(
        "credit",
        artefact=artefact,
        metadata=ModelMetadata(validation_metrics={"test_auc": 0.9}),
        actor="bank",
        model_format=99,
    )
    registries["bank"].promote("credit", newer.version, to="staging", actor="bank")
    with pytest.raises(
        RegistryError,
        match=rf"refused by retailer: credit {newer.version} uses model format 99; "
        r"peer retailer supports formats \[1\]",
    ):
        _run(registries, RegistryChange("promote", "credit", newer.version))
    assert _production(registries) == {"bank": "0.2.0", "retailer": "0.2.0"}


def test_a_proposal_with_a_malformed_version_field_is_refused() -> None:
    with pytest.raises(RegistryError, match="model_format must be an integer"):
        RegistryChange.from_dict(
            {"action": "promote", "model": "credit", "version": "1.0.0", "model_format": "2"}
        )
