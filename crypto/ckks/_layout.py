"""Slot layout of an encrypted ``rows x dim`` batch: pure functions, no TenSEAL.

Rows are split into *chunks* of at most ``S`` rows (``S`` = slots per ciphertext). A chunk of
``r`` rows packs ``g = min(dim, S // r)`` columns into each ciphertext, one column per *block* of
``r`` consecutive slots (column-major)::

    slot[b * r + i] = X[row_start + i, columns[b]]          (columns[b] = -1: unused block)

so a 256 x 16 batch with ``S = 4096`` is one fully packed ciphertext (16 blocks of 256), and a
4096 x 16 batch is 16 ciphertexts of one column each. The logical value of column ``j`` is the
**sum of every block assigned to** ``j`` in the chunk; a fresh encryption assigns each column to
exactly one block.

Plaintext matrix product ``Y = X @ W`` without rotations (no Galois keys): for output column
``k`` and each input ciphertext ``m`` multiply slot-wise by the plaintext whose block ``b`` holds
``W[columns_m[b], k]``, and add over ``m``. Block ``b`` of the result then holds the partial
product ``sum_m X[:, columns_m[b]] * W[columns_m[b], k]``, and ``Y[:, k]`` is the sum of the
blocks. Every block is assigned to ``k``; the key owner adds the blocks after decryption. To hide
the individual partial products (which would reveal ``W`` to the key owner), the evaluator adds
zero-sum shares ``z_0 + ... + z_{g-1} = 0`` to the blocks (additive secret sharing of zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crypto.errors import CryptoUsageError
from crypto.random import RandomSource

__all__ = [
    "Chunk",
    "plan",
    "pack",
    "unpack_into",
    "plain_for_add",
    "matmul_plain_vectors",
    "product_chunk",
    "zero_sum_shares",
    "uniform",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Chunk:
    """Rows ``[row_start, row_start + rows)`` in ``len(columns)`` ciphertexts of equal width.

    ``columns[m][b]`` is the batch column whose values block ``b`` of ciphertext ``m`` carries
    (``-1``: the block is unused and holds zeros). Every ciphertext has ``blocks * rows`` slots.
    """

    row_start: int
    rows: int
    columns: tuple[tuple[int, ...], ...]

    @property
    def blocks(self) -> int:
        """Blocks per ciphertext (``g``)."""
        return len(self.columns[0])

    @property
    def width(self) -> int:
        """Slots used per ciphertext: ``blocks * rows``."""
        return self.blocks * self.rows

    @property
    def column_unique(self) -> bool:
        """True when every column lives in exactly one block (fresh encryptions and their sums)."""
        used = [c for cols in self.columns for c in cols if c >= 0]
        return len(used) == len(set(used))


def plan(n_rows: int, n_cols: int, *, slot_count: int) -> tuple[Chunk, ...]:
    """Chunks for a fresh ``n_rows x n_cols`` batch (see the module docstring)."""
    if n_rows < 1 or n_cols < 1:
        raise CryptoUsageError(
            f"a CKKS batch needs at least one row and column, got {n_rows}x{n_cols}"
        )
    chunks = []
    for row_start in range(0, n_rows, slot_count):
        rows = min(slot_count, n_rows - row_start)
        blocks = min(n_cols, slot_count // rows)
        n_cts = -(-n_cols // blocks)
        columns = tuple(
            tuple(m * blocks + b if m * blocks + b < n_cols else -1 for b in range(blocks))
            for m in range(n_cts)
        )
        chunks.append(Chunk(row_start=row_start, rows=rows, columns=columns))
    return tuple(chunks)


def pack(values: FloatArray, chunk: Chunk) -> list[FloatArray]:
    """Slot vectors (one per ciphertext) of ``chunk`` for the matrix ``values``."""
    part = values[chunk.row_start : chunk.row_start + chunk.rows]
    out = []
    for cols in chunk.columns:
        vec = np.zeros((chunk.blocks, chunk.rows), dtype=np.float64)
        for b, c in enumerate(cols):
            if c >= 0:
                vec[b] = part[:, c]
        out.append(vec.reshape(-1))
    return out


def unpack_into(out: FloatArray, decrypted: Sequence[FloatArray], chunk: Chunk) -> None:
    """Add the decrypted slot vectors of ``chunk`` into ``out`` (summing blocks per column)."""
    part = out[chunk.row_start : chunk.row_start + chunk.rows]
    for vec, cols in zip(decrypted, chunk.columns, strict=True):
        blocks = np.asarray(vec, dtype=np.float64)[: chunk.width].reshape(chunk.blocks, chunk.rows)
        for b, c in enumerate(cols):
            if c >= 0:
                part[:, c] += blocks[b]


def plain_for_add(values: FloatArray, chunk: Chunk) -> list[FloatArray]:
    """Slot vectors adding ``values`` once per column: into the first block carrying it."""
    part = values[chunk.row_start : chunk.row_start + chunk.rows]
    seen: set[int] = set()
    out = []
    for cols in chunk.columns:
        vec = np.zeros((chunk.blocks, chunk.rows), dtype=np.float64)
        for b, c in enumerate(cols):
            if c >= 0 and c not in seen:
                seen.add(c)
                vec[b] = part[:, c]
        out.append(vec.reshape(-1))
    return out


def matmul_plain_vectors(weights: FloatArray, chunk: Chunk, k: int) -> list[FloatArray]:
    """Per input ciphertext, the slot-wise multiplier whose block ``b`` is ``W[columns[b], k]``."""
    out = []
    for cols in chunk.columns:
        per_block = np.array([weights[c, k] if c >= 0 else 0.0 for c in cols], dtype=np.float64)
        out.append(np.repeat(per_block, chunk.rows))
    return out


def product_chunk(chunk: Chunk, n_out: int) -> Chunk:
    """Layout of ``X @ W`` for ``chunk``: one ciphertext per output column, all blocks summed."""
    return Chunk(
        row_start=chunk.row_start,
        rows=chunk.rows,
        columns=tuple((k,) * chunk.blocks for k in range(n_out)),
    )


def uniform(shape: tuple[int, ...], *, rng: RandomSource) -> FloatArray:
    """Uniform floats in ``[0, 1)`` with 53 random bits each, drawn from ``rng``."""
    count = int(np.prod(shape))
    raw = np.frombuffer(rng.random_bytes(8 * count), dtype="<u8")
    return ((raw >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(shape)


def zero_sum_shares(blocks: int, rows: int, *, bits: int, rng: RandomSource) -> FloatArray:
    """``blocks x rows`` shares, uniform in ``[-2**bits, 2**bits)`` except the last, summing to 0.

    Any ``blocks - 1`` of them are independent and uniform, so a block's partial product
    ``p_b + z_b`` is statistically hidden up to ``|p_b| / 2**bits``, while the column sum is
    unchanged. (Additive secret sharing of zero over the reals.)
    """
    shares = np.zeros((blocks, rows), dtype=np.float64)
    if blocks > 1:
        shares[:-1] = (uniform((blocks - 1, rows), rng=rng) * 2.0 - 1.0) * 2.0**bits
        shares[-1] = -shares[:-1].sum(axis=0)
    return shares
