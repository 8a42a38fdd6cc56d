"""The job-kind registry: every kind is a JobKind, a new kind plugs in with one registry line and
runs through the same handshake -> align -> split -> run -> finish as the built-in ones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.core import CryptoSection, Job, JobKind, ModelPart, PartResult, PartyContext
from vfl.errors import ConfigError
from vfl.jobs import JOB_TYPES, KINDS, kind_of, parse_job, run_job


def test_every_registered_kind_is_a_job_kind_named_by_its_type() -> None:
    assert JOB_TYPES == ("psi", "hetero_lr", "split_nn", "fedavg", "secureboost")
    for name in KINDS:
        kind = kind_of(name)
        assert isinstance(kind, JobKind) and kind.name == name
    assert [n for n in KINDS if not kind_of(n).aligns] == ["fedavg"]
    assert [n for n in KINDS if kind_of(n).needs_label] == ["hetero_lr", "split_nn", "secureboost"]


def test_an_unknown_type_is_refused_naming_the_types() -> None:
    with pytest.raises(ConfigError, match="job.type must be one of psi, hetero_lr, split_nn"):
        kind_of("secure-magic")


def test_a_psi_job_never_loads_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from vfl.jobs import parse_job\n"
        "parse_job({'job': {'id': 'p', 'type': 'psi'}, 'parties': {"
        "'a': {'data': 'a.csv', 'id_column': 'id'}, 'b': {'data': 'b.csv', 'id_column': 'id'}}})\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == "False"


# -- a kind defined here, registered by one line ----------------------------------------------


@dataclass(frozen=True)
class SumSettings:
    column: str


class SumKind:
    """Each party sums one column of its aligned train rows; the label party registers the sum."""

    name = "colsum"
    aligns = True
    splits = True
    needs_label = True
    needs_features = True
    schemes = ("plain",)
    trains = True

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> SumSettings:
        if set(table) != {"column"}:
            raise ConfigError("model.column is required (and the only key)")
        return SumSettings(str(table["column"]))

    def check(self, job: Job, party: str) -> None:
        """Nothing to check beyond the data checks."""

    def run(self, ctx: PartyContext, settings: SumSettings) -> PartResult:
        train, test = ctx.aligned()
        ctx.tracker.phase("evaluate")
        ctx.on_epoch({"round": 1, "metrics": {"rows": float(len(train))}, "seconds": 0.0})
        total = float(train[settings.column].sum()) if settings.column in train else 0.0
        path = ctx.run_dir / "sum.json"
        path.write_text(json.dumps({"sum": total}))
        return PartResult(
            metrics={"test_rows": float(len(test))} if ctx.is_label_party else {},
            timing={"train": 0.0},
            crypto={"scheme": "plain"},
            model=ModelPart(
                path=path, parties=tuple(sorted(ctx.job.parties)), holder=ctx.job.job.label_party
            ),
            extra={"sum": total, "peers": list(ctx.peers)},
        )


COLSUM = SumKind()


def test_a_new_kind_plugs_in_with_one_registry_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(KINDS, "colsum", f"{__name__}:COLSUM")
    rng = np.random.default_rng(0)
    ids = np.arange(60)
    bank = pd.DataFrame({"id": ids, "x": rng.normal(size=60), "y": rng.integers(0, 2, 60)})
    shop = pd.DataFrame({"id": ids[10:], "spend": np.ones(50)})
    bank.to_csv(tmp_path / "bank.csv", index=False)
    shop.to_csv(tmp_path / "shop.csv", index=False)
    raw = {
        "job": {"id": "cs", "type": "colsum", "label_party": "bank"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "shop": {"data": "shop.csv", "id_column": "id"},
        },
        "crypto": {"scheme": "plain"},
        "evaluation": {"test_fraction": 0.2},
        "model": {"column": "spend"},
    }
    with pytest.raises(ConfigError, match="crypto.scheme 'paillier' is not available for colsum"):
        parse_job({**raw, "crypto": {"scheme": "paillier"}}, base_dir=tmp_path)
    job = parse_job(raw, base_dir=tmp_path)
    assert job.model == SumSettings("spend")
    net = InMemoryNetwork(["bank", "shop"], job_id="cs", seed=0)
    out = run_parties(
        {
            name: (lambda n: lambda ch: run_job(job, party=n, channel=ch, work_dir=tmp_path / n))(
                name
            )
            for name in ("bank", "shop")
        },
        network=net,
        timeout=60,
    )
    bank_out, shop_out = out["bank"], out["shop"]
    assert bank_out["psi"]["intersection_size"] == shop_out["psi"]["intersection_size"] == 50
    assert bank_out["rows"] == shop_out["rows"] == {"train": 40, "test": 10}
    assert shop_out["sum"] == 40.0 and bank_out["sum"] == 0.0  # the shop's train rows, all 1
    assert bank_out["metrics"] == {"test_rows": 10.0} and shop_out["peers"] == ["bank"]
    assert (
        bank_out["model"]
        == shop_out["model"]
        == {
            "name": "colsum-bank-shop",
            "version": "0.1.0",
            "stage": "candidate",
        }
    )
    written = json.loads((tmp_path / "shop" / "runs" / "cs" / "shop" / "result.json").read_text())
    assert written["sum"] == 40.0 and written["type"] == "colsum"
    events = (tmp_path / "bank" / "runs" / "cs" / "bank" / "events.jsonl").read_text()
    phases = [json.loads(line).get("phase") for line in events.splitlines()]
    assert [p for p in phases if p] == ["psi", "train", "evaluate", "done"]
