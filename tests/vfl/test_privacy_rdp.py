"""RDP of the sampled Gaussian mechanism against Google's dp-accounting (the oracle)."""

from __future__ import annotations

import doctest
import itertools
import math
from typing import Any

import numpy as np
import pytest
from dp_accounting import dp_event  # type: ignore[import-untyped]
from dp_accounting.rdp import rdp_privacy_accountant as oracle  # type: ignore[import-untyped]

from vfl.privacy import (
    DEFAULT_ORDERS,
    _accountant,
    _mechanisms,
    _rdp,
    delta_from_rdp,
    epsilon_for_plan,
    epsilon_from_rdp,
    noise_for_epsilon,
    rdp_gaussian,
    rdp_sampled_gaussian,
)

NOISE = (0.5, 0.8, 1.1, 2.0, 5.0)
RATES = (0.001, 0.01, 0.1, 1.0)
STEPS = (1, 100, 10_000)
DELTAS = (1e-3, 1e-5, 1e-8)


def _oracle_epsilon(z: float, q: float, steps: int, delta: float) -> float:
    acc = oracle.RdpAccountant()
    acc.compose(dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(z)), steps)
    return float(acc.get_epsilon(delta))


def test_default_orders_match_the_oracle() -> None:
    assert np.array_equal(np.array(DEFAULT_ORDERS), np.array(oracle.DEFAULT_RDP_ORDERS))


@pytest.mark.parametrize(("z", "q"), list(itertools.product(NOISE, RATES)))
def test_epsilon_matches_dp_accounting_within_one_percent(z: float, q: float) -> None:
    one_step = rdp_sampled_gaussian(sampling_rate=q, noise_multiplier=z)
    for steps, delta in itertools.product(STEPS, DELTAS):
        ours, _ = epsilon_from_rdp(orders=DEFAULT_ORDERS, rdp=steps * one_step, delta=delta)
        theirs = _oracle_epsilon(z, q, steps, delta)
        assert ours == pytest.approx(theirs, rel=0.01, abs=1e-9), (z, q, steps, delta)


def test_rdp_per_order_matches_oracle_integer_and_fractional() -> None:
    orders = (1.5, 2.0, 3.25, 8.0, 32.0, 100.5, 256.0)
    for z, q in [(0.7, 0.02), (1.3, 0.2), (4.0, 0.5)]:
        ours = rdp_sampled_gaussian(sampling_rate=q, noise_multiplier=z, orders=orders)
        theirs = oracle._compute_rdp_poisson_subsampled_gaussian(q, z, orders)
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_delta_matches_oracle() -> None:
    rdp = 500 * rdp_sampled_gaussian(sampling_rate=0.01, noise_multiplier=1.0)
    acc = oracle.RdpAccountant()
    acc.compose(dp_event.PoissonSampledDpEvent(0.01, dp_event.GaussianDpEvent(1.0)), 500)
    for eps in (0.5, 1.0, 3.0):
        ours, _ = delta_from_rdp(orders=DEFAULT_ORDERS, rdp=rdp, epsilon=eps)
        assert ours == pytest.approx(acc.get_delta(eps), rel=0.01)


def test_full_batch_is_the_plain_gaussian_mechanism() -> None:
    orders = (2.0, 5.0, 10.0)
    np.testing.assert_allclose(
        rdp_gaussian(noise_multiplier=2.0, orders=orders), [a / 8 for a in orders]
    )


def test_edge_cases() -> None:
    assert np.all(rdp_sampled_gaussian(sampling_rate=0.0, noise_multiplier=1.0) == 0)
    assert np.all(np.isinf(rdp_sampled_gaussian(sampling_rate=0.1, noise_multiplier=0.0)))
    assert epsilon_for_plan(noise_multiplier=1.0, sampling_rate=0.1, steps=0, delta=1e-5) == 0
    with pytest.raises(ValueError, match="sampling rate"):
        rdp_sampled_gaussian(sampling_rate=1.5, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="delta"):
        epsilon_from_rdp(orders=(2.0,), rdp=(1.0,), delta=0.0)
    with pytest.raises(ValueError, match="orders"):
        rdp_sampled_gaussian(sampling_rate=0.1, noise_multiplier=1.0, orders=(0.5,))


def test_epsilon_grows_with_steps_and_shrinks_with_noise() -> None:
    base: dict[str, Any] = dict(sampling_rate=0.01, delta=1e-5)
    assert epsilon_for_plan(noise_multiplier=1.0, steps=100, **base) < epsilon_for_plan(
        noise_multiplier=1.0, steps=1000, **base
    )
    assert epsilon_for_plan(noise_multiplier=2.0, steps=1000, **base) < epsilon_for_plan(
        noise_multiplier=1.0, steps=1000, **base
    )


@pytest.mark.parametrize("target", [0.5, 1.0, 3.0, 8.0])
def test_noise_for_epsilon_inverts_the_plan(target: float) -> None:
    plan: dict[str, Any] = dict(sampling_rate=0.01, steps=2000, delta=1e-5)
    z = noise_for_epsilon(epsilon=target, **plan)
    assert epsilon_for_plan(noise_multiplier=z, **plan) <= target
    assert epsilon_for_plan(noise_multiplier=z * 0.995, **plan) > target
    assert _oracle_epsilon(z, 0.01, 2000, 1e-5) == pytest.approx(target, rel=0.01)


def test_noise_for_epsilon_rejects_unreachable_targets() -> None:
    with pytest.raises(ValueError, match="positive"):
        noise_for_epsilon(epsilon=0.0, sampling_rate=0.1, steps=10, delta=1e-5)
    with pytest.raises(ValueError, match="no noise multiplier"):
        noise_for_epsilon(epsilon=1e-9, sampling_rate=1.0, steps=10**6, delta=1e-5, max_noise=10)


@pytest.mark.parametrize("module", [_rdp, _accountant, _mechanisms])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_log_space_handles_tiny_rates_and_large_orders() -> None:
    rdp = rdp_sampled_gaussian(sampling_rate=1e-6, noise_multiplier=0.3, orders=(1024.0,))
    assert math.isfinite(rdp[0]) and rdp[0] > 0
