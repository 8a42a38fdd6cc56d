"""Split neural networks with a secure interactive layer (plain, Paillier or CKKS).

Feature parties train bottom models on their own columns; the label party holds the labels, an
optional bottom model and the top model. The interactive layer ``z = h W_H`` is computed on
ciphertexts and additive shares so that the label party never sees a feature party's embedding
and nobody holds ``W_H``; feature parties see only the gradient with respect to their own
embedding, which a label-leakage defence can noise. See docs/protocols/split_nn.md.
"""

from vfl.split_nn._attacks import attack_scores, leak_auc
from vfl.split_nn._config import CryptoConfig, DefenceConfig, Scheme, SplitNNConfig
from vfl.split_nn._defence import defend, leak_auc_bound
from vfl.split_nn._feature import SplitNNFeatureParty
from vfl.split_nn._job import SplitNNJobModel, parse_split_nn_model, run_split_nn_job, top_model
from vfl.split_nn._kind import SPLIT_NN, SplitNNKind
from vfl.split_nn._label import SplitNNLabelParty
from vfl.split_nn._tensors import build_mlp

__all__ = [
    "SPLIT_NN",
    "CryptoConfig",
    "DefenceConfig",
    "Scheme",
    "SplitNNConfig",
    "SplitNNFeatureParty",
    "SplitNNJobModel",
    "SplitNNKind",
    "SplitNNLabelParty",
    "attack_scores",
    "build_mlp",
    "defend",
    "leak_auc",
    "leak_auc_bound",
    "parse_split_nn_model",
    "run_split_nn_job",
    "top_model",
]
