"""Canonical byte encoding of ids, identical at every party, plus null and duplicate policy.

Rules (docs/protocols/psi.md, "Id normalisation"):

* integers of any width (Python ``int``, numpy integers) -> canonical decimal string, e.g.
  ``7``, ``np.int64(7)`` and ``"7"`` all become ``b"7"``; ``-3`` -> ``b"-3"``;
* floats (as pandas makes them from a CSV column that has gaps) -> the decimal string of the
  integer when the value is integral (``1.0`` -> ``b"1"``), otherwise an error;
* strings -> Unicode NFC normal form, surrounding whitespace stripped, UTF-8 encoded; a string
  that is empty after stripping is treated as a null;
* booleans, bytes and anything else -> an error (ambiguous across parties);
* nulls (``None``, ``NaN``, ``pandas.NA``/``NaT``) -> an error naming the column and count.

Duplicates: ``"error"`` (default) raises with the count and an example; ``"first"`` keeps the first
occurrence of each id (the later rows are dropped from the PSI and from the aligned output).
"""

from __future__ import annotations

import enum
import hashlib
import math
import numbers
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from psi.errors import PSIUsageError

__all__ = ["Duplicates", "NormalisedIds", "normalise_id", "normalise_ids"]

_MAX_EXAMPLES = 3
_CHUNK = 1 << 16


class Duplicates(enum.Enum):
    """What to do with an id that appears on several rows."""

    ERROR = "error"
    FIRST = "first"


@dataclass(frozen=True)
class NormalisedIds:
    """Unique canonical ids, stored compactly, and the input rows they came from.

    Id ``i`` is ``blob[offsets[i]:offsets[i + 1]]``, the canonical encoding of the id on input
    row ``rows[i]``; ``rows`` is increasing and no id repeats. One bytes buffer plus two int64
    arrays (about 16 bytes per id beyond the ids themselves) instead of a Python object per id,
    so ten million ids fit in a few hundred megabytes.
    """

    blob: bytes
    offsets: np.ndarray
    rows: np.ndarray
    n_input: int
    n_duplicates_dropped: int

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.blob[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def take(self, indices: np.ndarray) -> list[bytes]:
        """The ids at ``indices`` (a batch), as bytes objects."""
        idx = np.asarray(indices, dtype=np.int64)
        starts = self.offsets[idx].tolist()
        ends = self.offsets[idx + 1].tolist()
        blob = self.blob
        return [blob[s:e] for s, e in zip(starts, ends, strict=True)]

    @property
    def ids(self) -> tuple[bytes, ...]:
        """Every id as a tuple (materialises one object per id: for small inputs and tests)."""
        return tuple(self.take(np.arange(len(self))))


def _is_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, np.floating) and bool(np.isnan(value)):
        return True
    # pandas.NA, pandas.NaT and numpy.datetime64("NaT") are not equal to themselves or raise.
    try:
        return bool(value != value)  # noqa: PLR0124 - NaN-like test
    except (TypeError, ValueError):
        return True


def normalise_id(value: object) -> bytes | None:
    """Canonical UTF-8 encoding of one id, or ``None`` for a null / blank id.

    >>> normalise_id(7), normalise_id("  7 "), normalise_id(7.0)
    (b'7', b'7', b'7')

    Raises :class:`PSIUsageError` (without the column context) for ids of an unsupported type
    and for non-integral floats.
    """
    if type(value) is int:
        return str(value).encode("ascii")
    if type(value) is str:
        text = unicodedata.normalize("NFC", value).strip()
        return text.encode("utf-8") if text else None
    if isinstance(value, bool | np.bool_):
        raise PSIUsageError(f"boolean id {value!r} is ambiguous; use integers or strings")
    if isinstance(value, str):
        text = unicodedata.normalize("NFC", value).strip()
        return text.encode("utf-8") if text else None
    if isinstance(value, numbers.Integral):
        return str(int(value)).encode("ascii")
    if isinstance(value, numbers.Real):
        as_float = float(value)
        if math.isnan(as_float):
            return None
        if not math.isfinite(as_float) or not as_float.is_integer():
            raise PSIUsageError(f"non-integral float id {as_float!r} cannot be matched exactly")
        return str(int(as_float)).encode("ascii")
    if _is_null(value):
        return None
    raise PSIUsageError(f"id of type {type(value).__name__} is not supported; use int or str")


def _column(values: object) -> np.ndarray | Sequence[object] | Iterable[object]:
    to_numpy = getattr(values, "to_numpy", None)
    if callable(to_numpy):
        out: np.ndarray = to_numpy()
        return out
    return values  # type: ignore[return-value]


def _chunks(values: np.ndarray | Sequence[object] | Iterable[object]) -> Iterator[list[object]]:
    """Python objects in chunks; numpy columns are converted chunk by chunk."""
    if isinstance(values, np.ndarray):
        flat = values.reshape(-1)
        for start in range(0, flat.shape[0], _CHUNK):
            yield flat[start : start + _CHUNK].tolist()
        return
    chunk: list[object] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encode(
    values: np.ndarray | Sequence[object] | Iterable[object], column: str
) -> tuple[list[bytes], array[int], np.ndarray]:
    """Canonical ids as per-chunk joined buffers, their lengths, and 64-bit sort keys.

    Integer columns use the integer itself as the key (exact); other columns a 64-bit BLAKE2b
    digest of the canonical bytes (collisions are resolved by comparing the bytes).
    """
    parts: list[bytes] = []
    lengths: array[int] = array("q")
    null_rows: list[int] = []
    n_null = 0
    row = 0
    is_int = isinstance(values, np.ndarray) and values.dtype.kind in "iu" and values.ndim == 1
    digests = bytearray()
    for chunk in _chunks(values):
        if is_int:
            items = [str(v).encode("ascii") for v in chunk]
        else:
            items = []
            for value in chunk:
                try:
                    item = normalise_id(value)
                except PSIUsageError as exc:
                    raise PSIUsageError(f"id column {column!r}, row {row}: {exc}") from None
                if item is None:
                    n_null += 1
                    if len(null_rows) < _MAX_EXAMPLES:
                        null_rows.append(row)
                    item = b""
                items.append(item)
                row += 1
            digests += b"".join(hashlib.blake2b(i, digest_size=8).digest() for i in items)
        lengths.extend(len(i) for i in items)
        parts.append(b"".join(items))
    if n_null:
        shown = ", ".join(str(r) for r in null_rows)
        raise PSIUsageError(
            f"id column {column!r} has {n_null} null or blank ids (rows {shown}"
            f"{', ...' if n_null > _MAX_EXAMPLES else ''})"
        )
    if is_int:
        assert isinstance(values, np.ndarray)
        keys = values.astype(np.int64, copy=False) if values.dtype.kind == "i" else values
    else:
        keys = np.frombuffer(digests, dtype=np.uint64).copy()
    return parts, lengths, keys


def _duplicate_mask(keys: np.ndarray, get: Callable[[int], bytes]) -> tuple[np.ndarray, int, int]:
    """Rows that repeat an earlier row's id, plus (row of the most repeated id, its count)."""
    n = int(keys.shape[0])
    drop = np.zeros(n, dtype=bool)
    if n < 2:
        return drop, -1, 0
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    same = sorted_keys[1:] == sorted_keys[:-1]
    if not same.any():
        return drop, -1, 0
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    ends = np.append(starts[1:], n)
    multi = np.flatnonzero(ends - starts > 1)
    best_row, best_count = -1, 0
    for g in multi.tolist():
        seen: dict[bytes, list[int]] = {}
        for r in order[starts[g] : ends[g]].tolist():  # increasing rows (stable sort)
            seen.setdefault(get(r), []).append(r)
        for rows in seen.values():
            if len(rows) > 1:
                drop[rows[1:]] = True
                if len(rows) > best_count:
                    best_row, best_count = rows[0], len(rows)
    return drop, best_row, best_count


def normalise_ids(
    values: Sequence[object] | Iterable[object] | np.ndarray,
    *,
    column: str = "id",
    duplicates: Duplicates | str = Duplicates.ERROR,
) -> NormalisedIds:
    """Normalise a column of ids (list, numpy array or pandas Series); reject nulls; apply the
    duplicate policy. Errors name the column, the number of offending rows and examples.

    Memory: the canonical ids in one buffer plus about 40 bytes per id of numpy arrays.
    """
    policy = Duplicates(duplicates)
    parts, lengths, keys = _encode(_column(values), column)
    n = len(lengths)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(lengths, dtype=np.int64), out=offsets[1:])
    del lengths
    blob = b"".join(parts)
    del parts
    full = NormalisedIds(
        blob=blob,
        offsets=offsets,
        rows=np.arange(n, dtype=np.int64),
        n_input=n,
        n_duplicates_dropped=0,
    )
    drop, example_row, example_count = _duplicate_mask(keys, full.__getitem__)
    del keys
    n_dup = int(np.count_nonzero(drop))
    if n_dup == 0:
        return full
    if policy is Duplicates.ERROR:
        raise PSIUsageError(
            f"id column {column!r} has {n_dup} duplicate rows (e.g. id "
            f"{full[example_row].decode('utf-8')!r} appears {example_count} times); pass "
            "duplicates='first' to keep the first occurrence of each id"
        )
    keep = np.flatnonzero(~drop).astype(np.int64)
    kept = full.take(keep)
    new_offsets = np.zeros(keep.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(p) for p in kept), np.int64, keep.shape[0]), out=new_offsets[1:])
    return NormalisedIds(
        blob=b"".join(kept),
        offsets=new_offsets,
        rows=keep,
        n_input=n,
        n_duplicates_dropped=n_dup,
    )
