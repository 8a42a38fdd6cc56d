"""The CKKS context: parameters and keys, with the secret key only at its owner.

CKKS (Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate Numbers",
ASIACRYPT 2017) encrypts vectors of ``N / 2`` reals as RLWE ciphertexts ``(c0, c1)`` with
``c0 + c1 * s = Delta * m + e (mod q)``. This module wraps TenSEAL's context (Microsoft SEAL).

Key generation uses SEAL's own CSPRNG (Blake2xb seeded from the OS); SEAL offers no hook to
inject randomness, so unlike the rest of :mod:`crypto` there is no ``rng`` parameter here and
CKKS has no known-answer tests: its tests check round trips and identities instead.

The peer gets :meth:`CKKSContext.public_context` (or ``to_bytes()``, which leaves the secret key
out by default): public key only. No Galois keys are generated because the batch layout needs no
rotations, and no relinearisation keys are sent because only plaintext products are used.
"""

from __future__ import annotations

import hashlib

import tenseal as ts

from crypto._timing import timed
from crypto.ckks._presets import CKKSPreset, get_preset
from crypto.ckks._wire import decode_context, encode_context
from crypto.errors import CryptoUsageError, InvalidCiphertext

__all__ = ["CKKSContext"]

_FINGERPRINT_DOMAIN = b"vfl-ckks-public-key-v1\x00"


class CKKSContext:
    """CKKS parameters and keys. Build with :meth:`generate` or :meth:`from_bytes`.

    A context *with* the secret key belongs to the key owner; :meth:`public_context` gives the
    copy to hand to peers. :attr:`fingerprint` identifies the public key, so batches are bound to
    the context they were encrypted under.
    """

    __slots__ = ("_ts", "_preset", "_fingerprint")

    def __init__(self, *, tenseal_context: ts.Context, preset: CKKSPreset) -> None:
        """Wrap an existing TenSEAL context; you probably want :meth:`generate`."""
        self._ts = tenseal_context
        self._preset = preset
        self._fingerprint: bytes | None = None

    @classmethod
    @timed
    def generate(
        cls, *, preset: str | CKKSPreset = "default", n_threads: int | None = None
    ) -> CKKSContext:
        """Fresh keys for ``preset`` (a name in :data:`PRESETS` or a :class:`CKKSPreset`).

        Randomness comes from SEAL's internal CSPRNG and cannot be injected (see module doc).
        """
        params = get_preset(preset)
        try:
            context = ts.context(
                ts.SCHEME_TYPE.CKKS,
                poly_modulus_degree=params.poly_modulus_degree,
                coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
                n_threads=n_threads,
            )
        except ValueError as exc:
            raise CryptoUsageError(f"SEAL refused CKKS preset {params.name!r}: {exc}") from None
        context.global_scale = float(2**params.scale_bits)
        return cls(tenseal_context=context, preset=params)

    @property
    def preset(self) -> CKKSPreset:
        """The parameters of this context."""
        return self._preset

    @property
    def slot_count(self) -> int:
        """Real values per ciphertext (``N / 2``)."""
        return self._preset.slot_count

    @property
    def has_secret_key(self) -> bool:
        """True only at the key owner."""
        return bool(self._ts.is_private())

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the serialised parameters and public key (32 bytes)."""
        if self._fingerprint is None:
            public = self._ts.serialize(
                save_public_key=True,
                save_secret_key=False,
                save_galois_keys=False,
                save_relin_keys=False,
            )
            self._fingerprint = hashlib.sha256(_FINGERPRINT_DOMAIN + public).digest()
        return self._fingerprint

    def public_context(self) -> CKKSContext:
        """A copy without the secret key, for the peer that evaluates on our ciphertexts."""
        public = self._ts.copy()
        public.make_context_public()
        out = CKKSContext(tenseal_context=public, preset=self._preset)
        out._fingerprint = self._fingerprint
        return out

    def to_bytes(self, *, include_secret_key: bool = False) -> bytes:
        """Versioned bytes: header + TenSEAL context (public key; secret key only if asked)."""
        if include_secret_key and not self.has_secret_key:
            raise CryptoUsageError("this CKKS context has no secret key to include")
        blob = self._ts.serialize(
            save_public_key=True,
            save_secret_key=include_secret_key,
            save_galois_keys=False,
            save_relin_keys=False,
        )
        return encode_context(
            preset=self._preset, has_secret_key=include_secret_key, tenseal_bytes=blob
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, n_threads: int | None = None) -> CKKSContext:
        """Load :meth:`to_bytes` output; malformed or inconsistent bytes raise InvalidCiphertext.

        SEAL re-checks the HE-standard bound on load, so weaker parameters are refused.
        """
        wire = decode_context(bytes(data))
        try:
            context = ts.context_from(wire.tenseal_bytes, n_threads=n_threads)
            parms = context.seal_context().data.key_context_data().parms()
            scheme, degree = parms.scheme(), parms.poly_modulus_degree()
            total_bits = (
                context.seal_context().data.key_context_data().total_coeff_modulus_bit_count()
            )
            has_public_key = context.has_public_key()
            is_private = context.is_private()
            scale = context.global_scale
        except Exception:  # TenSEAL raises ValueError/RuntimeError/TypeError on bad input
            raise InvalidCiphertext("CKKS context bytes are malformed") from None
        params = wire.preset
        if (
            scheme != ts.SCHEME_TYPE.CKKS.value
            or degree != params.poly_modulus_degree
            or total_bits != params.total_modulus_bits
            or scale != float(2**params.scale_bits)
        ):
            raise InvalidCiphertext("CKKS context bytes do not match their parameter header")
        if not has_public_key or is_private != wire.has_secret_key:
            raise InvalidCiphertext("CKKS context bytes do not match their key flags")
        return cls(tenseal_context=context, preset=params)

    def __repr__(self) -> str:
        role = "secret" if self.has_secret_key else "public"
        return f"CKKSContext(preset={self._preset.name!r}, {role}, fingerprint={self.fingerprint[:6].hex()})"
