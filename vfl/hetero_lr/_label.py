"""The label party's estimator: holds y, the intercept and key pk_G; drives the training plan."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crypto.random import RandomSource
from protocols.channel import Channel
from vfl import metrics
from vfl.errors import ConfigError, VflError
from vfl.hetero_lr import _math
from vfl.hetero_lr._config import Approximation, ClassWeight, HeteroLRConfig
from vfl.hetero_lr._messages import EpochEnd, Hello, Refusal, Setup, expect
from vfl.hetero_lr._model import default_columns, feature_matrix, read_model, write_model
from vfl.hetero_lr._precompute import IdleChannel
from vfl.hetero_lr._protocol import (
    PROTOCOL_VERSION,
    BatchContext,
    Topics,
    label_batch,
    label_scores,
)
from vfl.hetero_lr._scheme import make_owner, peer_key

__all__ = ["HeteroLRLabelParty", "EpochCallback"]

logger = logging.getLogger("vfl.hetero_lr")

# Called after every epoch with {"round", "task", "epoch", "metrics", "seconds"} (see fit).
EpochCallback = Callable[[dict[str, Any]], None]


class HeteroLRLabelParty:
    """Label party G of hetero logistic regression (see docs/protocols/hetero_lr.md).

    ``fit(df, channel=...)`` takes this party's rows in PSI order (the same order at every party),
    ``label_column`` and the feature columns (all others but ``id_column`` unless given).
    """

    role = "label"

    def __init__(
        self,
        config: HeteroLRConfig | None = None,
        *,
        label_column: str = "y",
        id_column: str | None = None,
        feature_columns: Sequence[str] | None = None,
        rng: RandomSource | None = None,
        timeout: float = 600.0,
        progress: bool = False,
    ) -> None:
        self.config = config or HeteroLRConfig()
        self.label_column = label_column
        self.id_column = id_column
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.rng = rng
        self.timeout = timeout
        self.progress = progress
        self.history_: list[dict[str, Any]] = []
        self.crypto_: dict[str, Any] = {}
        self.privacy_: dict[str, Any] = {}
        self._on_epoch: Callable[[dict[str, Any]], None] | None = None
        self._fitted = False

    # -- training ---------------------------------------------------------------------------

    def _columns(self, df: pd.DataFrame) -> list[str]:
        if self.label_column not in df.columns:
            raise ConfigError(
                f"label column {self.label_column!r} is missing from the label party's data"
            )
        if self.feature_columns is not None:
            return list(self.feature_columns)
        return default_columns(df, exclude=[self.id_column, self.label_column])

    def _design(self, df: pd.DataFrame) -> np.ndarray:
        x = (feature_matrix(df, self.columns_) - self.mean_) / self.std_
        if self.config.fit_intercept:
            x = np.hstack([np.ones((x.shape[0], 1)), x])
        return np.asarray(x, dtype=np.float64)

    def _perturb(self, y_raw: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Labels after K-ary randomized response at ``config.label_dp_epsilon`` (label DP).

        Each label is kept with probability ``e^eps / (e^eps + K - 1)``, else replaced by one of
        the other ``K - 1`` classes uniformly (Warner 1965; the RR baseline of Ghazi et al.,
        "Deep Learning with Label Differential Privacy", NeurIPS 2021). Training uses only the
        perturbed labels, so what leaves this party is ``eps``-label-DP by post-processing.
        """
        from vfl.privacy import randomized_response, randomized_response_keep_probability

        eps = self.config.label_dp_epsilon
        assert eps is not None
        index = np.searchsorted(classes, y_raw).astype(np.int64)
        noisy = randomized_response(index, epsilon=eps, num_classes=classes.size, rng=self.rng)
        self.privacy_ = {
            "label_dp_epsilon": eps,
            "delta": 0.0,
            "mechanism": "randomized_response",
            "keep_probability": randomized_response_keep_probability(
                epsilon=eps, num_classes=int(classes.size)
            ),
            "labels_flipped": int(np.count_nonzero(noisy != index)),
        }
        return np.asarray(classes[noisy])

    def fit(
        self,
        df: pd.DataFrame,
        *,
        channel: Channel,
        feature_parties: Sequence[str] | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> HeteroLRLabelParty:
        """Train with the feature parties. ``on_epoch`` (optional) is called after every epoch
        with ``{"round": epochs so far over all tasks (1-based), "task", "epoch" (1-based),
        "metrics": {"loss" (validation log-loss), "val_logloss", "val_auc"}, "seconds"}``."""
        cfg = self.config
        parties = sorted(feature_parties if feature_parties is not None else channel.peers)
        if not parties:
            raise ConfigError("hetero LR needs at least one feature party")
        self.columns_ = self._columns(df)
        y_raw = df[self.label_column].to_numpy()
        if pd.isna(df[self.label_column]).any():
            raise ConfigError(f"label column {self.label_column!r} has missing values")
        classes = np.unique(y_raw)
        if classes.size < 2:
            raise ConfigError(f"label column {self.label_column!r} has a single class")
        self.classes_ = classes
        self.privacy_ = {}
        if cfg.label_dp_epsilon is not None:
            y_raw = self._perturb(y_raw, classes)
        n_tasks = 1 if classes.size == 2 else int(classes.size)
        raw_x = feature_matrix(df, self.columns_)
        self.mean_, self.std_ = _math.standardise_fit(raw_x)
        x = self._design(df)
        n = x.shape[0]
        train, val = _math.split_rows(n, fraction=cfg.validation_fraction, seed=cfg.seed)
        need = _math.min_batch_size(x.shape[1])
        if min(cfg.batch_size, train.size) < need:
            raise ConfigError(
                f"model.batch_size must be >= {need} for the label party's {x.shape[1]} columns (and that many training rows): smaller batches reveal too much through gradients"
            )
        beta_public = (
            cfg.approximation is Approximation.TAYLOR and cfg.class_weight is ClassWeight.NONE
        )
        owner = make_owner(cfg.crypto, rng=self.rng)
        self.crypto_ = {"scheme": cfg.crypto.scheme.value, "key_bits": owner.public.key_bits}
        setup = Setup(
            version=PROTOCOL_VERSION,
            n_rows=n,
            n_tasks=n_tasks,
            plan=cfg.plan(),
            beta_public=beta_public,
            feature_parties=list(parties),
            key_bits=owner.public.key_bits,
            label_columns=x.shape[1],
        )
        channel.broadcast(Topics.SETUP, setup, peers=parties)
        if owner.public.wire is not None:
            channel.broadcast(Topics.KEY, owner.public.wire, peers=parties)
        keys = {}
        self._columns_of: dict[str, int] = {}
        for party in parties:
            hello: Hello | Refusal = expect(
                channel, party, Topics.HELLO, (Hello, Refusal), timeout=self.timeout
            )
            if isinstance(hello, Refusal):
                raise VflError(f"{party} refused the training plan: {hello.error}")
            wire = (
                channel.recv(party, Topics.KEY, timeout=self.timeout)
                if owner.public.wire is not None
                else None
            )
            keys[party] = peer_key(cfg.crypto, wire, rng=self.rng)
            if hello.version != PROTOCOL_VERSION or hello.n_rows != n:
                raise VflError(f"{party} answered with another protocol version or row count")
            self._columns_of[party] = hello.n_features
        self.feature_parties_ = parties
        self.weights_ = np.zeros((x.shape[1], n_tasks))
        self.history_ = []
        self._on_epoch = on_epoch
        idle = threading.Event()
        ch = IdleChannel(channel, idle)
        owner.public.start_precompute(
            per_batch=cfg.batch_size * (1 if beta_public else 2), idle=idle
        )
        for key in keys.values():
            key.start_precompute(per_batch=0, idle=idle, masks_per_batch=x.shape[1])
        try:
            for task in range(n_tasks):
                positive = classes[1] if n_tasks == 1 else classes[task]
                y = (y_raw == positive).astype(np.float64)
                self.weights_[:, task] = self._fit_task(
                    ch, owner, keys, x, y, train, val, task, beta_public
                )
        finally:
            owner.public.stop_precompute()
            for key in keys.values():
                key.stop_precompute()
        self._fitted = True
        return self

    def _fit_task(
        self,
        channel: Channel,
        owner: Any,
        keys: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        task: int,
        beta_public: bool,
    ) -> np.ndarray:
        """Train one binary task: epochs of batches, validation, early stopping; best weights."""
        cfg = self.config
        weight = (
            _math.balanced_weights(y[train])
            if cfg.class_weight is ClassWeight.BALANCED
            else np.ones(train.size)
        )
        w = np.zeros(x.shape[1])
        best_w, best_loss, stale = w.copy(), np.inf, 0
        bar = self._progress_bar(task)
        for epoch in range(cfg.epochs):
            start = time.perf_counter()
            lr = _math.learning_rate(
                cfg.learning_rate, schedule=cfg.lr_schedule, decay=cfg.lr_decay, epoch=epoch
            )
            w = self._train_epoch(
                channel, owner, keys, x, y, weight, train, w, task, epoch, lr, beta_public
            )
            record: dict[str, Any] = {"task": task, "epoch": epoch, "learning_rate": lr}
            best = True
            if val.size:
                loss = self._validate(channel, x, y, val, w, task, epoch, record)
                best = loss < best_loss - cfg.tol
                if best:
                    best_w, best_loss, stale = w.copy(), loss, 0
                else:
                    stale += 1
            else:
                best_w = w.copy()
            stop = epoch == cfg.epochs - 1 or (
                cfg.early_stopping_patience > 0 and stale >= cfg.early_stopping_patience
            )
            channel.broadcast(
                Topics.EPOCH_END,
                EpochEnd(best=bool(best), stop=bool(stop)),
                peers=self.feature_parties_,
            )
            record["seconds"] = time.perf_counter() - start
            self._report_epoch(channel, record, bar)
            if stop:
                break
        if bar is not None:
            bar.close()
        return best_w

    def _progress_bar(self, task: int) -> Any:
        """A tqdm bar over the epochs of ``task`` when ``progress`` is on, else ``None``."""
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.config.epochs, desc=f"hetero LR task {task}", unit="epoch")

    def _train_epoch(
        self,
        channel: Channel,
        owner: Any,
        keys: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        weight: np.ndarray,
        train: np.ndarray,
        w: np.ndarray,
        task: int,
        epoch: int,
        lr: float,
        beta_public: bool,
    ) -> np.ndarray:
        """One pass over the training rows in the shared batch order; the updated weights."""
        cfg = self.config
        for b, rows in enumerate(
            _math.batches(
                train.size, batch_size=cfg.batch_size, seed=cfg.seed, epoch=epoch, task=task
            )
        ):
            idx = train[rows]
            alpha, beta = _math.linearise(
                x[idx] @ w, y[idx], weight[rows], approximation=cfg.approximation
            )
            beta = np.broadcast_to(beta, alpha.shape).astype(np.float64)
            grad = label_batch(
                channel,
                owner=owner,
                feature_keys=keys,
                feature_columns=self._columns_of,
                x=x[idx],
                alpha=alpha,
                beta=beta,
                beta_public=beta_public,
                ctx=BatchContext(task, epoch, b),
            )
            w = _math.apply_penalty(
                w,
                grad,
                lr=lr,
                penalty=cfg.penalty,
                alpha=cfg.alpha,
                free=1 if cfg.fit_intercept else 0,
            )
        return w

    def _validate(
        self,
        channel: Channel,
        x: np.ndarray,
        y: np.ndarray,
        val: np.ndarray,
        w: np.ndarray,
        task: int,
        epoch: int,
        record: dict[str, Any],
    ) -> float:
        """Validation log-loss (and AUC when both classes occur) into ``record``; the loss."""
        others = label_scores(
            channel,
            feature_parties=self.feature_parties_,
            n_rows=val.size,
            n_tasks=1,
            nonce=f"val/{task}/{epoch}",
        )
        p = _math.sigmoid(x[val] @ w + others[:, 0])
        loss = metrics.log_loss(y[val], p)
        record["val_logloss"] = loss
        if 0 < y[val].sum() < val.size:
            record["val_auc"] = metrics.auc(y[val], p)
        return float(loss)

    def _report_epoch(self, channel: Channel, record: dict[str, Any], bar: Any) -> None:
        """History, the ``on_epoch`` callback, the progress bar and the log line of one epoch."""
        sent = channel.bytes_sent
        if sent is not None:
            record["bytes_sent"] = sent
        self.history_.append(record)
        if self._on_epoch is not None:
            values = {k: float(v) for k, v in record.items() if k.startswith("val_")}
            if "val_logloss" in values:
                values["loss"] = values["val_logloss"]
            self._on_epoch(
                {
                    "round": len(self.history_),
                    "task": record["task"],
                    "epoch": record["epoch"] + 1,
                    "metrics": values,
                    "seconds": record["seconds"],
                }
            )
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k.startswith("val_")})
            bar.update(1)
        logger.info(
            "hetero LR %s",
            " ".join(
                f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
            ),
        )

    # -- inference --------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise VflError("the hetero LR label party is not fitted; call fit() or load()")

    def decision_function(self, df: pd.DataFrame, *, channel: Channel) -> np.ndarray:
        """Joint scores z = X_G w_G + sum_j u_j, shape (n, tasks)."""
        self._check_fitted()
        x = self._design(df)
        self._requests = getattr(self, "_requests", 0) + 1
        others = label_scores(
            channel,
            feature_parties=self.feature_parties_,
            n_rows=x.shape[0],
            n_tasks=self.weights_.shape[1],
            nonce=f"predict/{self._requests}",
        )
        return np.asarray(x @ self.weights_ + others)

    def predict_proba(self, df: pd.DataFrame, *, channel: Channel) -> np.ndarray:
        """P(y = classes_[1]) of shape (n,) for binary labels; (n, K) one-vs-rest otherwise."""
        p = _math.sigmoid(self.decision_function(df, channel=channel))
        if p.shape[1] == 1:
            return p[:, 0]
        return np.asarray(p / p.sum(axis=1, keepdims=True), dtype=np.float64)

    def evaluate(self, df: pd.DataFrame, *, channel: Channel, prefix: str = "") -> dict[str, Any]:
        """AUC, KS, accuracy and log-loss (binary); accuracy, log-loss, macro AUC (multi-class)."""
        proba = self.predict_proba(df, channel=channel)
        y = df[self.label_column].to_numpy()
        if proba.ndim == 1:
            return metrics.binary_metrics(
                (y == self.classes_[1]).astype(np.float64), proba, prefix=prefix
            )
        index = np.searchsorted(self.classes_, y)
        if np.any(index >= self.classes_.size) or np.any(
            self.classes_[np.minimum(index, self.classes_.size - 1)] != y
        ):
            raise VflError("evaluation labels contain classes unseen in training")
        return metrics.multiclass_metrics(index, proba, prefix=prefix)

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write this party's part only (JSON): columns, standardisation, weights, classes."""
        self._check_fitted()
        classes = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        write_model(
            path,
            {
                "role": self.role,
                "label_column": self.label_column,
                "id_column": self.id_column,
                "columns": self.columns_,
                "mean": self.mean_.tolist(),
                "std": self.std_.tolist(),
                "fit_intercept": self.config.fit_intercept,
                "weights": self.weights_.tolist(),
                "classes": classes,
                "feature_parties": self.feature_parties_,
                "crypto": self.crypto_,
            },
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, config: HeteroLRConfig | None = None
    ) -> HeteroLRLabelParty:
        state = read_model(path, role=cls.role)
        cfg = config or HeteroLRConfig(fit_intercept=bool(state["fit_intercept"]))
        model = cls(
            cfg,
            label_column=state["label_column"],
            id_column=state["id_column"],
            feature_columns=state["columns"],
        )
        model.columns_ = list(state["columns"])
        model.mean_ = np.asarray(state["mean"], dtype=np.float64)
        model.std_ = np.asarray(state["std"], dtype=np.float64)
        model.weights_ = np.asarray(state["weights"], dtype=np.float64)
        model.classes_ = np.asarray(state["classes"])
        model.feature_parties_ = list(state["feature_parties"])
        model.crypto_ = dict(state["crypto"])
        model._fitted = True
        return model
