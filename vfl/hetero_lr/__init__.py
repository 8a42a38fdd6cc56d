"""Hetero (vertical) logistic regression under Paillier, arbiter-free, k >= 1 feature parties.

See docs/protocols/hetero_lr.md for the message sequence, the keys and the leakage table.
"""

from vfl.hetero_lr._config import (
    Approximation,
    ClassWeight,
    CryptoSettings,
    HeteroLRConfig,
    LRSchedule,
    Obfuscator,
    Penalty,
    SchemeName,
)
from vfl.hetero_lr._feature import HeteroLRFeatureParty
from vfl.hetero_lr._kind import HETERO_LR, HeteroLRKind
from vfl.hetero_lr._label import HeteroLRLabelParty

__all__ = [
    "HETERO_LR",
    "Approximation",
    "ClassWeight",
    "CryptoSettings",
    "HeteroLRConfig",
    "HeteroLRFeatureParty",
    "HeteroLRKind",
    "HeteroLRLabelParty",
    "LRSchedule",
    "Obfuscator",
    "Penalty",
    "SchemeName",
]
