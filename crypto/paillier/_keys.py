"""The Paillier public key with ``g = n + 1`` (Paillier, EUROCRYPT 1999).

Encryption: ``E(m) = (1 + m*n) * x mod n^2`` with ``x`` a random ``n``-th residue (see
:mod:`crypto.paillier._obfuscators` for the ways to draw ``x``). The private key, CRT decryption
and key generation are in :mod:`crypto.paillier._private_key`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from typing import TYPE_CHECKING, Any

import gmpy2

from crypto._timing import timed
from crypto.errors import CryptoUsageError, InvalidKey
from crypto.paillier import _parallel
from crypto.paillier._encoding import FixedPointEncoding
from crypto.paillier._obfuscators import OBFUSCATORS, DjnState, draw_units, standard_obfuscators
from crypto.paillier._serial import Reader
from crypto.random import RandomSource, resolve

if TYPE_CHECKING:
    from collections.abc import Callable

    from crypto.paillier._encrypted import EncryptedArray
    from crypto.paillier._packing import PackedEncryptedArray
    from crypto.paillier._pool import ObfuscatorPool

__all__ = ["PaillierPublicKey", "KEY_SIZES"]

log = logging.getLogger(__name__)

KEY_SIZES = (2048, 3072, 4096)
_MIN_INSECURE_BITS = 64
_PUB_MAGIC = b"PAPK"
_PRIV_MAGIC = b"PASK"
_VERSION = 1


def _warn_small(bits: int) -> None:
    warnings.warn(
        f"INSECURE: {bits}-bit Paillier key, for tests only (use 2048 bits or more)",
        UserWarning,
        stacklevel=3,
    )


class PaillierPublicKey:
    """Public key ``n`` (``g = n + 1``): encrypts and evaluates; holds no secret."""

    __slots__ = ("n", "nsquare", "max_int", "_bytes", "_djn", "_lock")

    def __init__(self, n: int) -> None:
        n = int(n)
        if n < 2**_MIN_INSECURE_BITS or n % 2 == 0:
            raise InvalidKey("Paillier modulus must be odd and at least 64 bits")
        if n.bit_length() < KEY_SIZES[0]:
            log.warning("Paillier public key of %d bits is insecure (tests only)", n.bit_length())
        self.n: Any = gmpy2.mpz(n)
        self.nsquare: Any = self.n * self.n
        self.max_int: int = n // 3 - 1
        self._bytes = (
            _PUB_MAGIC
            + bytes([_VERSION])
            + ((n.bit_length() + 7) // 8).to_bytes(2, "big")
            + n.to_bytes((n.bit_length() + 7) // 8, "big")
        )
        self._djn: DjnState | None = None
        self._lock = threading.Lock()

    # -- identity and serialisation ------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Bit length of ``n``."""
        return int(self.n.bit_length())

    @property
    def ciphertext_bytes(self) -> int:
        """Width in bytes of one serialised ciphertext (``ceil(bits(n^2) / 8)``)."""
        return int((self.nsquare.bit_length() + 7) // 8)

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of :meth:`to_bytes`."""
        return hashlib.sha256(self._bytes).hexdigest()

    def to_bytes(self) -> bytes:
        """``b"PAPK" | version u8 | len(n) u16 | n`` (big-endian)."""
        return self._bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> PaillierPublicKey:
        """Inverse of :meth:`to_bytes`; malformed bytes raise :class:`InvalidKey`."""
        reader = Reader(data, error=InvalidKey, what="Paillier public key")
        if reader.take(4) != _PUB_MAGIC or reader.uint("B") != _VERSION:
            raise reader.fail("wrong magic or version")
        n = reader.prefixed_int()
        if reader.remaining():
            raise reader.fail("trailing bytes")
        key = cls(n)
        if key.to_bytes() != bytes(data):
            raise reader.fail("non-canonical encoding")
        return key

    def __copy__(self) -> PaillierPublicKey:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> PaillierPublicKey:
        return self  # immutable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPublicKey) and self.n == other.n

    def __hash__(self) -> int:
        return hash(("PaillierPublicKey", int(self.n)))

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, fingerprint={self.fingerprint[:16]})"

    # -- phe interop ---------------------------------------------------------------------------
    @classmethod
    def from_phe(cls, key: Any) -> PaillierPublicKey:
        """From a ``phe.PaillierPublicKey`` (python-paillier also uses ``g = n + 1``)."""
        if getattr(key, "g", None) != key.n + 1:
            raise CryptoUsageError("phe key does not use g = n + 1")
        return cls(int(key.n))

    def to_phe(self) -> Any:
        """As a ``phe.PaillierPublicKey``."""
        import phe

        return phe.PaillierPublicKey(int(self.n))

    # -- raw operations ------------------------------------------------------------------------
    def raw_encrypt(self, m: int, *, r: int) -> int:
        """``(1 + m*n) * r^n mod n^2`` for ``0 <= m < n``: no encoding, no checks on ``r``.

        You probably want :meth:`encrypt`. Matches ``phe``'s ``raw_encrypt(m, r_value=r)``.
        """
        if not 0 <= m < self.n:
            raise CryptoUsageError("raw plaintext must be in [0, n)")
        return int((self.n * m + 1) * gmpy2.powmod(r, self.n, self.nsquare) % self.nsquare)

    def djn_state(self) -> DjnState:
        """The lazily built DJN fixed-base state of this key in this process (see ``_obfuscators``)."""
        with self._lock:
            if self._djn is None:
                self._djn = DjnState(self.n, resolve(None))
            return self._djn

    @timed
    def raw_obfuscators(
        self,
        count: int,
        *,
        rng: RandomSource | None = None,
        obfuscator: str = "standard",
        processes: int | None = None,
    ) -> list[Any]:
        """``count`` fresh random ``n``-th residues ``x`` (``standard``: ``r^n``; ``djn``: ``h_s^a``)."""
        rng = resolve(rng)
        if obfuscator == "standard":
            rs = draw_units(count, int(self.n), rng)
            return _parallel.map_chunks(standard_obfuscators, rs, processes, self.n)
        if obfuscator == "djn":
            state = self.djn_state()
            alphas = state.draw_alphas(count, rng)
            if processes is not None and processes > 1:
                return _parallel.djn_parallel(alphas, state, processes)
            return state.obfuscators(alphas)
        raise CryptoUsageError(f"unknown obfuscator {obfuscator!r}: choose one of {OBFUSCATORS}")

    # -- encryption ----------------------------------------------------------------------------
    def _obfuscator_source(
        self,
        *,
        pool: ObfuscatorPool | None,
        rng: RandomSource | None,
        obfuscator: str,
        processes: int | None,
    ) -> Callable[[int], list[Any]]:
        """``count -> obfuscators``: taken from ``pool`` (the online path) or computed now."""

        def obfuscate(count: int) -> list[Any]:
            if pool is not None:
                if pool.public_key != self:
                    raise CryptoUsageError("obfuscator pool belongs to another public key")
                return pool.take(count)
            return self.raw_obfuscators(count, rng=rng, obfuscator=obfuscator, processes=processes)

        return obfuscate

    @timed
    def encrypt(
        self,
        x: Any,
        *,
        encoding: FixedPointEncoding | None = None,
        rng: RandomSource | None = None,
        pool: ObfuscatorPool | None = None,
        obfuscator: str = "standard",
        processes: int | None = None,
        bound: int | None = None,
    ) -> EncryptedArray:
        """Encrypt a float or integer array (any shape) or scalar.

        Each value becomes ``v = round(x * 2**precision_bits)`` (default 32 bits, see
        :class:`FixedPointEncoding`) and ``E(v mod n)``. ``pool`` takes the obfuscators from an
        :class:`ObfuscatorPool` (the online path: one multiplication per value); otherwise they
        are computed now with ``obfuscator`` (``"standard"`` default, or ``"djn"``), over
        ``processes`` worker processes when given. ``bound``: a public bound on ``|v|`` the
        array carries instead of the data's ``max |v|`` (a value above it is refused).
        """
        from crypto.paillier._encrypted import encrypt_array

        obfuscate = self._obfuscator_source(
            pool=pool, rng=rng, obfuscator=obfuscator, processes=processes
        )
        return encrypt_array(
            self, x, encoding=encoding or FixedPointEncoding(), obfuscate=obfuscate, bound=bound
        )

    @timed
    def encrypt_packed(
        self,
        x: Any,
        *,
        precision_bits: int = 16,
        value_bits: int = 32,
        slot_bits: int = 48,
        rng: RandomSource | None = None,
        pool: ObfuscatorPool | None = None,
        obfuscator: str = "standard",
        processes: int | None = None,
    ) -> PackedEncryptedArray:
        """Encrypt with several fixed-point values per ciphertext (see :mod:`._packing`)."""
        from crypto.paillier._packing import PackingLayout, encrypt_packed

        obfuscate = self._obfuscator_source(
            pool=pool, rng=rng, obfuscator=obfuscator, processes=processes
        )
        layout = PackingLayout(
            slot_bits=slot_bits, value_bits=value_bits, precision_bits=precision_bits
        )
        return encrypt_packed(self, x, layout=layout, obfuscate=obfuscate)
