"""Smoke tests: every script in examples/ runs as its docstring and examples/README.md say.

Two-terminal examples run one OS process per party (gRPC + mutual TLS on 127.0.0.1, free ports),
with small data, few epochs and, where Paillier is used, the explicit insecure small-key flag.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMEOUT = 300.0


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")


def _free_base_port(n: int) -> int:
    """A port p such that p .. p + n - 1 are all free on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + n > 65535:
            continue
        try:
            for port in range(base + 1, base + n):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise OSError(f"no {n} consecutive free ports on 127.0.0.1")


def _run(script: str, *args: str, cwd: Path) -> str:
    """Run ``python examples/SCRIPT ARGS`` to completion; its stdout."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _run_parties(script: str, commands: dict[str, list[str]], *, cwd: Path) -> dict[str, str]:
    """One process per party at once (as in separate terminals); each party's stdout.

    Output goes to files (no pipe can fill up and block a party); as soon as one party fails,
    the others are stopped and the failing party's stderr is shown.
    """
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: (cwd / f"{name}.stdout", cwd / f"{name}.stderr") for name in commands}
    try:
        for name, args in commands.items():
            out, err = logs[name]
            with out.open("wb") as stdout, err.open("wb") as stderr:
                procs[name] = subprocess.Popen(
                    [sys.executable, str(EXAMPLES / script), *args],
                    cwd=cwd, env=_env(), stdout=stdout, stderr=stderr,
                )  # fmt: skip
        deadline = time.monotonic() + TIMEOUT
        while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
            if any(p.returncode not in (None, 0) for p in procs.values()):
                break
            time.sleep(0.2)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    # A party that failed by itself first; those killed above (negative codes) after it.
    for name, proc in sorted(procs.items(), key=lambda item: item[1].returncode < 0):
        assert proc.returncode == 0, (
            f"{name} exited {proc.returncode}:\n{logs[name][1].read_text()[-3000:]}"
        )
    return {name: out.read_text() for name, (out, _) in logs.items()}


def _json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.grpc
def test_retailer_bank_lr(tmp_path: Path) -> None:
    port = str(_free_base_port(2))
    small = "--insecure-small-keys"
    _run("retailer_bank_lr.py", "setup", "lr", "--rows", "3000", "--epochs", "2", small,
         "--base-port", port, cwd=tmp_path)  # fmt: skip
    out = _run_parties(
        "retailer_bank_lr.py",
        {"bank": ["bank", "lr", small, "--json"], "retailer": ["retailer", "lr", small]},
        cwd=tmp_path,
    )
    bank = _json(out["bank"])
    assert bank["party"] == "bank" and bank["job_id"] == "retailer-bank-lr"
    assert 2000 < bank["psi"]["intersection_size"] < 3000  # a partial overlap, found by PSI
    assert f"retailer: {bank['psi']['intersection_size']} shared customers" in out["retailer"]
    assert "no metrics here" in out["retailer"]
    assert bank["metrics"]["test_auc"] > 0.65
    assert bank["crypto"] == {"scheme": "paillier", "key_bits": 1024}
    assert (tmp_path / bank["model_path"]).is_file()  # relative to the cwd the parties ran in


@pytest.mark.slow
@pytest.mark.grpc
def test_retailer_bank_splitnn(tmp_path: Path) -> None:
    port = str(_free_base_port(2))
    _run("retailer_bank_splitnn.py", "setup", "snn", "--rows", "3000", "--base-port", port,
         cwd=tmp_path)  # fmt: skip
    out = _run_parties(
        "retailer_bank_splitnn.py",
        {"bank": ["bank", "snn", "--json"], "retailer": ["retailer", "snn"]},
        cwd=tmp_path,
    )
    bank, retailer = _json(out["bank"]), json.loads(out["retailer"])  # one line / indented
    assert bank["party"] == "bank" and 2000 < bank["intersection_size"] < 3000
    assert retailer == {"party": "retailer", "intersection_size": bank["intersection_size"]}
    assert bank["metrics"]["test_auc"] > 0.6
    # The label-leakage meter: what the retailer could infer from its gradients.
    assert {"leak_auc_norm", "leak_auc_direction"} <= set(bank["privacy"])


@pytest.mark.slow
def test_three_party(tmp_path: Path) -> None:
    args = ["--rows", "3000", "--epochs", "2", "--insecure-small-keys", "--json"]
    out = _json(_run("three_party.py", *args, cwd=tmp_path))
    assert 2000 < out["intersection_size"] < 3000
    assert out["metrics"]["test_auc"] > 0.65
    assert all(out["bytes_sent"][p] > 0 for p in ("bank", "retailer", "telco"))
    topics = out["telco_received_topics"]  # read from the in-memory network's transcript
    assert any(t.startswith("psi/") for t in topics) and "hetero_lr/key" in topics


@pytest.mark.slow
@pytest.mark.grpc
@pytest.mark.parametrize("aggregator", ["median", "fedavg"])
def test_fedavg_clients_with_a_poisoning_client(tmp_path: Path, aggregator: str) -> None:
    port = str(_free_base_port(4))
    _run("fedavg_clients.py", "setup", "fl", "--rows", "2000", "--rounds", "5", "--poison",
         "--aggregator", aggregator, "--base-port", port, cwd=tmp_path)  # fmt: skip
    out = _run_parties(
        "fedavg_clients.py",
        {
            "aggregator": ["aggregator", "fl", "--json"],
            **{c: [c, "fl", "--json"] for c in ("c1", "c2", "c3")},
        },
        cwd=tmp_path,
    )
    agg = _json(out["aggregator"])
    assert agg["role"] == "aggregator"
    assert all(_json(out[c])["role"] == "client" for c in ("c1", "c2", "c3"))
    if aggregator == "median":
        assert agg["metrics"]["test_auc"] > 0.65  # the median shrugs off c3's flipped labels
    else:
        assert agg["metrics"]["test_auc"] < 0.5  # averaging weighted by rows follows c3


def test_protocol_unit_test_passes_under_pytest() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES / "protocol_unit_test.py"), "-q",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "6 passed" in proc.stdout


@pytest.mark.parametrize(
    "script",
    ["retailer_bank_lr.py", "retailer_bank_splitnn.py", "three_party.py", "fedavg_clients.py",
     "protocol_unit_test.py"],
)  # fmt: skip
def test_example_is_documented_and_short(script: str) -> None:
    text = (EXAMPLES / script).read_text()
    command = "pytest examples/" if script == "protocol_unit_test.py" else "python examples/"
    assert f"{command}{script}" in text.split('"""')[1]  # its docstring says how to run it
    assert f"{command}{script}" in (EXAMPLES / "README.md").read_text()
    assert len(text.splitlines()) <= 130  # brief: about 120 lines
