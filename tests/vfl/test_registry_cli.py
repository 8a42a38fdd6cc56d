"""``vfl models list|show|promote|rollback`` as a subprocess, with an audit log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from vfl.governance import ModelMetadata, ModelRegistry, verify

from ._governance_helpers import key, run_vfl


def vfl(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """The real ``vfl`` entry point (``python -m vfl.cli``), as a user runs it."""
    return run_vfl(*argv)


def test_models_commands(tmp_path: Path) -> None:
    reg_path = tmp_path / "reg.db"
    artefact = tmp_path / "m.bin"
    artefact.write_bytes(b"w")
    registry = ModelRegistry(reg_path, party="bank")
    for auc in (0.7, 0.8):
        model = registry.register(
            "credit",
            artefact=artefact,
            metadata=ModelMetadata(validation_metrics={"test_auc": auc}),
            actor="a",
        )
        registry.promote("credit", model.version, to="staging", actor="a")
    registry.close()
    signing = tmp_path / "bank.pem"
    key(1).save(signing)
    audit = ("--audit", tmp_path / "audit.db", "--signing-key", signing, "--party", "bank")

    for version in ("0.1.0", "0.2.0"):
        done = vfl("models", "promote", "credit", version, "--registry", reg_path, *audit, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["stage"] == "production"
    done = vfl("models", "list", "--registry", reg_path, "--json")
    stages = {m["version"]: m["stage"] for m in json.loads(done.stdout)["models"]}
    assert stages == {"0.1.0": "deprecated", "0.2.0": "production"}

    done = vfl("models", "rollback", "credit", "--registry", reg_path, *audit, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "0.1.0"
    done = vfl("models", "show", "credit", "0.1.0", "--registry", reg_path, "--json")
    shown = json.loads(done.stdout)
    assert (
        shown["stage"] == "production" and shown["history"][-1]["reason"] == "rollback from 0.2.0"
    )

    result = verify(tmp_path / "audit.db", verify_key=key(1).verify_key)
    assert result.ok and result.records == 3

    done = vfl("models", "rollback", "credit", "--registry", reg_path)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "vfl: error: model credit 0.1.0 has no previous production version"
    )
    done = vfl("models", "promote", "credit", "0.2.0", "--registry", reg_path, "--min", "0.9")
    assert done.returncode == 2 and "fails >= 0.9" in done.stderr
    done = vfl("models", "list", "--registry", tmp_path / "none.db")
    assert done.returncode == 2 and "no model registry" in done.stderr
