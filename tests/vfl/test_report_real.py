"""Reports of real runs: hetero LR (Paillier) and split NN (with the label-leak defence) run by
``vfl.jobs.run_job`` over the in-memory network, with signed audit logs and a model registry,
then reported on from the run directories they wrote."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests.vfl.test_report import parse
from tests.vfl.test_report_render import CHROMIUM, _artifacts, _chromium
from vfl.jobs import PartyIdentity, parse_job, run_job
from vfl.report import render_report, write_report

pytestmark = pytest.mark.slow
PARTIES = ["bank", "retailer"]


def _data(tmp: Path) -> None:
    """400 customers, 6 features split 3/3, a logistic label; 30 ids only one side holds."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(430, 6))
    y = (x @ np.array([1.5, -1.0, 0.8, 1.2, -0.7, 0.5]) + rng.normal(0, 0.5, 430) > 0).astype(int)
    ids = [f"c{i:04d}" for i in range(430)]
    bank = pd.DataFrame({"id": ids, **{f"b{j}": x[:, j] for j in range(3)}, "y": y})
    retailer = pd.DataFrame({"id": ids, **{f"r{j}": x[:, 3 + j] for j in range(3)}})
    bank.iloc[:415].to_csv(tmp / "bank.csv", index=False)
    retailer.iloc[15:].sample(frac=1.0, random_state=1).to_csv(tmp / "retailer.csv", index=False)


def _run(tmp: Path, raw: dict[str, Any]) -> InMemoryNetwork:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plain split NN warns loudly, by design
        job = parse_job(raw, base_dir=tmp, allow_small_keys=True)
    net = InMemoryNetwork(PARTIES, job_id=job.job.id, seed=0)

    def party(name: str, ch: Channel) -> dict[str, Any]:
        import torch

        torch.set_num_threads(1)
        identity = PartyIdentity(net.signing_key(name), net.verify_keys)
        return run_job(job, party=name, channel=ch, work_dir=tmp / name, identity=identity)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small keys / plain split NN warn loudly
        run_parties({n: functools.partial(party, n) for n in PARTIES}, network=net, timeout=300)
    return net


def _job(
    job_id: str, job_type: str, crypto: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any]:
    return {
        "job": {"id": job_id, "type": job_type, "label_party": "bank"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "crypto": crypto,
        "evaluation": {"test_fraction": 0.25, "seed": 0},
        "model": model,
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, InMemoryNetwork]:
    tmp = tmp_path_factory.mktemp("real-runs")
    _data(tmp)
    paillier = {"scheme": "paillier", "key_bits": 1024}
    lr = {"epochs": 4, "batch_size": 128, "learning_rate": 0.2}
    net = _run(tmp, _job("lr-1", "hetero_lr", paillier, lr))
    _run(tmp, _job("lr-2", "hetero_lr", paillier, lr))  # the next version, lineage parent lr-1's
    snn = {"epochs": 3, "batch_size": 64, "learning_rate": 0.05, "defence_noise": 1.0}
    _run(tmp, _job("snn-1", "split_nn", {"scheme": "plain"}, snn))
    return tmp, net


def test_real_hetero_lr_report(runs: tuple[Path, InMemoryNetwork]) -> None:
    tmp, net = runs
    run_dir = tmp / "bank" / "runs" / "lr-2" / "bank"
    out = _artifacts() / "report-real-hetero-lr.html"
    report = write_report(run_dir, out, audit_key=net.verify_keys["bank"])
    doc = parse(report.html)
    assert len(report.plots) >= 5
    expected = {"metrics-loss", "metrics-quality", "bytes-round", "bytes-peer", "phase-time"}
    assert expected | {"participation", "lineage", "audit-events"} <= set(report.plots)
    text = " ".join(doc.text)
    assert "paillier, 1024-bit key" in text
    assert "test_auc = " in text
    assert "chain verified" in text and "under pinned key" in text
    lineage = report.html.split('id="lineage"')[1].split("</svg>")[0]
    assert "0.1.0 -&gt; 0.2.0" in lineage  # lr-2's version names lr-1's as its parent
    assert "No DP in this run." in text
    if CHROMIUM is not None:
        png = _artifacts() / "report-real-hetero-lr.png"
        png.unlink(missing_ok=True)
        shot = _chromium(tmp, "--window-size=1200,3600", f"--screenshot={png}", out.as_uri())
        assert shot.returncode == 0 and png.stat().st_size > 10_000


def test_real_feature_party_report(runs: tuple[Path, InMemoryNetwork]) -> None:
    tmp, _net = runs
    report = render_report(tmp / "retailer" / "runs" / "lr-2" / "retailer")
    parse(report.html)
    assert {"bytes-round", "phase-time", "lineage", "audit-events"} <= set(report.plots)
    assert "retailer" in report.html


def test_real_split_nn_report_shows_leak_auc(runs: tuple[Path, InMemoryNetwork]) -> None:
    tmp, _net = runs
    report = render_report(tmp / "bank" / "runs" / "snn-1" / "bank")
    doc = parse(report.html)
    assert len(report.plots) >= 5
    assert {"metrics-loss", "leak-auc", "phase-time", "lineage"} <= set(report.plots)
    text = " ".join(doc.text)
    assert "defended (clip+gaussian)" in text
    assert "chance (0.5)" in report.html
