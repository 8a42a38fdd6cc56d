"""How to unit-test your own two-party protocol: in memory, with transcripts and injected faults.

The protocol: the bank learns how much the retailer's customers spent in total among the
customers the bank flags (``sum(flag_i * spend_i)``), and nothing else; the retailer learns
nothing. The bank sends its Paillier public key and its encrypted flags; the retailer multiplies
them by its spend homomorphically, sums, re-randomises and sends back one ciphertext.

Party functions take any ``Channel``, so the same two functions run over gRPC between two
organisations. Here all of it runs in one process, deterministically, through the real security
path (signed envelopes, replay checks, safe codecs)::

    pytest examples/protocol_unit_test.py -q

Each test shows one technique: a plaintext reference, a leakage check on the transcript, a lost
message, a tampered message, a replayed message, and a party that is down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from crypto.paillier import EncryptedArray, PaillierPublicKey, generate_keypair
from crypto.random import SeededRandom
from protocols import Channel, ChannelTimeout, PeerDown
from protocols.envelope import Envelope
from protocols.errors import Replayed
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties

FLAGS = np.array([1, 0, 1, 1, 0, 0, 1, 0], dtype=np.int64)  # the bank's: aligned customers
SPEND = np.array([120.5, 80.0, 15.25, 300.0, 42.0, 7.5, 60.0, 5.0])  # the retailer's
# 512-bit keys keep tests fast; they are insecure and only allowed behind this explicit flag.
KEYS = generate_keypair(512, rng=SeededRandom(7), insecure_allow_small_keys=True)


# --- the protocol under test ---------------------------------------------------------------
def bank(channel: Channel) -> float:
    public_key, private_key = KEYS
    channel.send("retailer", "total/key", public_key)  # the receiver needs it to decode below
    channel.send("retailer", "total/flags", public_key.encrypt(FLAGS))
    total: EncryptedArray = channel.recv("retailer", "total/result")
    # Ciphertexts travel without scale or bound: the receiver declares what the protocol fixes
    # (flags at 32 fractional bits times spend at 32 more: scale 64, a total below 2^40).
    return float(private_key.decrypt(total.assume(scale=64, bound=1 << 104)))


def retailer(channel: Channel) -> None:
    channel.recv("bank", "total/key")
    flags: EncryptedArray = channel.recv("bank", "total/flags").assume(scale=32, bound=1 << 32)
    channel.send("bank", "total/result", (flags * SPEND).sum().rerandomize())


def network(**options: Any) -> InMemoryNetwork:
    """A fresh two-party network; ``seed`` makes the signing keys and envelopes repeatable."""
    return InMemoryNetwork(["bank", "retailer"], job_id="spend-total", seed=0, **options)


PARTIES: dict[str, Callable[[Channel], Any]] = {"bank": bank, "retailer": retailer}


# --- the tests ------------------------------------------------------------------------------
def test_result_matches_a_plaintext_reference() -> None:
    results = run_parties(PARTIES, network=network(), timeout=30)
    assert results["bank"] == pytest.approx(float(FLAGS @ SPEND))  # 495.75


def test_the_retailer_receives_only_a_public_key_and_ciphertexts() -> None:
    net = network()
    run_parties(PARTIES, network=net, timeout=30)
    received = net.transcript.received_by("retailer")
    assert [m.topic for m in received] == ["total/key", "total/flags"]
    assert isinstance(received[0].payload, PaillierPublicKey)
    assert isinstance(received[1].payload, EncryptedArray)  # never the flags in clear
    # The bank receives exactly one value: the total it is entitled to, still encrypted.
    assert [m.topic for m in net.transcript.received_by("bank")] == ["total/result"]
    assert net.transcript.received_by("bank")[0].payload.size == 1


def test_a_lost_message_times_out_and_names_the_topic() -> None:
    net = network(default_timeout=0.5)
    net.faults.drop(sender="retailer", topic="total/result")
    with pytest.raises(ChannelTimeout, match="total/result"):
        run_parties(PARTIES, network=net, timeout=30)


def test_a_tampered_ciphertext_is_rejected_and_never_delivered() -> None:
    net = network(default_timeout=0.5)
    net.faults.tamper(sender="bank", topic="total/flags")  # flips a bit of the payload
    with pytest.raises(ChannelTimeout):
        run_parties(PARTIES, network=net, timeout=30)
    assert net.counter("retailer")["bad_signature"] == 1
    assert net.transcript.on_topic("total/flags") == []


def test_a_replayed_message_is_rejected() -> None:
    net = network()
    run_parties(PARTIES, network=net, timeout=30)
    # Play the attacker: capture the bank's flags off the wire and send them again.
    envelope, payload = next(
        (e, p) for e, p in net.wire if Envelope.from_bytes(e).topic == "total/flags"
    )
    with pytest.raises(Replayed):
        net.inject("retailer", envelope, payload)


def test_the_bank_fails_fast_when_the_retailer_is_down() -> None:
    net = network()
    net.kill("retailer")
    with pytest.raises(PeerDown):
        run_parties({"bank": bank}, network=net, timeout=30)
