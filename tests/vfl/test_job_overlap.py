"""A zero or tiny PSI overlap is its own error, raised at every party right after PSI.

Both parties run the real job code (``run_job``) over ``InMemoryNetwork``; each must fail with
:class:`~vfl.errors.OverlapTooSmall` naming its own count of ids and the peer, and no party may
reach training (its run files show PSI, then ``failed``; no model is saved).
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from vfl.errors import OverlapTooSmall
from vfl.jobs import Job, parse_job, run_job
from vfl.jobs._overlap import MIN_TRAINING_ROWS, check_overlap, training_rows


def _write(tmp_path: Path, shared: int, *, shift: int = 0) -> tuple[int, int]:
    """Bank: the guest's first 540 rows. Retailer: the host rows of ids 540..568 (not at the
    bank) and the host's first ``shared`` rows; ``shift`` moves the retailer's ids away."""
    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv")
    bank = g.iloc[:540]
    retailer = pd.concat([h.iloc[540:], h.iloc[:shared]]).sample(frac=1.0, random_state=2)
    retailer = retailer.assign(id=retailer["id"] + shift)
    bank.to_csv(tmp_path / "bank.csv", index=False)
    retailer.to_csv(tmp_path / "retailer.csv", index=False)
    return len(bank), len(retailer)


def _job(tmp_path: Path, kind: str, **extra: Any) -> Job:
    raw: dict[str, Any] = {
        "job": {"id": f"overlap-{kind}", "type": kind, "label_party": "bank"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "crypto": {"scheme": "plain"},
        "evaluation": {"test_fraction": 0.2, "seed": 0},
        "model": {"epochs": 2, "batch_size": 64},
    }
    if kind == "psi":
        raw = {"job": {"id": "overlap-psi", "type": "psi"}, "parties": raw["parties"]}
        raw["parties"]["bank"].pop("label_column")
    for key, value in extra.items():
        raw["parties"][key].update(value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # split NN under plain, on purpose
        return parse_job(raw, base_dir=tmp_path)


def _party(job: Job, name: str, work: Path, ch: Channel) -> BaseException | dict[str, Any]:
    try:
        return run_job(job, party=name, channel=ch, work_dir=work / name)
    except OverlapTooSmall as exc:  # returned, so that each party's own error is checked
        return exc


def _run(job: Job, work: Path) -> dict[str, Any]:
    net = InMemoryNetwork(["bank", "retailer"], job_id=job.job.id, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return run_parties(
            {n: functools.partial(_party, job, n, work) for n in ("bank", "retailer")},
            network=net,
            timeout=120,
        )


def _assert_stopped_after_psi(job: Job, work: Path, party: str, error: OverlapTooSmall) -> None:
    run = work / party / "runs" / job.job.id / party
    status = json.loads((run / "status.json").read_text())
    assert status["phase"] == "failed"
    assert status["error"] == f"OverlapTooSmall: {error}"
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    phases = [e["phase"] for e in events if e.get("kind") == "phase"]
    assert "psi" in phases and "train" not in phases and phases[-1] == "failed"
    assert not (run / "model.json").exists() and not (run / "result.json").exists()


@pytest.mark.parametrize("kind", ["hetero_lr", "split_nn", "psi"])
def test_no_shared_id_is_its_own_error_at_every_party(tmp_path: Path, kind: str) -> None:
    n_bank, n_retailer = _write(tmp_path, 0, shift=10_000)
    job = _job(tmp_path, kind)
    out = _run(job, tmp_path)
    bank, retailer = out["bank"], out["retailer"]
    assert isinstance(bank, OverlapTooSmall) and isinstance(retailer, OverlapTooSmall)
    nothing = "align" if kind == "psi" else "train on"
    assert str(bank).startswith(
        f"0 of {n_bank:,} ids are shared with retailer: nothing to {nothing}"
    )
    assert str(retailer).startswith(f"0 of {n_retailer:,} ids are shared with bank: nothing to")
    assert "single class" not in str(bank) and "batch" not in str(bank)
    assert (bank.shared, bank.ids, bank.peers) == (0, n_bank, ("retailer",))
    for party, error in out.items():
        _assert_stopped_after_psi(job, tmp_path, party, error)


@pytest.mark.parametrize("kind", ["hetero_lr", "split_nn"])
def test_a_tiny_overlap_is_refused_before_training_at_every_party(
    tmp_path: Path, kind: str
) -> None:
    n_bank, n_retailer = _write(tmp_path, 7)
    job = _job(tmp_path, kind)
    train = training_rows(job, 7)
    assert train < 7 and train < MIN_TRAINING_ROWS  # the agreed 20% test split takes some
    out = _run(job, tmp_path)
    for party, ids, peer in (("bank", n_bank, "retailer"), ("retailer", n_retailer, "bank")):
        error = out[party]
        assert isinstance(error, OverlapTooSmall)
        assert str(error).startswith(
            f"only 7 of {ids:,} ids are shared with {peer}: {train} training rows after the "
            f"20% test split, below the {MIN_TRAINING_ROWS} a {kind} job needs"
        )
        assert error.minimum == MIN_TRAINING_ROWS
        _assert_stopped_after_psi(job, tmp_path, party, error)


def test_an_empty_test_overlap_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, 100)
    test = read_fate("breast_hetero_guest.csv").iloc[100:200]  # none of these at the retailer
    test.to_csv(tmp_path / "bank_test.csv", index=False)
    read_fate("breast_hetero_host.csv").iloc[540:].to_csv(
        tmp_path / "retailer_test.csv", index=False
    )
    job = _job(
        tmp_path,
        "hetero_lr",
        bank={"test_data": "bank_test.csv"},
        retailer={"test_data": "retailer_test.csv"},
    )
    out = _run(job, tmp_path)
    assert str(out["bank"]).startswith("0 of 100 test_data ids are shared with retailer")
    assert str(out["retailer"]).startswith("0 of 29 test_data ids are shared with bank")


def test_the_rule_counts_training_rows_after_the_test_split(tmp_path: Path) -> None:
    n_bank, _ = _write(tmp_path, 0)
    job = _job(tmp_path, "hetero_lr")
    data = pd.read_csv(tmp_path / "bank.csv")
    # The smallest overlap that leaves MIN_TRAINING_ROWS training rows passes; one fewer fails.
    enough = next(n for n in range(1, 100) if training_rows(job, n) >= MIN_TRAINING_ROWS)
    check_overlap(job, "bank", ["retailer"], data, enough)
    with pytest.raises(OverlapTooSmall, match=f"only {enough - 1} of {n_bank} ids"):
        check_overlap(job, "bank", ["retailer"], data, enough - 1)
    # A PSI job only needs one shared id; three parties are named together.
    psi_job = _job(tmp_path, "psi")
    check_overlap(psi_job, "bank", ["retailer"], data, 1)
    with pytest.raises(OverlapTooSmall, match="0 of 540 ids are shared with insurer and retailer"):
        check_overlap(psi_job, "bank", ["retailer", "insurer"], data, 0)
