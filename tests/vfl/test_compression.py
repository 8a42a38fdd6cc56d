"""Compression: unbiased quantisation, exact sizes, error feedback, count sketch, and payloads
that travel through the in-memory channel (the sparse wire format: test_compression_wire.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codecs import CodecContext
from protocols.errors import CodecError
from protocols.memory import InMemoryNetwork
from protocols.messages import StructCodec
from tests._data import write_default_credit_homo
from vfl.compression import (
    COMPRESSORS,
    REFERENCE_DTYPE,
    AdaptiveSparsity,
    CompressionError,
    ConstantSparsity,
    QuantizedArray,
    SparseArray,
    TopK,
    WarmupSparsity,
    decompress,
    make_compressor,
    quantize,
    sketch,
    unsketch,
)

N = 200_000


def _update(seed: int = 0, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, n).astype(np.float32)


@pytest.mark.parametrize("bits", [8, 4])
def test_stochastic_rounding_is_unbiased(bits: int) -> None:
    x = np.random.default_rng(1).uniform(-1, 1, 512).astype(np.float32)
    rng = np.random.default_rng(2)
    trials = 2000
    mean = np.zeros(512)
    for _ in range(trials):
        mean += decompress(quantize(x, bits=bits, rng=rng)).astype(np.float64)
    mean /= trials
    step = 2.0 / ((1 << bits) - 1)
    # the rounding error of one draw is at most one step with variance <= step^2 / 4
    tolerance = 5 * (step / 2) / np.sqrt(trials)
    assert np.max(np.abs(mean - x)) < tolerance
    assert abs(np.mean(mean - x)) < tolerance / 10


@pytest.mark.parametrize(("name", "minimum"), [("q8", 3.9), ("q4", 7.8)])
def test_quantisation_bytes_against_float32(name: str, minimum: float) -> None:
    comp = make_compressor(name, seed=0)
    x = _update()
    payload = comp.compress(x)
    stats = comp.stats[-1]
    assert REFERENCE_DTYPE == np.dtype("<f4")
    assert stats.raw_bytes == 4 * N
    assert stats.ratio >= minimum
    y = decompress(payload)
    assert y.dtype == x.dtype and y.shape == x.shape
    step = (x.max() - x.min()) / (255 if name == "q8" else 15)
    assert np.max(np.abs(y - x)) <= step * 1.001


def test_quantisation_of_float64_and_constant_buckets() -> None:
    x = np.concatenate([np.full(3000, 0.25), np.linspace(-3, 7, 3001)])
    y = decompress(quantize(x, bits=8, rng=np.random.default_rng(0)))
    assert y.dtype == np.float64
    assert np.all(y[:2048] == 0.25)  # constant bucket is exact
    assert np.max(np.abs(y - x)) <= 10 / 255 * 1.001
    odd = decompress(quantize(np.arange(7, dtype=np.float32), bits=4, rng=np.random.default_rng(0)))
    assert np.allclose(odd, np.arange(7), atol=0.5)


def test_topk_bytes_and_combined_ratios() -> None:
    x = _update()
    ratios = {}
    for value_bits in (None, 8, 4):
        comp = TopK(keep=0.1, value_bits=value_bits, seed=0)
        comp.compress(x)
        ratios[value_bits] = comp.stats[-1].ratio
    assert ratios[None] >= 8.5  # float32 values + range-coded positions (~4.8 bits)
    # N(0, 1) entries: the kept values are the two tails, their 8-bit codes carry ~6.4 bits
    # (4-bit: ~2.7) once range-coded, so ~11.2 (7.5) bits per kept entry with the positions
    assert ratios[8] >= 28.0
    assert ratios[4] >= 42.0


def test_topk_keeps_the_largest_entries() -> None:
    x = np.array([0.1, -5.0, 0.2, 3.0, -0.3, 0.0], dtype=np.float32)
    comp = TopK(keep=1 / 3, error_feedback=False)
    y = comp.decompress(comp.compress(x))
    assert np.array_equal(y, [0, -5.0, 0, 3.0, 0, 0])


@pytest.mark.parametrize("value_bits", [None, 8])
def test_error_feedback_conserves_the_sum(value_bits: int | None) -> None:
    comp = TopK(keep=0.05, value_bits=value_bits, seed=3)
    total_in = np.zeros(10_000)
    total_sent = np.zeros(10_000)
    for r in range(20):
        x = _update(seed=r, n=10_000)
        total_in += x
        total_sent += comp.decompress(comp.compress(x)).astype(np.float64)
    assert comp.residual is not None
    np.testing.assert_allclose(total_sent + comp.residual, total_in, atol=1e-9)
    # without error feedback the skipped mass is lost
    lossy = TopK(keep=0.05, error_feedback=False)
    sent = sum(lossy.decompress(lossy.compress(_update(seed=r, n=10_000))) for r in range(20))
    assert np.abs(sent - total_in).max() > 1.0


def test_error_feedback_rejects_a_shape_change() -> None:
    comp = TopK(keep=0.1)
    comp.compress(np.ones(10, dtype=np.float32))
    with pytest.raises(CompressionError, match="shape"):
        comp.compress(np.ones(11, dtype=np.float32))


def test_sparsity_schedules() -> None:
    warm = WarmupSparsity(start=0.5, final=0.01, warmup_rounds=4)
    fractions = [warm.fraction(round=r, residual_ratio=0.0) for r in range(6)]
    assert fractions[0] == 0.5 and fractions[4] == pytest.approx(0.01)
    assert fractions[5] == fractions[4] and fractions == sorted(fractions, reverse=True)
    adaptive = AdaptiveSparsity(keep=0.1, low=0.05, high=0.2)
    assert adaptive.fraction(round=0, residual_ratio=0.99) == 0.1
    assert adaptive.fraction(round=1, residual_ratio=0.99) == pytest.approx(0.125)
    assert adaptive.fraction(round=2, residual_ratio=0.1) == pytest.approx(0.1)
    for _ in range(10):
        adaptive.fraction(round=3, residual_ratio=0.99)
    assert adaptive.keep == 0.2
    with pytest.raises(CompressionError):
        ConstantSparsity(0.0)
    comp = TopK(schedule=AdaptiveSparsity(keep=0.01, low=0.01, high=0.5))
    counts = [comp.compress(_update(seed=r, n=5000)).count for r in range(6)]
    assert counts[-1] > counts[0]  # the residual is large, so the schedule keeps more


def test_count_sketch_recovers_heavy_hitters_and_is_linear() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 0.01, 20_000)
    heavy = [7, 1234, 19_999]
    x[heavy] = [50.0, -40.0, 30.0]
    comp = make_compressor("countsketch", rows=5, cols=400, seed=11, top_k=3)
    y = comp.decompress(comp.compress(x))
    assert sorted(np.flatnonzero(y).tolist()) == heavy
    np.testing.assert_allclose(y[heavy], x[heavy], atol=0.5)
    assert comp.stats[-1].ratio > 9
    a, b = rng.normal(size=1000), rng.normal(size=1000)
    sa, sb, sab = (sketch(v, rows=3, cols=100, seed=5) for v in (a, b, a + b))
    np.testing.assert_allclose(sa.table + sb.table, sab.table, atol=1e-4)
    # each row's estimate is unbiased: averaged over seeds it approaches x
    est = np.mean(
        [unsketch(sketch(a, rows=1, cols=200, seed=s)).astype(np.float64) for s in range(300)],
        axis=0,
    )
    assert np.max(np.abs(est - a)) < 0.5


def _codec_round_trip(payload: object) -> object:
    codec, ctx = StructCodec(), CodecContext()
    data = b"".join(bytes(p) for p in codec.encode(payload, ctx))
    return codec.decode(memoryview(data), ctx)


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_payloads_travel_through_the_in_memory_channel(name: str) -> None:
    net = InMemoryNetwork(["client", "aggregator"], job_id="job-c", seed=0, default_timeout=5.0)
    client, aggregator = net.channel("client"), net.channel("aggregator")
    comp = make_compressor(name, seed=1)
    x = _update(seed=5, n=50_000).reshape(500, 100)
    payload = comp.compress(x)
    client.send("aggregator", "fl/update", payload, round=1)
    received = aggregator.recv("client", "fl/update")
    assert type(received) is type(payload)
    np.testing.assert_array_equal(decompress(received), decompress(payload))
    assert decompress(received).shape == (500, 100)
    (message,) = net.transcript.received_by("aggregator")
    assert message.nbytes < x.nbytes  # the wire carried the compressed form
    assert comp.stats[-1].payload_bytes <= message.nbytes


def test_malformed_payloads_are_rejected() -> None:
    good = quantize(np.ones(10, dtype=np.float32), bits=8, rng=np.random.default_rng(0))
    with pytest.raises(CompressionError, match="codes"):
        dataclasses.replace(good, codes=np.zeros(3, dtype=np.uint8))
    with pytest.raises(CompressionError, match="bits"):
        dataclasses.replace(good, bits=3)
    with pytest.raises(CompressionError, match="version"):
        dataclasses.replace(good, version=2)
    sparse = TopK(keep=0.5).compress(np.arange(1, 11, dtype=np.float32))
    assert isinstance(sparse, SparseArray)
    assert decompress(sparse).dtype == np.float32
    with pytest.raises(CompressionError, match="checksum"):
        SparseArray(sparse.data[:-5] + bytes([sparse.data[-5] ^ 1]) + sparse.data[-4:])
    # through the codec a malformed payload is a CodecError
    fields = {f.name: getattr(good, f.name) for f in dataclasses.fields(good)}
    object.__setattr__(good, "bits", 5)
    with pytest.raises(CodecError, match="invalid message"):
        _codec_round_trip(good)
    assert isinstance(_codec_round_trip(QuantizedArray(**fields)), QuantizedArray)


def test_registry_and_input_checks() -> None:
    with pytest.raises(CompressionError, match="unknown compressor"):
        make_compressor("zip")
    comp = make_compressor("q8")
    with pytest.raises(CompressionError, match="float"):
        comp.compress(np.arange(4))
    with pytest.raises(CompressionError, match="non-finite"):
        comp.compress(np.array([np.inf], dtype=np.float32))
    with pytest.raises(CompressionError, match="not a compressed payload"):
        decompress(np.ones(3))  # type: ignore[arg-type]
    comp.compress(np.ones(100, dtype=np.float32))
    comp.compress(np.ones(100, dtype=np.float32))
    assert comp.total_raw_bytes == 800 and comp.total_payload_bytes > 200


@pytest.mark.slow
def test_compression_benchmark_runs_on_a_small_update(tmp_path: Path) -> None:
    import argparse

    from vfl.bench import BENCHMARKS
    from vfl.bench import compression as bench

    assert BENCHMARKS["compression"][0] == "vfl.bench.compression"
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = bench.run(
        parser.parse_args(
            ["--size", "20000", "--dp-samples", "200", "--rounds", "2", "--hidden", "64"]
            + ["--data-dir", str(write_default_credit_homo(tmp_path))]
        )
    )
    fed = out["fedavg"]
    assert set(fed) >= {"uncompressed", "q8", "top10_ef", "top10_ef_q8", "checks", "setup"}
    assert fed["uncompressed"]["rounds_run"] == 2 and fed["q8"]["rounds_run"] == 3
    for run in ("q8", "top10_ef", "top10_ef_q8"):
        assert fed[run]["ratio_bytes_up_vs_uncompressed"] > 2.5
        assert len(fed[run]["auc_curve"]) == 3
    assert set(out["compressors"]) == set(COMPRESSORS)
    assert out["compressors"]["q8"]["ratio_vs_float32"] > 3.9
    assert out["compressors"]["topk"]["ratio_vs_float32"] > 8.0
    assert out["dp_sampler"]["slowdown_vs_float"] > 1
    assert "machine" in out and out["baseline"]


def test_hostile_sketch_payloads_are_rejected() -> None:
    with pytest.raises(CompressionError, match="too many elements"):
        sketch_payload = sketch(np.ones(4), rows=1, cols=4, seed=0)
        dataclasses.replace(sketch_payload, shape=(1 << 20, 1 << 10))
    with pytest.raises(CompressionError, match="rows"):
        sketch(np.ones(4), rows=17, cols=4, seed=0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=300),
    st.sampled_from([4, 8]),
    st.integers(1, 64),
)
def test_quantised_values_stay_within_one_step(values: list[float], bits: int, bucket: int) -> None:
    x = np.array(values, dtype=np.float32)
    payload = quantize(x, bits=bits, bucket_size=bucket, rng=np.random.default_rng(0))
    y = decompress(_codec_round_trip(payload))  # type: ignore[arg-type]
    for b in range(0, x.size, bucket):
        chunk, out = x[b : b + bucket].astype(np.float64), y[b : b + bucket].astype(np.float64)
        step = (chunk.max() - chunk.min()) / ((1 << bits) - 1)
        assert np.all(np.abs(out - chunk) <= step * (1 + 1e-5) + 1e-6 * np.abs(chunk).max())


def test_module_doctest() -> None:
    import doctest

    import vfl.compression

    result = doctest.testmod(vfl.compression)
    assert result.attempted > 0 and result.failed == 0
