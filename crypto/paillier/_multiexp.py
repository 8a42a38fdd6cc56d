"""Multi-exponentiation ``prod_k b_k^(e_k) mod M`` for many bases and short signed exponents.

This is ``X.T @ enc`` under Paillier: ``E(sum_k x_k v_k) = prod_k E(v_k)^(x_k)``.

Bucket method (Pippenger 1976; the form used in practice is described in Bernstein et al.,
"Faster batch forgery identification", INDOCRYPT 2012, section 4): split each ``|e_k|`` into
``W = ceil(bits / c)`` windows of ``c`` bits. For window ``w``, put ``b_k`` into bucket
``d = digit_w(|e_k|)`` (one multiplication), then ``S_w = prod_d B_d^d`` is computed with the
running-product trick in ``2 * 2^c`` multiplications. Horner over the windows gives
``prod_w S_w^(2^(c*w))``. Cost about ``W * (K + 2^(c+1))`` multiplications instead of
``K * 1.5 * bits`` for one exponentiation per term.

Signs: positive and negative exponents go into separate bucket sets; the result is
``P * N^(-1) mod M`` with **one** modular inverse per output row (never ``M - e`` exponents).
"""

from __future__ import annotations

from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

__all__ = ["multiexp_rows", "left_matmul", "choose_window", "INT64_EXPONENT_LIMIT"]

INT64_EXPONENT_LIMIT = 1 << 62
_NAIVE_BELOW = 16


def choose_window(count: int, bits: int) -> int:
    """Window width ``c`` minimising ``ceil(bits / c) * (count + 4 * 2^c)``."""
    best_c, best_cost = 1, float("inf")
    for c in range(1, 17):
        cost = -(-bits // c) * (count + 4 * (1 << c))
        if cost < best_cost:
            best_c, best_cost = c, cost
    return best_c


def _aggregate(buckets: list[Any], modulus: Any) -> Any:
    """``prod_d buckets[d]^d`` by running products: ``S = S * B_d`` then ``T = T * S`` (d descending)."""
    running = None
    total = None
    for d in range(len(buckets) - 1, 0, -1):
        b = buckets[d]
        if b is not None:
            running = b if running is None else running * b % modulus
        if running is not None:
            total = running if total is None else total * running % modulus
    return gmpy2.mpz(1) if total is None else total


def _pippenger_row(bases: list[Any], exps: npt.NDArray[np.int64], modulus: Any) -> Any:
    mags = np.abs(exps)
    bits = int(mags.max()).bit_length() if mags.size else 0
    if bits == 0:
        return gmpy2.mpz(1)
    nz = np.count_nonzero(mags)
    c = choose_window(int(nz), bits)
    mask = (1 << c) - 1
    windows = -(-bits // c)
    neg = exps < 0
    acc_pos = gmpy2.mpz(1)
    acc_neg = gmpy2.mpz(1)
    for w in range(windows - 1, -1, -1):
        if w != windows - 1:
            shift = 1 << c
            acc_pos = gmpy2.powmod(acc_pos, shift, modulus)
            acc_neg = gmpy2.powmod(acc_neg, shift, modulus)
        digits = (mags >> (c * w)) & mask
        idx = np.flatnonzero(digits)
        pos_b: list[Any] = [None] * (mask + 1)
        neg_b: list[Any] = [None] * (mask + 1)
        for i, d, is_neg in zip(idx.tolist(), digits[idx].tolist(), neg[idx].tolist(), strict=True):
            bucket = neg_b if is_neg else pos_b
            cur = bucket[d]
            bucket[d] = bases[i] if cur is None else cur * bases[i] % modulus
        acc_pos = acc_pos * _aggregate(pos_b, modulus) % modulus
        acc_neg = acc_neg * _aggregate(neg_b, modulus) % modulus
    if acc_neg == 1:
        return acc_pos
    return acc_pos * gmpy2.invert(acc_neg, modulus) % modulus


def _naive_row(bases: list[Any], exps: list[int], modulus: Any) -> Any:
    """``prod b^e`` by one exponentiation per term (gmpy2 inverts for negative ``e``)."""
    acc = gmpy2.mpz(1)
    for b, e in zip(bases, exps, strict=True):
        if e:
            acc = acc * gmpy2.powmod(b, e, modulus) % modulus
    return acc


def multiexp_rows(bases: list[Any], scalars: npt.NDArray[Any], modulus: Any) -> list[Any]:
    """For each row ``i`` of ``scalars`` (shape ``(m, K)``): ``prod_k bases[k]^scalars[i, k] mod M``.

    Every base must be invertible modulo ``M`` when a negative exponent meets it (Paillier
    ciphertexts are units of ``Z_{n^2}``). ``int64`` scalars (``|e| < 2^62``) take the bucket
    method; object arrays of Python ints (any size) fall back to one exponentiation per term.
    """
    modulus = gmpy2.mpz(modulus)
    m, k = scalars.shape
    if k != len(bases):
        raise ValueError("scalars and bases do not match")
    if scalars.dtype == np.int64 and k >= _NAIVE_BELOW:
        if scalars.size and int(np.abs(scalars).max()) >= INT64_EXPONENT_LIMIT:
            raise ValueError("int64 exponents must be below 2^62 in magnitude")
        return [_pippenger_row(bases, scalars[i], modulus) for i in range(m)]
    return [_naive_row(bases, [int(v) for v in scalars[i].tolist()], modulus) for i in range(m)]


def left_matmul(
    a2: npt.NDArray[Any], c2: npt.NDArray[Any], modulus: Any, processes: int | None
) -> npt.NDArray[Any]:
    """``out[i, j] = prod_l c2[l, j]^a2[i, l] mod M`` for integer ``a2`` (m, k), ciphertexts ``c2`` (k, j).

    Exponents below ``2^62`` in magnitude take the bucket method (over ``processes`` workers
    when given); larger ones one exponentiation per term.
    """
    from crypto.paillier import _parallel

    small = a2.size == 0 or max(abs(int(v)) for v in a2.reshape(-1).tolist()) < INT64_EXPONENT_LIMIT
    scalars = a2.astype(np.int64) if small else a2
    workers = _parallel.check_processes(processes)
    out = np.empty((a2.shape[0], c2.shape[1]), dtype=object)
    for j in range(c2.shape[1]):
        bases = c2[:, j].tolist()
        if small and workers > 1:
            out[:, j] = _parallel.multiexp_parallel(bases, scalars, modulus, workers)
        else:
            out[:, j] = multiexp_rows(bases, scalars, modulus)
    return out
