"""The feature party of a split NN: its bottom model, trained where its data is."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from crypto.random import RandomSource
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.split_nn._attacks import attack_scores
from vfl.split_nn._backends import make_evaluator, make_key_owner
from vfl.split_nn._checkpoint import list_epochs, load_checkpoint, save_checkpoint
from vfl.split_nn._config import SplitNNConfig
from vfl.split_nn._interactive import FeatureShare, share_init
from vfl.split_nn._messages import (
    TOPIC_CTL,
    TOPIC_PLAN,
    TOPIC_RESUME,
    TOPIC_VERDICT,
    Control,
    Hello,
    Plan,
    Resume,
    Verdict,
    receive,
)
from vfl.split_nn._plan import batches, chunks, handshake, split_rows
from vfl.split_nn._tensors import embedding_dim, features

__all__ = ["SplitNNFeatureParty"]

log = logging.getLogger(__name__)


class SplitNNFeatureParty:
    """A feature party: ``bottom`` maps its feature columns to an embedding ``h`` (``b x d``).

    It never sees labels, the label party's models or ``W_H``; it learns the gradient of the loss
    with respect to its own embedding (noised when the label party's defence is on).
    """

    def __init__(
        self,
        bottom: nn.Module,
        *,
        config: SplitNNConfig,
        label_party: str,
        feature_columns: Sequence[str] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        self.bottom = bottom
        self.config = config
        self.label_party = label_party
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.checkpoint_dir = checkpoint_dir
        self._rng = rng
        self._share: np.ndarray | None = None
        self._noise_velocity: np.ndarray | None = None
        self.optimizer = torch.optim.Adam(bottom.parameters(), lr=config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, config.lr_decay)
        self._resume_best: dict[str, Any] | None = None

    # -- session set-up ---------------------------------------------------------------------
    def _session(
        self, channel: Channel, df: pd.DataFrame, *, train: bool
    ) -> tuple[FeatureShare, Hello, torch.Tensor]:
        x = features(df, self.feature_columns)
        if self.feature_columns is None:
            self.feature_columns = list(df.columns)
        d = embedding_dim(self.bottom, x.shape[1])
        info = Hello(
            config=self.config.fingerprint(),
            rows=int(x.shape[0]),
            train=train,
            dim=d,
            checkpoints=tuple(list_epochs(self.checkpoint_dir)) if train else (),
        )
        other = handshake(channel, self.label_party, label_side=False, info=info)
        owner = make_key_owner(self.config.crypto, rng=self._rng)
        channel.send(self.label_party, "snn/key", owner.public)
        evaluator = make_evaluator(
            self.config.crypto, channel.recv(self.label_party, "snn/key"), rng=self._rng
        )
        fan_in = receive(channel, self.label_party, TOPIC_PLAN, Plan).fan_in
        if not isinstance(fan_in, int) or fan_in < d:
            raise VflError("label party sent no interactive-layer width")
        if self._share is None:
            if not train:
                raise VflError("predict before fit: this feature party has no trained share")
            m = self.config.interactive_units
            self._share = share_init((d, m), fan_in=fan_in, rng=self._rng)
        share = FeatureShare(
            peer=self.label_party,
            owner=owner,
            evaluator=evaluator,
            share=self._share,
            crypto=self.config.crypto,
            rng=self._rng,
            momentum=self.config.interactive_momentum,
        )
        if self._noise_velocity is not None:
            share.noise_velocity = self._noise_velocity
        return share, other, x

    # -- training -------------------------------------------------------------------------------
    def fit(
        self,
        df: pd.DataFrame,
        *,
        channel: Channel,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> SplitNNFeatureParty:
        """Train with the label party over ``channel``; ``df`` rows in the agreed (PSI) order.

        ``on_epoch`` is called after every epoch with ``{"round": epoch (1-based), "metrics": {},
        "seconds"}`` (a feature party has no labels, so no loss or validation metrics).
        """
        share, _, x = self._session(channel, df, train=True)
        start = 0
        resume = receive(channel, self.label_party, TOPIC_RESUME, Resume).epoch
        if resume is not None:
            self._load(int(resume))
            share.share = self._share  # type: ignore[assignment]
            if self._noise_velocity is not None:
                share.noise_velocity = self._noise_velocity
            start = int(resume) + 1
        train_rows, val_rows = split_rows(x.shape[0], self.config)
        best: dict[str, Any] | None = None
        for epoch in range(start, self.config.epochs):
            if receive(channel, self.label_party, TOPIC_CTL, Control).stop:
                break
            epoch_started = time.perf_counter()
            self.bottom.train()
            norm_scores, dir_scores = [], []
            for rows in batches(
                train_rows, batch_size=self.config.batch_size, seed=self.config.seed, epoch=epoch
            ):
                h = self.bottom(x[rows])
                share.forward(channel, h.detach().double().numpy(), train=True)
                grad = share.backward(channel)
                self.optimizer.zero_grad()
                h.backward(torch.from_numpy(grad).to(h.dtype))
                self.optimizer.step()
                if self.config.attack_meter:
                    n_s, d_s = attack_scores(grad)
                    norm_scores.append(n_s)
                    dir_scores.append(d_s)
            self.scheduler.step()
            self._share = share.share
            self._noise_velocity = share.noise_velocity
            if self.config.attack_meter:
                channel.send(self.label_party, "snn/scores_norm", np.concatenate(norm_scores))
                channel.send(self.label_party, "snn/scores_dir", np.concatenate(dir_scores))
            if val_rows.size:
                self._forward_rows(channel, share, x, val_rows)
            if receive(channel, self.label_party, TOPIC_VERDICT, Verdict).best:
                best = self._state(epoch)
            if self.checkpoint_dir is not None:
                state = self._state(epoch)
                if best is not None:
                    state["best"] = best
                save_checkpoint(self.checkpoint_dir, epoch, state)
            log.info("feature party %s: epoch %d done", channel.party, epoch + 1)
            if on_epoch is not None:
                on_epoch(
                    {
                        "round": epoch + 1,
                        "metrics": {},
                        "seconds": time.perf_counter() - epoch_started,
                    }
                )
        else:
            receive(channel, self.label_party, TOPIC_CTL, Control)
        if best is None and resume is not None:
            best = self._resume_best
        if best is not None:
            self._restore(best)
        return self

    def _forward_rows(
        self, channel: Channel, share: FeatureShare, x: torch.Tensor, rows: np.ndarray
    ) -> None:
        self.bottom.eval()
        with torch.no_grad():
            for start in range(0, rows.size, self.config.batch_size):
                part = rows[start : start + self.config.batch_size]
                share.forward(channel, self.bottom(x[part]).double().numpy(), train=False)

    # -- inference ------------------------------------------------------------------------------
    def predict_proba(self, df: pd.DataFrame, *, channel: Channel) -> None:
        """Take part in the label party's inference on ``df`` (rows in the agreed order)."""
        share, _, x = self._session(channel, df, train=False)
        self.bottom.eval()
        with torch.no_grad():
            for rows in chunks(x.shape[0], self.config.batch_size):
                share.forward(channel, self.bottom(x[rows]).double().numpy(), train=False)

    def evaluate(self, df: pd.DataFrame, *, channel: Channel) -> None:
        """Take part in the label party's evaluation (the metrics are the label party's)."""
        self.predict_proba(df, channel=channel)

    # -- state ------------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        assert self._share is not None
        return {
            "epoch": epoch,
            "bottom": {k: v.detach().clone() for k, v in self.bottom.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "share": torch.from_numpy(self._share.copy()),
            "noise_velocity": torch.from_numpy(
                np.zeros_like(self._share)
                if self._noise_velocity is None
                else self._noise_velocity.copy()
            ),
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.bottom.load_state_dict(state["bottom"])
        self._share = state["share"].double().numpy().copy()
        if "noise_velocity" in state:
            self._noise_velocity = state["noise_velocity"].double().numpy().copy()

    def _load(self, epoch: int) -> None:
        if self.checkpoint_dir is None:
            raise VflError("the label party resumes from a checkpoint but this party has none")
        state = load_checkpoint(self.checkpoint_dir, epoch)
        self._restore(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._resume_best = state.get("best")
        log.info("feature party resumed from epoch %d", epoch + 1)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save this party's part of the model (bottom and share ``A``) with ``torch.save``."""
        if self._share is None:
            raise VflError("nothing to save: fit first")
        torch.save(self._state(-1), path)

    def load(self, path: str | os.PathLike[str]) -> SplitNNFeatureParty:
        """Load :meth:`save` output (``weights_only=True``)."""
        self._restore(torch.load(path, weights_only=True))
        return self
