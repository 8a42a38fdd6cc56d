"""Peer health on the dashboard follows a real gRPC node: unknown, up, then down."""

from __future__ import annotations

import protocols  # noqa: F401  (first: sets gRPC's TLS policy before grpc is imported)

# isort: split

import time
from collections.abc import Callable
from pathlib import Path

from protocols.config import load_federation
from protocols.grpc import PartyNode
from tests.protocols.grpc_harness import make_federation
from tests.vfl.test_dashboard import TOKEN, fetch, parse_exposition, status_of, training_run
from vfl.dashboard import DashboardServer


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def peer_samples(server: DashboardServer) -> dict[str, float]:
    samples = parse_exposition(fetch(server, "/metrics")[2].decode())
    return {
        name: value
        for (name, labels), value in samples.items()
        if labels == frozenset({("party", "bank"), ("peer", "retailer")})
    }


def test_peer_health_follows_the_node(tmp_path: Path) -> None:
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer"]))
    training_run(tmp_path / "work", rounds=1)
    bank = PartyNode(config, "bank", heartbeat_interval=0.3).start()
    try:
        with DashboardServer(tmp_path / "work", token=TOKEN, node=bank) as server:
            health = status_of(server)["health"]
            assert list(health) == ["retailer"]
            assert health["retailer"]["state"] in ("unknown", "unreachable")
            assert peer_samples(server) == {"vfl_peer_up": 0, "vfl_peer_down": 0}
            retailer = PartyNode(config, "retailer", heartbeat_interval=0.3).start()
            try:
                wait_for(
                    lambda: status_of(server)["health"]["retailer"]["state"] == "up",
                    timeout=60,
                    what="retailer up",
                )
                assert peer_samples(server) == {"vfl_peer_up": 1, "vfl_peer_down": 0}
                assert status_of(server)["health"]["retailer"]["since"] is not None
            finally:
                retailer.stop(grace=0)
            wait_for(
                lambda: status_of(server)["health"]["retailer"]["state"] == "down",
                timeout=60,
                what="retailer down",
            )
            health = status_of(server)["health"]
            assert "heartbeats failed" in health["retailer"]["reason"]
            assert peer_samples(server) == {"vfl_peer_up": 0, "vfl_peer_down": 1}
            # The run on disk is still served next to the node's view.
            assert status_of(server)["run"]["party"] == "bank"
    finally:
        bank.stop(grace=0)
