"""Job-file parsing and validation: every mistake is a ConfigError naming the key."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from vfl.errors import ConfigError
from vfl.hetero_lr import HeteroLRConfig, Penalty
from vfl.jobs import Job, load_job, parse_job, run_job

GOOD = """
[job]
id = "credit-2026-11"
type = "hetero_lr"
label_party = "bank"

[parties.bank]
data = "bank_train.csv"
test_data = "bank_test.csv"
id_column = "id"
label_column = "y"

[parties.retailer]
data = "retailer_train.csv"
id_column = "id"

[crypto]
scheme = "paillier"
key_bits = 2048

[evaluation]
test_fraction = 0.2
seed = 0

[model]
epochs = 5
learning_rate = 0.2
penalty = "l2"
alpha = 0.01
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def test_good_file_parses(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, GOOD))
    assert job.job.id == "credit-2026-11" and job.job.label_party == "bank"
    assert job.parties["bank"].data == tmp_path / "bank_train.csv"
    assert job.parties["retailer"].test_data is None
    assert isinstance(job.model, HeteroLRConfig) and job.model.penalty is Penalty.L2
    assert job.model.crypto.key_bits == 2048
    assert job.feature_parties == ["retailer"]
    assert len(job.digest) == 64
    assert load_job(write(tmp_path, GOOD.replace("epochs = 5", "epochs = 6"))).digest != job.digest


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("seed = 0\n", "seed = 0\nsplit = 3\n", "unknown key evaluation.split"),
        ("epochs = 5", "epochs = 5\nepoch = 3", "unknown key model.epoch "),
        ("epochs = 5", 'epochs = "five"', "model.epochs must be an integer"),
        ("key_bits = 2048", 'key_bits = "2048"', "crypto.key_bits has the wrong type"),
        ('type = "hetero_lr"', 'type = "xgboost"', "job.type must be one of"),
        (
            'id_column = "id"\nlabel_column = "y"',
            'label_column = "y"',
            "missing key parties.bank.id_column",
        ),
        (
            'data = "retailer_train.csv"',
            'data = "retailer_train.csv"\nlabel_column = "y"',
            "parties.retailer.label_column: retailer is a feature party",
        ),
        ('label_party = "bank"', 'label_party = "insurer"', "job.label_party 'insurer' has no"),
        ('scheme = "paillier"', 'scheme = "rsa"', "crypto.scheme must be"),
        ("test_fraction = 0.2", "test_fraction = 1.5", "evaluation.test_fraction"),
        ("[crypto]", "[cryptography]", "unknown key job file.cryptography"),
        ("key_bits = 2048", "key_bits = 1024", "crypto.key_bits must be >= 2048"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError, match=message):
        load_job(write(tmp_path, GOOD.replace(old, new, 1)))


def test_small_key_error_names_the_flag(tmp_path: Path) -> None:
    small = write(tmp_path, GOOD.replace("key_bits = 2048", "key_bits = 1024"))
    with pytest.raises(ConfigError, match=r"pass --insecure-small-keys to allow smaller keys"):
        load_job(small)


def test_small_key_error_from_vfl_run_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vfl.cli import main

    small = write(tmp_path, GOOD.replace("key_bits = 2048", "key_bits = 1024"))
    fed = tmp_path / "federation.toml"  # never read: the job file is refused first
    code = main(["run", str(small), "--config", str(fed), "--party", "bank"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "--insecure-small-keys" in err[0] and "1024" in err[0]
    assert not (tmp_path / "runs").exists()


def test_small_keys_only_when_allowed(tmp_path: Path) -> None:
    job = load_job(
        write(tmp_path, GOOD.replace("key_bits = 2048", "key_bits = 1024")), allow_small_keys=True
    )
    assert job.model.crypto.key_bits == 1024


def test_invalid_toml_and_party_not_in_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_job(write(tmp_path, "[job\n"))
    job = load_job(write(tmp_path, GOOD))
    with pytest.raises(ConfigError, match="party 'insurer' is not in this job file"):
        job.party("insurer")


def test_data_checks_before_training(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, GOOD))
    bank = pd.DataFrame({"id": [1, 2], "y": [0, 1], "x0": [0.1, 0.2]})
    retailer = pd.DataFrame({"id": [1, 2], "a": [1.0, 2.0]})
    job.check_data("bank", bank)
    job.check_data("retailer", retailer)
    with pytest.raises(ConfigError, match="label column 'y' is missing"):
        job.check_data("bank", bank.drop(columns=["y"]))
    with pytest.raises(ConfigError, match="id column 'id' is missing"):
        job.check_data("retailer", retailer.rename(columns={"id": "key"}))
    with pytest.raises(ConfigError, match="holds the label column 'y'"):
        job.check_data("retailer", retailer.assign(y=[0, 1]))
    with pytest.raises(ConfigError, match="feature column 'a' is not numeric"):
        job.check_data("retailer", retailer.assign(a=["x", "y"]))


def test_psi_job_needs_no_model() -> None:
    raw = {
        "job": {"id": "p", "type": "psi"},
        "parties": {
            "a": {"data": "a.csv", "id_column": "id"},
            "b": {"data": "b.csv", "id_column": "id"},
        },
    }
    job = parse_job(raw)
    assert job.model is None
    with pytest.raises(ConfigError, match="unknown key model.epochs"):
        parse_job({**raw, "model": {"epochs": 1}})


def _write_parties(tmp_path: Path) -> None:
    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv")
    # Partial overlap and another row order, so PSI has work to do.
    g.iloc[:540].to_csv(tmp_path / "bank_train.csv", index=False)
    h.iloc[20:].sample(frac=1.0, random_state=3).to_csv(
        tmp_path / "retailer_train.csv", index=False
    )


PLAIN_JOB = """
[job]
id = "breast-plain"
type = "hetero_lr"
label_party = "bank"

[parties.bank]
data = "bank_train.csv"
id_column = "id"
label_column = "y"

[parties.retailer]
data = "retailer_train.csv"
id_column = "id"

[crypto]
scheme = "plain"

[evaluation]
test_fraction = 0.2
seed = 0

[model]
epochs = 10
batch_size = 128
approximation = "taylor"
penalty = "l2"
alpha = 0.05
"""


def _run_both(tmp_path: Path, bank_text: str, retailer_text: str) -> dict[str, Any]:
    (tmp_path / "bank.toml").write_text(bank_text)
    (tmp_path / "retailer.toml").write_text(retailer_text)
    jobs = {
        "bank": load_job(tmp_path / "bank.toml"),
        "retailer": load_job(tmp_path / "retailer.toml"),
    }
    net = InMemoryNetwork(["bank", "retailer"], job_id="breast-plain", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return run_parties(
            {name: functools.partial(_party, jobs[name], name, tmp_path) for name in jobs},
            network=net,
            timeout=120,
        )


def _party(job: Job, name: str, tmp_path: Path, ch: Channel) -> dict[str, Any]:
    return run_job(job, party=name, channel=ch, work_dir=tmp_path / name)


def test_run_job_end_to_end_in_memory(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    results = _run_both(tmp_path, PLAIN_JOB, PLAIN_JOB)
    bank, retailer = results["bank"], results["retailer"]
    assert bank["psi"]["intersection_size"] == retailer["psi"]["intersection_size"] == 520
    assert bank["rows"] == {"train": 416, "test": 104}
    assert bank["metrics"]["test_auc"] > 0.95
    assert {"test_auc", "test_accuracy", "test_logloss"} <= set(bank["metrics"])
    assert retailer["metrics"] == {}
    assert bank["crypto"]["scheme"] == "plain"
    assert {"psi", "train", "evaluate", "total"} <= set(bank["timing"])
    assert Path(bank["model_path"]).is_file() and Path(retailer["model_path"]).is_file()


def test_run_job_refuses_a_different_file(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    with pytest.raises(ConfigError, match="runs a different job file"):
        _run_both(tmp_path, PLAIN_JOB, PLAIN_JOB.replace("epochs = 10", "epochs = 11"))


@pytest.mark.parametrize(
    ("hello", "message"),
    [
        # A release from before version negotiation: digest only.
        ({}, r"retailer did not state the protocol versions it speaks .*upgrade retailer"),
        # A newer release that dropped this protocol.
        (
            {"protocol_version": 2, "protocols": [2], "model_formats": [1, 2]},
            r"job breast-plain at bank needs protocol version 1; peer retailer speaks \[2\]",
        ),
    ],
)
def test_run_job_refuses_a_peer_that_speaks_another_protocol(
    tmp_path: Path, hello: dict[str, Any], message: str
) -> None:
    from vfl.governance import IncompatibleVersion

    _write_parties(tmp_path)
    (tmp_path / "job.toml").write_text(PLAIN_JOB)
    job = load_job(tmp_path / "job.toml")

    def old_retailer(ch: Channel) -> None:
        # What the other release sends first, then it waits to be refused.
        ch.send("bank", "job/digest", {"job_id": job.job.id, "digest": job.digest, **hello})
        ch.recv("bank", "job/digest")

    net = InMemoryNetwork(["bank", "retailer"], job_id="breast-plain", seed=0)
    with pytest.raises(IncompatibleVersion, match=message):
        run_parties(
            {"bank": functools.partial(_party, job, "bank", tmp_path), "retailer": old_retailer},
            network=net,
            timeout=60,
        )


def test_run_psi_job_writes_aligned_rows(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    text = """
[job]
id = "align-only"
type = "psi"

[parties.bank]
data = "bank_train.csv"
id_column = "id"

[parties.retailer]
data = "retailer_train.csv"
id_column = "id"
"""
    results = _run_both(tmp_path, text, text)
    bank = pd.read_csv(results["bank"]["aligned_csv"])
    retailer = pd.read_csv(results["retailer"]["aligned_csv"])
    assert results["bank"]["psi"]["intersection_size"] == len(bank) == len(retailer) == 520
    assert bank["id"].tolist() == retailer["id"].tolist()
    assert results["bank"]["metrics"] == {}
