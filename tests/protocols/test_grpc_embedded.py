"""A node embedded in a caller-owned ``grpc.Server`` (``PartyNode.register``), in-process.

The TLS 1.3 self-check is off here because the test process may have imported ``grpc`` before
``protocols`` (then the cipher policy cannot apply; see protocols/_tls_policy.py); the real
policy is tested in separate processes in test_grpc.py.
"""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
import pytest

import protocols.grpc
from protocols.config import load_federation
from protocols.errors import ConfigError, PeerDown
from tests.protocols.grpc_harness import free_port, make_federation

pytestmark = pytest.mark.grpc


def test_embedded_node_and_goodbye(tmp_path: Path) -> None:
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer"]))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    bank = protocols.grpc.PartyNode(config, "bank", check_tls13=False)
    bank.register(server)
    port = server.add_secure_port(
        config.party("bank").address, protocols.grpc.server_credentials(config, "bank")
    )
    assert port != 0
    server.start()
    bank.monitor.start()
    retailer = protocols.grpc.PartyNode(config, "retailer", check_tls13=False).start()
    try:
        to_retailer = bank.channel("embedded")
        to_bank = retailer.channel("embedded")
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        to_retailer.send("retailer", "x", {"x": x, "note": "hi"}, round=1)
        got = to_bank.recv("bank", "x", timeout=30)
        np.testing.assert_array_equal(got["x"], x)
        to_bank.send("bank", "y", b"\x00" * 100)
        assert to_retailer.recv("retailer", "y", timeout=30) == b"\x00" * 100
        to_bank.close()  # says goodbye: the bank stops waiting at once
        with pytest.raises(PeerDown, match="closed the session"):
            to_retailer.recv("retailer", "never", timeout=30)
    finally:
        retailer.stop(grace=0)
        bank.stop(grace=0)
        server.stop(0)


def test_node_refuses_a_mismatched_signing_key(tmp_path: Path) -> None:
    fed = tmp_path / "fed"
    path = make_federation(fed, ["bank", "retailer"])
    text = path.read_text().replace(
        'signing_key = "bank/signing.key"', 'signing_key = "retailer/signing.key"'
    )
    path.write_text(text)
    with pytest.raises(ConfigError, match="does not match"):
        protocols.grpc.PartyNode(load_federation(path), "bank")


def test_node_refuses_a_readable_tls_key(tmp_path: Path) -> None:
    fed = tmp_path / "fed"
    path = make_federation(fed, ["bank", "retailer"])
    (fed / "bank" / "tls.key").chmod(0o644)
    with pytest.raises(ConfigError, match="tls_key"):
        protocols.grpc.PartyNode(load_federation(path), "bank", bind=f"127.0.0.1:{free_port()}")
