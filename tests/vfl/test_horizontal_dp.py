"""Record-level DP-SGD: per-sample gradients and clipping, Poisson sampling, calibrated noise."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from crypto.random import SeededRandom
from vfl.errors import ConfigError
from vfl.horizontal import DpMode, DpPlan, DpSpec, LocalTraining, LogisticModel, plan_dp
from vfl.horizontal._dp import clip_per_sample, dp_sgd_train, poisson_sample
from vfl.horizontal._torch import mlp_factory
from vfl.privacy import InsecureNoiseWarning, clip_l2, epsilon_for_plan, noise_for_epsilon


def _data(n: int = 40, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * 3.0  # large rows: many per-sample gradients get clipped
    return x, (rng.random(n) < 0.4).astype(np.float64)


def test_logistic_per_sample_gradients_match_a_loop_of_full_gradients() -> None:
    x, y = _data()
    model = LogisticModel(x.shape[1])
    params = np.random.default_rng(1).normal(size=x.shape[1] + 1) * 0.3
    grads = model.per_sample_grads(params, x, y)
    for i in range(x.shape[0]):
        # The model's own minibatch gradient on the one-row batch {i} (one SGD step, lr 1).
        one = LogisticModel(x.shape[1])
        one.set_params(params)
        one.train(x[i : i + 1], y[i : i + 1], settings=LocalTraining(epochs=1, learning_rate=1.0,
                  batch_size=1), rng=np.random.default_rng(0))  # fmt: skip
        np.testing.assert_allclose(grads[i], params - one.get_params(), rtol=1e-12, atol=1e-12)


def test_torch_per_sample_gradients_match_autograd_row_by_row() -> None:
    x, y = _data(n=12, d=4)
    model = mlp_factory(hidden=(6, 3), seed=2)(4)
    params = model.get_params()
    grads = model.per_sample_grads(params, x, y)  # type: ignore[attr-defined]
    module = model.module  # type: ignore[attr-defined]
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for i in range(x.shape[0]):
        module.zero_grad()
        out = module(torch.tensor(x[i : i + 1], dtype=torch.float32)).reshape(-1)
        loss_fn(out, torch.tensor(y[i : i + 1], dtype=torch.float32)).backward()
        ref = torch.cat([p.grad.reshape(-1) for p in module.parameters()]).numpy()
        np.testing.assert_allclose(grads[i], ref, rtol=1e-4, atol=1e-6)


def test_clip_per_sample_equals_clip_l2_on_each_row() -> None:
    x, y = _data()
    grads = LogisticModel(x.shape[1]).per_sample_grads(np.full(x.shape[1] + 1, 0.2), x, y)
    clipped, norms = clip_per_sample(grads, clip_norm=1.0)
    assert (norms > 1.0).any() and (norms < 1.0).any()
    for i in range(grads.shape[0]):
        ref, norm = clip_l2(grads[i], clip_norm=1.0)
        np.testing.assert_allclose(clipped[i], ref, rtol=1e-12)
        assert norms[i] == pytest.approx(norm)
    assert np.linalg.norm(clipped, axis=1).max() <= 1.0 + 1e-12
    with pytest.raises(ValueError, match="non-finite"):
        clip_per_sample(np.array([[np.inf, 0.0]]), clip_norm=1.0)


def test_poisson_sample_rate_and_edges() -> None:
    rng = SeededRandom(3)
    sizes = [poisson_sample(2000, sampling_rate=0.05, rng=rng).size for _ in range(200)]
    mean, expected_sd = float(np.mean(sizes)), np.sqrt(2000 * 0.05 * 0.95 / 200)
    assert abs(mean - 100.0) < 5 * expected_sd
    idx = poisson_sample(50, sampling_rate=0.5, rng=rng)
    assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < 50
    assert poisson_sample(7, sampling_rate=1.0).tolist() == list(range(7))
    assert poisson_sample(0, sampling_rate=0.5).size == 0


class _ZeroGradients:
    """A model whose data gradient is zero: one DP-SGD step moves it by the noise alone."""

    def __init__(self, dim: int) -> None:
        self.params = np.zeros(dim)

    def get_params(self) -> np.ndarray:
        return self.params.copy()

    def set_params(self, params: np.ndarray) -> None:
        self.params = params.copy()

    def per_sample_grads(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.zeros((x.shape[0], params.size))


@pytest.mark.parametrize("secure", [True, False])
def test_noise_std_is_z_c_over_expected_batch(secure: bool) -> None:
    n, q, z, clip = 400, 0.05, 1.3, 0.7
    model = _ZeroGradients(6000)
    plan = DpPlan(noise_multiplier=z, sampling_rate=q, steps_per_round=1, rounds=1,
                  delta=1e-5, epsilon=1.0)  # fmt: skip
    settings = LocalTraining(learning_rate=1.0)
    with contextlib.nullcontext() if secure else pytest.warns(InsecureNoiseWarning):
        dp_sgd_train(model, np.zeros((n, 1)), np.zeros(n), settings=settings, plan=plan,
                     clip_norm=clip, secure=secure, rng=SeededRandom(4))  # fmt: skip
    noise = -model.params
    sigma = z * clip / (q * n)
    # The sample std of 6000 normals is within 4 % of sigma with overwhelming probability.
    assert abs(noise.std() / sigma - 1.0) < 0.04
    assert abs(noise.mean()) < 4 * sigma / np.sqrt(noise.size)


def test_dp_sgd_learns_and_clipping_bounds_one_rows_influence() -> None:
    x, y = _data(n=600, d=4, seed=5)
    y = (x @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(np.float64)
    plan = plan_dp(DpSpec(noise_multiplier=0.8, sampling_rate=0.1), rounds=1, local_epochs=3)
    model = LogisticModel(4)
    dp_sgd_train(model, x, y, settings=LocalTraining(learning_rate=0.5), plan=plan,
                 clip_norm=1.0, rng=SeededRandom(6))  # fmt: skip
    p = model.predict_proba(x)
    assert ((p > 0.5) == (y > 0.5)).mean() > 0.85
    # With every row in the batch and no noise budget to speak of, one step moves the
    # parameters by at most lr * C * |B| / (q n): the sum of clipped gradients is bounded.
    huge = DpPlan(noise_multiplier=1e-6, sampling_rate=1.0, steps_per_round=1, rounds=1,
                  delta=1e-5, epsilon=1e9)  # fmt: skip
    big = LogisticModel(4)
    dp_sgd_train(big, x * 100, y, settings=LocalTraining(learning_rate=1.0), plan=huge,
                 clip_norm=0.5, rng=SeededRandom(7))  # fmt: skip
    assert np.linalg.norm(big.get_params()) <= 0.5 + 1e-3


def test_plan_derives_the_noise_multiplier_from_the_target() -> None:
    spec = DpSpec(epsilon=3.0, delta=1e-5, sampling_rate=0.02)
    plan = plan_dp(spec, rounds=10, local_epochs=2)
    assert plan.steps_per_round == 100 and plan.sampling_rate == 0.02
    assert plan.noise_multiplier == pytest.approx(
        noise_for_epsilon(epsilon=3.0, sampling_rate=0.02, steps=1000, delta=1e-5)
    )
    assert plan.epsilon <= 3.0 and plan.epsilon == pytest.approx(3.0, rel=1e-3)
    central = plan_dp(DpSpec(mode=DpMode.CENTRAL, noise_multiplier=2.0), rounds=7, local_epochs=3)
    assert (central.sampling_rate, central.steps_per_round) == (1.0, 1)
    assert central.epsilon == pytest.approx(
        epsilon_for_plan(noise_multiplier=2.0, sampling_rate=1.0, steps=7, delta=1e-5)
    )
    with pytest.raises(ConfigError, match="local_epochs"):
        plan_dp(spec, rounds=3, local_epochs=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "dp_epsilon or dp_noise_multiplier"),
        ({"epsilon": -1.0}, "dp_epsilon"),
        ({"noise_multiplier": 0.0}, "dp_noise_multiplier"),
        ({"epsilon": 1.0, "delta": 1.0}, "dp_delta"),
        ({"epsilon": 1.0, "max_grad_norm": 0.0}, "dp_max_grad_norm"),
        ({"epsilon": 1.0, "sampling_rate": 1.5}, "dp_sampling_rate"),
    ],
)
def test_dp_spec_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DpSpec(**kwargs)  # type: ignore[arg-type]


def test_dp_sgd_trains_a_torch_model_through_its_per_sample_gradients() -> None:
    x, _ = _data(n=300, d=4, seed=8)
    y = (x @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(np.float64)
    model = mlp_factory(hidden=(8,), seed=0)(4)
    before = model.get_params()
    plan = plan_dp(DpSpec(noise_multiplier=0.8, sampling_rate=0.2), rounds=1, local_epochs=4)
    dp_sgd_train(model, x, y, settings=LocalTraining(learning_rate=0.5), plan=plan,  # type: ignore[arg-type]
                 clip_norm=1.0, rng=SeededRandom(9))  # fmt: skip
    after = model.get_params()
    assert after.dtype == before.dtype == np.float32 and not np.allclose(after, before)
    assert ((model.predict_proba(x) > 0.5) == (y > 0.5)).mean() > 0.8
