"""The demo: its pieces (bundled data with a partial overlap, a real federation, valid job files),
and the whole of `vfl demo --json` exactly as the README's Quickstart runs it (production key
sizes, two OS processes per job over gRPC + mTLS; about 3.5 minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protocols.config import load_federation
from vfl.demo import HETERO_LR_MODEL, SPLIT_NN_MODEL, _job_file, _setup
from vfl.jobs import load_job


def test_demo_setup_makes_partial_overlap_federation_and_valid_jobs(tmp_path: Path) -> None:
    info = _setup(tmp_path, np.random.default_rng(2026))
    bank = pd.read_csv(tmp_path / "data" / "bank.csv")
    retailer = pd.read_csv(tmp_path / "data" / "retailer.csv")
    assert len(bank) == info["bank_rows"] < 30_000 and len(retailer) == info["retailer_rows"]
    shared = set(bank["id"]) & set(retailer["id"])
    assert len(shared) == info["shared_customers"] < min(len(bank), len(retailer))
    assert "y" in bank.columns and "y" not in retailer.columns
    assert set(load_federation(info["federation"]).parties) == {"bank", "retailer"}
    lr = load_job(_job_file(tmp_path, job_id="lr", job_type="hetero_lr",
                            crypto={"scheme": "paillier", "key_bits": 2048},
                            model=HETERO_LR_MODEL))  # fmt: skip
    snn = load_job(_job_file(tmp_path, job_id="snn", job_type="split_nn",
                             crypto={"scheme": "ckks"}, model=SPLIT_NN_MODEL))  # fmt: skip
    assert lr.crypto.key_bits == 2048 and lr.job.label_party == "bank"
    assert snn.crypto.scheme == "ckks"
    for job in (lr, snn):
        job.check_data("bank", bank)
        job.check_data("retailer", retailer)


@pytest.mark.slow
@pytest.mark.grpc
@pytest.mark.timeout(900)
def test_vfl_demo_end_to_end_both_models_within_001_of_the_centralised_reference(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vfl.cli", "demo", "--json", "--work-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["ok"] and result["not_built"] == []
    phases = {p["name"].split(":")[0]: p for p in result["phases"]}
    assert all(p["ok"] for p in result["phases"]), [p["figures"] for p in result["phases"]]
    for job in ("job 1", "job 2"):
        figures = phases[job]["figures"]
        # The bar: each federated model within 0.01 AUC of its centralised reference.
        assert abs(figures["test_auc"] - figures["centralised_reference_auc"]) <= 0.01, figures
        assert figures["intersection_size"] > 20_000
        assert figures["crypto"]["scheme"] in ("paillier", "ckks")
    assert phases["job 1"]["figures"]["crypto"]["key_bits"] == 2048
    governance = phases["governance"]["figures"]
    assert "chain and signatures verified" in governance["bank audit log"]
    for path in result["reports"].values():
        html = Path(path).read_text()
        assert html.count("<svg") >= 5 and "<script" not in html
