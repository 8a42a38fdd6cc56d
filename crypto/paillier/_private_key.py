"""The Paillier private key (``p``, ``q``), CRT decryption and key generation.

CRT decryption (Paillier 1999, section 7; as in python-paillier):
``m_p = L_p(c^(p-1) mod p^2) * h_p mod p`` with ``L_p(u) = (u - 1) / p`` and
``h_p = L_p(g^(p-1) mod p^2)^(-1) mod p``, the same modulo ``q``, then
``m = m_p + p * ((m_q - m_p) * p^(-1) mod q)``.

Key sizes: 2048 (default), 3072 or 4096 bits. Smaller keys exist only for tests, through the
explicit ``insecure_allow_small_keys=True``, which warns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto._timing import timed
from crypto.errors import CryptoUsageError, InvalidCiphertext, InvalidKey
from crypto.paillier import _parallel
from crypto.paillier._encoding import FixedPointEncoding
from crypto.paillier._keys import (
    _MIN_INSECURE_BITS,
    _PRIV_MAGIC,
    _VERSION,
    KEY_SIZES,
    PaillierPublicKey,
    _warn_small,
)
from crypto.paillier._obfuscators import crt_obfuscators, draw_units
from crypto.paillier._serial import Reader
from crypto.random import RandomSource, resolve

if TYPE_CHECKING:
    from crypto.paillier._encrypted import EncryptedArray
    from crypto.paillier._packing import PackedEncryptedArray

__all__ = ["PaillierPrivateKey", "generate_keypair", "crt_decrypt"]


def _is_probable_prime(v: int) -> bool:
    return bool(gmpy2.is_prime(v, 40))


class PaillierPrivateKey:
    """The factorisation ``n = p*q``: decrypts (CRT) and encrypts faster than the public key."""

    __slots__ = ("public_key", "p", "q", "psquare", "qsquare", "hp", "hq", "p_inv_q")

    def __init__(self, public_key: PaillierPublicKey, p: int, q: int) -> None:
        """Use :func:`generate_keypair`, :meth:`from_primes` or :meth:`from_bytes` instead."""
        p, q = (int(p), int(q)) if p < q else (int(q), int(p))
        if p == q or p * q != public_key.n:
            raise InvalidKey("p * q does not match the public key")
        self.public_key = public_key
        self.p: Any = gmpy2.mpz(p)
        self.q: Any = gmpy2.mpz(q)
        self.psquare: Any = self.p * self.p
        self.qsquare: Any = self.q * self.q
        self.hp: Any = self._h(self.p, self.psquare)
        self.hq: Any = self._h(self.q, self.qsquare)
        self.p_inv_q: Any = gmpy2.invert(self.p, self.q)

    def _h(self, prime: Any, prime_sq: Any) -> Any:
        """``h_p = L_p(g^(p-1) mod p^2)^(-1) mod p`` with ``g = n + 1``."""
        g = self.public_key.n + 1
        lp = (gmpy2.powmod(g, prime - 1, prime_sq) - 1) // prime
        return gmpy2.invert(lp, prime)

    @classmethod
    def from_primes(
        cls, p: int, q: int, *, insecure_allow_small_keys: bool = False
    ) -> PaillierPrivateKey:
        """Key from two distinct primes (known-answer tests use tiny fixed primes)."""
        p, q = int(p), int(q)
        if not (_is_probable_prime(p) and _is_probable_prime(q)) or p == q:
            raise CryptoUsageError("p and q must be distinct primes")
        n = p * q
        if gmpy2.gcd(n, (p - 1) * (q - 1)) != 1:
            raise CryptoUsageError("gcd(n, (p-1)(q-1)) must be 1")
        if n.bit_length() < KEY_SIZES[0]:
            if not insecure_allow_small_keys:
                raise CryptoUsageError(
                    f"{n.bit_length()}-bit key: below 2048 bits needs insecure_allow_small_keys=True"
                )
            if n.bit_length() < _MIN_INSECURE_BITS:
                raise CryptoUsageError("Paillier modulus must be at least 64 bits")
            _warn_small(n.bit_length())
        return cls(PaillierPublicKey(n), p, q)

    def to_bytes(self) -> bytes:
        """``b"PASK" | version u8 | len(p) u16 | p | len(q) u16 | q``: the owner's key file only."""
        from crypto.paillier._serial import pack_uint

        return _PRIV_MAGIC + bytes([_VERSION]) + pack_uint(int(self.p)) + pack_uint(int(self.q))

    @classmethod
    def from_bytes(cls, data: bytes) -> PaillierPrivateKey:
        """Inverse of :meth:`to_bytes`; malformed bytes raise :class:`InvalidKey`."""
        reader = Reader(data, error=InvalidKey, what="Paillier private key")
        if reader.take(4) != _PRIV_MAGIC or reader.uint("B") != _VERSION:
            raise reader.fail("wrong magic or version")
        p, q = reader.prefixed_int(), reader.prefixed_int()
        if reader.remaining():
            raise reader.fail("trailing bytes")
        if p < 3 or q < 3 or p == q or not (_is_probable_prime(p) and _is_probable_prime(q)):
            raise reader.fail("factors are not distinct primes")
        return cls(PaillierPublicKey(p * q), p, q)

    @classmethod
    def from_phe(cls, key: Any) -> PaillierPrivateKey:
        """From a ``phe.PaillierPrivateKey``."""
        return cls(PaillierPublicKey.from_phe(key.public_key), int(key.p), int(key.q))

    def to_phe(self) -> Any:
        """As a ``phe.PaillierPrivateKey``."""
        import phe

        return phe.PaillierPrivateKey(self.public_key.to_phe(), int(self.p), int(self.q))

    def __copy__(self) -> PaillierPrivateKey:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, Any]) -> PaillierPrivateKey:
        return self  # immutable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PaillierPrivateKey) and self.p == other.p and self.q == other.q

    def __hash__(self) -> int:
        return hash(("PaillierPrivateKey", int(self.p), int(self.q)))

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(bits={self.public_key.bits}, fingerprint={self.public_key.fingerprint[:16]})"

    # -- raw operations ------------------------------------------------------------------------
    def raw_decrypt(self, c: int) -> int:
        """CRT decryption of one ciphertext to ``m`` in ``[0, n)``. You probably want :meth:`decrypt`."""
        return int(self.raw_decrypt_many([gmpy2.mpz(c)])[0])

    @timed
    def raw_decrypt_many(self, cts: list[Any], *, processes: int | None = None) -> list[Any]:
        """CRT decryption of many ciphertexts (see the module docstring for the formula)."""
        for c in cts:
            if not 0 < c < self.public_key.nsquare:
                raise InvalidCiphertext("ciphertext out of range")
        return _parallel.map_chunks(
            crt_decrypt, cts, processes, self.p, self.q, self.hp, self.hq, self.p_inv_q
        )

    @timed
    def raw_obfuscators(
        self, count: int, *, rng: RandomSource | None = None, processes: int | None = None
    ) -> list[Any]:
        """``count`` random ``n``-th residues by the owner's CRT shortcut (same law as ``r^n``)."""
        rs = draw_units(count, int(self.public_key.n), resolve(rng))
        return _parallel.map_chunks(crt_obfuscators, rs, processes, self.p, self.q)

    # -- encryption and decryption -------------------------------------------------------------
    @timed
    def encrypt(
        self,
        x: Any,
        *,
        encoding: FixedPointEncoding | None = None,
        rng: RandomSource | None = None,
        processes: int | None = None,
        bound: int | None = None,
    ) -> EncryptedArray:
        """The key owner's encryption: like :meth:`PaillierPublicKey.encrypt`, CRT obfuscators."""
        from crypto.paillier._encrypted import encrypt_array

        def obfuscate(count: int) -> list[Any]:
            return self.raw_obfuscators(count, rng=rng, processes=processes)

        return encrypt_array(
            self.public_key,
            x,
            encoding=encoding or FixedPointEncoding(),
            obfuscate=obfuscate,
            bound=bound,
        )

    @timed
    def decrypt(
        self, enc: EncryptedArray | PackedEncryptedArray, *, processes: int | None = None
    ) -> npt.NDArray[np.float64]:
        """Decrypt to a float64 array of the same shape (packed arrays too)."""
        from crypto.paillier._encrypted import EncryptedArray, decode_plaintexts
        from crypto.paillier._packing import PackedEncryptedArray

        if isinstance(enc, PackedEncryptedArray):
            return self.decrypt_packed(enc, processes=processes)
        if not isinstance(enc, EncryptedArray):
            raise CryptoUsageError(f"cannot decrypt {type(enc).__name__}")
        if enc.public_key != self.public_key:
            raise CryptoUsageError("ciphertexts belong to another key")
        ms = self.raw_decrypt_many(enc.raw_ciphertexts(), processes=processes)
        return decode_plaintexts(self.public_key, ms, scale=enc.scale, shape=enc.shape)

    @timed
    def decrypt_packed(
        self, packed: PackedEncryptedArray, *, processes: int | None = None
    ) -> npt.NDArray[np.float64]:
        """Decrypt a :class:`PackedEncryptedArray`: one CRT decryption per ciphertext."""
        from crypto.paillier._packing import PackedEncryptedArray, unpack_plaintexts

        if not isinstance(packed, PackedEncryptedArray):
            raise CryptoUsageError(f"cannot decrypt_packed {type(packed).__name__}")
        if packed.public_key != self.public_key:
            raise CryptoUsageError("ciphertexts belong to another key")
        ms = self.raw_decrypt_many(packed.raw_ciphertexts(), processes=processes)
        return unpack_plaintexts(ms, packed)


def crt_decrypt(cts: list[Any], p: Any, q: Any, hp: Any, hq: Any, p_inv_q: Any) -> list[Any]:
    """CRT decryption of each ciphertext (module docstring); a pure function for worker processes.

    ``m_p = L_p(c^(p-1) mod p^2) h_p mod p``, ``m_q`` likewise, ``m = m_p + p ((m_q - m_p) p^-1 mod q)``.
    """
    psq, qsq = p * p, q * q
    pm1, qm1 = p - 1, q - 1
    out = []
    with gmpy2.context(allow_release_gil=True):
        for c in cts:
            mp = (gmpy2.powmod(c, pm1, psq) - 1) // p * hp % p
            mq = (gmpy2.powmod(c, qm1, qsq) - 1) // q * hq % q
            out.append(mp + p * ((mq - mp) * p_inv_q % q))
    return out


def _random_prime(bits: int, rng: RandomSource) -> Any:
    """A prime of exactly ``bits`` bits with the top two bits set (so ``p*q`` has ``2*bits``)."""
    nbytes = (bits + 7) // 8
    while True:
        v = int.from_bytes(rng.random_bytes(nbytes), "big") >> (nbytes * 8 - bits)
        v |= (3 << (bits - 2)) | 1
        p = gmpy2.next_prime(gmpy2.mpz(v) - 1)
        if p.bit_length() == bits:
            return p


def generate_keypair(
    bits: int = 2048, *, rng: RandomSource | None = None, insecure_allow_small_keys: bool = False
) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A fresh key pair with an ``bits``-bit ``n = p*q`` (``p``, ``q`` of ``bits/2`` bits each).

    ``bits`` must be 2048, 3072 or 4096; any even size of 64 bits or more below 2048 is allowed
    only with ``insecure_allow_small_keys=True`` (for tests), which warns.
    """
    if bits not in KEY_SIZES:
        if bits >= KEY_SIZES[0] or not insecure_allow_small_keys:
            raise CryptoUsageError(f"Paillier key size must be one of {KEY_SIZES}, got {bits}")
        if bits < _MIN_INSECURE_BITS or bits % 2:
            raise CryptoUsageError("insecure Paillier key size must be even and at least 64")
        _warn_small(bits)  # here, not in the timed helper: the warning names the caller's line
    return _generate(bits, resolve(rng))


@timed
def _generate(bits: int, rng: RandomSource) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    while True:
        p = _random_prime(bits // 2, rng)
        q = _random_prime(bits // 2, rng)
        n = p * q
        if p != q and n.bit_length() == bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    public_key = PaillierPublicKey(int(n))
    return public_key, PaillierPrivateKey(public_key, int(p), int(q))
