"""A fresh session id per run over gRPC + mutual TLS: a receiver process restarted for a new
run of the same job refuses the previous run's envelopes (``ForeignJob``, naming both
sessions) and accepts the new run's."""

from __future__ import annotations

import protocols  # first: sets the TLS 1.3 policy before grpc is imported

# isort: split

import time
from pathlib import Path

import pytest

import protocols.grpc
from protocols.codecs import CodecContext
from protocols.config import load_federation
from protocols.errors import ForeignJob
from protocols.sealer import Sealer
from protocols.session import agree_session
from tests.protocols.grpc_harness import make_federation, result_of, spawn

JOB = "session-restart"
FN = "tests.protocols.grpc_parties:agree_then_receive"


@pytest.mark.grpc
def test_a_restarted_receiver_refuses_the_previous_runs_envelopes(tmp_path: Path) -> None:
    config = make_federation(tmp_path / "fed", ["bank", "retailer"])
    node = protocols.grpc.PartyNode(load_federation(config), "bank", heartbeat_interval=0.5).start()
    try:
        retailer = spawn(config, "retailer", job=JOB, fn=FN)
        first = node.channel(JOB, send_timeout=30)
        s1 = agree_session(first, ["retailer"], timeout=60)
        first.send("retailer", "data", "run 1")
        # An envelope of run 1 that was never delivered (a stale process of the bank, or the
        # same bytes replayed later): sealed with the bank's key for session s1.
        encoded = node.codecs.encode("stale, from run 1", CodecContext())
        stale = Sealer(node.signing_key, party="bank", job_id=JOB, session_id=s1,
                       peers=["retailer"], first_seq=time.time_ns()).seal(
            "retailer", "data", 0, codec=encoded.codec, parts=encoded.parts)  # fmt: skip
        run1 = result_of(retailer, "retailer", timeout=60)
        assert run1["ok"] and run1["value"] == {"session": s1, "value": "run 1"}
        first.close()

        retailer = spawn(config, "retailer", job=JOB, fn=FN)  # the same job, run again
        deadline = time.monotonic() + 60  # until the heartbeat sees the new process up
        while node.monitor.down_reason("retailer") and time.monotonic() < deadline:
            time.sleep(0.2)
        second = node.channel(JOB, send_timeout=30)
        s2 = agree_session(second, ["retailer"], timeout=60)
        assert s2 != s1 and second.session_id == s2
        with pytest.raises(
            ForeignJob, match=f"session '{s1}'.*this run of the job is session '{s2}'"
        ):
            second.send_envelope("retailer", stale, encoded.parts, timeout=10)
        second.send("retailer", "data", "run 2")
        run2 = result_of(retailer, "retailer", timeout=60)
        assert run2["ok"], run2
        assert run2["value"] == {"session": s2, "value": "run 2"}
        assert {k: v for k, v in run2["rejections"].items() if v} == {"foreign_job": 1}
    finally:
        node.stop(grace=0.5)
