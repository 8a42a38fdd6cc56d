"""Label DP for hetero LR: the label party trains on labels after randomized response."""

from __future__ import annotations

import functools
import json
import math
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crypto.random import SeededRandom
from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests.vfl._hetero_lr_helpers import breast, run
from tests.vfl.test_jobs import PLAIN_JOB, _write_parties
from vfl.errors import ConfigError
from vfl.governance import ModelRegistry
from vfl.hetero_lr import CryptoSettings, HeteroLRConfig, HeteroLRLabelParty, SchemeName
from vfl.jobs import load_job, run_job

PLAIN = CryptoSettings(scheme=SchemeName.PLAIN)
SETTINGS = {"epochs": 2, "batch_size": 128, "validation_fraction": 0.0}


def test_label_dp_epsilon_is_validated() -> None:
    cfg = HeteroLRConfig.from_mapping({"label_dp_epsilon": 2}, crypto=PLAIN)
    assert cfg.label_dp_epsilon == 2.0 and isinstance(cfg.label_dp_epsilon, float)
    with pytest.raises(ConfigError, match="model.label_dp_epsilon must be > 0"):
        HeteroLRConfig(label_dp_epsilon=0.0)
    with pytest.raises(ConfigError, match="model.label_dp_epsilon must be a number"):
        HeteroLRConfig.from_mapping({"label_dp_epsilon": "high"})


def test_randomized_response_flips_at_the_stated_rate_for_k_classes() -> None:
    party = HeteroLRLabelParty(HeteroLRConfig(label_dp_epsilon=1.0), rng=SeededRandom(3))
    classes = np.array(["a", "b", "c"])
    y = np.array(["a", "b", "c"] * 1000)
    noisy = party._perturb(y, classes)
    assert set(noisy.tolist()) <= set(classes.tolist())
    keep = math.e / (math.e + 2)  # e^eps / (e^eps + K - 1)
    assert party.privacy_["keep_probability"] == pytest.approx(keep)
    flipped = int(np.count_nonzero(noisy != y))
    assert party.privacy_["labels_flipped"] == flipped
    n = y.size
    sigma = math.sqrt(n * keep * (1 - keep))
    assert abs(flipped - n * (1 - keep)) < 5 * sigma


def test_a_huge_epsilon_changes_nothing_and_a_small_one_changes_the_model() -> None:
    g, h = breast()
    plain, _, _, _ = run(HeteroLRConfig.from_mapping(SETTINGS, crypto=PLAIN), g, {"retailer": h})
    kept, _, _, _ = run(
        HeteroLRConfig.from_mapping({**SETTINGS, "label_dp_epsilon": 60.0}, crypto=PLAIN),
        g,
        {"retailer": h},
    )
    assert kept.privacy_["labels_flipped"] == 0
    np.testing.assert_allclose(kept.weights_, plain.weights_, atol=1e-12)
    noisy, _, _, _ = run(
        HeteroLRConfig.from_mapping({**SETTINGS, "label_dp_epsilon": 0.5}, crypto=PLAIN),
        g,
        {"retailer": h},
    )
    assert noisy.privacy_["label_dp_epsilon"] == 0.5 and noisy.privacy_["labels_flipped"] > 0
    assert not np.allclose(noisy.weights_, plain.weights_)
    assert plain.privacy_ == {}


def test_run_job_reports_and_audits_label_dp(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    (tmp_path / "job.toml").write_text(
        PLAIN_JOB.replace("epochs = 10", "epochs = 4\nlabel_dp_epsilon = 2.0")
    )
    job = load_job(tmp_path / "job.toml")
    net = InMemoryNetwork(["bank", "retailer"], job_id=job.job.id, seed=0)

    def party(name: str, ch: Channel) -> dict[str, Any]:
        return run_job(job, party=name, channel=ch, work_dir=tmp_path / name)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = run_parties(
            {n: functools.partial(party, n) for n in ("bank", "retailer")}, network=net, timeout=120
        )
    privacy = out["bank"]["privacy"]
    assert privacy["label_dp_epsilon"] == 2.0 and privacy["delta"] == 0.0
    assert "privacy" not in out["retailer"]  # the feature party has no labels to protect
    run_dir = Path(out["bank"]["run_dir"])
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["epsilon"], status["delta"]) == (2.0, 0.0)
    rounds = [
        json.loads(line)
        for line in (run_dir / "events.jsonl").read_text().splitlines()
        if '"kind":"round"' in line
    ]
    assert rounds and all(r["epsilon"] == 2.0 for r in rounds)
    db = sqlite3.connect(tmp_path / "bank" / "audit.db")
    rows = db.execute("SELECT event, details FROM records").fetchall()
    db.close()
    events = {event: json.loads(details) for event, details in rows}
    assert events["privacy.dp_parameters"]["mechanism"] == "randomized_response"
    assert events["privacy.epsilon_spent"]["epsilon"] == 2.0
    with ModelRegistry(tmp_path / "bank" / "registry.db", party="bank") as registry:
        meta = registry.get(out["bank"]["model"]["name"], "0.1.0").metadata
    assert meta.dp is not None and meta.dp["label_dp_epsilon"] == 2.0
