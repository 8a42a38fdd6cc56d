"""SecureBoost: vertical gradient-boosted trees with Paillier-encrypted gradients.

Cheng, Fan, Jin, Liu, Chen, Papadopoulos, Yang, "SecureBoost: A Lossless Federated Learning
Framework", IEEE Intelligent Systems 36(6), 2021 (arXiv:1901.08755). The label party computes
gradients and hessians, encrypts them packed one row per ciphertext, feature parties sum them per
bin of their own features, the label party decrypts the sums and picks every split. See
``docs/protocols/secureboost.md`` for the message sequence and the leakage table.
"""

from vfl.secureboost._config import Objective, SecureBoostConfig, parse_secureboost_model
from vfl.secureboost._feature import SecureBoostFeatureParty
from vfl.secureboost._job import run_secureboost_job
from vfl.secureboost._kind import SECUREBOOST, SecureBoostKind
from vfl.secureboost._label import SecureBoostLabelParty

__all__ = [
    "SECUREBOOST",
    "Objective",
    "SecureBoostKind",
    "SecureBoostConfig",
    "SecureBoostFeatureParty",
    "SecureBoostLabelParty",
    "parse_secureboost_model",
    "run_secureboost_job",
]
