"""Monitoring figures of real jobs over the in-memory network: time in crypto per round, the
per-party contribution log (vertical and horizontal), and the dropout / silent-party alerts."""

from __future__ import annotations

import functools
import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.jobs import JobTracker, MeteredChannel, PartyIdentity, parse_job, run_job
from vfl.jobs._rounds import CONTRIBUTION_EVENT
from vfl.jobs._views import weight_shares

PARTIES = ["bank", "retailer"]


def _events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _audit(path: Path, event: str) -> list[dict[str, Any]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT details FROM records WHERE event = ? ORDER BY seq", (event,))
        return [json.loads(d) for (d,) in rows.fetchall()]
    finally:
        db.close()


def _vertical_data(tmp: Path) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(230, 4))
    y = (x @ np.array([1.5, -1.0, 0.8, 1.2]) + rng.normal(0, 0.5, 230) > 0).astype(int)
    ids = [f"c{i:04d}" for i in range(230)]
    bank = pd.DataFrame({"id": ids, "b0": x[:, 0], "b1": x[:, 1], "y": y})
    retailer = pd.DataFrame({"id": ids, "r0": x[:, 2], "r1": x[:, 3]})
    bank.iloc[:220].to_csv(tmp / "bank.csv", index=False)
    retailer.iloc[10:].sample(frac=1.0, random_state=2).to_csv(tmp / "retailer.csv", index=False)


def _run_vertical(tmp: Path, job_id: str, crypto: dict[str, Any]) -> dict[str, Any]:
    raw = {
        "job": {"id": job_id, "type": "hetero_lr", "label_party": "bank"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "crypto": crypto,
        "evaluation": {"test_fraction": 0.2, "seed": 0},
        "model": {"epochs": 2, "batch_size": 64, "learning_rate": 0.2},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small keys / plain mode warn loudly
        job = parse_job(raw, base_dir=tmp, allow_small_keys=True)
        net = InMemoryNetwork(PARTIES, job_id=job_id, seed=0)

        def party(name: str, ch: Channel) -> dict[str, Any]:
            identity = PartyIdentity(net.signing_key(name), net.verify_keys)
            return run_job(job, party=name, channel=ch, work_dir=tmp / name, identity=identity)

        out: dict[str, Any] = run_parties(
            {n: functools.partial(party, n) for n in PARTIES}, network=net, timeout=300
        )
    return out


@pytest.fixture(scope="module")
def paillier_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("monitoring")
    _vertical_data(tmp)
    return tmp, _run_vertical(tmp, "lr-paillier", {"scheme": "paillier", "key_bits": 1024})


def test_paillier_rounds_record_their_time_in_crypto(
    paillier_run: tuple[Path, dict[str, Any]],
) -> None:
    _, out = paillier_run
    for name in PARTIES:
        run_dir = Path(out[name]["run_dir"])
        rounds = [e for e in _events(run_dir) if e["kind"] == "round"]
        assert len(rounds) == 2
        for event in rounds:
            assert 0.0 < event["crypto_seconds"] <= event["seconds"], (name, event)
            assert event["latency_ms"] is None  # no heartbeat monitor in memory
        status = json.loads((run_dir / "status.json").read_text())
        total = sum(e["crypto_seconds"] for e in rounds)
        assert status["crypto_seconds"] == pytest.approx(total)
        assert status["crypto_share"] == pytest.approx(total / sum(e["seconds"] for e in rounds))
        assert 0.0 < status["crypto_share"] <= 1.0
        assert status["peers"][next(p for p in PARTIES if p != name)]["latency_ms"] is None


def test_vertical_contribution_log_per_round_and_weight_shares(
    paillier_run: tuple[Path, dict[str, Any]],
) -> None:
    tmp, out = paillier_run
    norms = {}
    for name in PARTIES:
        state = json.loads(Path(out[name]["model_path"]).read_text())
        weights = np.asarray(state["weights"], dtype=np.float64)
        norms[name] = float(np.linalg.norm(weights[1:] if name == "bank" else weights))
    shares = weight_shares(norms)
    assert sum(shares.values()) == pytest.approx(1.0) and all(s > 0 for s in shares.values())
    for name in PARTIES:
        peer = next(p for p in PARTIES if p != name)
        run_dir = Path(out[name]["run_dir"])
        events = _events(run_dir)
        rounds = {e["round"]: e for e in events if e["kind"] == "round"}
        logged = [e for e in events if e["kind"] == "contribution"]
        per_round = [e for e in logged if e["round"] is not None]
        assert sorted({(e["round"], e["party"]) for e in per_round}) == [
            (r, p) for r in (1, 2) for p in PARTIES
        ]
        for event in per_round:
            if event["party"] == name:  # itself: bytes it sent, its compute time
                assert event["bytes_sent"] == rounds[event["round"]]["bytes_sent"] > 0
                assert 0.0 < event["compute_seconds"] <= rounds[event["round"]]["seconds"]
            else:  # the peer: bytes received from it, time spent waiting for it
                assert event["party"] == peer
                assert event["bytes_sent"] == rounds[event["round"]]["bytes_received"] > 0
                assert event["waited_seconds"] >= 0.0
                assert "compute_seconds" not in event
        final = {e["party"]: e for e in logged if e["round"] is None}
        assert set(final) == set(PARTIES)
        for party in PARTIES:
            assert final[party]["weight_norm"] == pytest.approx(norms[party])
            assert final[party]["weight_share"] == pytest.approx(shares[party])
        assert final["bank"]["role"] == "label" and final["retailer"]["role"] == "feature"
        assert out[name]["contribution"] == {
            p: {"weight_norm": pytest.approx(norms[p]), "weight_share": pytest.approx(shares[p])}
            for p in PARTIES
        }
        audited = _audit(tmp / name / "audit.db", CONTRIBUTION_EVENT)
        assert [a["round"] for a in audited] == [1, 2, None]
        assert set(audited[0]["contributions"]) == set(PARTIES)


def test_plain_rounds_spend_no_time_in_crypto(tmp_path: Path) -> None:
    _vertical_data(tmp_path)
    out = _run_vertical(tmp_path, "lr-plain", {"scheme": "plain"})
    for name in PARTIES:
        rounds = [e for e in _events(Path(out[name]["run_dir"])) if e["kind"] == "round"]
        assert rounds and all(e["crypto_seconds"] == 0.0 for e in rounds)


# -- horizontal --------------------------------------------------------------------------------

CLIENTS = ["b1", "b2", "b3"]


def _horizontal_job(tmp: Path, job_id: str, **model: Any) -> Any:

    rng = np.random.default_rng(5)
    for i, name in enumerate(["hub", *CLIENTS]):
        n = 400 if name == "hub" else 150
        x = rng.normal(size=(n, 3))
        y = (x @ np.array([1.0, -1.0, 0.5]) + rng.normal(0, 0.3, n) > 0).astype(int)
        df = pd.DataFrame(x, columns=["a", "b", "c"])
        df.insert(0, "y", y)
        df.insert(0, "id", np.arange(n) + 1000 * i)
        df.to_csv(tmp / f"{name}.csv", index=False)
    raw = {
        "job": {"id": job_id, "type": "fedavg", "aggregator": "hub"},
        "parties": {
            n: {"data": f"{n}.csv", "id_column": "id", "label_column": "y"}
            for n in ["hub", *CLIENTS]
        },
        "crypto": {"scheme": "plain"},
        "model": model,
    }
    return parse_job(raw, base_dir=tmp)


@pytest.mark.slow  # three 1 s round deadlines
def test_a_client_silent_for_three_rounds_raises_dropout_and_silent_alerts(
    tmp_path: Path,
) -> None:
    job = _horizontal_job(tmp_path, "fl-drop", rounds=4, round_timeout=1.0)
    names = ["hub", *CLIENTS]
    net = InMemoryNetwork(names, job_id="fl-drop", seed=0)
    # b3 trains every round, but its updates of rounds 1-3 never reach the aggregator.
    net.faults.drop(sender="b3", receiver="hub", topic="fl/update", count=3)

    def party(name: str, ch: Channel) -> dict[str, Any]:
        identity = PartyIdentity(net.signing_key(name), net.verify_keys)
        return run_job(job, party=name, channel=ch, work_dir=tmp_path / name, identity=identity)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = run_parties({n: functools.partial(party, n) for n in names}, network=net, timeout=300)
    events = _events(Path(out["hub"]["run_dir"]))
    rounds = [e for e in events if e["kind"] == "round"]
    assert [e["dropped"] for e in rounds] == [["b3"], ["b3"], ["b3"], []]
    assert rounds[0]["participants"] == ["b1", "b2", "hub"]
    assert all(e["crypto_seconds"] == 0.0 for e in rounds)
    alerts = [(e["alert"], e["message"]) for e in events if e["kind"] == "alert"]
    kinds = [kind for kind, _ in alerts]
    # One in four parties missing (25 % > 20 %) from round 1 (raised once while it lasts);
    # b3 silent for 3 rounds at round 3.
    assert kinds == ["dropouts", "silent_party"]
    assert "round 1: 25% of the parties dropped out" in alerts[0][1]
    assert "party b3 has been silent for 3 rounds" in alerts[1][1]
    audited = [a["kind"] for a in _audit(tmp_path / "hub" / "audit.db", "monitor.alert")]
    assert sorted(audited) == sorted(kinds)
    # run_job passes the aggregator's contribution figures on: one line per client per round.
    first = {e["party"]: e for e in events if e["kind"] == "contribution" and e["round"] == 1}
    assert set(first) == set(CLIENTS)
    assert first["b3"]["dropped"] is True and first["b1"]["accepted"] is True
    assert first["b1"]["samples"] == 120


def _fedavg_with_tracker(
    tmp: Path, job: Any, names: list[str], net: InMemoryNetwork
) -> tuple[dict[str, Any], list[Any]]:
    """The aggregator's rounds go to a JobTracker with the aggregator's contribution figures."""
    from vfl.horizontal import run_fedavg_job

    records: list[Any] = []

    def party(name: str, ch: Channel) -> dict[str, Any]:
        if name != "hub":
            return run_fedavg_job(job, party=name, channel=ch, work_dir=tmp / name)
        metered = MeteredChannel(ch)
        identity = PartyIdentity(net.signing_key(name), net.verify_keys).for_party(name)
        tracker = JobTracker(
            job, party=name, channel=metered, work_dir=tmp / name, identity=identity
        )

        def on_round(record: Any) -> None:
            records.append(record)
            tracker.round(
                metrics=dict(record.metrics),
                seconds=record.seconds,
                expected=list(record.sampled),
                responded=[p for p in record.sampled if p not in record.dropped],
                contributions=record.contributions,
            )

        try:
            return run_fedavg_job(
                job, party=name, channel=metered, work_dir=tracker.run_dir, on_round=on_round
            )
        finally:
            tracker.close()

    out = run_parties({n: functools.partial(party, n) for n in names}, network=net, timeout=300)
    return out, records


def test_horizontal_contribution_log_from_the_aggregator(tmp_path: Path) -> None:
    job = _horizontal_job(tmp_path, "fl-contrib", rounds=2, round_timeout=10.0)
    names = ["hub", *CLIENTS]
    net = InMemoryNetwork(names, job_id="fl-contrib", seed=0)
    out, records = _fedavg_with_tracker(tmp_path, job, names, net)
    assert out["hub"]["role"] == "aggregator" and len(records) == 2
    run_dir = tmp_path / "hub" / "runs" / "fl-contrib" / "hub"
    logged = [e for e in _events(run_dir) if e["kind"] == "contribution"]
    assert sorted((e["round"], e["party"]) for e in logged) == [
        (r, c) for r in (1, 2) for c in CLIENTS
    ]
    for event in logged:
        assert event["accepted"] is True and event["dropped"] is False
        assert event["samples"] > 0 and event["update_norm"] > 0
        assert -1.0 <= event["cosine"] <= 1.0 and event["reputation"] == 1.0
    # Same-distribution clients pull the same way: each update points along the aggregate.
    assert all(e["cosine"] > 0.5 for e in logged)
    audited = _audit(tmp_path / "hub" / "audit.db", CONTRIBUTION_EVENT)
    assert [a["round"] for a in audited] == [1, 2]
    assert audited[0]["contributions"]["b1"]["samples"] == logged[0]["samples"]


def test_secure_aggregation_logs_only_what_it_does_not_hide(tmp_path: Path) -> None:
    job = _horizontal_job(
        tmp_path, "fl-secure", rounds=1, round_timeout=10.0, secure_aggregation=True
    )
    names = ["hub", *CLIENTS]
    net = InMemoryNetwork(names, job_id="fl-secure", seed=0)
    _, records = _fedavg_with_tracker(tmp_path, job, names, net)
    run_dir = tmp_path / "hub" / "runs" / "fl-secure" / "hub"
    logged = [e for e in _events(run_dir) if e["kind"] == "contribution"]
    assert sorted(e["party"] for e in logged) == CLIENTS
    for event in logged:
        assert set(event) == {"t", "kind", "round", "party", "accepted", "dropped", "samples"}
        assert event["accepted"] is True and event["dropped"] is False
        assert (
            event["samples"] == 120
        )  # 150 rows less 20 % validation; sent in clear beside the masked update
    assert set(records[0].contributions) == set(CLIENTS)


# -- the pieces --------------------------------------------------------------------------------


def test_metered_channel_times_the_waits_in_recv() -> None:
    import time

    from protocols.errors import ProtocolError

    net = InMemoryNetwork(["a", "b"], job_id="w", seed=0)
    a = MeteredChannel(net.channel("a"))
    start = time.perf_counter()
    with pytest.raises(ProtocolError):
        a.recv("b", "never", timeout=0.05)  # a failed wait still counts as waiting for b
    net.channel("b").send("a", "t", np.zeros(3))
    a.recv("b", "t")
    waited = a.waited_since(start)
    assert 0.05 <= waited["b"] <= time.perf_counter() - start
    assert a.waited_since(time.perf_counter()) == {}
    traffic = a.traffic()["b"]
    assert traffic.messages_sent == 0 and traffic.messages_received == 1
    assert traffic.recv_seconds == pytest.approx(waited["b"])
    assert a.latency_ms() == {} and a.heartbeat_seen() == {}  # in memory: no heartbeats


def test_aggregator_contributions_name_rejections_and_cosines() -> None:
    from vfl.horizontal._messages import ClientUpdate
    from vfl.horizontal._server import contributions
    from vfl.horizontal._validation import Reputation

    reputation = Reputation()
    reputation.reject("c")
    updates = {
        "a": ClientUpdate(1, np.array([1.0, 0.0]), 10),
        "b": ClientUpdate(1, np.array([0.0, 2.0]), 30),
        "c": ClientUpdate(1, np.array([np.nan, 0.0]), 5),
    }
    out = contributions(
        updates,
        sampled=["a", "b", "c", "d"],
        accepted=["a", "b"],
        rejected={"c": "not finite"},
        dropped={"d": "timeout"},
        aggregate=np.array([1.0, 1.0]),
        reputation=reputation,
    )
    assert out["a"]["cosine"] == pytest.approx(1 / np.sqrt(2)) and out["a"]["samples"] == 10
    assert out["b"]["update_norm"] == pytest.approx(2.0) and out["b"]["accepted"]
    assert out["c"] == {
        "accepted": False,
        "dropped": False,
        "reputation": 0.5,
        "samples": 5,
        "update_norm": None,
        "cosine": None,
        "reason": "not finite",
    }
    assert out["d"] == {"accepted": False, "dropped": True, "reputation": 1.0}
    skipped = contributions(
        updates,
        sampled=["a"],
        accepted=[],
        rejected={},
        dropped={},
        aggregate=None,
        reputation=reputation,
    )
    assert skipped["a"]["cosine"] is None and skipped["a"]["update_norm"] == 1.0


def test_a_malformed_contribution_in_the_job_summary_is_refused(tmp_path: Path) -> None:
    from vfl.errors import VflError
    from vfl.governance import ModelRegistry
    from vfl.jobs._register import RESERVED_TOPIC, SUMMARY_TOPIC, agree_version

    net = InMemoryNetwork(["a", "b"], job_id="s", seed=0)
    a = net.channel("a")
    with ModelRegistry(tmp_path / "registry.db", party="a") as registry:
        bad_values: list[Any] = [{"weight_norm": -1.0}, {"weight_norm": "big"}, [], {"x": True}]
        for bad in bad_values:
            net.channel("b").send(
                "a", SUMMARY_TOPIC, {"version": "0.1.0", "metrics": {}, "contribution": bad}
            )
            with pytest.raises(VflError, match="b sent a malformed contribution"):
                agree_version(a, registry, name="m", peers=["b"], metrics={}, job_id="s", timeout=5)
        net.channel("b").send("a", SUMMARY_TOPIC, {"version": "0.2.0", "metrics": {"x": 1.0}})
        net.channel("b").send("a", f"{RESERVED_TOPIC}/0", {"reserved": True})
        version, reported, contributed = agree_version(
            a,
            registry,
            name="m",
            peers=["b"],
            metrics={},
            job_id="s",
            contribution={"weight_norm": 2.0},
        )
    assert version == "0.2.0" and reported["b"] == {"x": 1.0}
    assert contributed == {"a": {"weight_norm": 2.0}}  # b sent none: tolerated
