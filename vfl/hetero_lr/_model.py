"""Shared estimator plumbing: feature preparation, the saved-model format, progress records.

A saved model is one JSON file holding only this party's part: its role, its column names, its
standardisation (mean, std), its weights, and for the label party the classes. No pickle.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfl._atomic import atomic_write
from vfl.errors import ConfigError, VflError

__all__ = ["FORMAT", "feature_matrix", "read_model", "write_model"]

logger = logging.getLogger("vfl.hetero_lr")
FORMAT = "vfl.hetero_lr/1"


def feature_matrix(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The listed columns as float64; missing, non-numeric or non-finite columns are errors."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"missing feature column(s): {', '.join(map(str, missing))}")
    for c in columns:
        if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]):
            raise ConfigError(f"feature column {c!r} is not numeric (dtype {df[c].dtype})")
    x = df[list(columns)].to_numpy(dtype=np.float64, copy=True)
    bad = ~np.isfinite(x)
    if bad.any():
        col = columns[int(np.argwhere(bad)[0][1])]
        raise ConfigError(f"feature column {col!r} has missing or infinite values")
    return np.asarray(x, dtype=np.float64)


def default_columns(df: pd.DataFrame, *, exclude: Sequence[str | None]) -> list[str]:
    return [str(c) for c in df.columns if c not in {e for e in exclude if e is not None}]


def write_model(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Atomically write ``state`` (JSON-ready) with the format tag."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, json.dumps({"format": FORMAT, **state}, indent=1))


def read_model(path: str | os.PathLike[str], *, role: str) -> dict[str, Any]:
    """Read a model file written by :func:`write_model` for ``role``."""
    with open(path) as fh:
        try:
            state = json.load(fh)
        except json.JSONDecodeError as exc:
            raise VflError(f"{path}: not a hetero LR model file ({exc.msg})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise VflError(f"{path}: not a {FORMAT} model file")
    if state.get("role") != role:
        raise VflError(f"{path}: holds a {state.get('role')} model, not a {role} model")
    return state
