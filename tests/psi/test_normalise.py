"""Id normalisation: identical bytes at every party, nulls and duplicates with clear errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from psi import Duplicates, PSIUsageError, normalise_id, normalise_ids


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int_types_and_decimal_strings_agree(value: int) -> None:
    expected = str(value).encode()
    assert normalise_id(value) == expected
    assert normalise_id(np.int64(value)) == expected
    assert normalise_id(f"  {value}\t") == expected


def test_integral_floats_become_integers_and_others_fail() -> None:
    assert normalise_id(1.0) == b"1"
    assert normalise_id(np.float64(-42.0)) == b"-42"
    with pytest.raises(PSIUsageError, match="non-integral float"):
        normalise_id(1.5)
    with pytest.raises(PSIUsageError, match="non-integral float"):
        normalise_id(math.inf)


def test_strings_are_nfc_normalised_and_stripped() -> None:
    decomposed = "Cafe\u0301"  # e + combining acute accent
    composed = "Caf\u00e9"
    assert normalise_id(decomposed) == normalise_id(f" {composed} ") == composed.encode("utf-8")


def test_ambiguous_types_are_refused() -> None:
    for bad in (True, np.bool_(False), b"raw", 3 + 4j):
        with pytest.raises(PSIUsageError):
            normalise_id(bad)


def test_nulls_are_rejected_naming_column_and_count() -> None:
    values = [1, None, 3, float("nan"), pd.NA, "  "]
    with pytest.raises(
        PSIUsageError, match=r"id column 'cust' has 4 null or blank ids \(rows 1, 3, 4"
    ):
        normalise_ids(values, column="cust")


def test_duplicates_error_by_default_with_count_and_example() -> None:
    with pytest.raises(PSIUsageError, match=r"3 duplicate rows \(e\.g\. id '7' appears 3 times\)"):
        normalise_ids([7, 8, "7", 7.0, 9, 8], column="id")


def test_duplicates_first_keeps_first_occurrence_rows() -> None:
    out = normalise_ids([7, 8, "7", 7.0, 9, 8], duplicates=Duplicates.FIRST)
    assert out.ids == (b"7", b"8", b"9")
    assert out.rows.tolist() == [0, 1, 4]
    assert out.n_input == 6 and out.n_duplicates_dropped == 3


def test_pandas_float_column_from_csv_with_gaps_normalises_like_ints() -> None:
    column = pd.Series([1.0, 2.0, 10.0])
    assert normalise_ids(column.tolist()).ids == normalise_ids([1, 2, 10]).ids


def test_numpy_and_pandas_columns_match_python_lists() -> None:
    values = [5, -12, 7, 10**15]
    expected = normalise_ids(values).ids
    assert normalise_ids(np.array(values, dtype=np.int64)).ids == expected
    assert (
        normalise_ids(pd.Series(values, dtype="int32" if max(values) < 2**31 else "int64")).ids
        == expected
    )
    assert normalise_ids(pd.Series([5.0, -12.0, 7.0, 1e15])).ids == expected
    assert normalise_ids(pd.Series(["5", "-12", "7", "1000000000000000"])).ids == expected
    with pytest.raises(PSIUsageError, match="1 null"):
        normalise_ids(pd.Series([1, None, 3], dtype="Int64"))


def test_integer_array_duplicates_are_found_exactly() -> None:
    out = normalise_ids(np.array([3, 1, 3, 2, 1, 3]), duplicates="first")
    assert out.ids == (b"3", b"1", b"2") and out.rows.tolist() == [0, 1, 3]
    with pytest.raises(PSIUsageError, match=r"3 duplicate rows \(e\.g\. id '3' appears 3 times\)"):
        normalise_ids(np.array([3, 1, 3, 2, 1, 3]))


def test_hash_key_collisions_are_resolved_by_the_bytes() -> None:
    from psi._normalise import _duplicate_mask

    items = [b"a", b"b", b"a", b"c"]
    keys = np.zeros(4, dtype=np.uint64)  # every key collides
    drop, row, count = _duplicate_mask(keys, items.__getitem__)
    assert drop.tolist() == [False, False, True, False] and (row, count) == (0, 2)


def test_compact_storage_round_trips() -> None:
    out = normalise_ids(["x", "yy", "", "zzz"][:2] + ["zzz"])
    assert len(out) == 3 and out[1] == b"yy"
    assert out.take(np.array([2, 0])) == [b"zzz", b"x"]
