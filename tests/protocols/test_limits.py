"""Bounds an authenticated but hostile peer cannot exceed (protocols.limits): topics the job
does not use are refused, a per-(peer, topic) queue and the number of topics waiting per peer
are bounded, and a payload over the receiver's maximum is refused -- over gRPC on the signed
size, before any byte is spooled to disk. Each refusal is a clear error, in memory and over
gRPC + mutual TLS."""

from __future__ import annotations

import protocols  # first: sets the TLS 1.3 policy before grpc is imported

# isort: split

from pathlib import Path

import pytest

import protocols.grpc
from protocols.codecs import CodecContext
from protocols.config import load_federation
from protocols.errors import ChannelTimeout, CodecError, InboxLimit, LocalProtocolError
from protocols.limits import InboxLimits
from protocols.memory import InMemoryNetwork
from protocols.sealer import Sealer
from tests.protocols.grpc_harness import make_federation

LIMITS = InboxLimits.for_topics(["fl/*"], max_queued=3, max_topics=2, max_payload_bytes=4096)


def _refusal(net: InMemoryNetwork) -> BaseException:
    return net.rejections[-1].error


def test_memory_refuses_unknown_topics_full_queues_and_big_payloads() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="j", seed=0, limits=LIMITS)
    bank, retailer = net.channel("bank"), net.channel("retailer")
    bank.send("retailer", "evil/spray", 1)
    assert isinstance(_refusal(net), InboxLimit)
    assert "topic 'evil/spray' from 'bank' is not one this job uses" in str(_refusal(net))
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "evil/spray", timeout=0.05)
    for i in range(4):
        bank.send("retailer", "fl/a", i)
    assert "queue of 'bank' on 'fl/a' is full (3 unread messages)" in str(_refusal(net))
    assert retailer.recv("bank", "fl/a") == 0  # reading frees a place
    bank.send("retailer", "fl/a", 4)
    assert [retailer.recv("bank", "fl/a") for _ in range(3)] == [1, 2, 4]
    bank.send("retailer", "fl/b", "b")
    bank.send("retailer", "fl/c", "c")
    bank.send("retailer", "fl/d", "d")
    assert "messages waiting on 2 topics (limit 2)" in str(_refusal(net))
    # A peer whose own limit is larger (here: sealed by hand with its key) is refused too.
    big = net.codecs.encode(b"x" * 8192, CodecContext())
    env = Sealer(net.signing_key("bank"), party="bank", job_id="j", session_id=net.session_id,
                 peers=["retailer"], first_seq=1000).seal(
        "retailer", "fl/b", 0, codec=big.codec, parts=big.parts)  # fmt: skip
    with pytest.raises(CodecError, match="exceeds the receiver's limit of 4096 bytes"):
        net.inject("retailer", env.to_bytes(), big.to_bytes())
    assert net.counter("retailer").counts()["inbox_limit"] == 3
    with pytest.raises(LocalProtocolError, match="positive"):
        InboxLimits(max_queued=0)


@pytest.mark.grpc
def test_grpc_refuses_unknown_topics_full_queues_and_big_payloads_before_spooling(
    tmp_path: Path,
) -> None:
    config = load_federation(make_federation(tmp_path / "fed", ["bank", "retailer"]))
    spool = tmp_path / "spool"
    spool.mkdir()
    bank = protocols.grpc.PartyNode(config, "bank", check_tls13=False).start()
    retailer = protocols.grpc.PartyNode(
        config, "retailer", check_tls13=False, spool_dir=spool, spool_threshold=1024,
        limits=LIMITS,
    ).start()  # fmt: skip
    try:
        out, inbox = bank.channel("j", send_timeout=20), retailer.channel("j")
        with pytest.raises(InboxLimit, match="topic 'evil/spray' from 'bank' is not one"):
            out.send("retailer", "evil/spray", 1)
        for i in range(3):
            out.send("retailer", "fl/a", i)
        with pytest.raises(InboxLimit, match=r"queue of 'bank' on 'fl/a' is full"):
            out.send("retailer", "fl/a", 3)
        assert inbox.recv("bank", "fl/a") == 0
        with pytest.raises(CodecError, match="exceeds the receiver's limit of 4096 bytes"):
            out.send("retailer", "fl/b", b"x" * 8192)
        assert list(spool.iterdir()) == []  # refused on the signed size: nothing spooled
        assert inbox.rejections["inbox_limit"] == 2
        out.close()
        inbox.close()
    finally:
        bank.stop(grace=0.2)
        retailer.stop(grace=0.2)
