"""The label party's privacy bookkeeping: randomised-response training labels, the attack
meter's leak AUCs and the ``privacy`` summary of a run (see docs/protocols/split_nn.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crypto.random import RandomSource
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.privacy import randomized_response
from vfl.split_nn._attacks import leak_auc
from vfl.split_nn._config import SplitNNConfig
from vfl.split_nn._defence import leak_auc_bound

__all__ = ["rr_training_labels", "receive_leak_aucs", "privacy_summary"]


def rr_training_labels(
    y: np.ndarray,
    saved: Any,
    *,
    epsilon: float,
    num_classes: int,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """K-ary randomised response of ``y`` (``epsilon``-label-DP; Ghazi et al., "Deep Learning
    with Label Differential Privacy", NeurIPS 2021, the RR baseline), or ``saved`` (the labels a
    checkpoint kept, so a resumed job releases each label once).

    Every message to a feature party is computed from the model trained on these labels, so
    it is ``epsilon``-label-DP by post-processing (on top of the gradient defence).
    """
    if saved is not None:
        perturbed: np.ndarray = np.asarray(saved.numpy(), dtype=np.int64)
        if perturbed.shape != y.shape:
            raise VflError("checkpointed training labels do not match the data")
        return perturbed
    out: np.ndarray = randomized_response(
        y, epsilon=epsilon, num_classes=num_classes, rng=rng
    ).astype(np.int64)
    return out


def receive_leak_aucs(
    channel: Channel, peers: Sequence[str], labels: list[np.ndarray], *, binary: bool
) -> dict[str, Any]:
    """Receive each feature party's attack-meter scores; per-batch ROC AUC against ``labels``
    (binary only), the maximum over feature parties."""
    sizes = np.cumsum([lab.size for lab in labels])[:-1]
    out: dict[str, Any] = {}
    for peer in peers:
        norm = np.asarray(channel.recv(peer, "snn/scores_norm"), dtype=np.float64)
        direction = np.asarray(channel.recv(peer, "snn/scores_dir"), dtype=np.float64)
        if not binary:
            continue
        for name, scores in (("norm", norm), ("direction", direction)):
            if scores.size != sum(lab.size for lab in labels):
                raise VflError(f"{peer} sent {scores.size} attack scores")
            value = leak_auc(labels, np.split(scores, sizes))
            key = f"leak_auc_{name}"
            if value is not None:
                out[key] = max(out.get(key, 0.0), value)
    return out


def privacy_summary(config: SplitNNConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """``privacy`` of a run: label DP, the defence and its bound, mean leak AUCs over epochs."""
    defence = config.defence
    out: dict[str, Any] = {
        "label_dp_epsilon": config.label_dp_epsilon,
        "defence": "clip+gaussian" if defence.enabled else "none",
        "noise_multiplier": defence.noise_multiplier,
        "clip": defence.clip,
        "leak_auc_bound": leak_auc_bound(
            noise_multiplier=defence.noise_multiplier, releases=max(len(history), 1)
        ),
    }
    for key in ("leak_auc_norm", "leak_auc_direction"):
        values = [r[key] for r in history if key in r]
        if values:
            out[key] = float(np.mean(values))
    return out
