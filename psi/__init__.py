"""Private set intersection (ECDH in the prime-order group ristretto255) and DataFrame alignment.

>>> import psi
>>> # at each party, with its own channel:  aligned = psi.align(df, channel=ch, id_column="id")

Two parties run ECDH-PSI; three or more run the multi-party protocol (no pairwise sizes leak).
See docs/protocols/psi.md for the message sequence and the leakage table.
"""

from psi._api import PSIResult, align, intersect
from psi._common import Reveal, RevealKind
from psi._normalise import Duplicates, normalise_id, normalise_ids
from psi.errors import PSIError, PSIProtocolError, PSIUsageError

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
