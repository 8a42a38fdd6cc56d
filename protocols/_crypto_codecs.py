"""Codecs for the crypto layer's payloads: Paillier keys and ciphertexts, CKKS contexts and
batches (see :mod:`protocols.codecs`). ``crypto.paillier`` and ``crypto.ckks`` are imported only
when such a payload is decoded.

A ciphertext payload is ``u8 len | key fingerprint (ASCII hex) | the crypto layer's own bytes``;
the receiver looks the fingerprint up in its :class:`~protocols.codecs.Keyring`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from crypto.errors import CryptoError
from protocols.codecs import Buffer, Codec, CodecContext
from protocols.errors import CodecError

__all__ = [
    "PaillierKeyCodec",
    "PaillierCodec",
    "PackedPaillierCodec",
    "CkksContextCodec",
    "CkksCodec",
]


def _crypto(name: str) -> Any:
    """``crypto.<name>``, imported on first use (Paillier and CKKS are heavy and optional here)."""
    return importlib.import_module(f"crypto.{name}")


class PaillierKeyCodec(Codec):
    name = "paillier-key"
    types = ("crypto.paillier.PaillierPublicKey",)

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        ctx.keyring.add_paillier(payload)
        return (payload.to_bytes(),)

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        try:
            key = _crypto("paillier").PaillierPublicKey.from_bytes(bytes(data))
        except CryptoError as exc:
            raise CodecError(f"malformed Paillier public key: {exc}") from exc
        ctx.keyring.add_paillier(key)
        return key


def _put_fp(fp: str) -> bytes:
    raw = fp.encode("ascii")
    return bytes([len(raw)]) + raw


def _get_fp(data: memoryview) -> tuple[str, memoryview]:
    n = data[0]
    if len(data) < 1 + n:
        raise CodecError("truncated key fingerprint")
    return bytes(data[1 : 1 + n]).decode("ascii"), data[1 + n :]


class PaillierCodec(Codec):
    name = "paillier"
    types = ("crypto.paillier.EncryptedArray",)
    array_class = "EncryptedArray"  # the crypto.paillier class that decodes the body
    what = "Paillier ciphertexts"

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        fp = ctx.keyring.add_paillier(payload.public_key)
        return (_put_fp(fp), payload.to_bytes())

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        fp, body = _get_fp(data)
        key = ctx.keyring.paillier(fp)
        try:
            return getattr(_crypto("paillier"), self.array_class).from_bytes(bytes(body), key)
        except CryptoError as exc:
            raise CodecError(f"malformed {self.what}: {exc}") from exc


class PackedPaillierCodec(PaillierCodec):
    name = "paillier-packed"
    types = ("crypto.paillier.PackedEncryptedArray",)
    array_class = "PackedEncryptedArray"
    what = "packed Paillier ciphertexts"


class CkksContextCodec(Codec):
    name = "ckks-context"
    types = ("crypto.ckks.CKKSContext",)

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        ctx.keyring.add_ckks(payload)
        return (payload.to_bytes(),)

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        raw = bytes(data)
        try:
            context = _crypto("ckks").CKKSContext.from_bytes(raw)
        except CryptoError as exc:
            raise CodecError(f"malformed CKKS context: {exc}") from exc
        ctx.keyring.add_ckks(context)
        return context


class CkksCodec(Codec):
    name = "ckks"
    types = ("crypto.ckks.CKKSBatch",)

    def encode(self, payload: Any, ctx: CodecContext) -> Sequence[Buffer]:
        fp = ctx.keyring.add_ckks(payload.context)
        return (_put_fp(fp), payload.to_bytes())

    def decode(self, data: memoryview, ctx: CodecContext) -> Any:
        fp, body = _get_fp(data)
        context = ctx.keyring.ckks(fp)
        try:
            return _crypto("ckks").CKKSBatch.from_bytes(bytes(body), context=context)
        except CryptoError as exc:
            raise CodecError(f"malformed CKKS batch: {exc}") from exc
