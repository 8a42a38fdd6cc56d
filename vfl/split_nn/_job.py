"""Job-file glue: the ``[model]`` table of a ``split_nn`` job and one party's side of the job.

``vfl run`` (vfl/jobs) aligns the rows by PSI and splits train/test; it then calls
:func:`run_split_nn_job` with this party's aligned frames. ``[model]`` keys: every field of
:class:`SplitNNConfig` plus ``defence_noise``, ``defence_clip`` and the layer sizes
``bottom_layers`` (hidden widths of every bottom model, default ``[16]``), ``embedding_dim``
(bottom output width, default 8) and ``top_layers`` (hidden widths of the top model after the
interactive layer's ReLU, default ``[]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from crypto.random import RandomSource
from protocols.channel import Channel
from vfl.errors import ConfigError
from vfl.split_nn._config import SplitNNConfig
from vfl.split_nn._feature import SplitNNFeatureParty
from vfl.split_nn._label import SplitNNLabelParty
from vfl.split_nn._tensors import build_mlp

__all__ = ["SplitNNJobModel", "parse_split_nn_model", "run_split_nn_job", "top_model"]


@dataclass(frozen=True)
class SplitNNJobModel:
    """The parsed ``[model]`` table: protocol config and layer sizes."""

    config: SplitNNConfig
    bottom_layers: tuple[int, ...] = (16,)
    embedding_dim: int = 8
    top_layers: tuple[int, ...] = ()


def _sizes(value: Any, key: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value
    ):
        raise ConfigError(f"model.{key} must be a list of positive integers")
    return tuple(value)


def parse_split_nn_model(
    model: Mapping[str, Any],
    *,
    scheme: str,
    key_bits: int,
    insecure_allow_small_keys: bool = False,
    processes: int | None = None,
) -> SplitNNJobModel:
    """Parse ``[model]`` with the job's ``crypto.scheme`` / ``crypto.key_bits``; errors name the key.

    ``processes`` (a job's ``[crypto] processes``, when the runner passes it) spreads Paillier
    work over that many worker processes at this party.
    """
    crypto: dict[str, Any] = {"scheme": scheme, "key_bits": key_bits}
    if insecure_allow_small_keys:
        crypto["insecure_allow_small_keys"] = True
    if processes is not None:
        crypto["processes"] = processes
    config = SplitNNConfig.from_mapping(model, crypto)
    embedding = model.get("embedding_dim", 8)
    if isinstance(embedding, bool) or not isinstance(embedding, int) or embedding < 1:
        raise ConfigError("model.embedding_dim must be a positive integer")
    return SplitNNJobModel(
        config=config,
        bottom_layers=_sizes(model.get("bottom_layers", [16]), "bottom_layers"),
        embedding_dim=embedding,
        top_layers=_sizes(model.get("top_layers", []), "top_layers"),
    )


def top_model(units: int, hidden: Sequence[int], n_outputs: int) -> nn.Sequential:
    """``ReLU -> Linear(units, hidden...) -> ... -> Linear(., n_outputs)``."""
    return nn.Sequential(nn.ReLU(), build_mlp([units, *hidden, n_outputs], final_activation=False))


@contextlib.contextmanager
def _seeded(seed: int, party: str) -> Iterator[None]:
    """Torch's global RNG seeded from ``(seed, party)`` for module init, restored afterwards.

    Initial bottom and top weights are then reproducible from the job file; they are not
    secret (the interactive layer's shares are, and they come from the CSPRNG).
    """
    digest = hashlib.sha256(f"{seed}:{party}".encode()).digest()
    # The global RNG is one per process: parties run as threads of one process (tests,
    # simulation) must not interleave their seed-and-draw, or each party's initial weights
    # depend on thread timing.
    with _SEEDING, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int.from_bytes(digest[:8], "big"))
        yield


_SEEDING = threading.Lock()


def run_split_nn_job(
    *,
    model: SplitNNJobModel,
    party: str,
    label_party: str,
    feature_parties: Sequence[str],
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    channel: Channel,
    run_dir: str | Path,
    label_column: str = "y",
    feature_columns: Sequence[str] | None = None,
    rng: RandomSource | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """One party's side: build its modules, train, evaluate on ``test``, save its own part.

    ``on_epoch`` (every party) is called after each epoch with ``{"round": epoch (1-based),
    "metrics": {"loss": ..., "val_auc" or "val_accuracy"} (the label party; ``{}`` at feature
    parties), "seconds": float}``.

    ``train``/``test`` are this party's PSI-aligned rows (id column already dropped or listed
    out by ``feature_columns``). Returns ``metrics`` (label party only), ``history``, ``privacy``
    (label party only: ``leak_auc_norm``, ``leak_auc_direction``, ``leak_auc_bound``),
    ``timing``, ``crypto`` and ``model_path``.
    """
    cfg = model.config
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "checkpoints"
    cols = list(feature_columns) if feature_columns is not None else None
    timing: dict[str, float] = {}
    result: dict[str, Any] = {
        "crypto": {
            "scheme": cfg.crypto.scheme.value,
            "key_bits": cfg.crypto.key_bits if cfg.crypto.scheme.value == "paillier" else None,
            "ckks_preset": cfg.crypto.ckks_preset if cfg.crypto.scheme.value == "ckks" else None,
        }
    }
    start = time.perf_counter()
    if party == label_party:
        if cols is None:
            cols = [c for c in train.columns if c != label_column]
        n_classes = int(train[label_column].nunique())
        with _seeded(cfg.seed, party):
            bottom = (
                build_mlp([len(cols), *model.bottom_layers, model.embedding_dim]) if cols else None
            )
            top = top_model(
                cfg.interactive_units, model.top_layers, 1 if n_classes == 2 else n_classes
            )
        estimator = SplitNNLabelParty(
            top,
            config=cfg,
            feature_parties=list(feature_parties),
            bottom=bottom,
            label_column=label_column,
            feature_columns=cols,
            checkpoint_dir=ckpt,
            rng=rng,
        )
        estimator.fit(train, channel=channel, on_epoch=on_epoch)
        timing["train"] = time.perf_counter() - start
        start = time.perf_counter()
        if test is not None and len(test):
            result["metrics"] = estimator.evaluate(test, channel=channel, prefix="test_")
        result["history"] = estimator.history
        result["privacy"] = estimator.privacy
        path = run_dir / "split_nn_label.pt"
        estimator.save(path)
    else:
        cols = cols if cols is not None else list(train.columns)
        with _seeded(cfg.seed, party):
            feature_bottom = build_mlp([len(cols), *model.bottom_layers, model.embedding_dim])
        feature = SplitNNFeatureParty(
            feature_bottom,
            config=cfg,
            label_party=label_party,
            feature_columns=cols,
            checkpoint_dir=ckpt,
            rng=rng,
        )
        feature.fit(train, channel=channel, on_epoch=on_epoch)
        timing["train"] = time.perf_counter() - start
        start = time.perf_counter()
        if test is not None and len(test):
            feature.evaluate(test, channel=channel)
        path = run_dir / "split_nn_feature.pt"
        feature.save(path)
    timing["evaluate"] = time.perf_counter() - start
    result["timing"] = timing
    result["model_path"] = str(path)
    return result
