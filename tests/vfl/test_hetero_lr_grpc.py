"""``vfl run`` for hetero LR with every party as its own OS process over mutual-TLS gRPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from protocols.pki import init_federation
from tests._data import read_fate
from vfl.bench.hetero_lr import _free_port, split_by_id, write_job
from vfl.cli.run import main as run_main

ROOT = Path(__file__).resolve().parents[2]


def _setup(tmp_path: Path, *, scheme: str, key_bits: int) -> tuple[Path, Path]:
    guest = read_fate("breast_hetero_guest.csv")
    host = read_fate("breast_hetero_host.csv")
    test = split_by_id(guest["id"].to_numpy(), fraction=0.2, seed=0)
    names = ("bank", "retailer")
    federation = init_federation(
        names, tmp_path / "fed", addresses={p: f"127.0.0.1:{_free_port()}" for p in names}
    )
    model = {
        "epochs": 3,
        "batch_size": 128,
        "approximation": "taylor",
        "penalty": "l2",
        "alpha": 0.05,
        "validation_fraction": 0.0,
    }
    job = write_job(
        tmp_path,
        job_id="grpc-test",
        scheme=scheme,
        key_bits=key_bits,
        model=model,
        guest=guest,
        hosts={"retailer": host},
        test=test,
    )
    for split in ("train", "test"):  # another row order at the host, so PSI has to align
        path = tmp_path / f"retailer_{split}.csv"
        pd.read_csv(path).sample(frac=1.0, random_state=1).to_csv(path, index=False)
    return job, federation


@pytest.mark.slow
@pytest.mark.grpc
def test_vfl_run_two_processes_paillier(tmp_path: Path) -> None:
    job, federation = _setup(tmp_path, scheme="paillier", key_bits=1024)
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")
    procs = {
        party: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vfl.cli.run",
                str(job),
                "--config",
                str(federation),
                "--party",
                party,
                "--work-dir",
                str(tmp_path / party),
                "--json",
                "--insecure-small-keys",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for party in ("bank", "retailer")
    }
    out = {}
    for party, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        out[party] = json.loads(stdout.strip().splitlines()[-1])
    bank, retailer = out["bank"], out["retailer"]
    assert bank["job_id"] == "grpc-test" and bank["party"] == "bank"
    assert bank["psi"]["intersection_size"] == retailer["psi"]["intersection_size"] == 456
    assert bank["psi"]["test_intersection_size"] == 113
    assert bank["metrics"]["test_auc"] > 0.95
    assert {"test_auc", "test_ks", "test_accuracy", "test_logloss"} == set(bank["metrics"])
    assert bank["crypto"] == {"scheme": "paillier", "key_bits": 1024}
    assert bank["bytes_sent"] > 0 and retailer["bytes_sent"] > 0
    assert Path(bank["run_dir"]).is_dir() and Path(retailer["model_path"]).is_file()
    assert "y" not in json.loads(Path(retailer["model_path"]).read_text())["columns"]


def test_vfl_run_bad_input_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job, federation = _setup(tmp_path, scheme="plain", key_bits=2048)
    assert run_main([str(job), "--config", str(federation), "--party", "insurer", "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vfl: error: party 'insurer' is not in this job file") and "\n" not in err
    broken = tmp_path / "broken.toml"
    broken.write_text(job.read_text().replace("epochs = 3", "epochs = 3\nepoch = 2"))
    assert run_main([str(broken), "--config", str(federation), "--party", "bank"]) == 2
    assert "unknown key model.epoch " in capsys.readouterr().err
