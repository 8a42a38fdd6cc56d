"""The in-memory transport: delivery, transcript, faults, verification, kill and timeouts."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from protocols.channel import Channel
from protocols.envelope import Envelope
from protocols.errors import (
    BadSignature,
    ChannelTimeout,
    ForeignJob,
    LocalProtocolError,
    PeerDown,
    Replayed,
    SignerMismatch,
    UnknownSender,
    UnsupportedPayload,
    WrongReceiver,
)
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties


@pytest.fixture
def net() -> InMemoryNetwork:
    return InMemoryNetwork(
        ["bank", "retailer", "insurer"], job_id="job-1", seed=0, default_timeout=5.0
    )


def test_send_recv_and_transcript(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    assert bank.peers == ("insurer", "retailer")
    assert isinstance(bank, Channel)
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    bank.send("retailer", "data/x", x, round=2)
    bank.send("retailer", "meta", {"rows": 2, "names": ["a", "b"], "ok": True})
    got = retailer.recv("bank", "data/x")
    np.testing.assert_array_equal(got, x)
    assert got.flags.writeable
    assert retailer.recv("bank", "meta") == {"rows": 2, "names": ["a", "b"], "ok": True}
    received = net.transcript.received_by("retailer")
    assert [m.topic for m in received] == ["data/x", "meta"]
    assert received[0].round == 2 and received[0].seq == 1 and received[1].seq == 2
    assert received[0].nbytes > x.nbytes
    assert net.transcript.sent_by("bank") == received
    assert len(net.transcript.on_topic("data/*")) == 1
    assert net.transcript.bytes_sent("bank") == sum(m.nbytes for m in received)
    assert net.transcript.received_by("bank") == []


def test_topics_are_separate_queues_in_send_order(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    for i in range(3):
        bank.send("retailer", "a", i)
        bank.send("retailer", "b", -i)
    assert [retailer.recv("bank", "b") for _ in range(3)] == [0, -1, -2]
    assert [retailer.recv("bank", "a") for _ in range(3)] == [0, 1, 2]


def test_broadcast_and_gather(net: InMemoryNetwork) -> None:
    def bank(ch: Channel) -> dict[str, object]:
        ch.broadcast("hello", b"hi")
        return dict(ch.gather("reply"))

    def other(ch: Channel) -> None:
        ch.send("bank", "reply", ch.party + ":" + ch.recv("bank", "hello").decode())

    out = run_parties({"bank": bank, "retailer": other, "insurer": other}, network=net, timeout=10)
    assert out["bank"] == {"insurer": "insurer:hi", "retailer": "retailer:hi"}


def test_seeded_networks_are_deterministic() -> None:
    def wire(seed: int) -> list[tuple[bytes, bytes]]:
        net = InMemoryNetwork(["a", "b"], job_id="j", seed=seed)
        net.channel("a").send("b", "t", np.ones(3))
        return net.wire

    assert wire(1) == wire(1)
    assert wire(1) != wire(2)


def test_unknown_peer_and_unsupported_payload(net: InMemoryNetwork) -> None:
    bank = net.channel("bank")
    with pytest.raises(LocalProtocolError):
        bank.send("nobody", "t", 1)
    with pytest.raises(UnsupportedPayload):
        bank.send("retailer", "t", object())
    with pytest.raises(UnsupportedPayload):
        bank.send("retailer", "t", np.array([object()]))


def test_recv_timeout(net: InMemoryNetwork) -> None:
    with pytest.raises(ChannelTimeout, match="bank"):
        net.channel("retailer").recv("bank", "never", timeout=0.05)


def test_kill_makes_waiting_peer_fail_promptly(net: InMemoryNetwork) -> None:
    retailer = net.channel("retailer")
    start = time.monotonic()

    def killer(ch: Channel) -> None:
        time.sleep(0.1)
        net.kill("bank")

    with pytest.raises(PeerDown, match="bank"):
        run_parties(
            {"retailer": lambda ch: ch.recv("bank", "x", timeout=30), "insurer": killer},
            network=net,
            timeout=20,
        )
    assert time.monotonic() - start < 10  # far below the recv timeout: no hang
    with pytest.raises(PeerDown):
        retailer.send("bank", "x", 1)
    with pytest.raises(PeerDown):
        net.channel("bank").send("retailer", "x", 1)


def test_messages_already_queued_from_a_killed_peer_are_still_delivered(
    net: InMemoryNetwork,
) -> None:
    net.channel("bank").send("retailer", "x", 7)
    net.kill("bank")
    assert net.channel("retailer").recv("bank", "x") == 7
    with pytest.raises(PeerDown):
        net.channel("retailer").recv("bank", "x")


def test_drop(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    net.faults.drop(sender="bank", topic="t")
    bank.send("retailer", "t", 1)
    bank.send("retailer", "t", 2)
    assert retailer.recv("bank", "t") == 2
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "t", timeout=0.05)
    assert [m.payload for m in net.transcript] == [2]


def test_delay(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    net.faults.delay(seconds=0.2, topic="slow")
    bank.send("retailer", "slow", "late")
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "slow", timeout=0.01)
    assert retailer.recv("bank", "slow", timeout=5) == "late"


def test_duplicate_is_rejected_as_replay(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    net.faults.duplicate(receiver="retailer")
    bank.send("retailer", "t", "once")
    assert retailer.recv("bank", "t") == "once"
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "t", timeout=0.05)
    assert net.counter("retailer")["replayed"] == 1
    assert isinstance(net.rejections[0].error, Replayed)


def test_reorder_late_message_rejected_out_of_order(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    net.faults.reorder(sender="bank", topic="t")
    bank.send("retailer", "t", "first")
    bank.send("retailer", "t", "second")
    assert retailer.recv("bank", "t") == "second"
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "t", timeout=0.05)
    assert net.counter("retailer")["out_of_order"] == 1
    assert [m.payload for m in net.transcript] == ["second"]


def test_tampered_payload_rejected_by_signature(net: InMemoryNetwork) -> None:
    bank, retailer = net.channel("bank"), net.channel("retailer")
    net.faults.tamper(sender="bank")
    bank.send("retailer", "t", np.zeros(4))
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "t", timeout=0.05)
    assert net.counter("retailer")["bad_signature"] == 1
    assert len(net.transcript) == 0


def test_tampered_header_rejected_by_signature(net: InMemoryNetwork) -> None:
    def retopic(envelope: bytes, payload: bytes) -> tuple[bytes, bytes]:
        env = Envelope.from_bytes(envelope)
        return dataclasses.replace(env, topic="other").to_bytes(), payload

    net.faults.tamper(mutate=retopic)
    net.channel("bank").send("retailer", "t", 1)
    assert isinstance(net.rejections[0].error, BadSignature)


def _captured(net: InMemoryNetwork) -> tuple[Envelope, bytes]:
    net.channel("bank").send("retailer", "t", 5)
    wire, payload = net.wire[-1]
    return Envelope.from_bytes(wire), payload


def test_replayed_envelope_rejected(net: InMemoryNetwork) -> None:
    env, payload = _captured(net)
    with pytest.raises(Replayed):
        net.inject("retailer", env.to_bytes(), payload)
    assert net.channel("retailer").recv("bank", "t") == 5
    assert net.counter("retailer")["replayed"] == 1


def test_envelope_signed_by_another_party_rejected(net: InMemoryNetwork) -> None:
    env, payload = _captured(net)
    forged = dataclasses.replace(env, seq=99).signed_with(net.signing_key("insurer"))
    with pytest.raises(SignerMismatch, match="insurer"):
        net.inject("retailer", forged.to_bytes(), payload)


def test_unsigned_and_badly_signed_envelopes_rejected(net: InMemoryNetwork) -> None:
    env, payload = _captured(net)
    with pytest.raises(BadSignature, match="unsigned"):
        net.inject("retailer", dataclasses.replace(env, signature=b"").to_bytes(), payload)
    bad = dataclasses.replace(env, seq=50, signature=bytes(64))
    with pytest.raises(BadSignature):
        net.inject("retailer", bad.to_bytes(), payload)


def test_unknown_sender_wrong_receiver_foreign_job(net: InMemoryNetwork) -> None:
    env, payload = _captured(net)
    key = net.signing_key("bank")
    with pytest.raises(UnknownSender):
        net.inject("retailer", dataclasses.replace(env, sender="mallory").to_bytes(), payload)
    with pytest.raises(WrongReceiver):
        net.inject("insurer", dataclasses.replace(env, seq=2).signed_with(key).to_bytes(), payload)
    foreign = dataclasses.replace(env, job_id="job-2", seq=3).signed_with(key)
    with pytest.raises(ForeignJob):
        net.inject("retailer", foreign.to_bytes(), payload)
    other_session = dataclasses.replace(env, session_id="s2", seq=4).signed_with(key)
    with pytest.raises(ForeignJob):
        net.inject("retailer", other_session.to_bytes(), payload)
    counts = net.counter("retailer").counts()
    assert counts["unknown_sender"] == 1 and counts["foreign_job"] == 2
    assert net.counter("insurer")["wrong_receiver"] == 1


def test_run_parties_names_the_failing_party(net: InMemoryNetwork) -> None:
    def boom(ch: Channel) -> None:
        raise ValueError("bad input")

    def waiter(ch: Channel) -> object:
        return ch.recv("bank", "never", timeout=30)

    with pytest.raises(ValueError, match="bad input") as info:
        run_parties({"bank": boom, "retailer": waiter}, network=net, timeout=20)
    assert any("bank" in note for note in info.value.__notes__)


def test_run_parties_timeout_names_stuck_parties(net: InMemoryNetwork) -> None:
    with pytest.raises(ChannelTimeout, match="retailer"):
        run_parties(
            {"retailer": lambda ch: ch.recv("bank", "never", timeout=30), "bank": lambda ch: 1},
            network=net,
            timeout=0.2,
        )
