"""The pieces of secure aggregation: Shamir sharing, double masking with dropout recovery, and
the sealed shares (tampering, wrong round, wrong pair all refused)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.random import SeededRandom
from vfl.errors import VflError
from vfl.horizontal._secagg import (
    RoundSecrets,
    SecAggError,
    decode_fixed,
    decode_ring8,
    encode_fixed,
    encode_ring8,
    int_to_seed,
    key_from_seed,
    mask_input,
    open_share,
    round_context,
    seal_share,
    seed_to_int,
    unmask_total,
    verify_rebuilt,
)
from vfl.horizontal._secagg_round import threshold_for
from vfl.horizontal._shamir import PRIME, ShamirError, reconstruct, split


@settings(max_examples=30, deadline=None)
@given(st.integers(0, PRIME - 1), st.integers(1, 7), st.integers(0, 6), st.integers(0, 2**32))
def test_any_t_shares_rebuild_the_secret(secret: int, t: int, extra: int, seed: int) -> None:
    n = t + extra
    shares = split(secret, threshold=t, xs=range(1, n + 1), rng=SeededRandom(seed))
    for subset in itertools.islice(itertools.combinations(sorted(shares), t), 5):
        assert reconstruct({x: shares[x] for x in subset}, threshold=t) == secret
    assert reconstruct(shares, threshold=t) == secret


def test_too_few_or_corrupt_shares_are_refused() -> None:
    shares = split(1234, threshold=3, xs=[1, 2, 3, 4], rng=SeededRandom(1))
    with pytest.raises(ShamirError, match="need 3 shares to reconstruct, got 2"):
        reconstruct({1: shares[1], 2: shares[2]}, threshold=3)
    bad = dict(shares)
    bad[4] = (bad[4] + 1) % PRIME
    with pytest.raises(ShamirError, match="inconsistent"):
        reconstruct(bad, threshold=3)
    with pytest.raises(ShamirError, match="distinct"):
        split(1, threshold=2, xs=[1, 1, 2])
    with pytest.raises(ShamirError, match="threshold"):
        split(1, threshold=4, xs=[1, 2, 3])


def test_t_minus_one_shares_are_consistent_with_any_secret() -> None:
    # With t - 1 = 1 share, for every candidate secret there is a line through it: no leakage.
    shares = split(7, threshold=2, xs=[1, 2], rng=SeededRandom(3))
    for candidate in (0, 7, 99):
        slope = (shares[1] - candidate) % PRIME
        assert (candidate + slope * 1) % PRIME == shares[1]


def test_threshold_is_a_strict_majority_of_at_least_two() -> None:
    assert [threshold_for(n) for n in (1, 2, 3, 4, 5, 10)] == [2, 2, 2, 3, 3, 6]


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 6), st.integers(1, 16), st.data())
def test_double_masks_cancel_for_the_survivors(n: int, d: int, data: st.DataObject) -> None:
    names = [f"p{i}" for i in range(n)]
    seed = data.draw(st.integers(0, 2**32))
    dropped = set(data.draw(st.lists(st.sampled_from(names), max_size=n - 1, unique=True)))
    rng = np.random.default_rng(seed)
    secrets = {p: RoundSecrets.generate(SeededRandom(seed + i)) for i, p in enumerate(names)}
    publics = {p: s.mask_key.public_bytes() for p, s in secrets.items()}
    values = {p: rng.normal(scale=100.0, size=d) for p in names}
    ctx = round_context(job="j", round=3, nonce=b"n" * 16)
    masked = {
        p: mask_input(values[p], me=p, secrets=secrets[p], peers=publics, context=ctx)
        for p in names
        if p not in dropped
    }
    survivors = sorted(masked)
    total = unmask_total(
        masked,
        self_seeds={p: secrets[p].self_seed for p in survivors},
        dropped_keys={p: secrets[p].mask_key for p in dropped},
        mask_publics={p: publics[p] for p in survivors},
        context=ctx,
    )
    expected = np.sum([values[p] for p in survivors], axis=0)
    np.testing.assert_allclose(total, expected, atol=n * 2.0**-23)
    # Each masked vector on its own says nothing about its value.
    for p in survivors:
        assert np.max(np.abs(decode_fixed(masked[p]) - values[p])) > 1e3


def test_fixed_point_round_trip_and_limits() -> None:
    v = np.array([-3.25, 0.0, 1e-7, 12345.678])
    np.testing.assert_allclose(decode_fixed(encode_fixed(v)), v, atol=2.0**-24)
    with pytest.raises(VflError):
        encode_fixed(np.array([np.nan]))
    with pytest.raises(VflError):
        encode_fixed(np.array([1e13]))


def test_sealed_shares_open_only_for_their_round_pair_and_bytes() -> None:
    a, b = RoundSecrets.generate(SeededRandom(1)), RoundSecrets.generate(SeededRandom(2))
    ctx = round_context(job="agg", round=5, nonce=b"\x01" * 16)
    pub_a, pub_b = a.share_key.public_bytes(), b.share_key.public_bytes()
    sealed = seal_share(a.share_key, pub_b, context=ctx, sender="a", recipient="b",
                        mask_share=11, self_share=PRIME - 1, rng=SeededRandom(9))  # fmt: skip
    assert open_share(b.share_key, pub_a, context=ctx, sender="a", recipient="b",
                      sealed=sealed) == (11, PRIME - 1)  # fmt: skip
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 0x80])
    other_round = round_context(job="agg", round=6, nonce=b"\x01" * 16)
    attempts = [
        {"context": ctx, "sender": "a", "recipient": "b", "sealed": tampered},
        {"context": other_round, "sender": "a", "recipient": "b", "sealed": sealed},
        {"context": ctx, "sender": "b", "recipient": "a", "sealed": sealed},
        {"context": ctx, "sender": "a", "recipient": "b", "sealed": sealed[:5]},
    ]
    for kw in attempts:
        with pytest.raises(SecAggError, match="refused"):
            open_share(b.share_key, pub_a, **kw)  # type: ignore[arg-type]


def test_rebuilt_secrets_are_checked_against_what_was_advertised() -> None:
    s = RoundSecrets.generate(SeededRandom(4))
    seed = int_to_seed(seed_to_int(s.mask_seed))
    verify_rebuilt(mask_seed=seed, mask_public=key_from_seed(seed).public_bytes())
    other = RoundSecrets.generate(SeededRandom(5))
    with pytest.raises(SecAggError, match="mask key"):
        verify_rebuilt(mask_seed=other.mask_seed, mask_public=s.mask_key.public_bytes())
    with pytest.raises(SecAggError, match="commitment"):
        verify_rebuilt(self_seed=other.self_seed, commitment=b"\x00" * 32)
    with pytest.raises(SecAggError, match="32-byte"):
        int_to_seed(1 << 256)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 5), st.integers(1, 40), st.integers(0, 2**32))
def test_the_8_bit_ring_sums_unbiased_quantised_inputs(n: int, d: int, seed: int) -> None:
    names = [f"p{i}" for i in range(n)]
    rng = np.random.default_rng(seed)
    secrets = {p: RoundSecrets.generate(SeededRandom(seed + i)) for i, p in enumerate(names)}
    publics = {p: s.mask_key.public_bytes() for p, s in secrets.items()}
    step = 0.01
    # Each input alone may exceed the ring (it wraps); their sum stays within 127 steps.
    values = {p: rng.uniform(-100, 100, size=d) * step for p in names[:-1]}
    values[names[-1]] = -np.sum(list(values.values()), axis=0) + rng.uniform(-50, 50, d) * step
    ctx = round_context(job="j", round=1, nonce=b"r" * 16)
    masked = {
        p: mask_input(
            values[p], me=p, secrets=secrets[p], peers=publics, context=ctx, step=step, rng=rng
        )  # fmt: skip
        for p in names
    }
    assert all(m.dtype == np.uint8 and m.shape == (d,) for m in masked.values())
    total = unmask_total(masked, self_seeds={p: secrets[p].self_seed for p in names},
                         dropped_keys={}, mask_publics=publics, context=ctx, step=step)  # fmt: skip
    expected = np.sum(list(values.values()), axis=0)
    assert np.max(np.abs(total - expected)) <= n * step + 1e-12


def test_ring8_rounding_is_unbiased() -> None:
    rng = np.random.default_rng(0)
    v = np.full(200_000, 0.3)
    mean = decode_ring8(encode_ring8(v, step=1.0, rng=rng), step=1.0).mean()
    assert abs(mean - 0.3) < 0.01
