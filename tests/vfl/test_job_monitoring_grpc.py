"""A job over two real gRPC nodes records each peer's heartbeat latency per round, in the run
files, and the dashboard's party-health view shows latency and last seen from the node."""

from __future__ import annotations

import protocols  # noqa: F401  (first: sets gRPC's TLS policy before grpc is imported)

# isort: split

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from protocols.config import load_federation
from protocols.grpc import PartyNode
from tests.protocols.grpc_harness import make_federation
from vfl.dashboard import PeerHealth
from vfl.jobs import JobTracker, MeteredChannel, PartyIdentity, parse_job

pytestmark = pytest.mark.grpc


def test_rounds_record_the_heartbeat_latency_of_each_peer(tmp_path: Path) -> None:
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer"]))
    job = parse_job(
        {
            "job": {"id": "lat", "type": "psi"},
            "parties": {n: {"data": f"{n}.csv", "id_column": "id"} for n in ("bank", "retailer")},
        }
    )
    bank = PartyNode(config, "bank", heartbeat_interval=0.2).start()
    retailer = PartyNode(config, "retailer", heartbeat_interval=0.2).start()
    health = PeerHealth(bank)
    health.start()
    try:
        deadline = time.monotonic() + 60
        while bank.monitor.rtt("retailer") is None:
            assert time.monotonic() < deadline, "no heartbeat answered in 60 s"
            time.sleep(0.05)
        channel = MeteredChannel(bank.channel("lat"), latency=bank.monitor)
        other = retailer.channel("lat")
        identity = PartyIdentity(config.signing_key("bank")).for_party("bank")
        tracker = JobTracker(
            job, party="bank", channel=channel, work_dir=tmp_path, identity=identity
        )
        try:
            tracker.start()
            for round_ in (1, 2):
                other.send("bank", "step", np.full(4, round_, dtype=np.float64), round=round_)
                assert channel.recv("retailer", "step", timeout=30)[0] == round_
                tracker.round(metrics={"loss": 1.0 / round_}, seconds=0.05)
        finally:
            tracker.close()
        run_dir = tmp_path / "runs" / "lat" / "bank"
        lines = (run_dir / "events.jsonl").read_text().splitlines()
        rounds = [e for e in map(json.loads, lines) if e["kind"] == "round"]
        assert len(rounds) == 2
        for event in rounds:
            assert set(event["latency_ms"]) == {"retailer"}
            assert 0.0 < event["latency_ms"]["retailer"] < 3000.0  # below the check timeout
        status = json.loads((run_dir / "status.json").read_text())
        assert 0.0 < status["peers"]["retailer"]["latency_ms"] < 3000.0
        assert status["peers"]["retailer"]["last_seen"] is not None
        snapshot = health.snapshot()["retailer"]
        assert 0.0 < snapshot["latency_ms"] < 3000.0
        assert snapshot["last_seen"] is not None and snapshot["last_seen"] <= time.time()
    finally:
        health.stop()
        retailer.stop(grace=0)
        bank.stop(grace=0)


def test_dashboard_page_shows_latency_and_time_in_crypto(tmp_path: Path) -> None:
    """Headless Chromium: the party-health table shows the node's heartbeat latency, and the
    crypto tile the share of round time spent in encryption from ``status.json``."""
    from tests.vfl.test_dashboard import TOKEN, training_run
    from tests.vfl.test_dashboard_chromium import CHROMIUM, artifacts, chromium, wait_until_up
    from vfl.dashboard import DashboardServer

    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (Debian package 'chromium')")
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer", "insurer"]))
    run = training_run(tmp_path / "work", rounds=2)
    run.write_status(crypto_seconds=0.4, crypto_share=0.3125)
    retailer = PartyNode(config, "retailer", heartbeat_interval=0.2).start()
    bank = PartyNode(config, "bank", heartbeat_interval=0.2).start()
    try:
        with DashboardServer(tmp_path / "work", token=TOKEN, node=bank) as server:
            wait_until_up(server, "retailer")
            deadline = time.monotonic() + 60
            while server.health()["retailer"]["latency_ms"] is None:
                assert time.monotonic() < deadline, "no heartbeat latency in 60 s"
                time.sleep(0.05)
            dom = chromium(server.login_url, tmp_path / "profile", "--dump-dom").stdout
    finally:
        bank.stop(grace=0)
        retailer.stop(grace=0)
    (artifacts() / "dashboard-latency.html").write_text(dom)
    row = re.search(r'<tr data-peer="retailer">(.*?)</tr>', dom)
    assert row is not None
    cell = re.search(r'<td data-latency="([0-9.e+-]+)">([0-9.e+-]+) ms</td>', row.group(1))
    assert cell is not None, row.group(1)
    assert 0.0 < float(cell.group(1)) < 3000.0
    assert "never" not in row.group(1)  # last seen: from the heartbeats / the run's traffic
    # The insurer never started: no latency measured.
    insurer = re.search(r'<tr data-peer="insurer">(.*?)</tr>', dom)
    assert insurer is not None and '<td data-latency="">' in insurer.group(1)
    assert re.search(r'<div class="value" id="crypto">31\.3 %</div>', dom)
    assert "0.4 s in encryption" in dom
