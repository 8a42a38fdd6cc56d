"""A peer that leaves cleanly is not reported as an incident; one that vanishes mid-job is.

In-process nodes (the TLS 1.3 self-check off, as in test_grpc_embedded.py), short heartbeats.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

import protocols.grpc
from protocols.config import load_federation
from tests.protocols.grpc_harness import make_federation

pytestmark = pytest.mark.grpc


def _wait_down(node: protocols.grpc.PartyNode, peer: str) -> str:
    for _ in range(400):
        reason = node.monitor.down_reason(peer)
        if reason is not None:
            return reason
        time.sleep(0.05)
    raise AssertionError(f"{peer} was never declared down")


def _down_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "peer retailer is" in r.getMessage()]


@pytest.mark.parametrize("clean", [True, False])
def test_peer_down_is_a_warning_only_when_a_job_still_needs_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, clean: bool
) -> None:
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer"]))
    bank = protocols.grpc.PartyNode(
        config, "bank", check_tls13=False, heartbeat_interval=0.2
    ).start()
    retailer = protocols.grpc.PartyNode(config, "retailer", check_tls13=False).start()
    try:
        to_retailer = bank.channel("job-1")
        to_bank = retailer.channel("job-1")
        to_bank.send("bank", "x", b"hello")
        assert to_retailer.recv("retailer", "x", timeout=30) == b"hello"
        caplog.set_level(logging.INFO, logger="protocols.grpc")
        if clean:
            to_bank.close()  # the job ended at the retailer: goodbye, then its node stops
        retailer.stop(grace=0)
        _wait_down(bank, "retailer")
        records = _down_records(caplog)
        assert records, caplog.text
        levels = {r.levelno for r in records}
        assert levels == ({logging.INFO} if clean else {logging.WARNING}), caplog.text
        to_retailer.close()
    finally:
        retailer.stop(grace=0)
        bank.stop(grace=0)
