"""The Ray compute backend on a real two-node Ray cluster gives the local backend's results.

The cluster (``ray start --head`` + ``ray start --address``, one CPU each) is started once for
the module and stopped by killing exactly its own processes. PSI and Paillier batches are
compared with the local backend row for row; a Ray worker killed mid-PSI is retried (the result
is unchanged) or, with no retry allowed, the PSI fails with a one-line error naming the lost
batch and the CLI writes no output file.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import psi
from crypto import compute
from crypto.compute import ComputeError, LocalBackend, RayBackend
from crypto.paillier import PaillierPrivateKey, PaillierPublicKey, generate_keypair
from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from psi._common import DEFAULT_BATCH
from tests.integration._raycluster import RayCluster, _free_ports, start_cluster

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow

BATCH = 4096


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    """Two Ray nodes, this process connected as the driver (about 10 s to start on 2 cores)."""
    started = start_cluster()
    # The driver's own functions are pickled by reference: the workers import this checkout.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = started.env["PYTHONPATH"]
    try:
        ray.init(address=started.address, log_to_driver=False)
        print(f"ray fixture: 2 nodes up in {started.startup_seconds:.1f} s")  # noqa: T201
        yield started
    finally:
        ray.shutdown()
        started.stop()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def _sets(n_a: int, n_b: int, common: int, seed: int) -> tuple[list[int], list[int]]:
    rs = np.random.default_rng(seed)
    pool = rs.choice(10**12, n_a + n_b - common, replace=False).tolist()
    a = pool[:n_a]
    b = pool[:common] + pool[n_a:]
    rs.shuffle(b)
    return a, b


def _psi(
    a: list[int], b: list[int], bank: compute.ComputeBackend, progress: Any = None
) -> dict[str, psi.PSIResult]:
    """Bank on ``bank``, retailer on two local processes; fixed randomness on both sides."""
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-ray", seed=0)
    retailer = LocalBackend(workers=1)
    try:
        return run_parties(
            {
                "bank": lambda ch: psi.intersect(
                    a, channel=ch, rng=SeededRandom(1), batch=BATCH, compute=bank, progress=progress
                ),
                "retailer": lambda ch: psi.intersect(
                    b, channel=ch, rng=SeededRandom(2), batch=BATCH, compute=retailer
                ),
            },
            network=net,
            timeout=300,
        )
    finally:
        retailer.close()


def test_two_party_psi_on_ray_equals_local_row_for_row(cluster: RayCluster) -> None:
    a, b = _sets(20_000, 12_000, 5_000, seed=3)
    local = LocalBackend(workers=1)
    try:
        expected = _psi(a, b, local)
    finally:
        local.close()
    on_ray = RayBackend(cluster.address)
    got = _psi(a, b, on_ray)
    for party in ("bank", "retailer"):
        want_rows, got_rows = expected[party].rows, got[party].rows
        assert want_rows is not None and got_rows is not None
        np.testing.assert_array_equal(got_rows, want_rows)
        assert got[party].size == expected[party].size == 5_000
    assert {a[i] for i in got["bank"].rows} == set(a) & set(b)  # type: ignore[union-attr]
    stats = on_ray.stats()
    # Own ids (5 batches) blinded, the peer's (3 batches) re-blinded: every batch one task.
    assert stats.backend == "ray" and stats.tasks == 5 + 3
    assert stats.nodes == 2, stats
    assert sum(stats.tasks_per_node) == stats.tasks


@functools.cache
def _keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_keypair(512, rng=SeededRandom(77), insecure_allow_small_keys=True)


def test_paillier_batches_on_ray_equal_local(cluster: RayCluster) -> None:
    pub, priv = _keys()
    v = np.random.default_rng(3).normal(size=300)
    x = np.random.default_rng(4).normal(size=(300, 2))
    local_enc = pub.encrypt(v, rng=SeededRandom(5), processes=2)
    local_owner = priv.encrypt(v[:60], rng=SeededRandom(6), processes=2)
    local_dec = priv.decrypt(local_enc, processes=2)
    local_mat = local_enc.rmatmul(x.T, processes=2).raw_ciphertexts()
    backend = RayBackend(cluster.address)
    previous = compute.configure(backend)
    try:
        ray_enc = pub.encrypt(v, rng=SeededRandom(5), processes=2)
        ray_owner = priv.encrypt(v[:60], rng=SeededRandom(6), processes=2)
        ray_dec = priv.decrypt(ray_enc, processes=2)
        ray_mat = ray_enc.rmatmul(x.T, processes=2).raw_ciphertexts()
    finally:
        compute.configure(previous)
    assert ray_enc.raw_ciphertexts() == local_enc.raw_ciphertexts()
    assert ray_owner.raw_ciphertexts() == local_owner.raw_ciphertexts()
    np.testing.assert_array_equal(ray_dec, local_dec)
    np.testing.assert_allclose(ray_dec, v, atol=1e-9)
    assert ray_mat == local_mat
    assert backend.stats().tasks >= 4 * 2


class _KillWorkers:
    """A progress callback that SIGKILLs the Ray workers that have run tasks, mid-PSI."""

    def __init__(self, backend: RayBackend, after: int, *, every_tick: bool = False) -> None:
        self.backend = backend
        self.after = after
        self.every_tick = every_tick
        self.killed: list[int] = []

    def __call__(self, done: int, total: int) -> None:
        if (self.killed and not self.every_tick) or done < self.after:
            return
        for pid in self.backend.worker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            if pid not in self.killed:
                self.killed.append(pid)


def test_killed_ray_worker_mid_psi_is_retried(cluster: RayCluster) -> None:
    a, b = _sets(24_000, 12_000, 4_000, seed=5)
    backend = RayBackend(cluster.address, max_retries=3)
    killer = _KillWorkers(backend, after=BATCH)
    got = _psi(a, b, backend, progress=killer)
    assert killer.killed, "no Ray worker was running to kill"
    assert {a[i] for i in got["bank"].rows} == set(a) & set(b)  # type: ignore[union-attr]
    assert got["retailer"].size == 4_000
    assert not set(killer.killed) & set(_alive(killer.killed))
    assert backend.stats().tasks == 6 + 3  # every batch exactly once in the results


def _alive(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists()]


def test_killed_ray_worker_without_retries_fails_clearly(cluster: RayCluster) -> None:
    # Big batches: a worker is busy almost all the time, so the kill lands inside a task.
    a, b = _sets(48_000, 8_000, 2_000, seed=6)
    backend = RayBackend(cluster.address, max_retries=0)
    # Killed again at every batch: a kill that lands between two tasks is followed by another.
    killer = _KillWorkers(backend, after=1, every_tick=True)
    with pytest.raises(ComputeError, match=r"Ray lost batch \d+ after 0 retries"):
        _psi(a, b, backend, progress=killer)
    assert killer.killed


def _cli_psi_job(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A two-party federation and both parties' CSVs (ids 0..N with a known overlap)."""
    from protocols.pki import init_federation

    ports = _free_ports(2)
    addresses = {"bank": f"127.0.0.1:{ports[0]}", "retailer": f"127.0.0.1:{ports[1]}"}
    config = init_federation(["bank", "retailer"], tmp_path / "fed", addresses=addresses)
    bank = tmp_path / "bank.csv"
    retailer = tmp_path / "retailer.csv"
    bank.write_text("id,x\n" + "".join(f"{i},{i % 7}\n" for i in range(0, 20_000)))
    retailer.write_text("id,y\n" + "".join(f"{i},{i % 5}\n" for i in range(15_000, 30_000)))
    return config, bank, retailer


def _vfl(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vfl.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_psi_with_compute_ray_reports_its_nodes(cluster: RayCluster, tmp_path: Path) -> None:
    config, bank_csv, retailer_csv = _cli_psi_job(tmp_path)
    env = dict(cluster.env)
    common = ["--config", str(config), "--id-column", "id", "--job-id", "ray-cli", "--json"]
    bank = _vfl(
        [
            "psi",
            *common,
            "--party",
            "bank",
            "--input",
            str(bank_csv),
            "--output",
            str(tmp_path / "bank_out.csv"),
            "--compute",
            "ray",
            "--ray-address",
            cluster.address,
        ],
        env,
    )
    retailer = _vfl(
        [
            "psi",
            *common,
            "--party",
            "retailer",
            "--input",
            str(retailer_csv),
            "--output",
            str(tmp_path / "retailer_out.csv"),
            "--workers",
            "1",
        ],
        env,
    )
    outs = {}
    for name, proc in (("bank", bank), ("retailer", retailer)):
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"
        outs[name] = json.loads(stdout.strip().splitlines()[-1])
    assert outs["bank"]["intersection_size"] == outs["retailer"]["intersection_size"] == 5_000
    assert outs["bank"]["compute"]["backend"] == "ray"
    assert outs["bank"]["compute"]["nodes"] >= 1
    # 20,000 own ids and 15,000 of the peer's in batches of DEFAULT_BATCH: one task each.
    assert outs["bank"]["compute"]["tasks"] == -(-20_000 // DEFAULT_BATCH) + -(
        -15_000 // DEFAULT_BATCH
    )
    assert outs["retailer"]["compute"]["backend"] == "local"
    bank_ids = (tmp_path / "bank_out.csv").read_text().splitlines()[1:]
    retailer_ids = (tmp_path / "retailer_out.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in bank_ids] == [r.split(",")[0] for r in retailer_ids]


def test_cli_ray_address_needs_compute_ray(tmp_path: Path, cluster: RayCluster) -> None:
    config, bank_csv, _ = _cli_psi_job(tmp_path)
    out = tmp_path / "never.csv"
    proc = _vfl(
        [
            "psi",
            "--config",
            str(config),
            "--party",
            "bank",
            "--input",
            str(bank_csv),
            "--id-column",
            "id",
            "--output",
            str(out),
            "--compute",
            "local",
            "--ray-address",
            cluster.address,
        ],
        dict(cluster.env),
    )
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "--ray-address needs --compute ray" in stderr.strip().splitlines()[-1]
    assert not out.exists()


PSI_JOB = """
[job]
id = "ray-align"
type = "psi"

[parties.bank]
data = "bank.csv"
id_column = "id"

[parties.retailer]
data = "retailer.csv"
id_column = "id"
"""


def test_vfl_run_with_compute_ray_only_at_one_party(cluster: RayCluster, tmp_path: Path) -> None:
    """``--compute`` is party-local: the bank on Ray, the retailer local, same job digest."""
    config, _, _ = _cli_psi_job(tmp_path)
    (tmp_path / "job.toml").write_text(PSI_JOB)
    procs = {}
    for name, extra in (
        ("bank", ["--compute", "ray", "--ray-address", cluster.address]),
        ("retailer", []),
    ):
        procs[name] = _vfl(
            [
                "run",
                str(tmp_path / "job.toml"),
                "--config",
                str(config),
                "--party",
                name,
                "--work-dir",
                str(tmp_path / name),
                "--json",
                *extra,
            ],
            dict(cluster.env),
        )
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name}: {stderr[-2000:]}"
        results[name] = json.loads(stdout.strip().splitlines()[-1])
    assert results["bank"]["psi"]["intersection_size"] == 5_000
    assert results["bank"]["compute"]["backend"] == "ray"
    assert results["bank"]["compute"]["tasks"] == 2  # one batch of own ids, one of the peer's
    assert results["retailer"]["compute"]["backend"] == "local"
    on_disk = json.loads(Path(results["bank"]["run_dir"], "result.json").read_text())
    assert on_disk["compute"] == results["bank"]["compute"]


def test_cli_unreachable_ray_address_fails_fast_before_psi(tmp_path: Path) -> None:
    config, bank_csv, _ = _cli_psi_job(tmp_path)
    out = tmp_path / "never.csv"
    (closed,) = _free_ports(1)
    argv = ["psi", "--config", str(config), "--party", "bank", "--input", str(bank_csv)]
    argv += ["--id-column", "id", "--output", str(out), "--compute", "ray"]
    proc = _vfl([*argv, "--ray-address", f"127.0.0.1:{closed}"], dict(os.environ))
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert f"cannot connect to the Ray cluster at 127.0.0.1:{closed}" in last
    assert not out.exists()


def test_vfl_serve_connects_to_the_ray_cluster_before_serving(
    cluster: RayCluster, tmp_path: Path
) -> None:
    config, _, _ = _cli_psi_job(tmp_path)
    argv = ["serve", "--config", str(config), "--party", "bank", "--json"]
    proc = _vfl([*argv, "--compute", "ray", "--ray-address", cluster.address], dict(cluster.env))
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["status"] == "serving"
        assert info["compute"] == {"backend": "ray", "workers": 2}  # the cluster's 2 CPUs
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-2000:]
