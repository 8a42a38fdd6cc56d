"""Start party processes on 127.0.0.1 with free ports and collect their results."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from protocols.pki import init_federation

__all__ = ["ROOT", "free_port", "make_federation", "spawn", "result_of", "run_grpc_parties"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_federation(out: Path, parties: Sequence[str]) -> Path:
    """A fresh CA, certificates and keys, every party on its own free port."""
    return init_federation(parties, out, addresses={p: f"127.0.0.1:{free_port()}" for p in parties})


def spawn(
    config: Path,
    party: str,
    *,
    job: str,
    fn: str,
    heartbeat: float = 30.0,
    recv_timeout: float = 120.0,
) -> subprocess.Popen[str]:
    """One party process running ``fn`` (``module:function``) on its channel."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.protocols._grpc_party",
            "--config",
            str(config),
            "--party",
            party,
            "--job",
            job,
            "--fn",
            fn,
            "--heartbeat",
            str(heartbeat),
            "--recv-timeout",
            str(recv_timeout),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_of(proc: subprocess.Popen[str], party: str, *, timeout: float) -> dict[str, Any]:
    """Wait for the process and parse its ``RESULT`` line."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f"party {party} did not finish in {timeout} s:\n{stderr[-3000:]}"
        ) from None
    for line in reversed(stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    raise AssertionError(
        f"party {party} printed no result (exit {proc.returncode}):\n{stderr[-3000:]}"
    )


def run_grpc_parties(
    config: Path, functions: Mapping[str, str], *, job: str, timeout: float = 120.0
) -> dict[str, Any]:
    """Run every party in its own process; return ``{party: value}`` or raise naming the party."""
    procs = {party: spawn(config, party, job=job, fn=fn) for party, fn in functions.items()}
    try:
        results = {party: result_of(proc, party, timeout=timeout) for party, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for party, result in results.items():
        if not result["ok"]:
            raise AssertionError(f"party {party} failed: {result['error']}: {result['message']}")
    return {party: result["value"] for party, result in results.items()}
