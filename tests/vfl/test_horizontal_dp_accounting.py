"""DP in horizontal jobs: accounting per client and per job, refuse / stop, resume, central DP,
and the fedavg ``[model]`` keys."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crypto.random import SeededRandom
from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.errors import ConfigError
from vfl.horizontal import (
    ClientPrivacy,
    DpMode,
    DpSpec,
    FedClient,
    FedConfig,
    FedServer,
    JobPrivacy,
    LocalTraining,
    Participant,
    logistic_factory,
    parse_fedavg_model,
    run_fedavg_job,
    simulate,
)
from vfl.jobs import parse_job
from vfl.privacy import BudgetExceeded, BudgetPolicy, epsilon_for_plan

Q = 0.1  # 10 DP-SGD steps per local epoch


def _xy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.array([1.0, -1.0, 0.5, 0.0]))))).astype(float)
    return x, y


def _config(dp: DpSpec, rounds: int = 3) -> FedConfig:
    return FedConfig(rounds=rounds, local=LocalTraining(epochs=1, learning_rate=0.5), dp=dp)


def _clients(cfg: FedConfig) -> tuple[dict[str, Participant], dict[str, ClientPrivacy]]:
    assert cfg.dp is not None
    privacy = {
        n: ClientPrivacy(
            cfg.dp, party=n, rounds=cfg.rounds, local_epochs=cfg.local.epochs, rng=SeededRandom(i)
        )  # fmt: skip
        for i, n in enumerate(("c0", "c1", "c2"))
    }
    clients: dict[str, Participant] = {
        n: FedClient(
            *_xy(200, i),
            model_factory=logistic_factory(),
            val_fraction=0.0,
            seed=i,
            privacy=privacy[n],
        )  # fmt: skip
        for i, n in enumerate(("c0", "c1", "c2"))
    }
    return clients, privacy


def test_epsilon_after_the_run_equals_the_plans() -> None:
    cfg = _config(DpSpec(epsilon=2.0, sampling_rate=Q, secure_noise=False))
    clients, privacy = _clients(cfg)
    server = FedServer(cfg, np.zeros(5), clients=sorted(clients))
    with pytest.warns(UserWarning):
        res = simulate(clients, cfg, np.zeros(5), server=server)
    assert len(res.history) == 3 and res.profile is None  # DP clients send no statistics
    assert server.privacy is not None
    plan = server.privacy.plan
    expected = epsilon_for_plan(noise_multiplier=plan.noise_multiplier, sampling_rate=Q,
                                steps=3 * 10, delta=1e-5)  # fmt: skip
    assert expected == pytest.approx(2.0, rel=1e-3) and expected <= 2.0
    for p in privacy.values():
        assert p.epsilon == pytest.approx(expected, rel=1e-9)
        assert p.plan == plan  # the clients plan from the job file, exactly as the aggregator
    summary = server.privacy.summary()
    assert summary["epsilon"] == pytest.approx(expected, rel=1e-9)
    assert summary["per_client"] == pytest.approx({n: expected for n in clients}, rel=1e-9)
    per_round, cumulative = summary["epsilon_per_round"], summary["epsilon_cumulative"]
    assert len(per_round) == 3 and per_round[0] == pytest.approx(cumulative[0])
    assert per_round[1] == pytest.approx(per_round[0]) and cumulative[2] > cumulative[1]
    assert cumulative[-1] < sum(per_round)  # RDP composition beats adding epsilons
    assert [r.privacy["epsilon"] for r in res.history] == pytest.approx(cumulative)
    assert res.history[0].privacy["delta"] == 1e-5 and not summary["stopped_early"]
    client = privacy["c0"].summary()
    assert client["epsilon_cumulative"] == pytest.approx(cumulative)


def test_refuse_rejects_an_overspending_plan_before_the_first_round() -> None:
    spec = DpSpec(epsilon=1.0, noise_multiplier=0.6, sampling_rate=Q)
    with pytest.raises(BudgetExceeded, match="budget 1"):
        ClientPrivacy(spec, party="c0", rounds=20, local_epochs=1)
    job = JobPrivacy(spec, clients=["c0", "c1"], rounds=20, local_epochs=1, expected_per_round=2)
    with pytest.raises(BudgetExceeded, match="plan reaches epsilon"):
        job.check_start(rounds_left=20)
    stop = dataclasses.replace(spec, budget_policy=BudgetPolicy.STOP)
    ClientPrivacy(stop, party="c0", rounds=20, local_epochs=1)  # stop: starts, stops later
    assert JobPrivacy(stop, clients=["c0"], rounds=20, local_epochs=1,
                      expected_per_round=1).check_start(rounds_left=20) > 1.0  # fmt: skip


def test_stop_ends_training_before_the_round_that_would_overspend() -> None:
    z = 0.9
    one = epsilon_for_plan(noise_multiplier=z, sampling_rate=Q, steps=10, delta=1e-5)
    four = epsilon_for_plan(noise_multiplier=z, sampling_rate=Q, steps=40, delta=1e-5)
    five = epsilon_for_plan(noise_multiplier=z, sampling_rate=Q, steps=50, delta=1e-5)
    budget = (four + five) / 2  # four rounds fit, the fifth would overspend
    assert one < budget
    spec = DpSpec(epsilon=budget, noise_multiplier=z, sampling_rate=Q,
                  budget_policy=BudgetPolicy.STOP, secure_noise=False)  # fmt: skip
    cfg = _config(spec, rounds=10)
    clients, privacy = _clients(cfg)
    server = FedServer(cfg, np.zeros(5), clients=sorted(clients))
    with pytest.warns(UserWarning):
        res = simulate(clients, cfg, np.zeros(5), server=server)
    assert len(res.history) == 4
    assert [e["event"] for e in res.events].count("privacy_budget_stop") == 1
    assert server.privacy is not None
    summary = server.privacy.summary()
    assert summary["stopped_early"] and "next round would reach epsilon" in summary["stop_reason"]
    assert summary["epsilon"] == pytest.approx(four, rel=1e-9) and summary["epsilon"] <= budget
    for p in privacy.values():  # the clients trained exactly four rounds and got Finish
        assert p.epsilon == pytest.approx(four, rel=1e-9)
        with pytest.raises(BudgetExceeded, match="next round"):
            p.train(logistic_factory()(4), *_xy(50, 0), settings=cfg.local)


def test_client_and_job_state_resume_and_continue_the_epsilon(tmp_path: Path) -> None:
    spec = DpSpec(noise_multiplier=1.1, sampling_rate=Q, secure_noise=True)
    path = tmp_path / "privacy.json"
    x, y = _xy(100, 1)
    first = ClientPrivacy(spec, party="c0", rounds=5, local_epochs=1, state_path=path,
                          rng=SeededRandom(0))  # fmt: skip
    model = logistic_factory()(4)
    for _ in range(2):
        first.train(model, x, y, settings=LocalTraining(learning_rate=0.1))
    again = ClientPrivacy(spec, party="c0", rounds=5, local_epochs=1, state_path=path)
    assert again.epsilon == pytest.approx(first.epsilon)
    again.train(model, x, y, settings=LocalTraining(learning_rate=0.1))
    assert again.epsilon == pytest.approx(
        epsilon_for_plan(noise_multiplier=1.1, sampling_rate=Q, steps=30, delta=1e-5), rel=1e-9
    )
    job = JobPrivacy(spec, clients=["c0", "c1"], rounds=5, local_epochs=1, expected_per_round=2)
    assert not job.attach(tmp_path / "job.json")
    job.record_round(1, ["c0", "c1"])
    job.record_round(2, ["c1"])  # c0 not sampled: not charged
    resumed = JobPrivacy(spec, clients=["c0", "c1"], rounds=5, local_epochs=1,
                         expected_per_round=2)  # fmt: skip
    assert resumed.attach(tmp_path / "job.json")
    assert resumed.summary() == job.summary()
    assert resumed.summary()["per_client"]["c0"] < resumed.summary()["per_client"]["c1"]
    lost = JobPrivacy(spec, clients=["c0", "c1"], rounds=5, local_epochs=1, expected_per_round=2)
    assert not lost.attach(tmp_path / "gone.json", rounds_done=[(1, ["c0", "c1"]), (2, ["c1"])])
    assert lost.summary()["per_client"] == resumed.summary()["per_client"]
    assert (tmp_path / "gone.json").is_file()  # the replayed rounds are saved at once
    with pytest.raises(ConfigError, match="delta"):
        JobPrivacy(dataclasses.replace(spec, delta=1e-6), clients=["c0"], rounds=5,
                   local_epochs=1, expected_per_round=1).attach(tmp_path / "job.json")  # fmt: skip


def test_central_dp_clips_each_update_and_noises_the_sum() -> None:
    spec = DpSpec(mode=DpMode.CENTRAL, noise_multiplier=1e-9, max_grad_norm=1.0)
    job = JobPrivacy(spec, clients=["a", "b"], rounds=3, local_epochs=1, expected_per_round=2)
    assert job.central
    out = job.central_aggregate({"a": np.array([30.0, 40.0]), "b": np.array([0.3, 0.4])})
    np.testing.assert_allclose(out, (np.array([0.6, 0.8]) + np.array([0.3, 0.4])) / 2, atol=1e-6)
    noisy = JobPrivacy(dataclasses.replace(spec, noise_multiplier=2.0), clients=["a", "b"],
                       rounds=3, local_epochs=1, expected_per_round=2,
                       rng=SeededRandom(5))  # fmt: skip
    sample = noisy.central_aggregate({"a": np.zeros(5000), "b": np.zeros(5000)})
    assert abs(sample.std() / (2.0 * 1.0 / 2) - 1) < 0.05
    cfg = FedConfig(rounds=2, local=LocalTraining(epochs=1, learning_rate=0.5),
                    dp=dataclasses.replace(spec, noise_multiplier=1.0, secure_noise=False))  # fmt: skip
    clients: dict[str, Participant] = {
        n: FedClient(*_xy(100, i), model_factory=logistic_factory(), seed=i)
        for i, n in enumerate(("a", "b"))
    }
    server = FedServer(cfg, np.zeros(5), clients=["a", "b"])
    with pytest.warns(UserWarning):
        res = simulate(clients, cfg, np.zeros(5), server=server)
    assert [r.privacy["epsilon"] for r in res.history] == pytest.approx(
        [epsilon_for_plan(noise_multiplier=1.0, sampling_rate=1.0, steps=s, delta=1e-5)
         for s in (1, 2)]
    )  # fmt: skip


def _csv(path: Path, n: int, seed: int) -> None:
    x, y = _xy(n, seed)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df.insert(0, "y", y.astype(int))
    df.insert(0, "id", np.arange(n) + 10_000 * seed)
    df.to_csv(path, index=False)


def _job(tmp_path: Path, model: dict[str, Any]) -> Any:
    raw: dict[str, Any] = {
        "job": {"id": "dp-job", "type": "fedavg", "aggregator": "hub"},
        "parties": {
            "hub": {"data": "hub.csv", "id_column": "id", "label_column": "y"},
            **{
                n: {"data": f"{n}.csv", "id_column": "id", "label_column": "y"}
                for n in ("b1", "b2")
            },
        },  # fmt: skip
        "crypto": {"scheme": "plain"},
        "model": model,
    }
    return parse_job(raw, base_dir=tmp_path)


def _run(tmp_path: Path, job: Any, seed: int) -> dict[str, Any]:
    net = InMemoryNetwork(["hub", "b1", "b2"], job_id="dp-job", seed=seed)

    def party(name: str) -> Any:
        def fn(ch: Channel) -> dict[str, Any]:
            return run_fedavg_job(job, party=name, channel=ch, work_dir=tmp_path / name)

        return fn

    out: dict[str, Any] = run_parties({n: party(n) for n in ("hub", "b1", "b2")}, network=net,
                                      timeout=120)  # fmt: skip
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fedavg_job_reports_privacy_and_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, name in enumerate(["hub", "b1", "b2"]):
        _csv(tmp_path / f"{name}.csv", 300, i)
    model = {"rounds": 2, "learning_rate": 0.5, "dp": "record", "dp_noise_multiplier": 1.2,
             "dp_sampling_rate": Q, "dp_secure_noise": False}  # fmt: skip
    out = _run(tmp_path, _job(tmp_path, model), 0)
    hub, b1 = out["hub"]["privacy"], out["b1"]["privacy"]
    json.dumps(out)
    two = epsilon_for_plan(noise_multiplier=1.2, sampling_rate=Q, steps=20, delta=1e-5)
    assert hub["epsilon"] == pytest.approx(two) and b1["epsilon"] == pytest.approx(two)
    assert hub["delta"] == 1e-5 and len(hub["epsilon_per_round"]) == 2
    history = json.loads((tmp_path / "hub" / "history.json").read_text())
    assert history[1]["privacy"]["epsilon"] == pytest.approx(two)
    assert (tmp_path / "hub" / "privacy.json").is_file()
    assert (tmp_path / "b1" / "privacy.json").is_file()
    # The same job planned for 4 rounds: resumes from the checkpoint and continues the epsilon.
    out = _run(tmp_path, _job(tmp_path, {**model, "rounds": 4}), 1)
    four = epsilon_for_plan(noise_multiplier=1.2, sampling_rate=Q, steps=40, delta=1e-5)
    assert out["hub"]["resumed"] and out["b2"]["rounds_trained"] == [3, 4]
    assert out["hub"]["privacy"]["epsilon"] == pytest.approx(four)
    assert out["b2"]["privacy"]["epsilon"] == pytest.approx(four)
    assert len(out["hub"]["privacy"]["epsilon_cumulative"]) == 4
    # A budget the plan would overspend: every party refuses before the first message.
    bad = _job(tmp_path / "x", {**model, "dp_epsilon": 0.5})
    for name in ("hub", "b1"):
        net = InMemoryNetwork(["hub", "b1", "b2"], job_id="dp-job", seed=2)
        (tmp_path / "x").mkdir(exist_ok=True)
        for n in ("hub", "b1", "b2"):
            _csv(tmp_path / "x" / f"{n}.csv", 300, 0)
        with pytest.raises(BudgetExceeded, match="budget 0.5"):
            run_fedavg_job(
                bad, party=name, channel=net.channel(name), work_dir=tmp_path / "x" / name
            )
        assert net.wire == []


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ({"dp": "local", "dp_epsilon": 1}, "model.dp must be"),
        ({"dp": True}, "model.dp has the wrong type"),
        ({"dp_epsilon": 1.0}, "model.dp_epsilon needs model.dp"),
        ({"dp": "record"}, "dp_epsilon or dp_noise_multiplier"),
        ({"dp": "record", "dp_epsilon": "3"}, "model.dp_epsilon has the wrong type"),
        ({"dp": "record", "dp_epsilon": 3, "dp_delta": 2}, "dp_delta"),
        ({"dp": "record", "dp_epsilon": 3, "dp_budget_policy": "later"}, "dp_budget_policy"),
        ({"dp": "record", "dp_epsilon": 3, "dp_secure_noise": 1}, "dp_secure_noise"),
        ({"dp": "record", "dp_epsilon": 3, "mode": "async"}, "sync mode"),
        ({"dp": "record", "dp_epsilon": 3, "personalise_epochs": 1}, "personalise_epochs"),
        ({"dp": "central", "dp_epsilon": 3, "aggregator": "median"}, "central"),
        (
            {"dp": "central", "dp_epsilon": 3, "dp_sampling_rate": 0.1},
            "applies to dp = .record. only",
        ),
        ({"dp": "record", "dp_epsilon": 3, "dp_noise": 1}, "unknown key model.dp_noise"),
    ],
)
def test_fedavg_dp_keys_parse_errors_name_the_key(model: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_fedavg_model(model)


def test_fedavg_dp_keys_parse() -> None:
    spec = parse_fedavg_model(
        {"dp": "record", "dp_epsilon": 3, "dp_delta": 1e-6, "dp_max_grad_norm": 0.5,
         "dp_sampling_rate": 0.02, "dp_budget_policy": "stop"}
    ).config.dp  # fmt: skip
    assert spec == DpSpec(epsilon=3.0, delta=1e-6, max_grad_norm=0.5, sampling_rate=0.02,
                          budget_policy=BudgetPolicy.STOP)  # fmt: skip
    assert parse_fedavg_model({"dp": "none"}).config.dp is None
    central = parse_fedavg_model({"dp": "central", "dp_noise_multiplier": 2}).config.dp
    assert central is not None and central.mode is DpMode.CENTRAL


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fedavg_job_stops_cleanly_when_the_budget_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, name in enumerate(["hub", "b1", "b2"]):
        _csv(tmp_path / f"{name}.csv", 300, i)
    two = epsilon_for_plan(noise_multiplier=1.0, sampling_rate=Q, steps=20, delta=1e-5)
    three = epsilon_for_plan(noise_multiplier=1.0, sampling_rate=Q, steps=30, delta=1e-5)
    model = {"rounds": 6, "learning_rate": 0.5, "dp": "record", "dp_noise_multiplier": 1.0,
             "dp_epsilon": (two + three) / 2, "dp_budget_policy": "stop",
             "dp_sampling_rate": Q, "dp_secure_noise": False}  # fmt: skip
    out = _run(tmp_path, _job(tmp_path, model), 0)
    hub = out["hub"]
    assert hub["rounds"] == 2 and hub["privacy"]["stopped_early"]
    assert "next round would reach" in hub["privacy"]["stop_reason"]
    assert [e["event"] for e in hub["events"]].count("privacy_budget_stop") == 1
    assert hub["privacy"]["epsilon"] == pytest.approx(two)
    for name in ("b1", "b2"):  # the clients got the final model and reported normally
        assert out[name]["rounds_trained"] == [1, 2]
        assert out[name]["privacy"]["epsilon"] == pytest.approx(two)
