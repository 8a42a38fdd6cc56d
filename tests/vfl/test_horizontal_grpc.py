"""Ten clients and an aggregator as eleven OS processes over gRPC + mutual TLS on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from protocols.pki import init_federation

ROOT = Path(__file__).resolve().parents[2]
N_CLIENTS = 10
ROUNDS = 20
CRASH_CLIENT, CRASH_ROUND = "c03", 5


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.linspace(-1, 1, 5))))).astype(int)
    df = pd.DataFrame(x, columns=[f"x{j}" for j in range(5)])
    df.insert(0, "y", y)
    df.insert(0, "id", np.arange(n) + 100_000 * seed)
    df.to_csv(path, index=False)


def _spawn(config: Path, party: str, role: str, data: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")
    cmd = [sys.executable, "-m", "vfl.cli._fedavg_party", "--config", str(config),
           "--party", party, "--job", "fl-grpc", "--role", role, "--data", str(data),
           "--round-timeout", "20", "--heartbeat", "1", *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _result(proc: subprocess.Popen[str], name: str) -> tuple[dict[str, Any] | None, str]:
    try:
        out, err = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{name} did not finish:\n{err[-3000:]}") from None
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result, err
    return None, err


@pytest.mark.slow
@pytest.mark.grpc
def test_ten_client_processes_twenty_rounds_with_one_killed_mid_round(tmp_path: Path) -> None:
    clients = [f"c{i:02d}" for i in range(N_CLIENTS)]
    names = ["aggregator", *clients]
    config = init_federation(
        names, tmp_path / "fed", addresses={n: f"127.0.0.1:{_free_port()}" for n in names}
    )
    for i, c in enumerate(clients):
        _write(tmp_path / f"{c}.csv", 200, i)
    _write(tmp_path / "test.csv", 1000, 99)
    procs = {
        c: _spawn(
            config, c, "client", tmp_path / f"{c}.csv",
            *(["--inject-crash-at-round", str(CRASH_ROUND)] if c == CRASH_CLIENT else []),
        )
        for c in clients
    }  # fmt: skip
    procs["aggregator"] = _spawn(
        config, "aggregator", "aggregator", tmp_path / "test.csv",
        "--clients", ",".join(clients), "--rounds", str(ROUNDS),
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
    assert [r["round"] for r in agg["rounds"]] == list(range(1, ROUNDS + 1))
    crashed = agg["rounds"][CRASH_ROUND - 1]
    assert CRASH_CLIENT in crashed["dropped"] and not crashed["skipped"]
    assert len(crashed["accepted"]) == N_CLIENTS - 1
    assert all(CRASH_CLIENT not in r["accepted"] for r in agg["rounds"][CRASH_ROUND - 1 :])
    assert all(len(r["accepted"]) == N_CLIENTS for r in agg["rounds"][: CRASH_ROUND - 1])
    events = [(e["event"], e.get("client")) for e in agg["events"]]
    assert ("peer_down", CRASH_CLIENT) in events or ("straggler", CRASH_CLIENT) in events
    assert agg["test_auc"] > 0.7
    assert procs[CRASH_CLIENT].returncode == -9 and results[CRASH_CLIENT][0] is None
    for c in clients:
        if c != CRASH_CLIENT:
            res, err = results[c]
            assert res is not None and res["ok"], err[-2000:]
            assert res["rounds_trained"] == list(range(1, ROUNDS + 1))
    assert set(agg["reports"]) == set(clients) - {CRASH_CLIENT}
