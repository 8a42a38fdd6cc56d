"""The demo's pieces: bundled data with a partial overlap, a real federation, valid job files.

The whole demo (two OS processes per job, 2048-bit Paillier) is run by hand and by users; the
jobs it runs are covered by tests/vfl/test_jobs.py, test_job_types.py and the gRPC job tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
