"""The attack meter: label-inference attacks run on the gradients a feature party received.

Li et al., "Label Leakage and Protection in Two-party Split Learning" (ICLR 2022), Section 3:

* **norm attack**: score ``s_i = ||g_i||``; for a binary task with a minority positive class the
  positives' cut-layer gradients are larger (``|p - y|`` is larger where the model is worse);
* **direction attack**: score ``s_i = cos(g_i, g_ref)``; for a binary task the per-sample
  gradients of the two classes point in opposite directions. Li et al. take ``g_ref`` from one
  example of known label; our meter needs no label at all: ``g_ref`` is the batch's largest
  gradient (a feature party can do this).

The leak AUC of an attack is the ROC AUC of its scores against the true labels, computed per
batch (the attacker's view) and averaged over batches weighted by size, then oriented
``max(AUC, 1 - AUC)``: 0.5 means the scores say nothing, 1.0 means the labels are read exactly.
The feature party computes the scores (:func:`attack_scores`); only the label party, which holds
the labels, can turn them into AUCs (:func:`leak_auc`), so the scores are sent to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from vfl.metrics import auc

__all__ = ["attack_scores", "leak_auc"]

FloatArray = npt.NDArray[np.float64]


def attack_scores(grad: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(norm scores, direction scores)`` for one batch of received gradients ``b x d``."""
    g = np.asarray(grad, dtype=np.float64).reshape(grad.shape[0], -1)
    norms = np.linalg.norm(g, axis=1)
    ref = g[int(np.argmax(norms))]
    ref_norm = float(np.linalg.norm(ref))
    denom = np.maximum(norms * ref_norm, 1e-300)
    cosine = (g @ ref) / denom
    return norms, np.asarray(cosine, dtype=np.float64)


def leak_auc(labels: Sequence[npt.NDArray[np.int64]], scores: Sequence[FloatArray]) -> float | None:
    """Size-weighted mean over batches of the scores' AUC, oriented ``max(a, 1 - a)``.

    Batches with one class only are skipped; ``None`` when no batch has both classes.
    """
    total, weight = 0.0, 0
    for y, s in zip(labels, scores, strict=True):
        if y.size < 2 or y.min() == y.max():
            continue
        total += auc(y, s) * y.size
        weight += y.size
    if weight == 0:
        return None
    mean = total / weight
    return float(max(mean, 1.0 - mean))
