"""Ed25519 signing keys and X25519 agreement: round trips, failures, key files, determinism."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import CryptoUsageError, InvalidKey, InvalidSignature
from crypto.keys import AgreementKey, SigningKey, VerifyKey, fingerprint
from crypto.random import SeededRandom


def test_sign_verify_round_trip() -> None:
    key = SigningKey.generate()
    sig = key.sign(b"message")
    assert len(sig) == 64
    key.verify_key.verify(sig, b"message")


@given(st.binary(max_size=256))
def test_sign_verify_any_message(message: bytes) -> None:
    key = SigningKey.generate(rng=SeededRandom(7))
    key.verify_key.verify(key.sign(message), message)


def test_wrong_key_rejected() -> None:
    a, b = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(InvalidSignature):
        b.verify_key.verify(a.sign(b"m"), b"m")


def test_tampered_signature_and_message_rejected() -> None:
    key = SigningKey.generate()
    sig = bytearray(key.sign(b"m"))
    sig[5] ^= 1
    with pytest.raises(InvalidSignature):
        key.verify_key.verify(bytes(sig), b"m")
    with pytest.raises(InvalidSignature):
        key.verify_key.verify(key.sign(b"m"), b"n")
    with pytest.raises(InvalidSignature):
        key.verify_key.verify(b"short", b"m")


def test_seeded_generation_is_deterministic() -> None:
    a = SigningKey.generate(rng=SeededRandom(3))
    b = SigningKey.generate(rng=SeededRandom(3))
    c = SigningKey.generate(rng=SeededRandom(4))
    assert a.verify_key == b.verify_key
    assert a.sign(b"x") == b.sign(b"x")
    assert a.verify_key != c.verify_key


def test_raw_public_bytes_base64_and_fingerprint() -> None:
    key = SigningKey.generate(rng=SeededRandom(1))
    raw = key.verify_key.public_bytes()
    assert len(raw) == 32
    assert VerifyKey.from_bytes(raw) == key.verify_key
    assert VerifyKey.from_base64(key.verify_key.to_base64()) == key.verify_key
    assert key.fingerprint == fingerprint(raw)
    assert len(key.fingerprint) == 64
    with pytest.raises(InvalidKey):
        VerifyKey.from_bytes(b"\x00" * 31)
    with pytest.raises(InvalidKey):
        VerifyKey.from_base64("not base64!")


def test_pem_files_round_trip_with_0600(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "signing.pem"
    key.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = SigningKey.load(path)
    assert loaded.verify_key == key.verify_key
    pub = tmp_path / "signing.pub.pem"
    key.verify_key.save(pub)
    assert VerifyKey.load(pub) == key.verify_key


def test_existing_file_is_tightened_on_save(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_text("old")
    path.chmod(0o644)
    SigningKey.generate().save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_group_readable_private_key_refused_unless_allowed(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "k.pem"
    key.save(path)
    path.chmod(0o640)
    with pytest.raises(CryptoUsageError, match="permissions"):
        SigningKey.load(path)
    with pytest.warns(UserWarning, match="permissions"):
        assert SigningKey.load(path, allow_insecure_permissions=True).verify_key == key.verify_key


def test_malformed_pem_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidKey):
        VerifyKey.from_pem(b"garbage")
    with pytest.raises(InvalidKey):
        VerifyKey.from_pem(AgreementKeyPem.public_pem())


class AgreementKeyPem:
    """A PEM public key of the wrong type (X25519) to check the type check."""

    @staticmethod
    def public_pem() -> bytes:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return (
            X25519PrivateKey.generate()
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def test_x25519_agreement_matches_and_is_labelled() -> None:
    a = AgreementKey.generate(rng=SeededRandom(1))
    b = AgreementKey.generate(rng=SeededRandom(2))
    k_ab = a.exchange(b.public_bytes(), info=b"test/v1")
    k_ba = b.exchange(a.public_bytes(), info=b"test/v1")
    assert k_ab == k_ba
    assert len(k_ab) == 32
    assert a.exchange(b.public_bytes(), info=b"other/v1") != k_ab
    assert len(a.exchange(b.public_bytes(), info=b"x", length=64)) == 64
    again = AgreementKey.generate(rng=SeededRandom(1))
    assert again.public_bytes() == a.public_bytes()


def test_x25519_rejects_bad_input() -> None:
    a = AgreementKey.generate()
    with pytest.raises(InvalidKey):
        a.exchange(b"\x00" * 32, info=b"x")  # low-order point: all-zero shared secret
    with pytest.raises(InvalidKey):
        a.exchange(b"\x01" * 5, info=b"x")
    with pytest.raises(CryptoUsageError):
        a.exchange(a.public_bytes(), info=b"")
