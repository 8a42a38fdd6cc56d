"""Secure aggregation across OS processes over gRPC + mutual TLS: four clients and an
aggregator, one client SIGKILLed at a chosen stage of the first secure round; the round still
unmasks (over the survivors, or over all four when the dead client's masked update arrived) and
the second round runs without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.pki import init_federation
from tests.vfl.test_horizontal_grpc import _free_port, _result, _write

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ["c0", "c1", "c2", "c3"]
VICTIM = "c2"
# stage -> (--inject-crash-at-send, the victim's update is in round 1's sum)
STAGES = {
    "before advertise": ("fl/secagg-advertise", False),
    "between advertise and roster": ("fl/secagg-advertise:after", False),
    "after sharing": ("fl/secagg-shares:after", False),
    "after its masked update": ("fl/update:after", True),
    "during unmasking": ("fl/secagg-reveal", True),
}


def _spawn(config: Path, party: str, role: str, data: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")
    cmd = [sys.executable, "-m", "vfl.cli._fedavg_party", "--config", str(config),
           "--party", party, "--job", "secagg-grpc", "--role", role, "--data", str(data),
           "--round-timeout", "15", "--heartbeat", "0.5", *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.grpc
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_secure_aggregation_over_grpc_survives_a_client_killed_at_a_stage(
    tmp_path: Path, stage: str
) -> None:
    crash, counted = STAGES[stage]
    names = ["aggregator", *CLIENTS]
    config = init_federation(
        names, tmp_path / "fed", addresses={n: f"127.0.0.1:{_free_port()}" for n in names}
    )
    for i, c in enumerate(CLIENTS):
        _write(tmp_path / f"{c}.csv", 200, i)
    _write(tmp_path / "test.csv", 400, 99)
    procs = {
        c: _spawn(config, c, "client", tmp_path / f"{c}.csv",
                  *(["--inject-crash-at-send", crash] if c == VICTIM else []))
        for c in CLIENTS
    }  # fmt: skip
    procs["aggregator"] = _spawn(
        config, "aggregator", "aggregator", tmp_path / "test.csv",
        "--clients", ",".join(CLIENTS), "--rounds", "2", "--secure",
    )  # fmt: skip
    try:
        results = {name: _result(proc, name) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    agg, agg_err = results["aggregator"]
    assert agg is not None and agg["ok"], agg_err[-3000:]
    first, second = agg["rounds"]
    failed = [e for e in agg["events"] if e["event"] == "secure_round_failed"]
    assert not first["skipped"] and not failed, failed
    survivors = CLIENTS if counted else [c for c in CLIENTS if c != VICTIM]
    assert first["accepted"] == survivors and VICTIM in first["dropped"]
    assert not second["skipped"] and second["accepted"] == [c for c in CLIENTS if c != VICTIM]
    assert procs[VICTIM].returncode == -9 and results[VICTIM][0] is None
    for c in CLIENTS:
        if c != VICTIM:
            res, err = results[c]
            assert res is not None and res["ok"], err[-2000:]
            assert res["rounds_trained"] == [1, 2]
