"""Named CKKS parameter presets, checked against the HomomorphicEncryption.org security table.

A preset fixes the ring degree ``N`` (``poly_modulus_degree``), the chain of coefficient-modulus
primes (bit sizes; the last one is the special prime used only for key switching) and the
encoding scale ``Delta = 2**scale_bits``. Security depends only on ``N`` and the total modulus
size ``log2(q) = sum(coeff_mod_bit_sizes)``; the bounds are Table 1 of

    M. Albrecht et al., "Homomorphic Encryption Security Standard", HomomorphicEncryption.org,
    Toronto, November 2018 (ternary / uniform secret, error sigma = 3.2, classical attacks),

the same table Microsoft SEAL enforces when it builds a context. SEAL (as shipped in TenSEAL)
refuses any parameters above the 128-bit bound, so no insecure preset can be created here: a
peer cannot hand us weaker parameters either, because loading them fails the same check.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto.errors import CryptoUsageError

__all__ = ["CKKSPreset", "PRESETS", "HE_STANDARD_MAX_LOGQ", "get_preset", "security_bits"]

#: Max log2(q) per ring degree N for 128/192/256-bit classical security (HE standard, Table 1).
HE_STANDARD_MAX_LOGQ: dict[int, dict[int, int]] = {
    1024: {128: 27, 192: 19, 256: 14},
    2048: {128: 54, 192: 37, 256: 29},
    4096: {128: 109, 192: 75, 256: 58},
    8192: {128: 218, 192: 152, 256: 118},
    16384: {128: 438, 192: 305, 256: 237},
    32768: {128: 881, 192: 611, 256: 476},
}


def security_bits(*, poly_modulus_degree: int, total_modulus_bits: int) -> int:
    """Highest level in {128, 192, 256} whose HE-standard bound admits ``log2 q``; 0 if none."""
    bounds = HE_STANDARD_MAX_LOGQ.get(poly_modulus_degree)
    if bounds is None:
        return 0
    levels = [level for level, max_logq in bounds.items() if total_modulus_bits <= max_logq]
    return max(levels, default=0)


@dataclass(frozen=True)
class CKKSPreset:
    """CKKS parameters: ring degree, modulus chain and scale (see the module docstring).

    ``slot_count = N / 2`` real values fit in one ciphertext. ``depth = len(chain) - 2`` is the
    number of rescalings (multiplications) available: the first prime holds the result and the
    last is the special prime. After each multiplication the result is rescaled by one
    ``scale_bits`` prime, so ``first_prime_bits - scale_bits`` bits remain for the integer part.
    """

    name: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int

    def __post_init__(self) -> None:
        if len(self.coeff_mod_bit_sizes) < 3:
            raise CryptoUsageError(f"preset {self.name!r} needs at least three moduli")
        if self.security_bits < 128:
            raise CryptoUsageError(
                f"preset {self.name!r} is below 128-bit security (N={self.poly_modulus_degree}, "
                f"log2 q={self.total_modulus_bits}); SEAL refuses it"
            )
        inner = self.coeff_mod_bit_sizes[1:-1]
        if any(bits != self.scale_bits for bits in inner):
            raise CryptoUsageError(f"preset {self.name!r}: inner primes must equal the scale bits")

    @property
    def slot_count(self) -> int:
        """Real values per ciphertext: ``N / 2``."""
        return self.poly_modulus_degree // 2

    @property
    def total_modulus_bits(self) -> int:
        """``log2 q`` including the special prime (what the security table bounds)."""
        return sum(self.coeff_mod_bit_sizes)

    @property
    def depth(self) -> int:
        """Number of multiplications (rescalings) a fresh ciphertext supports."""
        return len(self.coeff_mod_bit_sizes) - 2

    @property
    def security_bits(self) -> int:
        """Classical security level per the HE standard table (128, 192 or 256)."""
        return security_bits(
            poly_modulus_degree=self.poly_modulus_degree,
            total_modulus_bits=self.total_modulus_bits,
        )


PRESETS: dict[str, CKKSPreset] = {
    # 200 bits <= 218 for N = 8192: 128-bit. 4096 slots, two multiplications, ~1e-7 precision.
    "default": CKKSPreset(
        name="default",
        poly_modulus_degree=8192,
        coeff_mod_bit_sizes=(60, 40, 40, 60),
        scale_bits=40,
    ),
    # 360 bits <= 438 for N = 16384: 128-bit. 8192 slots, six multiplications.
    "deep": CKKSPreset(
        name="deep",
        poly_modulus_degree=16384,
        coeff_mod_bit_sizes=(60, 40, 40, 40, 40, 40, 40, 60),
        scale_bits=40,
    ),
}


def get_preset(preset: str | CKKSPreset) -> CKKSPreset:
    """Resolve a preset name from :data:`PRESETS` (or pass a :class:`CKKSPreset` through)."""
    if isinstance(preset, CKKSPreset):
        return preset
    try:
        return PRESETS[preset]
    except KeyError:
        raise CryptoUsageError(
            f"unknown CKKS preset {preset!r}; choose one of {sorted(PRESETS)}"
        ) from None
