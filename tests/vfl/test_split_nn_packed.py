"""Packed (SIMD) Paillier matrices of the split NN's Paillier backend: exact against integers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.paillier import generate_keypair
from crypto.random import SeededRandom
from vfl.errors import VflError
from vfl.split_nn._packed import (
    EMBEDDING_BITS,
    FRACTION_BITS,
    GRADIENT_BITS,
    MASK_SLACK_BITS,
    SLOT_BITS,
    WEIGHT_BITS,
    PackedMatrix,
    encode_fixed,
    ints_from_wire,
    ints_to_wire,
)

pytestmark = pytest.mark.filterwarnings("ignore:INSECURE")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PUB, PRIV = generate_keypair(1024, insecure_allow_small_keys=True)
    OTHER, _ = generate_keypair(1024, insecure_allow_small_keys=True)


def encrypt(x: np.ndarray, seed: int = 0) -> PackedMatrix:
    return PackedMatrix.encrypt(
        PUB, x, bits=EMBEDDING_BITS, slot_bits=SLOT_BITS, rng=SeededRandom(seed), what="test"
    )


def test_layout_packs_several_rows_per_ciphertext() -> None:
    x = np.random.default_rng(0).normal(size=(20, 3))
    packed = encrypt(x)
    assert packed.slots == (1024 - 2) // SLOT_BITS == 8
    assert packed.cts.shape == (3, 3)  # 3 columns x ceil(20 / 8) blocks
    assert packed.decrypt_ints(PRIV) == encode_fixed(x, bits=10, what="x").reshape(-1).tolist()


@pytest.mark.parametrize("cols", [3, 20], ids=["straus", "buckets"])
def test_matmul_is_exact_with_negative_values_and_weights(cols: int) -> None:
    rng = np.random.default_rng(cols)
    x = rng.normal(size=(13, cols)) * 4
    w = rng.normal(size=(cols, 5))
    out = encrypt(x).matmul(w, bits=WEIGHT_BITS)
    assert out.shape == (13, 5) and out.scale == 2 * FRACTION_BITS
    xi = encode_fixed(x, bits=EMBEDDING_BITS, what="x").astype(object)
    wi = encode_fixed(w, bits=WEIGHT_BITS, what="w").astype(object)
    assert out.decrypt_ints(PRIV) == (xi @ wi).reshape(-1).tolist()


def test_mask_hides_each_slot_with_40_bits_of_slack() -> None:
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(9, 4)), rng.normal(size=(4, 2))
    product = encrypt(x).matmul(w, bits=WEIGHT_BITS)
    masked, masks = product.mask(rng=SeededRandom(5))
    width = product.value_bits + MASK_SLACK_BITS
    assert all(0 <= m < 1 << width for m in masks)
    assert max(masks).bit_length() > width - 8  # uniform over the whole width
    opened = masked.decrypt_ints(PRIV)
    exact = product.decrypt_ints(PRIV)
    assert [o - m for o, m in zip(opened, masks, strict=True)] == exact
    # Fresh randomness: no ciphertext of the masked matrix equals one of the product's.
    assert not set(masked.cts.reshape(-1).tolist()) & set(product.cts.reshape(-1).tolist())


def test_bounds_are_checked_never_wrapped() -> None:
    with pytest.raises(VflError, match="packed Paillier range"):
        encrypt(np.full((2, 2), 2.0**EMBEDDING_BITS))
    with pytest.raises(VflError, match="packed Paillier range"):
        encrypt(np.ones((2, 2))).matmul(np.full((2, 2), 2.0**WEIGHT_BITS), bits=WEIGHT_BITS)
    with pytest.raises(VflError, match="packed Paillier range"):
        encrypt(np.array([[np.nan]]))
    assert GRADIENT_BITS < EMBEDDING_BITS


def test_wire_round_trip_checks_key_and_shape() -> None:
    packed = encrypt(np.ones((10, 2)))
    wire = packed.to_wire()
    again = PackedMatrix.from_wire(
        wire,
        PUB,
        rows=10,
        cols=2,
        slot_bits=SLOT_BITS,
        scale=FRACTION_BITS,
        value_bits=EMBEDDING_BITS + FRACTION_BITS,
    )
    assert again.decrypt_ints(PRIV) == packed.decrypt_ints(PRIV)
    kwargs = {"slot_bits": SLOT_BITS, "scale": FRACTION_BITS, "value_bits": 30}
    with pytest.raises(VflError, match="expected key"):
        PackedMatrix.from_wire(wire, OTHER, rows=10, cols=2, **kwargs)
    with pytest.raises(VflError, match="shape"):
        PackedMatrix.from_wire(wire, PUB, rows=30, cols=2, **kwargs)
    with pytest.raises(VflError, match="expected key"):
        PackedMatrix.from_wire(np.ones((2, 2)), PUB, rows=10, cols=2, **kwargs)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=-(2**130), max_value=2**130), min_size=6, max_size=6))
def test_int_wire_round_trip(values: list[int]) -> None:
    data = ints_to_wire(values, (2, 3))
    assert data.dtype == np.uint8 and data.shape[:2] == (2, 3)
    assert ints_from_wire(data, (2, 3)) == values
    with pytest.raises(VflError, match="malformed"):
        ints_from_wire(data, (3, 2))
