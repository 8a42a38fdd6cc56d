"""A binary adaptive range coder and the two binarisations the sparse payload uses.

The coder is the carry-less-by-caching range coder of LZMA (Pavlov; after Martin, "Range
encoding: an algorithm for removing redundancy from a digitised message", 1979): a 32-bit
``range`` and a 33-bit ``low``; a bit of probability ``p0 = P/2^16`` of being 0 splits the range
at ``bound = (range >> 16) * P``; bytes leave when ``range < 2^24``, a carry out of ``low`` is
resolved through the one cached byte and the run of ``0xFF`` bytes behind it. The first byte it
produces is always 0 and is not sent.

Each context keeps an adaptive probability with a warm-up: after ``n`` bits it moves by
``1 / min(n + 2, 32)`` of the distance to the observed bit (a count-based estimate first, then an
exponential forgetting window of ~32 bits), clamped to ``[2^8, 2^16 - 2^8]``. The clamp bounds
the cost of any bit to ``-log2(1 - 2^-8) >= 0.0056`` bits, so a stream of ``L`` bytes can hold at
most ``(8 L + 40) / 0.0056`` decisions: decoding work is linear in the payload, and running past
the end is a :class:`CompressionError`, never a loop without end.

Binarisations (context modelling as in CABAC, Marpe, Schwarz, Wiegand, IEEE TCSVT 13(7), 2003):

* :func:`encode_gaps` -- non-negative integers as adaptive Exp-Golomb codes of ``v = g + 1``:
  ``nb - 1`` one-bits and a zero (``nb = bit_length(v)``, context = position in the prefix), the
  first mantissa bit in a context per ``nb``, the others in a context per bit position.
* :func:`encode_symbols` -- ``bits``-bit symbols MSB first down a binary tree (context = tree
  node), i.e. an adaptive model of the whole ``2^bits`` alphabet that only pays for the
  symbols that occur.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vfl.compression._payloads import CompressionError

__all__ = ["RangeEncoder", "RangeDecoder", "encode_gaps", "decode_gaps", "encode_symbols",
           "decode_symbols", "MIN_BITS_PER_DECISION"]  # fmt: skip

_PROB_BITS = 16
_ONE = 1 << _PROB_BITS
_HALF = _ONE >> 1
_PMIN = 1 << 8
_PMAX = _ONE - _PMIN
_RATE_LIMIT = 32
_TOP = 1 << 24
_MASK32 = 0xFFFFFFFF
MIN_BITS_PER_DECISION = 0.0056
"""A lower bound on ``-log2(p)`` of any decision: ``-log2(1 - 2^-8) = 0.00565``."""
_MAX_GAP_BITS = 40  # Exp-Golomb prefixes longer than this are malformed


class _Model:
    """Adaptive probabilities (of a 0 bit, scaled by 2^16) for ``size`` contexts."""

    __slots__ = ("p", "n")

    def __init__(self, size: int) -> None:
        self.p = [_HALF] * size
        self.n = [0] * size


class RangeEncoder:
    """Encodes adaptive binary decisions; :meth:`finish` returns the bytes."""

    def __init__(self) -> None:
        self._low = 0
        self._range = _MASK32
        self._cache = 0
        self._pending = 1
        self._out = bytearray()

    def _shift_low(self, low: int) -> int:
        if low < 0xFF000000 or low > _MASK32:
            carry = low >> 32
            self._out.append((self._cache + carry) & 0xFF)
            self._out.extend(bytes([(0xFF + carry) & 0xFF]) * (self._pending - 1))
            self._pending = 0
            self._cache = (low >> 24) & 0xFF
        self._pending += 1
        return (low & 0x00FFFFFF) << 8

    def encode(self, model: _Model, contexts: Sequence[int], bits: Sequence[int]) -> None:
        """Code ``bits[i]`` in context ``contexts[i]`` of ``model``, in order."""
        probs, counts = model.p, model.n
        low, rng = self._low, self._range
        for ctx, bit in zip(contexts, bits, strict=True):
            p = probs[ctx]
            bound = (rng >> _PROB_BITS) * p
            n = counts[ctx]
            rate = n + 2 if n < _RATE_LIMIT - 2 else _RATE_LIMIT
            if bit:
                low += bound
                rng -= bound
                p -= p // rate
            else:
                rng = bound
                p += (_ONE - p) // rate
            probs[ctx] = _PMIN if p < _PMIN else (_PMAX if p > _PMAX else p)
            counts[ctx] = n + 1
            while rng < _TOP:
                rng <<= 8
                low = self._shift_low(low)
        self._low, self._range = low, rng

    def finish(self) -> bytes:
        low = self._low
        for _ in range(5):
            low = self._shift_low(low)
        return bytes(self._out[1:])  # the first byte is always 0


class RangeDecoder:
    """Decodes what :class:`RangeEncoder` wrote; reading past the end raises."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._data = bytes(data)
        if len(self._data) < 4:
            raise CompressionError("entropy-coded stream is truncated")
        self._code = int.from_bytes(self._data[:4], "big")
        self._pos = 4
        self._range = _MASK32

    def bit(self, model: _Model, ctx: int) -> int:
        """One decision in context ``ctx`` (the model adapts exactly as the encoder's did)."""
        probs, counts = model.p, model.n
        p = probs[ctx]
        bound = (self._range >> _PROB_BITS) * p
        n = counts[ctx]
        rate = n + 2 if n < _RATE_LIMIT - 2 else _RATE_LIMIT
        if self._code < bound:
            self._range = bound
            p += (_ONE - p) // rate
            bit = 0
        else:
            self._code -= bound
            self._range -= bound
            p -= p // rate
            bit = 1
        probs[ctx] = _PMIN if p < _PMIN else (_PMAX if p > _PMAX else p)
        counts[ctx] = n + 1
        while self._range < _TOP:
            if self._pos >= len(self._data):
                raise CompressionError("entropy-coded stream is truncated")
            self._range <<= 8
            self._code = ((self._code << 8) | self._data[self._pos]) & _MASK32
            self._pos += 1
        return bit

    def check_end(self) -> None:
        """Every byte must have been read: trailing bytes mean the stream was tampered with."""
        if self._pos != len(self._data):
            raise CompressionError("entropy-coded stream has trailing bytes")


# contexts of the gap model: prefix bit q at _PREFIX + q, first mantissa bit of an nb-bit value
# at _FIRST + nb, mantissa bit j (below the first) at _REST + j
_PREFIX, _FIRST, _REST = 0, _MAX_GAP_BITS + 2, 2 * (_MAX_GAP_BITS + 2)
_GAP_CONTEXTS = 3 * (_MAX_GAP_BITS + 2)


def _bit_length(v: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of positive int64 values, exactly (no floating-point rounding)."""
    nb = np.zeros(v.shape, dtype=np.int64)
    rest = v.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        big = rest >= (1 << shift)
        nb += np.where(big, shift, 0)
        rest = np.where(big, rest >> shift, rest)
    return nb + (rest > 0)


def encode_gaps(enc: RangeEncoder, gaps: np.ndarray) -> None:
    """Adaptive Exp-Golomb codes of the non-negative ``gaps`` (see the module doc).

    Gap ``v - 1`` with ``nb = bit_length(v)`` makes ``2 nb - 1`` decisions: at step ``t`` of
    its run, ``t < nb - 1``: a prefix 1; ``t = nb - 1``: the prefix 0; ``t >= nb``: mantissa bit
    ``j = 2 nb - 2 - t`` of ``v`` (all built with numpy, then coded in one loop).
    """
    v = np.asarray(gaps, dtype=np.int64) + 1
    if v.size == 0:
        return
    nb = _bit_length(v)
    if int(nb.max()) > _MAX_GAP_BITS:
        raise CompressionError("gap too large to code")
    length = 2 * nb - 1
    owner = np.repeat(np.arange(v.size), length)
    t = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length)
    nbo, vo = nb[owner], v[owner]
    j = np.clip(2 * nbo - 2 - t, 0, None)
    ctx = np.where(
        t < nbo - 1,
        _PREFIX + t + 1,
        np.where(t == nbo - 1, _PREFIX + nbo, np.where(t == nbo, _FIRST + nbo, _REST + j)),
    )
    bits = np.where(t < nbo - 1, 1, np.where(t == nbo - 1, 0, (vo >> j) & 1))
    enc.encode(_Model(_GAP_CONTEXTS), ctx.tolist(), bits.tolist())


def decode_gaps(dec: RangeDecoder, count: int, *, limit: int) -> list[int]:
    """``count`` gaps; each must be below ``limit`` (a longer prefix is a malformed stream)."""
    m = _Model(_GAP_CONTEXTS)
    max_nb = min(_MAX_GAP_BITS, (limit + 1).bit_length())
    bit = dec.bit
    out: list[int] = []
    for _ in range(count):
        nb = 1
        while bit(m, _PREFIX + nb):
            nb += 1
            if nb > max_nb:
                raise CompressionError("sparse index gap out of range")
        v = 1
        if nb >= 2:
            v = 2 | bit(m, _FIRST + nb)
            for j in range(nb - 3, -1, -1):
                v = (v << 1) | bit(m, _REST + j)
        if v > limit:
            raise CompressionError("sparse index gap out of range")
        out.append(v - 1)
    return out


def encode_symbols(enc: RangeEncoder, symbols: np.ndarray, *, bits: int) -> None:
    """``bits``-bit symbols down an adaptive binary tree: step ``t`` codes bit ``bits - 1 - t``
    in context ``node = 2^t + (s >> (bits - t))`` (a 1 followed by the bits already coded)."""
    s = np.asarray(symbols, dtype=np.int64)
    t = np.arange(bits)
    nodes = (1 << t)[None, :] + (s[:, None] >> (bits - t)[None, :])
    values = (s[:, None] >> (bits - 1 - t)[None, :]) & 1
    enc.encode(_Model(1 << bits), nodes.ravel().tolist(), values.ravel().tolist())


def decode_symbols(dec: RangeDecoder, count: int, *, bits: int) -> list[int]:
    """``count`` symbols of ``bits`` bits (always in range by construction)."""
    model = _Model(1 << bits)
    top = 1 << bits
    bit = dec.bit
    out: list[int] = []
    for _ in range(count):
        node = 1
        while node < top:
            node = (node << 1) | bit(model, node)
        out.append(node - top)
    return out
