"""Heartbeat round-trip time and last-seen time of two real gRPC nodes (mutual TLS, in-process)."""

from __future__ import annotations

import protocols  # noqa: F401  (first: sets gRPC's TLS policy before grpc is imported)

# isort: split

import time
from pathlib import Path

import pytest

from protocols.config import load_federation
from protocols.grpc import PartyNode
from tests.protocols.grpc_harness import make_federation

pytestmark = pytest.mark.grpc


def test_heartbeats_measure_round_trip_time_and_last_seen(tmp_path: Path) -> None:
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer"]))
    bank = PartyNode(config, "bank", heartbeat_interval=0.2).start()
    try:
        assert bank.monitor.rtt("retailer") is None and bank.monitor.last_seen("retailer") is None
        assert not bank.monitor.check("retailer")  # nobody listens yet: nothing measured
        assert bank.monitor.rtt("retailer") is None
        before = time.time()
        retailer = PartyNode(config, "retailer", heartbeat_interval=0.2).start()
        try:
            deadline = time.monotonic() + 60
            while bank.monitor.rtt("retailer") is None:
                assert time.monotonic() < deadline, "no heartbeat answered in 60 s"
                time.sleep(0.05)
            assert bank.monitor.check("retailer")  # one more, timed here as well
            start = time.perf_counter()
            assert bank.monitor.check("retailer")
            wall = time.perf_counter() - start
            rtt = bank.monitor.rtt("retailer")
            assert rtt is not None and 0.0 < rtt <= wall
            seen = bank.monitor.last_seen("retailer")
            assert seen is not None and before <= seen <= time.time()
        finally:
            retailer.stop(grace=0)
        deadline = time.monotonic() + 60
        while bank.monitor.down_reason("retailer") is None:
            assert time.monotonic() < deadline, "retailer not declared down in 60 s"
            time.sleep(0.05)
        # A failed heartbeat keeps the last measure: the dashboard still shows when it was seen.
        kept, last = bank.monitor.rtt("retailer"), bank.monitor.last_seen("retailer")
        assert kept is not None and kept > 0.0
        assert last is not None and seen <= last <= time.time()
        assert bank.monitor.rtt("nobody") is None and bank.monitor.last_seen("nobody") is None
    finally:
        bank.stop(grace=0)
