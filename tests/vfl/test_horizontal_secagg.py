"""Secure aggregation with dropout recovery: the aggregator sees only the sum of the survivors'
updates, a client dropping mid-round does not break the round, fewer than ``t`` survivors give a
clear failure and no sum, and a tampered share is refused."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from protocols.channel import Channel
from protocols.errors import ChannelTimeout, PeerDown
from protocols.memory import InMemoryNetwork, MemoryChannel
from protocols.testkit import run_parties
from vfl.errors import ConfigError
from vfl.horizontal import (
    AGGREGATOR_NAME,
    ClientUpdate,
    FedClient,
    FedConfig,
    FedResult,
    FedServer,
    Finish,
    LocalTraining,
    Mode,
    TrainTask,
    ValidationPolicy,
    _secagg_round,
    logistic_factory,
    run_aggregator,
    run_client,
    simulate,
)
from vfl.horizontal._dp import DpMode, DpSpec
from vfl.horizontal._messages import (
    SecAggInbox,
    SecAggReveal,
    SecAggRoster,
    SecAggShares,
    SecAggUnmask,
)
from vfl.horizontal._secagg import (
    FRACTION_BITS,
    RoundSecrets,
    SecAggError,
    advertisement_statement,
    commit_seed,
    decode_fixed,
    int_to_seed,
    mask_input,
    open_share,
    round_context,
    seal_share,
    unmask_total,
)
from vfl.horizontal._shamir import reconstruct
from vfl.privacy import clip_l2

D = 6
LOCAL = LocalTraining(epochs=1, learning_rate=0.1, batch_size=32)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.linspace(-1, 1, D))))).astype(np.float64)
    return x, y


def _clients(k: int) -> dict[str, Any]:
    return {
        f"c{i}": FedClient(*_data(300 + 20 * i, i), model_factory=logistic_factory(), seed=i)
        for i in range(k)
    }


def _expected_first_round(k: int, survivors: list[str]) -> np.ndarray:
    """Plain FedAvg of round 1 over ``survivors`` only, from fresh clients (same seeds)."""
    clients = _clients(k)
    w0 = np.zeros(D + 1)
    total, weight = np.zeros(D + 1), 0
    for name in survivors:
        c = clients[name]
        total += c.num_samples * c.local_update(w0, LOCAL)
        weight += c.num_samples
    return w0 + total / weight


def _network(k: int, job: str) -> InMemoryNetwork:
    return InMemoryNetwork([AGGREGATOR_NAME, *(f"c{i}" for i in range(k))], job_id=job, seed=0)


def _secure(rounds: int, timeout: float = 60.0) -> FedConfig:
    return FedConfig(rounds=rounds, local=LOCAL, secure_aggregation=True, round_timeout=timeout)


def test_secure_fedavg_equals_plain_and_the_aggregator_never_sees_an_update() -> None:
    plain = simulate(_clients(4), FedConfig(rounds=3, local=LOCAL), np.zeros(D + 1))
    net = _network(4, "secagg")
    secure = simulate(_clients(4), _secure(3), np.zeros(D + 1), network=net)
    np.testing.assert_allclose(secure.params, plain.params, atol=1e-6)
    assert all(h.accepted == ("c0", "c1", "c2", "c3") and not h.skipped for h in secure.history)
    assert all(h.bytes_up > 0 and h.bytes_down > 0 for h in secure.history)
    inbox = net.transcript.received_by(AGGREGATOR_NAME)
    updates = [m.payload for m in inbox if m.topic == "fl/update"]
    assert len(updates) == 12
    for u in updates:
        # A true weighted update is |n * delta| < 1e3 here; a masked one is uniform in Z_2^64.
        assert isinstance(u, ClientUpdate) and u.delta.dtype == np.uint64
        assert np.all(np.abs(decode_fixed(u.delta)) > 1e4)
    # Shares reach the aggregator only sealed, and it never asks for both shares of a client.
    for m in inbox:
        if isinstance(m.payload, SecAggShares):
            assert all(len(c) == 12 + 2 * 66 + 16 for c in m.payload.sealed.values())
    reveals = [m.payload for m in inbox if isinstance(m.payload, SecAggReveal)]
    assert reveals
    for rv in reveals:
        assert not set(rv.self_shares) & set(rv.mask_shares)
        assert not rv.mask_shares  # nobody dropped: only self-mask shares are revealed


def test_a_client_dropped_before_sending_its_masked_update() -> None:
    net = _network(4, "secagg-drop-before")
    net.faults.drop(sender="c2", topic="fl/update", count=1)
    res = simulate(_clients(4), _secure(1, timeout=1.5), np.zeros(D + 1), network=net)
    (first,) = res.history
    assert not first.skipped and first.accepted == ("c0", "c1", "c3")
    assert first.dropped == {"c2": "fl/update: deadline"}
    np.testing.assert_allclose(res.params, _expected_first_round(4, ["c0", "c1", "c3"]), atol=1e-6)
    reveals = [m.payload for m in net.transcript.received_by(AGGREGATOR_NAME)
               if isinstance(m.payload, SecAggReveal)]  # fmt: skip
    # The dropped client's mask key was rebuilt; its self-mask seed was never asked for.
    assert all(set(rv.mask_shares) == {"c2"} and "c2" not in rv.self_shares for rv in reveals)


def test_a_client_dropped_after_sending_its_masked_update() -> None:
    net = _network(4, "secagg-drop-after")
    net.faults.drop(sender="c2", topic="fl/secagg-reveal", count=1)
    res = simulate(_clients(4), _secure(1, timeout=1.5), np.zeros(D + 1), network=net)
    (first,) = res.history
    # c2's masked input arrived: it is in the sum; its self-mask seed was rebuilt from t shares.
    assert not first.skipped and first.accepted == ("c0", "c1", "c2", "c3")
    np.testing.assert_allclose(
        res.params, _expected_first_round(4, ["c0", "c1", "c2", "c3"]), atol=1e-6
    )


def test_fewer_than_threshold_survivors_fail_clearly_without_a_sum() -> None:
    net = _network(3, "secagg-too-few")
    net.faults.drop(sender="c1", topic="fl/update", count=1)
    net.faults.drop(sender="c2", topic="fl/update", count=1)
    res = simulate(_clients(3), _secure(2, timeout=1.0), np.zeros(D + 1), network=net)
    first, second = res.history
    assert first.skipped and first.accepted == ()
    failed = [e for e in res.events if e["event"] == "secure_round_failed"]
    assert len(failed) == 1 and failed[0]["reason"] == "1 masked updates arrived, threshold 2"
    # No reveal was asked for in the failed round, and the next round runs normally.
    assert not [m for m in net.transcript.received_by(AGGREGATOR_NAME)
                if isinstance(m.payload, SecAggReveal) and m.payload.round == 1]  # fmt: skip
    assert not second.skipped and second.accepted == ("c0", "c1", "c2")


def test_too_few_reveals_fail_without_a_wrong_sum() -> None:
    net = _network(4, "secagg-few-reveals")
    net.faults.drop(sender="c2", topic="fl/update", count=1)
    net.faults.drop(sender="c1", topic="fl/secagg-reveal", count=1)
    res = simulate(_clients(4), _secure(1, timeout=1.0), np.zeros(D + 1), network=net)
    assert res.history[0].skipped
    np.testing.assert_array_equal(res.params, np.zeros(D + 1))
    (failed,) = [e for e in res.events if e["event"] == "secure_round_failed"]
    assert failed["reason"] == "unmasking failed: need 3 shares to reconstruct, got 2"


def test_a_tampered_share_is_refused_and_the_round_still_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = _secagg_round._Step.send_each

    def tamper(self: Any, payloads: dict[str, Any], topic: str) -> None:
        bad = payloads["c0"]
        assert isinstance(bad, SecAggInbox)
        sealed = dict(bad.sealed)
        sealed["c1"] = sealed["c1"][:-1] + bytes([sealed["c1"][-1] ^ 1])
        payloads = {**payloads, "c0": SecAggInbox(bad.round, bad.participants, sealed)}
        original(self, payloads, topic)

    monkeypatch.setattr(_secagg_round._Step, "send_each", tamper)
    res = simulate(_clients(4), _secure(1), np.zeros(D + 1))
    assert [e for e in res.events if e["event"] == "share_refused"] == [
        {"round": 1, "event": "share_refused", "client": "c0", "senders": ["c1"]}
    ]
    assert not res.history[0].skipped
    np.testing.assert_allclose(res.params, _expected_first_round(4, ["c0", "c1", "c2", "c3"]),
                               atol=1e-6)  # fmt: skip


def test_secure_aggregation_config_conflicts() -> None:
    with pytest.raises(ConfigError, match="secure_aggregation"):
        FedConfig(secure_aggregation=True, aggregator="median")
    with pytest.raises(ConfigError, match="secure_aggregation"):
        FedConfig(secure_aggregation=True, mode=Mode.ASYNC)
    with pytest.raises(ConfigError, match="secure_aggregation"):
        FedConfig(secure_aggregation=True, validation=ValidationPolicy(max_norm=1.0))
    for name in ("q4", "topk", "topk+q8", "sketch"):
        with pytest.raises(ConfigError, match=re.escape(f"compression '{name}' does not compose")):
            FedConfig(secure_aggregation=True, compression=name)


def test_central_dp_composes_clients_clip_and_the_sum_is_noised_once() -> None:
    clip = 0.05
    spec = DpSpec(mode=DpMode.CENTRAL, noise_multiplier=1e-6, max_grad_norm=clip, delta=1e-5)
    cfg = FedConfig(rounds=1, local=LOCAL, secure_aggregation=True, dp=spec)
    net = _network(3, "secagg-central-dp")
    res = simulate(_clients(3), cfg, np.zeros(D + 1), network=net)
    assert not res.history[0].skipped and res.history[0].privacy["epsilon"] > 0
    ref = _clients(3)
    clipped = [clip_l2(ref[n].local_update(np.zeros(D + 1), LOCAL), clip_norm=clip)[0]
               for n in sorted(ref)]  # fmt: skip
    # Uniform weights over the expected 3 clients; the noise (z = 1e-6) is far below the tolerance.
    np.testing.assert_allclose(res.params, np.sum(clipped, axis=0) / 3, atol=1e-5)
    # What each client masked had norm <= C: the masked vectors are still uniform.
    for m in net.transcript.received_by(AGGREGATOR_NAME):
        if m.topic == "fl/update":
            assert np.all(np.abs(decode_fixed(m.payload.delta)) > 1e4)


def test_a_client_refuses_an_unmask_request_that_could_reveal_both_shares() -> None:
    """A (lying) aggregator lists c2 as both survivor and dropped: no client reveals anything."""
    names = ["c0", "c1", "c2"]
    net = _network(3, "secagg-lying-aggregator")
    clients = _clients(3)
    task = TrainTask(1, np.zeros(D + 1), 1, 0.1, 32, 0.0, 0.0, secure=True)

    def lying_aggregator(ch: Channel) -> list[str]:
        for n in names:
            ch.recv(n, "fl/profile", timeout=10)
            ch.send(n, "fl/task", task, round=1)
        ads = {n: ch.recv(n, "fl/secagg-advertise", timeout=10) for n in names}
        roster = SecAggRoster(1, AGGREGATOR_NAME, b"\x00" * 16, 2,
                              {n: a.share_public for n, a in ads.items()},
                              {n: a.mask_public for n, a in ads.items()},
                              {n: a.self_commitment for n, a in ads.items()},
                              {n: a.signature for n, a in ads.items()})  # fmt: skip
        for n in names:
            ch.send(n, "fl/secagg-roster", roster, round=1)
        shares = {n: ch.recv(n, "fl/secagg-shares", timeout=10) for n in names}
        for v in names:
            sealed = {u: shares[u].sealed[v] for u in names if u != v}
            ch.send(v, "fl/secagg-inbox", SecAggInbox(1, names, sealed), round=1)
        for n in names:
            ch.recv(n, "fl/update", timeout=10)
            ch.send(n, "fl/secagg-unmask", SecAggUnmask(1, names, ["c2"]), round=1)
        answered = []
        for n in names:
            try:
                ch.recv(n, "fl/secagg-reveal", timeout=0.5)
                answered.append(n)
            except ChannelTimeout:
                pass
        for n in names:
            ch.send(n, "fl/task", Finish(np.zeros(D + 1), 0, 0.1, 32))
            ch.recv(n, "fl/report", timeout=10)
        return answered

    fns: dict[str, Any] = {AGGREGATOR_NAME: lying_aggregator}
    for n in names:
        fns[n] = (lambda name: lambda ch: run_client(ch, clients[name],
                                                     aggregator=AGGREGATOR_NAME))(n)  # fmt: skip
    out = run_parties(fns, network=net, timeout=60)
    assert out[AGGREGATOR_NAME] == []
    assert all(out[n].rounds_trained == (1,) for n in names)


class _DiesOnSend(Channel):
    """c2's channel: the process dies right after (``after=True``) or instead of sending its
    first message on ``topic`` (default: its masked update)."""

    def __init__(
        self, inner: Channel, net: InMemoryNetwork, *, after: bool, topic: str = "fl/update"
    ) -> None:
        self.inner, self.net, self.after, self.topic = inner, net, after, topic

    @property
    def party(self) -> str:
        return self.inner.party

    @property
    def peers(self) -> tuple[str, ...]:
        return self.inner.peers

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        if topic == self.topic and not self.after:
            self.net.kill(self.party)
            raise PeerDown(f"killed before sending on {topic}")
        self.inner.send(peer, topic, payload, round=round)
        if topic == self.topic:
            self.net.kill(self.party)
            raise PeerDown(f"killed after sending on {topic}")

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        return self.inner.recv(peer, topic, timeout=timeout)

    def attest(self, statement: bytes) -> bytes:
        return self.inner.attest(statement)

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        return self.inner.check_attestation(signer, statement, signature)


def _run_with_c2_killed(
    rounds: int, *, after: bool, topic: str = "fl/update"
) -> tuple[dict[str, Any], FedResult]:
    net = _network(4, f"secagg-kill-{rounds}-{after}-{topic}")
    clients = _clients(4)
    server = FedServer(_secure(rounds, timeout=10.0), np.zeros(D + 1), clients=sorted(clients))

    def client(name: str) -> Any:
        def fn(ch: Channel) -> str:
            chan = _DiesOnSend(ch, net, after=after, topic=topic) if name == "c2" else ch
            try:
                run_client(chan, clients[name], aggregator=AGGREGATOR_NAME, idle_timeout=60)
            except PeerDown:
                return "down"
            return "ok"

        return fn

    fns: dict[str, Any] = {AGGREGATOR_NAME: lambda ch: run_aggregator(ch, server)}
    fns.update({n: client(n) for n in clients})
    out = run_parties(fns, network=net, timeout=120)
    return out, out[AGGREGATOR_NAME]


@pytest.mark.parametrize("after", [False, True])
def test_a_client_killed_mid_round_does_not_break_the_round(after: bool) -> None:
    out, res = _run_with_c2_killed(2, after=after)
    assert out["c2"] == "down" and out["c0"] == out["c1"] == out["c3"] == "ok"
    first, second = res.history
    survivors = ["c0", "c1", "c2", "c3"] if after else ["c0", "c1", "c3"]
    assert not first.skipped and list(first.accepted) == survivors and "c2" in first.dropped
    assert not second.skipped and second.accepted == ("c0", "c1", "c3")
    assert second.dropped == {"c2": "peer down"}
    _, one = _run_with_c2_killed(1, after=after)
    np.testing.assert_allclose(one.params, _expected_first_round(4, survivors), atol=1e-6)


def test_q8_under_secure_aggregation_masks_in_the_8_bit_ring() -> None:
    plain = simulate(_clients(3), FedConfig(rounds=4, local=LOCAL), np.zeros(D + 1))
    net = _network(3, "secagg-q8")
    cfg = FedConfig(rounds=4, local=LOCAL, secure_aggregation=True, compression="q8")
    res = simulate(_clients(3), cfg, np.zeros(D + 1), network=net)
    assert all(not h.skipped and len(h.accepted) == 3 for h in res.history)
    updates = [m.payload for m in net.transcript.received_by(AGGREGATOR_NAME)
               if m.topic == "fl/update"]  # fmt: skip
    # Round 1 has no scale yet (64-bit ring); then one byte per entry.
    assert [u.delta.dtype for u in updates] == [np.dtype(np.uint64)] * 3 + [np.dtype(np.uint8)] * 9
    assert res.history[1].bytes_up < res.history[0].bytes_up
    # Unbiased stochastic rounding: close to the plain run, not equal to it.
    err = float(np.linalg.norm(res.params - plain.params) / np.linalg.norm(plain.params))
    assert 0 < err < 0.05


# Every stage a client can die at, with 4 clients (threshold 3) and c2 dying: (topic of the
# send it dies at, dies after that send, c2's update in the sum).
DROP_STAGES = {
    "before advertise": ("fl/secagg-advertise", False, False),
    "between advertise and roster": ("fl/secagg-advertise", True, False),
    "after sharing": ("fl/secagg-shares", True, False),
    "after its masked update": ("fl/update", True, True),
    "during unmasking": ("fl/secagg-reveal", False, True),
}


@pytest.mark.parametrize("stage", sorted(DROP_STAGES))
def test_secure_aggregation_survives_a_client_dying_at_every_stage(stage: str) -> None:
    topic, after, counted = DROP_STAGES[stage]
    out, res = _run_with_c2_killed(1, after=after, topic=topic)
    assert out["c2"] == "down" and out["c0"] == out["c1"] == out["c3"] == "ok"
    (first,) = res.history
    survivors = ["c0", "c1", "c2", "c3"] if counted else ["c0", "c1", "c3"]
    assert not first.skipped, [e for e in res.events if e["event"] == "secure_round_failed"]
    assert list(first.accepted) == survivors
    np.testing.assert_allclose(res.params, _expected_first_round(4, survivors), atol=1e-6)


def _substituting_aggregator(names: list[str], target: str) -> Any:
    """An aggregator that puts its own share and mask keys in place of every other client's in
    ``target``'s roster (signed with its own federation key, as it has no other). If ``target``
    accepted them, the aggregator would open the shares ``target`` seals to the others, rebuild
    its self-mask seed, strip every pair mask and read its update: it returns what it read."""
    task = TrainTask(1, np.zeros(D + 1), 1, 0.1, 32, 0.0, 0.0, secure=True)
    fakes = {n: RoundSecrets.generate() for n in names if n != target}

    def run(ch: Channel) -> np.ndarray | None:
        for n in names:
            ch.recv(n, "fl/profile", timeout=10)
            ch.send(n, "fl/task", task, round=1)
        ads = {n: ch.recv(n, "fl/secagg-advertise", timeout=10) for n in names}
        nonce = b"\x01" * 16
        honest = SecAggRoster(1, AGGREGATOR_NAME, nonce, 3,
                              {n: a.share_public for n, a in ads.items()},
                              {n: a.mask_public for n, a in ads.items()},
                              {n: a.self_commitment for n, a in ads.items()},
                              {n: a.signature for n, a in ads.items()})  # fmt: skip
        keys = {n: (f.share_key.public_bytes(), f.mask_key.public_bytes(),
                    commit_seed(f.self_seed)) for n, f in fakes.items()}  # fmt: skip
        forged = SecAggRoster(
            1, AGGREGATOR_NAME, nonce, 3,
            {**honest.share_publics, **{n: k[0] for n, k in keys.items()}},
            {**honest.mask_publics, **{n: k[1] for n, k in keys.items()}},
            {**honest.commitments, **{n: k[2] for n, k in keys.items()}},
            {**honest.signatures, **{n: ch.attest(advertisement_statement(
                round=1, client=n, share_public=k[0], mask_public=k[1], commitment=k[2]))
                for n, k in keys.items()}},
        )  # fmt: skip
        for n in names:
            ch.send(n, "fl/secagg-roster", forged if n == target else honest, round=1)
        read: np.ndarray | None = None
        try:
            shares = ch.recv(target, "fl/secagg-shares", timeout=3)
        except ChannelTimeout:
            shares = None
        if shares is not None:
            ctx = round_context(job=AGGREGATOR_NAME, round=1, nonce=nonce)
            me = ads[target]
            opened = {v: open_share(f.share_key, me.share_public, context=ctx, sender=target,
                                    recipient=v, sealed=shares.sealed[v])
                      for v, f in fakes.items()}  # fmt: skip
            xs = {n: i + 1 for i, n in enumerate(sorted(names))}
            self_seed = int_to_seed(reconstruct({xs[v]: s[1] for v, s in opened.items()},
                                                threshold=3))  # fmt: skip
            sealed = {v: seal_share(f.share_key, me.share_public, context=ctx, sender=v,
                                    recipient=target, mask_share=1, self_share=1)
                      for v, f in fakes.items()}  # fmt: skip
            ch.send(target, "fl/secagg-inbox", SecAggInbox(1, names, sealed), round=1)
            masked = ch.recv(target, "fl/update", timeout=10)
            read = unmask_total({target: masked.delta}, self_seeds={target: self_seed},
                                dropped_keys={v: f.mask_key for v, f in fakes.items()},
                                mask_publics={target: me.mask_public}, context=ctx)  # fmt: skip
            ch.send(target, "fl/secagg-unmask", SecAggUnmask(1, [], []), round=1)
        for n in names:
            if n != target:
                ch.recv(n, "fl/secagg-shares", timeout=10)
                ch.send(n, "fl/secagg-inbox", SecAggInbox(1, [], {}), round=1)
        for n in names:
            ch.send(n, "fl/task", Finish(np.zeros(D + 1), 0, 0.1, 32))
            ch.recv(n, "fl/report", timeout=10)
        return read

    return run


@pytest.mark.parametrize("checked", [True, False])
def test_a_malicious_aggregator_substituting_keys_cannot_unmask_a_single_update(
    checked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["c0", "c1", "c2", "c3"]
    if not checked:  # the attack itself, against clients that skip the signature check
        monkeypatch.setattr(_secagg_round, "_forged_entries", lambda *args: [])
    net = _network(4, f"secagg-substitute-{checked}")
    clients = _clients(4)
    fns: dict[str, Any] = {AGGREGATOR_NAME: _substituting_aggregator(names, "c0")}
    for n in names:
        fns[n] = (lambda name: lambda ch: run_client(ch, clients[name],
                                                     aggregator=AGGREGATOR_NAME))(n)  # fmt: skip
    out = run_parties(fns, network=net, timeout=60)
    sent = {m.topic for m in net.transcript.received_by(AGGREGATOR_NAME) if m.sender == "c0"}
    if checked:
        # c0 refused the roster: no share and no masked update ever left it.
        assert out[AGGREGATOR_NAME] is None
        assert "fl/secagg-shares" not in sent and "fl/update" not in sent
        assert all(out[n].rounds_trained == () for n in names)
    else:
        ref = _clients(4)["c0"]
        expected = ref.num_samples * ref.local_update(np.zeros(D + 1), LOCAL)
        np.testing.assert_allclose(out[AGGREGATOR_NAME], expected, atol=1e-6)


def test_an_update_whose_sum_could_wrap_around_is_refused_before_masking() -> None:
    secrets = RoundSecrets.generate()
    big = np.array([2.0**60 / 2.0**FRACTION_BITS, -1.0])  # 2^60 in fixed point
    peers = {f"c{i}": RoundSecrets.generate().mask_key.public_bytes() for i in range(8)}
    ctx = round_context(job="j", round=1, nonce=b"\x00" * 16)
    # Seven clients of 2^60 each stay below 2^63; eight could wrap: refused with the bound.
    mask_input(big, me="c0", secrets=secrets, peers=peers, context=ctx, count=7)
    with pytest.raises(SecAggError, match="too large for secure aggregation among 8 clients"):
        mask_input(big, me="c0", secrets=secrets, peers=peers, context=ctx)


def test_the_aggregator_leaves_an_unsigned_advertisement_out_of_the_roster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = MemoryChannel.attest

    def c3_signs_badly(self: MemoryChannel, statement: bytes) -> bytes:
        sig = original(self, statement)
        return bytes(64) if self.party == "c3" else sig

    monkeypatch.setattr(MemoryChannel, "attest", c3_signs_badly)
    res = simulate(_clients(4), _secure(1, timeout=5.0), np.zeros(D + 1), network=_network(4, "x"))
    (first,) = res.history
    assert not first.skipped and first.accepted == ("c0", "c1", "c2")
    assert first.rejected == {"c3": "advertisement is malformed or not signed by its client"}
    np.testing.assert_allclose(res.params, _expected_first_round(4, ["c0", "c1", "c2"]), atol=1e-6)


def test_a_signed_advertisement_does_not_verify_for_another_round_or_client() -> None:
    """An aggregator that rebuilt a dropped client's mask key in round 1 cannot replay that
    client's round-1 keys in round 2, nor pass one client's keys off as another's."""
    net = _network(3, "secagg-replay")
    c0, c1 = net.channel("c0"), net.channel("c1")
    keys = {"share_public": b"\x01" * 32, "mask_public": b"\x02" * 32, "commitment": b"\x03" * 32}
    sig = c0.attest(advertisement_statement(round=1, client="c0", **keys))
    assert c1.check_attestation("c0", advertisement_statement(round=1, client="c0", **keys), sig)
    assert not c1.check_attestation(
        "c0", advertisement_statement(round=2, client="c0", **keys), sig
    )
    assert not c1.check_attestation(
        "c2", advertisement_statement(round=1, client="c2", **keys), sig
    )
