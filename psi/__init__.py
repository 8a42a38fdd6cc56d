"""Private set intersection (ECDH in the prime-order group ristretto255) and DataFrame alignment.

>>> import psi
>>> # at each party, with its own channel:  aligned = psi.align(df, channel=ch, id_column="id")

Two parties run ECDH-PSI; three or more run the multi-party protocol (no pairwise sizes leak).
See docs/protocols/psi.md for the message sequence and the leakage table.

The public names are imported on first use: a process-pool worker that only needs
:mod:`psi._group` then starts without importing numpy, pandas or the transport layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from psi.errors import PSIError, PSIProtocolError, PSIUsageError

if TYPE_CHECKING:
    from psi._api import PSIResult, align, intersect
    from psi._common import Reveal, RevealKind
    from psi._normalise import Duplicates, normalise_id, normalise_ids

__all__ = [
    "align",
    "intersect",
    "PSIResult",
    "Reveal",
    "RevealKind",
    "Duplicates",
    "normalise_id",
    "normalise_ids",
    "PSIError",
    "PSIUsageError",
    "PSIProtocolError",
]

_LAZY = {
    "align": "psi._api",
    "intersect": "psi._api",
    "PSIResult": "psi._api",
    "Reveal": "psi._common",
    "RevealKind": "psi._common",
    "Duplicates": "psi._normalise",
    "normalise_id": "psi._normalise",
    "normalise_ids": "psi._normalise",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'psi' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
