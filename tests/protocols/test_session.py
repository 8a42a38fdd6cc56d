"""A fresh session id per run (protocols.session) and signed statements (protocols.sealer)
over the in-memory transport: the parties agree on one id from everyone's contribution, the
first to switch does not lose messages to a peer that switches later, and once switched, an
envelope of the bootstrap session or of any other session is refused as foreign."""

from __future__ import annotations

import dataclasses

import pytest

from protocols.channel import Channel
from protocols.envelope import Envelope
from protocols.errors import ChannelTimeout, ForeignJob
from protocols.memory import InMemoryNetwork
from protocols.session import agree_session, session_id_of
from protocols.testkit import run_parties


def _net() -> InMemoryNetwork:
    return InMemoryNetwork(["bank", "retailer", "insurer"], job_id="job-1", default_timeout=5.0)


def test_parties_agree_on_a_fresh_session_and_refuse_other_sessions() -> None:
    net = _net()
    bootstrap = net.session_id

    def party(ch: Channel) -> tuple[str, object]:
        sid = agree_session(ch)
        if ch.party == "bank":  # the first to switch sends at once: nobody may lose it
            ch.send("retailer", "data", "after the switch")
            return sid, None
        return sid, ch.recv("bank", "data") if ch.party == "retailer" else None

    out = run_parties({p: party for p in net.parties}, network=net, timeout=30)
    sessions = {sid for sid, _ in out.values()}
    assert len(sessions) == 1 and bootstrap not in sessions
    assert out["retailer"][1] == "after the switch"
    (run,) = sessions
    # Every later envelope carries the run's session; one of the bootstrap session (the same
    # job's previous run, or replayed) is refused with both sessions named.
    ((env, payload),) = [
        (e, p) for e, p in ((Envelope.from_bytes(w), p) for w, p in net.wire) if e.topic == "data"
    ]
    assert env.session_id == run
    old = dataclasses.replace(env, session_id=bootstrap, seq=env.seq + 1)
    with pytest.raises(ForeignJob, match=f"session '{bootstrap}'.*session '{run}'"):
        net.inject("retailer", old.signed_with(net.signing_key("bank")).to_bytes(), payload)
    # A second run of the same job on fresh channels gets another id.
    assert run != agree_fresh()


def agree_fresh() -> str:
    net = _net()
    out = run_parties({p: agree_session for p in net.parties}, network=net, timeout=30)
    assert len(set(out.values())) == 1
    return str(next(iter(out.values())))


def test_session_id_is_bound_to_every_contribution_and_name() -> None:
    base = {"a": b"\x00" * 16, "b": b"\x01" * 16}
    assert session_id_of(base) == session_id_of(dict(reversed(base.items())))
    assert session_id_of(base) != session_id_of({**base, "b": b"\x02" * 16})
    assert session_id_of(base) != session_id_of({"a": base["a"], "c": base["b"]})


def test_attested_statements_bind_signer_job_and_session() -> None:
    net = _net()
    bank, retailer = net.channel("bank"), net.channel("retailer")
    sig = bank.attest(b"keys of round 1")
    assert retailer.check_attestation("bank", b"keys of round 1", sig)
    assert not retailer.check_attestation("bank", b"keys of round 2", sig)
    assert not retailer.check_attestation("insurer", b"keys of round 1", sig)
    other = InMemoryNetwork(["bank", "retailer"], job_id="job-2", default_timeout=5.0)
    forged = other.channel("bank").attest(b"keys of round 1")  # another job (and key)
    assert not retailer.check_attestation("bank", b"keys of round 1", forged)
    # The same key in another session of the job: refused too.
    run = run_parties({p: agree_session for p in net.parties}, network=net, timeout=30)
    assert not net.channel("retailer").check_attestation("bank", b"keys of round 1", sig)
    assert len(set(run.values())) == 1


def test_a_message_sent_before_its_receiver_switched_is_held_not_lost() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="job-1", default_timeout=5.0)
    bank, retailer = net.channel("bank"), net.channel("retailer")
    bank.switch_session("run-2")
    bank.send("retailer", "t", "early")
    with pytest.raises(ChannelTimeout):
        retailer.recv("bank", "t", timeout=0.05)
    retailer.switch_session("run-2")
    assert retailer.recv("bank", "t") == "early"
    assert not net.rejections
