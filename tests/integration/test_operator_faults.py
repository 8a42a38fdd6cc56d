"""An operator's common faults, provoked for real: two ``vfl`` processes, a foreign CA made with
``vfl certs init``, ``kill -9``. Each fault is one line naming the cause and a non-zero exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.protocols.grpc_harness import ROOT, free_port

ENV = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")


def vfl(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vfl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=timeout,
    )


def certs_init(out: Path, *, base_port: int) -> Path:
    done = vfl(
        "certs", "init", "--parties", "bank,retailer", "--out", out, "--base-port", base_port
    )
    assert done.returncode == 0, done.stderr
    return out / "federation.toml"


def serve(config: Path, party: str, *extra: object) -> subprocess.Popen[str]:
    """``vfl serve --json``, returned once it prints that it serves."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vfl.cli", "serve", "--config", str(config), "--party", party]
        + ["--json", *map(str, extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        raise AssertionError(f"vfl serve {party} did not start: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    assert json.loads(line)["status"] == "serving"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.communicate()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("vfl: error:")]
    assert len(lines) == 1, done.stderr[-3000:]
    return lines[0]


@pytest.mark.grpc
def test_a_second_node_on_a_bound_port_is_refused(tmp_path: Path) -> None:
    port = free_port()
    config = certs_init(tmp_path / "fed", base_port=port)
    first = serve(config, "bank")
    try:
        second = vfl("serve", "--config", config, "--party", "bank", "--json", timeout=60)
        assert second.returncode == 2
        assert second.stdout == ""  # never claimed to serve
        assert one_line_error(second) == (
            f"vfl: error: address 127.0.0.1:{port} is already in use by another process"
        )
        assert first.poll() is None  # the first node is untouched
    finally:
        stop(first)
    # Once the first node is gone the port is free again (its TIME_WAIT leftovers do not count).
    again = serve(config, "bank")
    stop(again)


def write_job(tmp_path: Path, job_id: str, *, model_name: str = "credit", rows: int = 240) -> Path:
    """A small hetero LR job (plain scheme, fixed seed) for bank (label) and retailer."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 4))
    y = (x @ np.array([1.5, -1.0, 0.8, 0.5]) + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    ids = [f"c{i:04d}" for i in range(rows)]
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    pd.DataFrame({"id": ids, "y": y, "x0": x[:, 0], "x1": x[:, 1]}).to_csv(
        data / "bank.csv", index=False
    )
    pd.DataFrame({"id": ids[::-1], "a0": x[::-1, 2], "a1": x[::-1, 3]}).to_csv(
        data / "retailer.csv", index=False
    )
    job = tmp_path / f"{job_id}.toml"
    job.write_text(
        f"""
[job]
id = "{job_id}"
type = "hetero_lr"
label_party = "bank"
model_name = "{model_name}"

[parties.bank]
data = "data/bank.csv"
id_column = "id"
label_column = "y"

[parties.retailer]
data = "data/retailer.csv"
id_column = "id"

[crypto]
scheme = "plain"

[evaluation]
test_fraction = 0.2
seed = 0

[model]
epochs = 2
batch_size = 64
validation_fraction = 0.0
"""
    )
    return job


def run_party(
    job: Path, config: Path, party: str, work: Path, *extra: object
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vfl.cli", "-v", "run", str(job), "--config", str(config)]
        + ["--party", party, "--work-dir", str(work), "--json", *map(str, extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )


def _noise(stderr: str) -> list[str]:
    """Warnings an operator would read as an incident."""
    return [
        line
        for line in stderr.splitlines()
        if " WARNING " in line and ("is down" in line or "out_of_order" in line)
    ]


@pytest.mark.slow
@pytest.mark.grpc
def test_concurrent_jobs_with_one_model_name_register_distinct_matching_versions(
    tmp_path: Path,
) -> None:
    # Two jobs at once: 4 processes, each job on its own ports (one node per address), both
    # sharing each party's work dir and so its registry.db.
    config = certs_init(tmp_path / "fed", base_port=free_port())
    text = config.read_text()
    configs = {"job-a": config, "job-b": config.with_name("federation-b.toml")}
    for party in ("bank", "retailer"):
        old = load_address(config, party)
        text = text.replace(f'address = "{old}"', f'address = "127.0.0.1:{free_port()}"')
    configs["job-b"].write_text(text)
    jobs = {job_id: write_job(tmp_path, job_id) for job_id in configs}
    procs = {
        (job_id, party): run_party(jobs[job_id], configs[job_id], party, tmp_path / party)
        for job_id in jobs
        for party in ("bank", "retailer")
    }
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
        assert not _noise(stderr), _noise(stderr)
        out[key] = json.loads(stdout.strip().splitlines()[-1])
    versions = {key: result["model"]["version"] for key, result in out.items()}
    for job_id in jobs:
        assert versions[(job_id, "bank")] == versions[(job_id, "retailer")], versions
    assert versions[("job-a", "bank")] != versions[("job-b", "bank")], versions
    registries = {}
    for party in ("bank", "retailer"):
        from vfl.governance import ModelRegistry

        with ModelRegistry(tmp_path / party / "registry.db", party=party) as registry:
            registries[party] = {m.version: m.metadata.job_id for m in registry.versions("credit")}
    assert registries["bank"] == registries["retailer"]
    assert sorted(registries["bank"].values()) == ["job-a", "job-b"]


def load_address(config: Path, party: str) -> str:
    from protocols.config import load_federation

    return load_federation(config).party(party).address


@pytest.mark.grpc
@pytest.mark.parametrize("fault", ["foreign_ca", "wrong_name", "ours_refused"])
def test_a_peer_with_a_bad_certificate_is_a_permanent_error_naming_it(
    tmp_path: Path, fault: str
) -> None:
    import shutil

    config = certs_init(tmp_path / "fed", base_port=free_port())
    fed = config.parent
    serving, running = "retailer", "bank"
    if fault in ("foreign_ca", "ours_refused"):  # the retailer's certificate is another CA's
        foreign = certs_init(tmp_path / "foreign", base_port=free_port()).parent
        source = foreign / "retailer"
        expected = "peer 'retailer' presented a certificate not issued by this federation's CA"
        if fault == "ours_refused":  # the bank serves and refuses the retailer's client cert
            serving, running = "bank", "retailer"
            expected = "peer 'bank' at 127.0.0.1:"
    else:  # a certificate of this CA, but issued to the bank
        source = fed / "bank"
        expected = "peer 'retailer' at 127.0.0.1:"
    for name in ("tls.pem", "tls.key"):
        shutil.copy(source / name, fed / "retailer" / name)
    node = serve(config, serving)
    try:
        job = write_job(tmp_path, "tls-job")
        # --timeout 600: a retried handshake failure would take minutes, not seconds.
        run = run_party(job, config, running, tmp_path / running, "--timeout", "600")
        _, stderr = run.communicate(timeout=120)
    finally:
        stop(node)
    assert run.returncode == 3, stderr[-3000:]
    line = [x for x in stderr.splitlines() if x.startswith("vfl: error:")]
    assert len(line) == 1, stderr[-3000:]
    assert line[0].startswith(f"vfl: error: {expected}"), line[0]
    if fault == "wrong_name":
        assert "does not name 'retailer'" in line[0]
    if fault == "ours_refused":
        assert "refused this party's certificate" in line[0]


@pytest.mark.slow
@pytest.mark.grpc
def test_a_killed_run_is_marked_failed_by_the_next_node_in_its_work_dir(tmp_path: Path) -> None:
    import time

    from vfl.dashboard._runs import RunStore

    config = certs_init(tmp_path / "fed", base_port=free_port())
    job = write_job(tmp_path, "killed", rows=2000)
    text = job.read_text().replace("epochs = 2", "epochs = 500")
    job.write_text(text)
    work = tmp_path / "bank"
    procs = {p: run_party(job, config, p, tmp_path / p) for p in ("bank", "retailer")}
    status_path = work / "runs" / "killed" / "bank" / "status.json"
    try:
        phase = None
        for _ in range(1200):  # until the bank trains (PSI done), at most ~2 minutes
            if status_path.exists():
                try:
                    phase = json.loads(status_path.read_text())["phase"]
                except ValueError:
                    phase = None  # never: status.json is replaced atomically
                if phase == "train":
                    break
            assert procs["bank"].poll() is None, procs["bank"].communicate()[1][-3000:]
            time.sleep(0.1)
        assert phase == "train"
        pid = procs["bank"].pid
        procs["bank"].send_signal(signal.SIGKILL)
        procs["bank"].wait(timeout=30)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    status = json.loads(status_path.read_text())
    assert status["phase"] == "train" and status["owner"]["pid"] == pid  # left behind
    store = RunStore(work)
    view = store.view(store.find(job="killed", party="bank"))  # type: ignore[arg-type]
    reason = f"process {pid} died without finishing (in phase 'train')"
    assert view.phase == "failed"  # the dashboard shows it failed at once
    assert view.to_json()["status"]["error"] == reason
    # The next node in that work dir marks it failed on disk, with the reason.
    node = serve(config, "bank", "--work-dir", work)
    stop(node)
    status = json.loads(status_path.read_text())
    assert status["phase"] == "failed" and status["error"] == reason
    last = json.loads((status_path.parent / "events.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "phase" and last["phase"] == "failed" and last["error"] == reason


@pytest.mark.grpc
def test_the_connect_window_follows_timeout(tmp_path: Path) -> None:
    config = certs_init(tmp_path / "fed", base_port=free_port())
    job = write_job(tmp_path, "alone")
    bank = run_party(job, config, "bank", tmp_path / "bank", "--timeout", "3")  # no retailer
    _, stderr = bank.communicate(timeout=120)
    assert bank.returncode == 3, stderr[-3000:]
    line = one_line_error(subprocess.CompletedProcess([], 3, "", stderr))
    assert line.startswith("vfl: error: peer 'retailer' unreachable for 3 s"), line
    status = json.loads((tmp_path / "bank" / "runs" / "alone" / "bank" / "status.json").read_text())
    assert status["phase"] == "failed"
