"""A feature party's estimator: holds X_j, its weights w_j and key pk_j; never sees labels."""

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
from vfl.errors import ConfigError, VflError
from vfl.hetero_lr import _math
from vfl.hetero_lr._config import HeteroLRConfig
from vfl.hetero_lr._messages import EpochEnd, Hello, Refusal, Setup, expect, validate
from vfl.hetero_lr._model import default_columns, feature_matrix, read_model, write_model
from vfl.hetero_lr._precompute import IdleChannel
from vfl.hetero_lr._protocol import (
    PROTOCOL_VERSION,
    BatchContext,
    Topics,
    ZeroSum,
    feature_batch,
    feature_scores,
)
from vfl.hetero_lr._scheme import KeyOwner, PeerKey, make_owner, peer_key

__all__ = ["HeteroLRFeatureParty"]

logger = logging.getLogger("vfl.hetero_lr")


class HeteroLRFeatureParty:
    """Feature party H_j of hetero logistic regression (see docs/protocols/hetero_lr.md)."""

    role = "feature"

    def __init__(
        self,
        config: HeteroLRConfig | None = None,
        *,
        id_column: str | None = None,
        feature_columns: Sequence[str] | None = None,
        rng: RandomSource | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.config = config or HeteroLRConfig()
        self.id_column = id_column
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.rng = rng
        self.timeout = timeout
        self.crypto_: dict[str, Any] = {}
        self._on_epoch: Callable[[dict[str, Any]], None] | None = None
        self._fitted = False

    def _design(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            (feature_matrix(df, self.columns_) - self.mean_) / self.std_, dtype=np.float64
        )

    def _refuse(self, channel: Channel, label_party: str, message: str) -> VflError:
        channel.send(label_party, Topics.HELLO, Refusal(message))
        return ConfigError(message)

    def fit(
        self,
        df: pd.DataFrame,
        *,
        channel: Channel,
        label_party: str,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> HeteroLRFeatureParty:
        """Train with the label party. ``on_epoch`` (optional) is called after every epoch with
        ``{"round" (1-based, over all tasks), "task", "epoch" (1-based), "metrics": {}, "seconds"}``:
        a feature party has no metrics of its own."""
        cfg = self.config
        self.columns_ = (
            list(self.feature_columns)
            if self.feature_columns is not None
            else default_columns(df, exclude=[self.id_column])
        )
        raw_x = feature_matrix(df, self.columns_)
        self.mean_, self.std_ = _math.standardise_fit(raw_x)
        x = self._design(df)
        received = channel.recv(label_party, Topics.SETUP, timeout=self.timeout)
        if not isinstance(received, Setup) or received.version != PROTOCOL_VERSION:
            raise self._refuse(
                channel, label_party, f"{label_party} speaks another hetero LR protocol version"
            )
        try:
            validate(received, label_party, Topics.SETUP)
        except VflError as exc:
            raise self._refuse(channel, label_party, str(exc)) from None
        setup = received
        if setup.plan != cfg.plan():
            diff = sorted(k for k in cfg.plan() if setup.plan.get(k) != cfg.plan()[k])
            raise self._refuse(
                channel,
                label_party,
                f"the parties run different job settings: {', '.join(diff)} differ",
            )
        if setup.n_rows != x.shape[0]:
            raise self._refuse(
                channel,
                label_party,
                f"row counts differ: {label_party} has {setup.n_rows}, {channel.party} has {x.shape[0]}; align both by PSI first",
            )
        need = _math.min_batch_size(x.shape[1])
        if cfg.batch_size < need:
            raise self._refuse(
                channel,
                label_party,
                f"model.batch_size must be >= {need} for {channel.party}'s {x.shape[1]} columns: smaller batches reveal too much through gradients",
            )
        parties = list(setup.feature_parties)
        label_columns = setup.label_columns
        if channel.party not in parties:
            raise self._refuse(
                channel, label_party, f"{channel.party} is not among the feature parties {parties}"
            )
        label_key = peer_key(
            cfg.crypto,
            channel.recv(label_party, Topics.KEY, timeout=self.timeout) if setup.key_bits else None,
            rng=self.rng,
        )
        owner = make_owner(cfg.crypto, rng=self.rng)
        self.crypto_ = {
            "scheme": cfg.crypto.scheme.value,
            "key_bits": owner.public.key_bits,
            "label_key_bits": label_key.key_bits,
        }
        channel.send(
            label_party,
            Topics.HELLO,
            Hello(version=PROTOCOL_VERSION, n_rows=x.shape[0], n_features=x.shape[1]),
        )
        if owner.public.wire is not None:
            channel.send(label_party, Topics.KEY, owner.public.wire)
        others = [p for p in parties if p != channel.party]
        zero_sum = ZeroSum.exchange(channel, parties, rng=self.rng)
        self.label_party_, self.feature_parties_ = label_party, parties
        n_tasks = setup.n_tasks
        beta_constant = _math.TAYLOR_SLOPE if setup.beta_public else None
        idle = threading.Event()
        ch = IdleChannel(channel, idle)
        owner.public.start_precompute(per_batch=cfg.batch_size, idle=idle)
        label_key.start_precompute(
            per_batch=cfg.batch_size if others else 0, idle=idle, masks_per_batch=x.shape[1]
        )
        self.weights_ = np.zeros((x.shape[1], n_tasks))
        self._on_epoch = on_epoch
        try:
            self._train(
                ch,
                label_party,
                owner,
                label_key,
                others,
                zero_sum,
                x,
                n_tasks,
                beta_constant,
                label_columns,
            )
        finally:
            owner.public.stop_precompute()
            label_key.stop_precompute()
        self._requests = 0
        self._fitted = True
        return self

    def _train(
        self,
        channel: Channel,
        label_party: str,
        owner: KeyOwner,
        label_key: PeerKey,
        others: list[str],
        zero_sum: ZeroSum,
        x: np.ndarray,
        n_tasks: int,
        beta_constant: float | None,
        label_columns: int,
    ) -> None:
        cfg = self.config
        train, val = _math.split_rows(x.shape[0], fraction=cfg.validation_fraction, seed=cfg.seed)
        rounds = 0
        for task in range(n_tasks):
            w = np.zeros(x.shape[1])
            best_w = w.copy()
            for epoch in range(cfg.epochs):
                start = time.perf_counter()
                lr = _math.learning_rate(
                    cfg.learning_rate, schedule=cfg.lr_schedule, decay=cfg.lr_decay, epoch=epoch
                )
                for b, rows in enumerate(
                    _math.batches(
                        train.size, batch_size=cfg.batch_size, seed=cfg.seed, epoch=epoch, task=task
                    )
                ):
                    idx = train[rows]
                    grad = feature_batch(
                        channel,
                        label_party=label_party,
                        owner=owner,
                        label_key=label_key,
                        others=others,
                        zero_sum=zero_sum,
                        x=x[idx],
                        w=w,
                        beta_constant=beta_constant,
                        label_columns=label_columns,
                        ctx=BatchContext(task, epoch, b),
                    )
                    w = _math.apply_penalty(w, grad, lr=lr, penalty=cfg.penalty, alpha=cfg.alpha)
                if val.size:
                    feature_scores(
                        channel,
                        label_party=label_party,
                        zero_sum=zero_sum,
                        x=x[val],
                        w=w[:, None],
                        expected_nonce=f"val/{task}/{epoch}",
                    )
                decision = expect(
                    channel, label_party, Topics.EPOCH_END, EpochEnd, timeout=self.timeout
                )
                rounds += 1
                if self._on_epoch is not None:
                    self._on_epoch(
                        {
                            "round": rounds,
                            "task": task,
                            "epoch": epoch + 1,
                            "metrics": {},
                            "seconds": time.perf_counter() - start,
                        }
                    )
                if decision.best:
                    best_w = w.copy()
                if decision.stop:
                    break
            self.weights_[:, task] = best_w

    def predict_proba(self, df: pd.DataFrame, *, channel: Channel) -> None:
        """Take part in the label party's prediction: send masked scores; the label party gets the output."""
        if not self._fitted:
            raise VflError("the hetero LR feature party is not fitted; call fit() or load()")
        x = self._design(df)
        zero_sum = ZeroSum.exchange(channel, self.feature_parties_, rng=self.rng)
        self._requests = getattr(self, "_requests", 0) + 1
        feature_scores(
            channel,
            label_party=self.label_party_,
            zero_sum=zero_sum,
            x=x,
            w=self.weights_,
            expected_nonce=f"predict/{self._requests}",
        )
        return None

    def evaluate(self, df: pd.DataFrame, *, channel: Channel) -> dict[str, Any]:
        """Take part in the label party's evaluation; metrics are the label party's output."""
        self.predict_proba(df, channel=channel)
        return {}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write this party's part only (JSON): columns, standardisation, weights."""
        if not self._fitted:
            raise VflError("the hetero LR feature party is not fitted")
        write_model(
            path,
            {
                "role": self.role,
                "id_column": self.id_column,
                "columns": self.columns_,
                "mean": self.mean_.tolist(),
                "std": self.std_.tolist(),
                "weights": self.weights_.tolist(),
                "label_party": self.label_party_,
                "feature_parties": self.feature_parties_,
                "crypto": self.crypto_,
            },
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, config: HeteroLRConfig | None = None
    ) -> HeteroLRFeatureParty:
        state = read_model(path, role=cls.role)
        model = cls(config, id_column=state["id_column"], feature_columns=state["columns"])
        model.columns_ = list(state["columns"])
        model.mean_ = np.asarray(state["mean"], dtype=np.float64)
        model.std_ = np.asarray(state["std"], dtype=np.float64)
        model.weights_ = np.asarray(state["weights"], dtype=np.float64)
        model.label_party_ = str(state["label_party"])
        model.feature_parties_ = list(state["feature_parties"])
        model.crypto_ = dict(state["crypto"])
        model._fitted = True
        return model
