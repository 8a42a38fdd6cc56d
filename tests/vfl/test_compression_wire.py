"""The sparse payload's wire format (version 2): range-coder round trips, lossless coding of the
quantised values, compact headers, and truncated / tampered / hostile payloads refused."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codecs import CodecContext
from protocols.errors import CodecError
from protocols.messages import StructCodec
from vfl.compression import (
    SPARSE_FORMAT_VERSION,
    CompressionError,
    SparseArray,
    TopK,
    decompress,
    dequantize,
    payload_nbytes,
    quantize,
    sparse_breakdown,
    sparsify,
)
from vfl.compression._rangecoder import (
    RangeDecoder,
    RangeEncoder,
    decode_gaps,
    decode_symbols,
    encode_gaps,
    encode_symbols,
)
from vfl.compression._sparse_wire import pack_sparse


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    return bytes(out + bytes([v]))


def _seal(body: bytes) -> bytes:
    return body + zlib.crc32(body).to_bytes(4, "little")


def _stream(gaps: list[int], codes: list[int] | None = None, bits: int = 8) -> bytes:
    enc = RangeEncoder()
    encode_gaps(enc, np.array(gaps, dtype=np.int64))
    if codes is not None:
        encode_symbols(enc, np.array(codes, dtype=np.int64), bits=bits)
    return enc.finish()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, (1 << 27) - 1), max_size=300)
    | st.lists(st.integers(0, 3), max_size=300),
    st.lists(st.integers(0, 255), max_size=300),
    st.sampled_from([8, 4, 1]),
)
def test_range_coder_round_trips(gaps: list[int], symbols: list[int], bits: int) -> None:
    symbols = [s % (1 << bits) for s in symbols]
    data = _stream(gaps, symbols, bits)
    dec = RangeDecoder(data)
    assert decode_gaps(dec, len(gaps), limit=1 << 28) == gaps
    assert decode_symbols(dec, len(symbols), bits=bits) == symbols
    dec.check_end()  # the decoder reads exactly the bytes the encoder wrote


def test_range_coder_reaches_the_entropy_of_a_skewed_source() -> None:
    rng = np.random.default_rng(0)
    symbols = np.clip(np.rint(rng.normal(100, 4, 20_000)), 0, 255).astype(np.int64)
    _, freq = np.unique(symbols, return_counts=True)
    p = freq / freq.sum()
    entropy = float(-(p * np.log2(p)).sum())  # ~4.05 bits
    enc = RangeEncoder()
    encode_symbols(enc, symbols, bits=8)
    bits = 8 * len(enc.finish()) / symbols.size
    assert entropy <= bits <= entropy + 0.1
    gaps = rng.geometric(0.1, 20_000) - 1  # positions at 10 % density: H(0.1)/0.1 = 4.69
    enc = RangeEncoder()
    encode_gaps(enc, gaps)
    assert 8 * len(enc.finish()) / gaps.size <= 4.69 + 0.1


def _reference(x: np.ndarray, k: int, value_bits: int | None, seed: int) -> np.ndarray:
    """The dense array the fixed-width format carried: the same kept entries, the same codes."""
    flat = x.astype(np.float64).ravel()
    out = np.zeros(flat.size)
    if k == 0:
        return out.astype(x.dtype).reshape(x.shape)
    idx = np.sort(np.argpartition(-np.abs(flat), k - 1)[:k]) if k < flat.size else np.arange(k)
    kept = flat[idx].astype(np.float32)
    if value_bits is None:
        out[idx] = kept
    else:
        q = quantize(kept, bits=value_bits, rng=np.random.default_rng(seed))
        out[idx] = dequantize(q)
    return out.astype(x.dtype).reshape(x.shape)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-(2.0**100), 2.0**100, width=32), max_size=400),
    st.floats(0.0, 1.0),
    st.sampled_from([None, 8, 4]),
    st.sampled_from(["<f2", "<f4", "<f8"]),
    st.integers(0, 2**32 - 1),
)
def test_sparse_payloads_round_trip_losslessly(
    values: list[float], fraction: float, value_bits: int | None, dtype: str, seed: int
) -> None:
    x = np.array(values, dtype=np.float64)
    if dtype == "<f2":
        x = np.clip(x, -6e4, 6e4)
    x = x.astype(dtype)
    k = math.floor(fraction * x.size)
    payload = sparsify(x, k=k, value_bits=value_bits, rng=np.random.default_rng(seed))
    assert payload.count == k and payload.shape == x.shape and payload.dtype == dtype
    codec, ctx = StructCodec(), CodecContext()
    wire = b"".join(bytes(p) for p in codec.encode(payload, ctx))
    received = codec.decode(memoryview(wire), ctx)
    assert received == payload
    y = decompress(received)
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, _reference(x, k, value_bits, seed))


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (1,), (7, 1, 3), (2, 3, 4, 5)])
def test_edge_shapes(shape: tuple[int, ...]) -> None:
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape) - 5
    for k in {0, x.size // 2, x.size}:
        for bits in (None, 8):
            y = decompress(sparsify(x, k=k, value_bits=bits, rng=np.random.default_rng(0)))
            assert y.shape == shape
            np.testing.assert_array_equal(y, _reference(x, k, bits, 0))


def test_error_feedback_tracks_exactly_what_the_receiver_decodes() -> None:
    comp = TopK(keep=0.1, value_bits=8, seed=4)
    rng = np.random.default_rng(1)
    total_in = np.zeros(5000)
    total_sent = np.zeros(5000)
    for _ in range(5):
        x = rng.standard_t(3, 5000).astype(np.float32)
        total_in += x
        total_sent += decompress(comp.compress(x)).astype(np.float64)
    assert comp.residual is not None
    np.testing.assert_allclose(total_sent + comp.residual, total_in, atol=1e-9)


def test_headers_are_a_few_bytes() -> None:
    x = np.random.default_rng(2).standard_t(3, 12_801).astype(np.float32)
    payload = TopK(keep=0.1, value_bits=8, seed=0).compress(x)
    parts = sparse_breakdown(payload)
    assert parts["count"] == 1281 and parts["header_bytes"] <= 12
    assert parts["bucket_table_bytes"] == 8 and parts["crc_bytes"] == 4
    assert parts["code_bits_per_entry"] <= parts["code_entropy_bits"] + 0.5  # learning cost
    assert parts["position_bits_per_entry"] <= 4.69 + 0.2
    # the struct codec adds the message frame: type name, one field name, a length
    assert payload_nbytes(payload) - len(payload.data) <= 45


def test_known_answer_vector() -> None:
    data = pack_sparse(
        shape=(10,), dtype="<f4", indices=np.array([0, 5, 6]),
        values=np.array([1.0, -2.0, 0.5], dtype=np.float32),
    )  # fmt: skip
    body = bytes([2, 1, 1, 10, 3]) + np.array([1.0, -2.0, 0.5], "<f4").tobytes()
    assert data[: len(body)] == body and data == _seal(data[:-4])
    assert len(data) == len(body) + len(_stream([0, 4, 0])) + 4
    np.testing.assert_array_equal(decompress(SparseArray(data)), [1, 0, 0, 0, 0, -2, 0.5, 0, 0, 0])


def _q8_payload() -> SparseArray:
    x = np.random.default_rng(3).normal(size=2000).astype(np.float32)
    return sparsify(x, k=300, value_bits=8, rng=np.random.default_rng(0))


def test_every_truncation_and_every_bit_flip_is_refused() -> None:
    data = _q8_payload().data
    for n in range(len(data)):
        with pytest.raises(CompressionError):
            SparseArray(data[:n])
    rng = np.random.default_rng(0)
    for pos in rng.choice(len(data), 200, replace=False):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            with pytest.raises(CompressionError, match="checksum"):
                SparseArray(bytes(bad))
    with pytest.raises(CompressionError, match="bytes"):
        SparseArray(bytearray(data))  # type: ignore[arg-type]


def test_a_tampered_payload_is_a_codec_error_on_the_channel() -> None:
    codec, ctx = StructCodec(), CodecContext()
    wire = bytearray(b"".join(bytes(p) for p in codec.encode(_q8_payload(), ctx)))
    wire[-10] ^= 0x40
    with pytest.raises(CodecError, match="checksum"):
        codec.decode(memoryview(bytes(wire)), ctx)


def _q8_body(*, shape: tuple[int, ...], count: int, stream: bytes, flags: int = 1 | 1 << 2,
             version: int = SPARSE_FORMAT_VERSION, table: bytes | None = None,
             bucket: int = 2048) -> bytes:  # fmt: skip
    head = bytes([version, flags]) + _varint(len(shape)) + b"".join(_varint(s) for s in shape)
    buckets = -(-count // bucket) if bucket else 0
    tbl = table if table is not None else np.tile([0.0, 1.0], buckets).astype("<f4").tobytes()
    return _seal(head + _varint(count) + _varint(bucket) + tbl + stream)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"version": 1}, "version 1"),
        ({"flags": 3}, "flags"),
        ({"flags": 1 | 3 << 2}, "flags"),
        ({"shape": (2,) * 33}, "dimensions"),
        ({"shape": (1 << 20, 1 << 10)}, "too many elements"),
        ({"count": 11}, "outside"),
        ({"bucket": 0}, "bucket size"),
        ({"table": np.array([np.nan, 1.0], "<f4").tobytes()}, "non-finite"),
        ({"table": b"\x00" * 4, "stream": b""}, "truncated in its bucket table"),
    ],
)
def test_hostile_headers_are_refused(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"shape": (10,), "count": 2, "stream": _stream([1, 2], [3, 4])}
    args.update(kwargs)
    with pytest.raises(CompressionError, match=match):
        SparseArray(_q8_body(**args))  # type: ignore[arg-type]


def test_hostile_streams_are_refused() -> None:
    good = _stream([1, 2], [3, 4])
    assert decompress(SparseArray(_q8_body(shape=(10,), count=2, stream=good)))[4] == 4.0
    cases = [
        (_stream([1, 20], [3, 4]), "gap out of range"),  # runs past a size of 10
        (_stream([1, 8], [3, 4]), "out of range for size"),  # last index 10 of 10
        (good + b"\x00", "trailing bytes"),
        (good[:-2], "truncated"),
        (b"\x00", "truncated"),
    ]
    for stream, match in cases:
        payload = SparseArray(_q8_body(shape=(10,), count=2, stream=stream))
        with pytest.raises(CompressionError, match=match):
            decompress(payload)
    # a count the stream cannot possibly hold is refused before any decoding or allocation
    with pytest.raises(CompressionError, match="exceeds what the stream can hold"):
        SparseArray(_q8_body(shape=(1 << 27,), count=1 << 26, stream=good,
                             table=np.tile([0.0, 1.0], 1 << 15).astype("<f4").tobytes()))  # fmt: skip


def test_a_scalar_and_bad_encoder_inputs() -> None:
    x = np.array(-2.5, dtype=np.float32)
    for bits in (None, 8):
        y = decompress(sparsify(x, k=1, value_bits=bits, rng=np.random.default_rng(0)))
        assert y.shape == () and y == -2.5
    one = np.array([1.0], dtype=np.float32)
    cases = [
        ({"indices": np.array([3, 2]), "values": one}, "strictly increasing"),
        ({"indices": np.array([10]), "values": one}, "out of range"),
        ({"indices": np.array([1]), "values": None}, "one value per index"),
        (
            {
                "indices": np.array([1]),
                "values": None,
                "codes": np.array([256]),
                "value_bits": 8,
                "bucket_size": 2048,
                "lo": one,
                "step": one,
            },
            "fit in 8 bits",
        ),  # fmt: skip
        (
            {
                "indices": np.array([1]),
                "values": None,
                "codes": np.array([2]),
                "value_bits": 8,
                "bucket_size": 2048,
                "lo": np.ones(2),
                "step": np.ones(2),
            },
            "per bucket",
        ),  # fmt: skip
    ]
    for kwargs, match in cases:
        with pytest.raises(CompressionError, match=match):
            pack_sparse(shape=(10,), dtype="<f4", **kwargs)  # type: ignore[arg-type]
