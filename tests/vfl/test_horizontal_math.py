"""Pure parts of horizontal FL: validation, reputation, aggregation math, heterogeneity, splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vfl.errors import ConfigError, VflError
from vfl.horizontal import (
    AGGREGATORS,
    Reputation,
    ValidationPolicy,
    alie_z,
    chi2_sf,
    chi_square_homogeneity,
    dirichlet_split,
    ks_statistic,
    make_aggregator,
    profile,
    staleness_weight,
    validate_round,
    validate_update,
    wasserstein1,
)
from vfl.horizontal._robust import (
    centered_clip,
    coordinate_median,
    krum_scores,
    multi_krum,
    trimmed_mean,
    weighted_mean,
)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


# -- validation --------------------------------------------------------------------------------
def test_validate_update_reasons() -> None:
    ref = np.zeros(3)
    assert validate_update(np.ones(3), ref).accepted
    assert "shape" in validate_update(np.ones(4), ref).reason
    assert "dtype" in validate_update(np.ones(3, dtype=np.float32), ref).reason
    assert "non-finite" in validate_update(np.array([0.0, np.nan, 0.0]), ref).reason
    assert "non-finite" in validate_update(np.array([0.0, np.inf, 0.0]), ref).reason
    v = validate_update(np.array([3.0, 4.0, 0.0]), ref, max_norm=4.0)
    assert not v.accepted and v.norm == pytest.approx(5.0) and "norm" in v.reason
    assert "not an array" in validate_update([1.0, 2.0, 3.0], ref).reason  # type: ignore[arg-type]


def test_validate_round_relative_norm_bound() -> None:
    ups = {f"c{i}": np.full(2, 1.0 + 0.1 * i) for i in range(5)}
    ups["bad"] = np.full(2, 50.0)
    verdicts = validate_round(ups, np.zeros(2), ValidationPolicy(norm_ratio=5.0))
    assert not verdicts["bad"].accepted and "median" in verdicts["bad"].reason
    assert all(verdicts[f"c{i}"].accepted for i in range(5))
    off = validate_round(ups, np.zeros(2), ValidationPolicy())
    assert all(v.accepted for v in off.values())


def test_validation_policy_rejects_bad_bounds() -> None:
    with pytest.raises(ConfigError):
        ValidationPolicy(max_norm=0.0)
    with pytest.raises(ConfigError):
        ValidationPolicy(norm_ratio=0.5)


def test_reputation_penalty_recovery_exclusion() -> None:
    rep = Reputation(penalty=0.5, recovery=0.1, exclude_below=0.2)
    assert rep.score("a") == 1.0
    rep.reject("a")
    rep.reject("a")
    assert rep.score("a") == pytest.approx(0.25) and not rep.excluded("a")
    rep.reject("a")
    assert rep.excluded("a")
    rep.accept("a")
    assert rep.score("a") == pytest.approx(0.225) and not rep.excluded("a")
    for _ in range(20):
        rep.accept("a")
    assert rep.score("a") == 1.0
    clone = Reputation()
    clone.load(rep.as_dict())
    assert clone.as_dict() == rep.as_dict()


# -- aggregation math ----------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 4)), elements=finite))
def test_aggregates_of_identical_updates_are_that_update(u: np.ndarray) -> None:
    same = np.repeat(u[:1], 7, axis=0)
    for out in (
        weighted_mean(same, np.arange(1.0, 8.0)),
        coordinate_median(same),
        trimmed_mean(same, beta=0.2),
        multi_krum(same, f=2, m=3)[0],
        centered_clip(same, np.zeros(u.shape[1]), tau=None, iterations=50),
    ):
        np.testing.assert_allclose(out, u[0], rtol=1e-6, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(5, 9), st.integers(1, 4)), elements=finite))
def test_median_and_trimmed_mean_stay_in_coordinate_range(u: np.ndarray) -> None:
    for out in (coordinate_median(u), trimmed_mean(u, beta=0.2)):
        assert np.all(out >= u.min(axis=0) - 1e-9) and np.all(out <= u.max(axis=0) + 1e-9)


def test_weighted_mean_known_answer_and_errors() -> None:
    u = np.array([[1.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(weighted_mean(u, np.array([3.0, 1.0])), [1.5, 1.0])
    with pytest.raises(VflError):
        weighted_mean(u, np.array([0.0, 0.0]))
    with pytest.raises(VflError):
        weighted_mean(u, np.array([1.0]))


def test_trimmed_mean_drops_tails() -> None:
    u = np.array([[-1000.0], [1.0], [2.0], [3.0], [1000.0]])
    np.testing.assert_allclose(trimmed_mean(u, beta=0.2), [2.0])
    with pytest.raises(VflError):
        trimmed_mean(u, beta=0.5)


def test_krum_picks_the_honest_cluster() -> None:
    rng = np.random.default_rng(0)
    honest = rng.normal(0.0, 0.1, size=(8, 5)) + 1.0
    byz = np.full((2, 5), -30.0)
    u = np.vstack([byz, honest])
    scores = krum_scores(u, f=2)
    assert int(np.argmin(scores)) >= 2
    agg, chosen = multi_krum(u, f=2, m=5)
    assert set(chosen.tolist()) <= set(range(2, 10))
    assert np.allclose(agg, 1.0, atol=0.2)
    with pytest.raises(VflError):
        krum_scores(u[:4], f=2)


def test_centered_clip_bounds_outlier_influence() -> None:
    honest = np.ones((8, 3))
    u = np.vstack([honest, np.full((2, 3), 1e6)])
    out = centered_clip(u, np.zeros(3), tau=None, iterations=5)
    assert np.all(np.abs(out - 1.0) < 1.0)
    one = centered_clip(np.array([[1.0], [1.0], [101.0]]), np.zeros(1), tau=1.0, iterations=1)
    np.testing.assert_allclose(one, [1.0])


def test_registry_builds_every_aggregator_and_names_errors() -> None:
    rng = np.random.default_rng(1)
    ups = {f"c{i}": rng.normal(size=4) for i in range(6)}
    weights = dict.fromkeys(ups, 1.0)
    for name in AGGREGATORS:
        agg = make_aggregator(name)
        out = agg.aggregate(ups, weights)
        assert out.update.shape == (4,) and np.all(np.isfinite(out.update))
    with pytest.raises(ConfigError, match="unknown aggregator"):
        make_aggregator("mean-ish")
    with pytest.raises(ConfigError, match="bad options"):
        make_aggregator("median", {"beta": 0.1})


def test_krum_flags_unselected_and_centered_clip_state_round_trips() -> None:
    ups = {f"c{i}": np.full(2, 1.0 + 0.01 * i) for i in range(6)}
    ups["c9"] = np.full(2, -100.0)
    krum = make_aggregator("krum", {"f": 1})
    assert "c9" in krum.aggregate(ups, dict.fromkeys(ups, 1.0)).flagged
    cc = make_aggregator("centered_clip", {"beta": 0.5})
    first = cc.aggregate(ups, dict.fromkeys(ups, 1.0))
    assert "c9" in first.flagged
    state = cc.state()
    assert set(state) == {"center"} | {f"momentum/{n}" for n in ups}
    twin = make_aggregator("centered_clip", {"beta": 0.5})
    twin.load_state(state)
    a = cc.aggregate(ups, dict.fromkeys(ups, 1.0)).update
    b = twin.aggregate(ups, dict.fromkeys(ups, 1.0)).update
    np.testing.assert_array_equal(a, b)


def test_staleness_weight() -> None:
    assert staleness_weight(0, exponent=0.5) == 1.0
    assert staleness_weight(3, exponent=0.5) == 0.5
    assert staleness_weight(8, exponent=0.0) == 1.0


def test_alie_z_matches_the_paper_formula() -> None:
    # n = 50, f = 12 in Baruch et al. (2019): s = 14, z = Phi^-1(36/50) ~ 0.58
    assert alie_z(n=50, f=12) == pytest.approx(0.5828, abs=1e-3)
    assert alie_z(n=10, f=2) == pytest.approx(0.2533, abs=1e-3)


# -- heterogeneity ------------------------------------------------------------------------------
def test_chi2_sf_matches_known_quantiles() -> None:
    assert chi2_sf(3.841458820694124, 1) == pytest.approx(0.05, abs=1e-9)
    assert chi2_sf(18.307038053275146, 10) == pytest.approx(0.05, abs=1e-9)
    assert chi2_sf(0.0, 3) == 1.0
    assert chi2_sf(2.0, 2) == pytest.approx(math.exp(-1.0), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 200.0), st.integers(1, 60))
def test_chi2_sf_matches_scipy(x: float, dof: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    assert chi2_sf(x, dof) == pytest.approx(float(stats.chi2.sf(x, dof)), rel=1e-8, abs=1e-14)


def test_chi_square_and_distances_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    counts = np.array([[30, 10, 5], [20, 20, 8], [5, 30, 12]])
    mine = chi_square_homogeneity(counts)
    ref = stats.chi2_contingency(counts, correction=False)
    assert mine["statistic"] == pytest.approx(ref.statistic)
    assert mine["p_value"] == pytest.approx(ref.pvalue)
    assert mine["dof"] == ref.dof
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(0.5, 2.0, size=200)
    assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    assert wasserstein1(a, b) == pytest.approx(stats.wasserstein_distance(a, b))


def test_profile_detects_label_and_feature_skew() -> None:
    rng = np.random.default_rng(0)
    iid_counts = {"a": {"0": 500, "1": 500}, "b": {"0": 490, "1": 510}}
    skew_counts = {"a": {"0": 900, "1": 100}, "b": {"0": 100, "1": 900}}
    assert profile(iid_counts)["label_chi_square"]["p_value"] > 0.05
    assert profile(skew_counts)["label_chi_square"]["p_value"] < 1e-6
    feats = {"a": rng.normal(size=(400, 2)), "b": rng.normal(size=(400, 2))}
    feats["b"][:, 1] += 3.0
    rep = profile(iid_counts, feats, feature_names=["f0", "f1"])
    assert rep["features"]["f1"]["ks_max"] > 0.8 > 0.2 > rep["features"]["f0"]["ks_max"]
    with pytest.raises(VflError):
        profile({"only": {"0": 1}})


def test_dirichlet_split_partitions_and_skews() -> None:
    y = np.repeat([0, 1], [3000, 1000])
    parts = dirichlet_split(y, n_clients=10, alpha=0.3, seed=1)
    joined = np.sort(np.concatenate(parts))
    np.testing.assert_array_equal(joined, np.arange(y.size))
    assert min(p.size for p in parts) >= 10
    rates = [y[p].mean() for p in parts]
    assert max(rates) - min(rates) > 0.3
    again = dirichlet_split(y, n_clients=10, alpha=0.3, seed=1)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again, strict=True))
    with pytest.raises(ConfigError):
        dirichlet_split(y, n_clients=1, alpha=0.3)
