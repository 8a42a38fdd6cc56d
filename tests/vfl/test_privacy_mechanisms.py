"""Exact discrete samplers, calibrated mechanisms, clipping, local and central DP."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from crypto.random import SeededRandom
from vfl.privacy import (
    AdaptiveClipper,
    InsecureNoiseWarning,
    add_gaussian_noise,
    add_laplace_noise,
    bernoulli_exp,
    central_dp,
    clip_l2,
    discrete_gaussian,
    discrete_gaussian_array,
    discrete_laplace,
    discrete_laplace_array,
    gaussian_delta,
    gaussian_sigma,
    laplace_scale,
    local_dp,
    randomized_response,
    randomized_response_keep_probability,
    split_noise_multiplier,
)


def _total_variation(samples: np.ndarray, pmf: dict[int, float]) -> float:
    values, counts = np.unique(samples, return_counts=True)
    freq = dict(zip(values.tolist(), (counts / samples.size).tolist(), strict=True))
    support = set(freq) | set(pmf)
    return float(0.5 * sum(abs(freq.get(k, 0.0) - pmf.get(k, 0.0)) for k in support))


def _pmf(weight: object, lo: int, hi: int) -> dict[int, float]:
    w = {k: float(weight(k)) for k in range(lo, hi + 1)}  # type: ignore[operator]
    z = sum(w.values())
    return {k: v / z for k, v in w.items()}


def test_bernoulli_exp_probability() -> None:
    rng = SeededRandom(1)
    for gamma in (Fraction(1, 3), Fraction(5, 2)):
        hits = sum(bernoulli_exp(gamma, rng) for _ in range(6000))
        p = math.exp(-float(gamma))
        assert abs(hits / 6000 - p) < 4 * math.sqrt(p * (1 - p) / 6000)
    assert bernoulli_exp(0, rng) is True


def test_discrete_gaussian_matches_its_pmf() -> None:
    samples = discrete_gaussian_array((20_000,), sigma_squared=2.0, rng=SeededRandom(2))
    pmf = _pmf(lambda k: math.exp(-(k**2) / 4.0), -30, 30)
    assert _total_variation(samples, pmf) < 0.02
    assert abs(samples.mean()) < 0.05 and samples.var() == pytest.approx(2.0, rel=0.05)


def test_discrete_laplace_matches_its_pmf() -> None:
    samples = discrete_laplace_array((20_000,), scale=Fraction(3, 2), rng=SeededRandom(3))
    pmf = _pmf(lambda k: math.exp(-abs(k) / 1.5), -60, 60)
    assert _total_variation(samples, pmf) < 0.02


def test_samplers_are_deterministic_for_a_seed_and_reject_bad_parameters() -> None:
    a = [discrete_gaussian(10, SeededRandom(4)) for _ in range(3)]
    b = [discrete_gaussian(10, SeededRandom(4)) for _ in range(3)]
    assert a == b
    assert discrete_gaussian(0) == 0
    with pytest.raises(ValueError, match="positive"):
        discrete_laplace(0)
    with pytest.raises(ValueError, match="non-negative"):
        discrete_gaussian(-1.0)
    with pytest.raises(ValueError, match="finite"):
        discrete_gaussian(math.inf)


def test_laplace_and_analytic_gaussian_calibration() -> None:
    assert laplace_scale(epsilon=0.5, sensitivity=2.0) == 4.0
    # Balle and Wang (2018): sigma = 3.73 at epsilon 1, delta 1e-5, Delta 1.
    sigma = gaussian_sigma(epsilon=1.0, delta=1e-5, sensitivity=1.0)
    assert sigma == pytest.approx(3.7306, abs=1e-3)
    assert gaussian_delta(sigma=sigma, epsilon=1.0, sensitivity=1.0) <= 1e-5
    assert gaussian_delta(sigma=sigma * 0.99, epsilon=1.0, sensitivity=1.0) > 1e-5
    # tighter than the classical bound, which is valid for epsilon < 1
    classical = math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert gaussian_sigma(epsilon=0.5, delta=1e-5, sensitivity=1.0) < classical
    # scales linearly with the sensitivity
    assert gaussian_sigma(epsilon=1.0, delta=1e-5, sensitivity=3.0) == pytest.approx(3 * sigma)


def test_gaussian_noise_lies_on_the_grid_with_the_right_spread() -> None:
    x = np.linspace(-1.0, 1.0, 4000)
    g = 2.0**-6
    noisy = add_gaussian_noise(x, sigma=0.5, granularity=g, rng=SeededRandom(5))
    steps = noisy / g
    assert np.array_equal(steps, np.round(steps))
    assert (noisy - x).std() == pytest.approx(0.5, rel=0.05)
    assert abs((noisy - x).mean()) < 0.03


def test_laplace_noise_on_the_grid() -> None:
    x = np.zeros(4000)
    noisy = add_laplace_noise(x, scale=1.0, granularity=2.0**-4, rng=SeededRandom(6))
    assert np.array_equal(noisy * 16, np.round(noisy * 16))
    assert noisy.var() == pytest.approx(2.0, rel=0.1)


def test_insecure_float_noise_warns() -> None:
    with pytest.warns(InsecureNoiseWarning, match="least significant bits"):
        noisy = add_gaussian_noise(np.zeros(1000), sigma=1.0, secure=False, rng=SeededRandom(7))
    assert noisy.std() == pytest.approx(1.0, rel=0.1)
    with pytest.warns(InsecureNoiseWarning):
        add_laplace_noise(np.zeros(10), scale=1.0, secure=False)


def test_clip_l2() -> None:
    clipped, norm = clip_l2(np.array([3.0, 4.0]), clip_norm=1.0)
    assert norm == 5.0 and np.allclose(clipped, [0.6, 0.8])
    same, norm = clip_l2(np.array([0.3, 0.4]), clip_norm=1.0)
    assert norm == pytest.approx(0.5) and np.allclose(same, [0.3, 0.4])
    with pytest.raises(ValueError, match="non-finite"):
        clip_l2(np.array([np.nan]), clip_norm=1.0)
    with pytest.raises(ValueError, match="positive"):
        clip_l2(np.array([1.0]), clip_norm=0.0)


def test_local_dp_clips_then_noises() -> None:
    update = np.full(2000, 10.0)  # norm 447, clipped to 1
    noisy = local_dp(update, clip_norm=1.0, noise_multiplier=0.01, rng=SeededRandom(8))
    clipped = update / np.linalg.norm(update)
    assert np.linalg.norm(noisy - clipped) == pytest.approx(0.01 * math.sqrt(2000), rel=0.1)


def test_central_dp_noises_the_sum_of_clipped_updates() -> None:
    updates = [clip_l2(np.full(500, v), clip_norm=1.0)[0] for v in (1.0, -2.0, 3.0)]
    total = np.sum(updates, axis=0)
    mean = central_dp(total, clip_norm=1.0, noise_multiplier=1.0, divide_by=3, rng=SeededRandom(9))
    assert (mean * 3 - total).std() == pytest.approx(1.0, rel=0.1)
    with pytest.raises(ValueError, match="divide_by"):
        central_dp(total, clip_norm=1.0, noise_multiplier=1.0, divide_by=0)


def test_adaptive_clipping_tracks_the_target_quantile() -> None:
    rng = np.random.default_rng(0)
    clipper = AdaptiveClipper(clip_norm=0.1, count_stddev=2.5, target_quantile=0.5)
    seeded = SeededRandom(11)
    for _ in range(300):
        norms = rng.lognormal(mean=0.0, sigma=0.5, size=50)  # median norm 1.0
        bits = [clipper.clip(np.array([n]))[1] for n in norms]
        clipper.update(bits, rng=seeded)
    assert clipper.clip_norm == pytest.approx(1.0, rel=0.25)


def test_adaptive_clipping_with_noisy_count() -> None:
    clipper = AdaptiveClipper(clip_norm=1.0, count_stddev=2.0)
    before = clipper.clip_norm
    clipper.update([True] * 100, rng=SeededRandom(10))
    assert clipper.clip_norm < before  # everything unclipped: the norm shrinks
    with pytest.raises(ValueError, match="at least one"):
        clipper.update([])
    with pytest.warns(InsecureNoiseWarning, match="not differentially private"):
        noiseless = AdaptiveClipper(clip_norm=1.0, count_stddev=0.0)
    noiseless.update([False] * 10)
    assert noiseless.clip_norm == pytest.approx(np.exp(0.2 * 0.5))


def test_split_noise_multiplier() -> None:
    z = split_noise_multiplier(noise_multiplier=1.0, count_stddev=5.0)
    assert z == pytest.approx((1 - 1 / 100) ** -0.5)
    with pytest.raises(ValueError, match="exceed half"):
        split_noise_multiplier(noise_multiplier=1.0, count_stddev=0.4)


@pytest.mark.parametrize(("epsilon", "classes"), [(1.0, 2), (2.0, 4)])
def test_randomized_response_frequencies(epsilon: float, classes: int) -> None:
    labels = np.arange(6000) % classes
    noisy = randomized_response(labels, epsilon=epsilon, num_classes=classes, rng=SeededRandom(12))
    p = randomized_response_keep_probability(epsilon=epsilon, num_classes=classes)
    assert p == pytest.approx(math.exp(epsilon) / (math.exp(epsilon) + classes - 1))
    kept = float(np.mean(noisy == labels))
    assert abs(kept - p) < 4 * math.sqrt(p * (1 - p) / labels.size)
    assert noisy.dtype == labels.dtype and noisy.min() >= 0 and noisy.max() < classes
    # flipped labels are spread evenly over the other classes
    flipped = noisy[(labels == 0) & (noisy != 0)]
    counts = np.bincount(flipped, minlength=classes)[1:]
    assert counts.min() > 0.7 * counts.mean()


def test_randomized_response_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="integers"):
        randomized_response(np.array([0.5]), epsilon=1.0, num_classes=2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        randomized_response(np.array([2]), epsilon=1.0, num_classes=2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        randomized_response(np.array([0]), epsilon=0.0, num_classes=2)
