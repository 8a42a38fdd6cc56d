"""Hetero LR under Paillier (small test keys): exactness against the central reference, and the
leakage table of docs/protocols/hetero_lr.md checked on the recorded transcript."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crypto.paillier import EncryptedArray, PaillierPublicKey
from protocols.memory import InMemoryNetwork
from tests.vfl._hetero_lr_helpers import breast, reference, run
from vfl.errors import VflError
from vfl.hetero_lr import Approximation, ClassWeight, CryptoSettings, HeteroLRConfig
from vfl.hetero_lr._protocol import ZERO_SUM_BITS

SMALL = CryptoSettings(key_bits=1024, insecure_allow_small_keys=True, precision_bits=32)
CONTROL_TOPICS = {
    "hetero_lr/setup",
    "hetero_lr/hello",
    "hetero_lr/score_request",
    "hetero_lr/epoch_end",
}


def _keys(net: InMemoryNetwork) -> dict[str, PaillierPublicKey]:
    """Party -> the Paillier key it published."""
    return {
        m.sender: m.payload
        for m in net.transcript.on_topic("hetero_lr/key")
        if isinstance(m.payload, PaillierPublicKey)
    }


def _uniform_residues(values: list[int], modulus_bits: int) -> bool:
    """Every value in [0, 2^modulus_bits) and none much shorter than the modulus: a value of a
    uniform residue is below 2^(bits - 30) with probability about 2^-30."""
    return all(
        isinstance(v, int) and 0 <= v and modulus_bits - 30 <= v.bit_length() <= modulus_bits
        for v in values
    )


def check_leakage_table(
    net: InMemoryNetwork,
    *,
    label: str,
    features: dict[str, int],
    label_columns: int,
    batch_size: int,
) -> None:
    """The leakage table of docs/protocols/hetero_lr.md on the transcript: who receives what,
    under which key, with which public shape, carrying no metadata, and masked values that look
    uniform (checked on the values). ``features``: party -> its column count."""
    keys = _keys(net)
    assert set(keys) == {label, *features}
    seen: dict[str, set[int]] = {}
    for message in net.transcript.messages:
        payload = message.payload
        assert not (isinstance(payload, np.ndarray) and payload.size > 1), (
            f"plaintext array on {message.topic}"
        )
        if message.topic in CONTROL_TOPICS:
            # Typed control messages with scalar fields only (the feature-party list aside).
            assert dataclasses.is_dataclass(payload) and not any(
                isinstance(v, (list, np.ndarray)) and len(v) > 4
                for k, v in dataclasses.asdict(payload).items()
                if k != "feature_parties"
            )
            continue
        if message.topic == "hetero_lr/key":
            assert isinstance(payload, PaillierPublicKey)
            continue
        if isinstance(payload, EncryptedArray):
            # Metadata: none from the sender (undeclared scale, bound max_int), the public shape.
            assert not payload.declared and payload.bound == payload.public_key.max_int
            rows = payload.shape[0] if payload.ndim == 1 else -1
            expected_shape = {
                "hetero_lr/g": (features.get(message.sender, -1),),
                "hetero_lr/v": (label_columns,),
            }.get(message.topic)
            if expected_shape is not None:
                assert payload.shape == expected_shape, message.topic
            else:
                # a mini-batch: batch_size rows, a short tail (>= half) or a tail joined (< 1.5x)
                assert payload.ndim == 1 and batch_size // 2 <= rows < 3 * batch_size // 2, (
                    message.topic
                )
            # Values: every ciphertext a party receives is fresh (re-randomised): none twice.
            cts = [int(c) for c in payload.raw_ciphertexts()]
            mine = seen.setdefault(message.receiver, set())
            assert not mine.intersection(cts), f"a ciphertext was received twice ({message.topic})"
            mine.update(cts)
        if message.receiver in features and message.sender in features:
            # Feature <-> feature: a random seed, or shares under G's key (which neither holds).
            if message.topic == "hetero_lr/pair_seed":
                assert isinstance(payload, bytes) and len(payload) == 32
            else:
                assert message.topic == "hetero_lr/e"
                assert isinstance(payload, EncryptedArray) and payload.public_key == keys[label]
            continue
        if message.receiver in features:
            # What a feature party receives from G: ciphertexts under G's key, a ciphertext under
            # its own key masked uniformly mod its n, or its gradient plus its own uniform mask.
            if message.topic in ("hetero_lr/alpha", "hetero_lr/beta"):
                assert isinstance(payload, EncryptedArray) and payload.public_key == keys[label]
            elif message.topic == "hetero_lr/v":
                assert (
                    isinstance(payload, EncryptedArray)
                    and payload.public_key == keys[message.receiver]
                )
            elif message.topic == "hetero_lr/g_open":
                raw = payload.values
                assert len(raw) == features[message.receiver]
                assert _uniform_residues(raw, keys[label].bits)
            else:
                raise AssertionError(f"unexpected topic {message.topic} to a feature party")
            continue
        assert message.receiver == label
        # What G receives from a feature party: its scores under the party's own key, its gradient
        # masked under G's key, masked cross terms, masked scores -- never a plaintext per-sample array.
        if message.topic == "hetero_lr/u":
            assert (
                isinstance(payload, EncryptedArray) and payload.public_key == keys[message.sender]
            )
        elif message.topic == "hetero_lr/g":
            assert isinstance(payload, EncryptedArray) and payload.public_key == keys[label]
        elif message.topic == "hetero_lr/v_open":
            raw = payload.values
            assert len(raw) == label_columns and all(isinstance(v, int) for v in raw)
            if len(features) > 1:  # residue + zero-sum mask: as wide as the zero-sum masks
                assert all(abs(v).bit_length() >= ZERO_SUM_BITS - 30 for v in raw)
            else:  # the residue (v + S) mod n_j: uniform for anyone but G (which knows S)
                assert _uniform_residues(raw, keys[message.sender].bits)
        elif message.topic == "hetero_lr/scores":
            if len(features) > 1:
                assert _masked_ints(payload.values, min_bits=90)
        else:
            raise AssertionError(f"unexpected topic {message.topic} to the label party")
    assert not net.transcript.on_topic("hetero_lr/e") or all(
        m.receiver != label for m in net.transcript.on_topic("hetero_lr/e")
    )


def _masked_ints(values: list[int], *, min_bits: int) -> bool:
    return all(abs(v).bit_length() >= min_bits for v in values)


@pytest.mark.slow
def test_two_parties_paillier_matches_reference_and_leakage_table() -> None:
    g, h = breast(300)
    cfg = HeteroLRConfig(
        epochs=2,
        batch_size=128,
        validation_fraction=0.0,
        approximation=Approximation.TAYLOR,
        crypto=SMALL,
    )
    label, features, results, net = run(cfg, g, {"retailer": h})
    wg, wh = reference(cfg, g, {"retailer": h})
    np.testing.assert_allclose(label.weights_[:, 0], wg, atol=1e-8)
    np.testing.assert_allclose(features["retailer"].weights_[:, 0], wh["retailer"], atol=1e-8)
    assert label.crypto_ == {"scheme": "paillier", "key_bits": 1024}
    assert results["bank"]["auc"] > 0.95
    assert not net.transcript.on_topic("hetero_lr/beta")  # the Taylor slope is public: not sent
    check_leakage_table(
        net, label="bank", features={"retailer": 20}, label_columns=11, batch_size=128
    )


@pytest.mark.slow
def test_three_parties_paillier_local_rule_with_class_weights() -> None:
    g, h = breast(300)
    parts = {"retailer": h[["id", *h.columns[1:11]]], "telco": h[["id", *h.columns[11:]]]}
    cfg = HeteroLRConfig(
        epochs=1,
        batch_size=128,
        validation_fraction=0.2,
        early_stopping_patience=0,
        class_weight=ClassWeight.BALANCED,
        crypto=SMALL,
    )
    label, features, results, net = run(cfg, g, parts)
    assert results["bank"]["auc"] > 0.9
    assert net.transcript.on_topic("hetero_lr/beta")  # per-sample beta travels encrypted
    check_leakage_table(
        net,
        label="bank",
        features={"retailer": 10, "telco": 10},
        label_columns=11,
        batch_size=128,
    )
    # G's score sums are right although each party's message is masked.
    x_g = label._design(g)
    u_h = sum(features[n]._design(parts[n]) @ features[n].weights_[:, 0] for n in parts)
    proba = 1.0 / (1.0 + np.exp(-(x_g @ label.weights_[:, 0] + u_h)))
    assert results["bank"]["logloss"] == pytest.approx(
        float(-np.mean(np.where(g["y"] == 1, np.log(proba), np.log(1 - proba)))), rel=1e-6
    )


def test_small_peer_key_is_refused() -> None:
    from crypto.paillier import generate_keypair
    from vfl.hetero_lr._paillier import PaillierPeerKey

    pub, _ = generate_keypair(512, insecure_allow_small_keys=True)
    with pytest.raises(VflError, match="fewer than the configured"):
        PaillierPeerKey.from_payload(pub, SMALL)
    with pytest.raises(VflError, match="expected the peer's Paillier public key"):
        PaillierPeerKey.from_payload(pd.DataFrame(), SMALL)


def test_default_precision_is_close_to_reference() -> None:
    g, h = breast(200)
    crypto = CryptoSettings(key_bits=1024, insecure_allow_small_keys=True)
    assert crypto.precision_bits == 16
    cfg = HeteroLRConfig(epochs=1, batch_size=96, validation_fraction=0.0, crypto=crypto)
    label, features, _, _ = run(cfg, g, {"retailer": h})
    wg, wh = reference(cfg, g, {"retailer": h})
    np.testing.assert_allclose(label.weights_[:, 0], wg, atol=1e-3)
    np.testing.assert_allclose(features["retailer"].weights_[:, 0], wh["retailer"], atol=1e-3)
