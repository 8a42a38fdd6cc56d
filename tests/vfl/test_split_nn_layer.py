"""The secure interactive layer against a plaintext reference, per scheme, with its transcript."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch

from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.split_nn import CryptoConfig, Scheme
from vfl.split_nn._backends import make_evaluator, make_key_owner
from vfl.split_nn._interactive import FeatureShare, LabelShare
from vfl.split_nn._packed import FRACTION_BITS, ints_from_wire

torch.set_num_threads(1)
pytestmark = pytest.mark.filterwarnings("ignore:INSECURE")

SCHEMES = [Scheme.PLAIN, Scheme.PAILLIER, Scheme.CKKS]
TOL = {Scheme.PLAIN: 1e-9, Scheme.PAILLIER: 1e-6, Scheme.CKKS: 1e-3}


def values(payload: Any, shape: tuple[int, int]) -> np.ndarray:
    """A reply as floats: Paillier replies are exact integers at ``2^-48`` (int bytes on the wire)."""
    arr = np.asarray(payload)
    if arr.dtype == np.uint8:
        ints = ints_from_wire(arr, shape)
        out: np.ndarray = np.ldexp(np.asarray([float(v) for v in ints]), -2 * FRACTION_BITS)
        return out.reshape(shape)
    return np.asarray(arr, dtype=np.float64)


def crypto(scheme: Scheme) -> CryptoConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CryptoConfig(scheme=scheme, key_bits=1024, insecure_allow_small_keys=True)


def one_step(scheme: Scheme) -> tuple[dict[str, Any], dict[str, Any], InMemoryNetwork]:
    """One forward and backward of a 12 x 3 embedding through a 3 x 2 layer."""
    rng = np.random.default_rng(1)
    h = rng.normal(size=(12, 3))
    a0 = rng.normal(size=(3, 2))
    w0 = rng.normal(size=(3, 2))
    delta = rng.normal(size=(12, 2)) / 12
    defended = delta + 0.01
    cfg = crypto(scheme)
    net = InMemoryNetwork(["bank", "retailer"], job_id="layer", seed=0)

    def feature(ch: Any) -> dict[str, Any]:
        owner = make_key_owner(cfg, rng=SeededRandom(2))
        ch.send("bank", "snn/key", owner.public)
        ev = make_evaluator(cfg, ch.recv("bank", "snn/key"))
        share = FeatureShare(peer="bank", owner=owner, evaluator=ev, share=a0.copy(), crypto=cfg)
        share.forward(ch, h, train=True)
        grad = share.backward(ch)
        return {"grad": grad, "share": share.share}

    def label(ch: Any) -> dict[str, Any]:
        ev = make_evaluator(cfg, ch.recv("retailer", "snn/key"))
        owner = make_key_owner(cfg, rng=SeededRandom(3))
        ch.send("retailer", "snn/key", owner.public)
        share = LabelShare(peer="retailer", evaluator=ev, share=w0.copy(), crypto=cfg)
        z = share.forward(ch, rows=12, train=True)
        share.backward(
            ch,
            owner=owner,
            ct_delta_defended=owner.encrypt(defended),
            delta_defended=defended,
            delta=delta,
            lr=0.1,
        )
        return {"z": z, "share": share.share}

    out = run_parties({"bank": label, "retailer": feature}, network=net, timeout=120)
    ref = {"h": h, "w_h": a0 + w0, "delta": delta, "defended": defended}
    return out, ref, net


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.value)
def test_layer_matches_plaintext_reference(scheme: Scheme) -> None:
    out, ref, _ = one_step(scheme)
    tol = TOL[scheme]
    np.testing.assert_allclose(out["bank"]["z"], ref["h"] @ ref["w_h"], atol=tol)
    np.testing.assert_allclose(out["retailer"]["grad"], ref["defended"] @ ref["w_h"].T, atol=tol)
    new_w = out["bank"]["share"] + out["retailer"]["share"]
    expected = ref["w_h"] - 0.1 * ref["h"].T @ ref["delta"]
    np.testing.assert_allclose(new_w, expected, atol=tol * 10)
    # Neither share alone is the updated weight matrix (the shares moved by the noise N).
    assert not np.allclose(out["bank"]["share"], expected, atol=1e-2)


@pytest.mark.parametrize("scheme", [Scheme.PAILLIER, Scheme.CKKS], ids=lambda s: s.value)
def test_transcript_leakage_table(scheme: Scheme) -> None:
    out, ref, net = one_step(scheme)
    at_bank = net.transcript.received_by("bank")
    at_retailer = net.transcript.received_by("retailer")
    # The label party receives the embedding only encrypted, never a plain array equal to h,
    # h W_H or h W_G (the forward reply v is masked by eps).
    for msg in at_bank:
        if msg.topic in ("snn/h", "snn/ht"):
            assert not isinstance(msg.payload, np.ndarray)
        if isinstance(msg.payload, np.ndarray) and msg.payload.shape == ref["h"].shape:
            assert not np.allclose(msg.payload, ref["h"], atol=1e-3)
    v = values(next(m.payload for m in at_bank if m.topic == "snn/v"), (12, 2))
    assert not np.allclose(v, ref["h"] @ ref["w_h"], atol=1.0)
    # The feature party never receives delta in clear: the only cut-layer data it gets is the
    # encrypted delta~ and its own (masked) input gradient.
    dz = next(m.payload for m in at_retailer if m.topic == "snn/dz")
    assert not isinstance(dz, np.ndarray)
    for msg in at_retailer:
        if isinstance(msg.payload, np.ndarray) and msg.payload.shape == ref["delta"].shape:
            assert not np.allclose(msg.payload, ref["delta"], atol=1e-3)
    gh = values(next(m.payload for m in at_retailer if m.topic == "snn/gh"), (12, 3))
    assert not np.allclose(gh, ref["defended"] @ ref["w_h"].T, atol=1.0)  # still masked by M
    assert {m.topic for m in at_retailer} == {
        "snn/key",
        "snn/u",
        "snn/dz",
        "snn/gh",
        "snn/gw",
        "snn/lr",
    }


def test_ckks_owner_releases_rounded_decryptions() -> None:
    cfg = crypto(Scheme.CKKS)
    owner = make_key_owner(cfg, rng=SeededRandom(5))
    x = np.linspace(-1, 1, 24).reshape(8, 3)
    released = owner.reveal(owner.encrypt(x), np.zeros_like(x))
    grid = released * 2.0**cfg.release_bits
    np.testing.assert_allclose(grid, np.round(grid), atol=1e-6)
    np.testing.assert_allclose(released, x, atol=2.0**-cfg.release_bits + 1e-5)


@pytest.mark.parametrize("scheme", [Scheme.PLAIN, Scheme.PAILLIER], ids=lambda s: s.value)
def test_momentum_on_shares_is_heavy_ball_sgd_on_w_h(scheme: Scheme) -> None:
    rng = np.random.default_rng(4)
    hs = [rng.normal(size=(10, 3)) for _ in range(2)]
    deltas = [rng.normal(size=(10, 2)) / 10 for _ in range(2)]
    a0, w0, mu, lr = rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), 0.9, 0.1
    cfg = crypto(scheme)
    net = InMemoryNetwork(["bank", "retailer"], job_id="momentum", seed=0)

    def feature(ch: Any) -> Any:
        owner = make_key_owner(cfg, rng=SeededRandom(2))
        ch.send("bank", "snn/key", owner.public)
        ev = make_evaluator(cfg, ch.recv("bank", "snn/key"))
        share = FeatureShare(
            peer="bank", owner=owner, evaluator=ev, share=a0.copy(), crypto=cfg, momentum=mu
        )
        for h in hs:
            share.forward(ch, h, train=True)
            share.backward(ch)
        return share.share

    def label(ch: Any) -> Any:
        ev = make_evaluator(cfg, ch.recv("retailer", "snn/key"))
        owner = make_key_owner(cfg, rng=SeededRandom(3))
        ch.send("retailer", "snn/key", owner.public)
        share = LabelShare(peer="retailer", evaluator=ev, share=w0.copy(), crypto=cfg, momentum=mu)
        for delta in deltas:
            share.forward(ch, rows=10, train=True)
            share.backward(
                ch,
                owner=owner,
                ct_delta_defended=owner.encrypt(delta),
                delta_defended=delta,
                delta=delta,
                lr=lr,
            )
        return share.share

    out = run_parties({"bank": label, "retailer": feature}, network=net, timeout=120)
    g1, g2 = (h.T @ d for h, d in zip(hs, deltas, strict=True))
    expected = a0 + w0 - lr * g1 - lr * (mu * g1 + g2)
    np.testing.assert_allclose(out["bank"] + out["retailer"], expected, atol=1e-5)
