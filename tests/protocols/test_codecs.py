"""Payload codecs: round trips, dtype whitelist, limits, malformed bytes, crypto payloads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocols.codecs import CodecContext, default_registry
from protocols.errors import CodecError, UnsupportedPayload
from protocols.memory import InMemoryNetwork
from protocols.messages import message_type

REGISTRY = default_registry()


def round_trip(value: object, ctx: CodecContext | None = None) -> object:
    ctx = ctx or CodecContext()
    encoded = REGISTRY.encode(value, ctx)
    return REGISTRY.decode(encoded.codec, encoded.to_bytes(), ctx)


@message_type("tests.Point")
@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    label: str
    data: bytes


@given(
    hnp.arrays(
        dtype=st.sampled_from(["<f8", ">f4", "<i8", "|u1", "|b1", "<c16", ">i2"]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    )
)
def test_ndarray_round_trip(array: np.ndarray) -> None:  # type: ignore[type-arg]
    out = round_trip(array)
    assert isinstance(out, np.ndarray)
    assert out.shape == array.shape
    assert out.dtype == array.dtype.newbyteorder("<") or out.dtype == array.dtype
    np.testing.assert_array_equal(out, array)


def test_non_contiguous_array() -> None:
    a = np.arange(20.0).reshape(4, 5)[:, ::2]
    np.testing.assert_array_equal(round_trip(a), a)


def test_object_and_string_dtypes_refused() -> None:
    for bad in (np.array([object()]), np.array(["a", "b"]), np.array([1], dtype="datetime64[s]")):
        with pytest.raises(UnsupportedPayload):
            REGISTRY.encode(bad, CodecContext())


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_like)
def test_struct_round_trip(value: object) -> None:
    assert round_trip(value) == value


def test_struct_with_arrays_and_messages() -> None:
    value = {"p": Point(3, "a", b"\x00\x01"), "w": np.eye(2), "big": 2**300, "neg": -(2**70)}
    out = round_trip(value)
    assert isinstance(out, dict)
    assert out["p"] == Point(3, "a", b"\x00\x01")
    np.testing.assert_array_equal(out["w"], np.eye(2))
    assert out["big"] == 2**300 and out["neg"] == -(2**70)
    assert round_trip(Point(1, "b", b"")) == Point(1, "b", b"")
    assert round_trip(np.float32(1.5)) == 1.5


def test_struct_refuses_unknown_types_and_non_str_keys() -> None:
    for bad in ({1: "a"}, [object()], {1, 2}):
        with pytest.raises(UnsupportedPayload):
            REGISTRY.encode(bad, CodecContext())

    @dataclasses.dataclass
    class Mutable:
        x: int

    with pytest.raises(TypeError):
        message_type("tests.Mutable")(Mutable)


def test_bytes_codec() -> None:
    assert round_trip(b"\x00abc") == b"\x00abc"
    assert round_trip(b"") == b""


@pytest.mark.parametrize(
    "codec,data",
    [
        ("ndarray", b"\x01\x03<f8\x01" + (5).to_bytes(8, "big") + b"\x00" * 8),  # too short
        ("ndarray", b"\x01\x03|O8\x01" + (1).to_bytes(8, "big") + b"\x00" * 8),  # object dtype
        ("ndarray", b"\x02"),  # unknown version
        ("struct", b"\x01Z"),  # unknown tag
        ("struct", b"\x01l\xff\xff\xff\xff"),  # count larger than the data
        ("struct", b"\x01s\x00\x00\x00\x05ab"),  # truncated string
        ("struct", b"\x01N\x00"),  # trailing bytes
        ("struct", b"\x01m\x00\x03zzz\x00\x00\x00\x00"),  # unknown message type
        ("nope", b"\x01"),  # unknown codec
        ("bytes", b""),  # empty payload
    ],
)
def test_malformed_payloads_raise_codec_error(codec: str, data: bytes) -> None:
    with pytest.raises(CodecError):
        REGISTRY.decode(codec, data, CodecContext())


def test_deep_nesting_refused() -> None:
    data = b"\x01" + b"l\x00\x00\x00\x01" * 100 + b"N"
    with pytest.raises(CodecError):
        REGISTRY.decode("struct", data, CodecContext())


def test_size_limit() -> None:
    small = CodecContext(max_payload_bytes=100)
    with pytest.raises(UnsupportedPayload):
        REGISTRY.encode(np.zeros(100), small)
    with pytest.raises(CodecError):
        REGISTRY.decode("bytes", b"\x01" + b"x" * 200, small)


def test_ndarray_decodes_from_a_file_as_a_memory_map(tmp_path: Path) -> None:
    a = np.arange(1000, dtype=np.int32).reshape(10, 100)
    path = tmp_path / "spool"
    path.write_bytes(REGISTRY.encode(a, CodecContext()).to_bytes())
    out = REGISTRY.decode_file("ndarray", path, CodecContext())
    assert isinstance(out, np.memmap)
    np.testing.assert_array_equal(out, a)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(CodecError):
        REGISTRY.decode_file("ndarray", path, CodecContext())


@pytest.mark.filterwarnings("ignore:INSECURE:UserWarning")
def test_paillier_payloads_over_the_network() -> None:
    paillier = pytest.importorskip("crypto.paillier")
    pub, priv = paillier.generate_keypair(512, insecure_allow_small_keys=True)
    net = InMemoryNetwork(["bank", "retailer"], job_id="paillier", seed=1)
    bank, retailer = net.channel("bank"), net.channel("retailer")
    enc = pub.encrypt(np.array([1.5, -2.0, 3.0]))
    bank.send("retailer", "enc", enc)  # before the key: the retailer cannot decode it
    assert net.counter("retailer")["malformed"] == 1
    bank.send("retailer", "key", pub)
    got_key = retailer.recv("bank", "key")
    assert got_key.fingerprint == pub.fingerprint
    bank.send("retailer", "enc", enc)
    # The wire carries no scale or bound: the receiver declares what the protocol fixes.
    got_enc = retailer.recv("bank", "enc")
    assert not got_enc.declared
    total = got_enc.assume(scale=32, bound=1 << 40) + np.array([1.0, 1.0, 1.0])
    retailer.send("bank", "sum", total)
    back = bank.recv("retailer", "sum").assume(scale=32, bound=1 << 41)
    np.testing.assert_allclose(priv.decrypt(back), [2.5, -1.0, 4.0])
    packed = pub.encrypt_packed(np.array([0.25, -1.0, 7.0, 0.0]))
    bank.send("retailer", "packed", packed)
    got = retailer.recv("bank", "packed")
    assert type(got).__name__ == "PackedEncryptedArray"
    retailer.send("bank", "packed-back", got)
    np.testing.assert_allclose(
        priv.decrypt_packed(bank.recv("retailer", "packed-back")), [0.25, -1.0, 7.0, 0.0]
    )


def test_ckks_payloads_over_the_network() -> None:
    ckks = pytest.importorskip("crypto.ckks")
    owner = ckks.CKKSContext.generate()
    net = InMemoryNetwork(["bank", "retailer"], job_id="ckks", seed=2)
    bank, retailer = net.channel("bank"), net.channel("retailer")
    bank.send("retailer", "ctx", owner)
    public = retailer.recv("bank", "ctx")
    assert not public.has_secret_key
    x = np.arange(8.0).reshape(4, 2)
    bank.send("retailer", "x", ckks.CKKSBatch.encrypt(owner, x))
    y = retailer.recv("bank", "x") @ np.array([[1.0], [2.0]])
    retailer.send("bank", "y", y)
    out = bank.recv("retailer", "y").decrypt()
    np.testing.assert_allclose(out, x @ np.array([[1.0], [2.0]]), atol=1e-3)


def _pieces(data: bytes, cuts: list[int]) -> list[memoryview]:
    bounds = sorted({min(max(c, 0), len(data)) for c in cuts} | {0, len(data)})
    return [memoryview(data)[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@given(
    value=st.one_of(
        st.binary(max_size=64),
        hnp.arrays(
            dtype=st.sampled_from(["<f8", ">f4", "|u1", "|b1", "<i8"]),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
        ),
        st.dictionaries(st.text(max_size=4), st.integers(), max_size=4),
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_decode_parts_equals_decode_for_any_chunking(value: object, cuts: list[int]) -> None:
    """The receiver's chunk-wise decode gives exactly what decoding the joined bytes gives."""
    ctx = CodecContext()
    encoded = REGISTRY.encode(value, ctx)
    data = encoded.to_bytes()
    whole = REGISTRY.decode(encoded.codec, data, ctx)
    parts = REGISTRY.decode_parts(encoded.codec, _pieces(data, cuts), ctx)
    if isinstance(whole, np.ndarray):
        assert isinstance(parts, np.ndarray) and parts.dtype == whole.dtype
        np.testing.assert_array_equal(parts, whole)
    else:
        assert parts == whole


@pytest.mark.parametrize("codec", ["ndarray", "struct", "bytes"])
def test_decode_parts_refuses_malformed_bytes_like_decode(codec: str) -> None:
    ctx = CodecContext()
    good = REGISTRY.encode(
        {"ndarray": np.arange(6.0), "struct": {"a": 1}, "bytes": b"xy"}[codec], ctx
    )
    truncated = good.to_bytes()[:-3] if codec != "bytes" else b"\xff" + good.to_bytes()[1:]
    with pytest.raises(CodecError):
        REGISTRY.decode(codec, truncated, ctx)
    with pytest.raises(CodecError):
        REGISTRY.decode_parts(codec, _pieces(truncated, [1, 5, 9]), ctx)


def test_keyring_never_hands_a_new_ckks_context_an_old_contexts_fingerprint() -> None:
    """A context collected and a new one allocated at the same address keep their own ids."""
    import gc

    from protocols.codecs import Keyring

    class Context:
        def __init__(self, fp: str) -> None:
            self.fingerprint = fp

    ring = Keyring()
    for i in range(200):
        # A second context object under a fingerprint the ring already holds (as after a peer's
        # context is decoded again) is not kept by the ring; once it is collected, its address
        # is free for the next object.
        assert ring.add_ckks(Context("shared")) == "shared"
        gc.collect()
        fresh = Context(f"fp-{i}")
        assert ring.add_ckks(fresh) == f"fp-{i}"
    assert all(ring.ckks(f"fp-{i}").fingerprint == f"fp-{i}" for i in range(200))
