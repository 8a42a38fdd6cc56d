"""The label party of a split NN: labels, its own optional bottom model, the top model, and its
shares ``W_G`` of every feature party's interactive weights."""

from __future__ import annotations

import logging
import math
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
from vfl.metrics import binary_metrics, multiclass_metrics
from vfl.split_nn._backends import make_evaluator, make_key_owner
from vfl.split_nn._checkpoint import common_epoch, list_epochs, load_checkpoint, save_checkpoint
from vfl.split_nn._config import SplitNNConfig
from vfl.split_nn._defence import defend
from vfl.split_nn._interactive import LabelShare, share_init
from vfl.split_nn._label_privacy import privacy_summary, receive_leak_aucs, rr_training_labels
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
)
from vfl.split_nn._plan import batches, handshake, split_rows
from vfl.split_nn._tensors import embedding_dim, features

__all__ = ["SplitNNLabelParty"]

log = logging.getLogger(__name__)


class SplitNNLabelParty:
    """The label party: ``z = bottom(x_G) W_own + b + sum_k h_k W_Hk``, ``output = top(z)``.

    ``top`` maps the ``config.interactive_units`` pre-activations to 1 logit (binary labels) or
    one logit per class. ``bottom=None`` means the label party contributes only labels (and the
    bias). Metrics, history and leak AUCs live here: it is the only party that has labels.
    """

    def __init__(
        self,
        top: nn.Module,
        *,
        config: SplitNNConfig,
        feature_parties: Sequence[str],
        bottom: nn.Module | None = None,
        label_column: str = "y",
        feature_columns: Sequence[str] | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        if not feature_parties:
            raise VflError("a split NN needs at least one feature party")
        self.top = top
        self.bottom = bottom
        self.config = config
        self.feature_parties = list(feature_parties)
        self.label_column = label_column
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self.checkpoint_dir = checkpoint_dir
        self._rng = rng
        self.own: nn.Module | None = None
        self.classes_: np.ndarray | None = None
        self._shares: dict[str, np.ndarray] = {}
        self._velocities: dict[str, np.ndarray] = {}
        self.history: list[dict[str, Any]] = []
        self.privacy: dict[str, Any] = {}
        self.optimizer: torch.optim.Optimizer | None = None
        self._rr_labels: np.ndarray | None = None
        self._fresh_own = False

    # -- data ---------------------------------------------------------------------------------
    def _columns(self, df: pd.DataFrame) -> list[str]:
        if self.feature_columns is None:
            self.feature_columns = [c for c in df.columns if c != self.label_column]
        return self.feature_columns

    def _x(self, df: pd.DataFrame) -> torch.Tensor:
        return features(df, self._columns(df))

    def _y(self, df: pd.DataFrame) -> np.ndarray:
        if self.label_column not in df.columns:
            raise VflError(f"label column {self.label_column!r} is missing")
        raw = df[self.label_column].to_numpy()
        if self.classes_ is None:
            self.classes_ = np.unique(raw)
            if self.classes_.size < 2:
                raise VflError("the labels hold a single class")
        index = np.searchsorted(self.classes_, raw)
        index = np.clip(index, 0, self.classes_.size - 1)
        if not np.all(self.classes_[index] == raw):
            raise VflError("labels hold a class not seen in training")
        out: np.ndarray = index.astype(np.int64)
        return out

    @property
    def binary(self) -> bool:
        return self.classes_ is not None and self.classes_.size == 2

    def _build(self, n_features: int) -> None:
        m = self.config.interactive_units
        if self.own is None:
            d = embedding_dim(self.bottom, n_features) if self.bottom is not None else 0
            self.own = nn.Linear(d, m) if d else _Bias(m)
            self._fresh_own = True
        params = list(self.top.parameters()) + list(self.own.parameters())
        if self.bottom is not None:
            params += list(self.bottom.parameters())
        self.optimizer = torch.optim.Adam(params, lr=self.config.learning_rate)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(
            self.optimizer, self.config.lr_decay
        )

    def _own_width(self) -> int:
        return int(self.own.in_features) if isinstance(self.own, nn.Linear) else 0

    def _init_own(self, fan_in: int) -> None:
        """Initialise the own part ``W_own``, ``bias`` as torch's ``nn.Linear(fan_in, m)`` does
        (``U[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in`` the whole interactive layer's input
        width), so the joint layer starts like the centralised model's."""
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            for param in self.own.parameters() if self.own is not None else []:
                param.uniform_(-bound, bound)
        self._fresh_own = False

    def _own_z(self, x: torch.Tensor) -> torch.Tensor:
        assert self.own is not None
        inputs = x[:, :0] if self.bottom is None else self.bottom(x)
        out: torch.Tensor = self.own(inputs)
        return out

    # -- session set-up -------------------------------------------------------------------------
    def _session(
        self, channel: Channel, df: pd.DataFrame, *, train: bool
    ) -> tuple[dict[str, LabelShare], Any, list[Hello]]:
        info = Hello(config=self.config.fingerprint(), rows=int(len(df)), train=train)
        hellos = [handshake(channel, p, label_side=True, info=info) for p in self.feature_parties]
        owner = make_key_owner(self.config.crypto, rng=self._rng)
        shares: dict[str, LabelShare] = {}
        dims = [h.dim for h in hellos]
        for peer, d in zip(self.feature_parties, dims, strict=True):
            if not isinstance(d, int) or d < 1:
                raise VflError(f"{peer} announced no embedding width")
        fan_in = self._own_width() + sum(int(d) for d in dims if isinstance(d, int))
        if self._fresh_own:
            self._init_own(fan_in)
        for peer, d in zip(self.feature_parties, dims, strict=True):
            assert isinstance(d, int)
            evaluator = make_evaluator(
                self.config.crypto, channel.recv(peer, "snn/key"), rng=self._rng
            )
            channel.send(peer, "snn/key", owner.public)
            channel.send(peer, TOPIC_PLAN, Plan(fan_in=fan_in))
            if peer not in self._shares:
                if not train:
                    raise VflError("predict before fit: the label party has no trained shares")
                self._shares[peer] = share_init(
                    (d, self.config.interactive_units), fan_in=fan_in, rng=self._rng
                )
            if self._shares[peer].shape[0] != d:
                raise VflError(f"{peer} changed its embedding width to {d}")
            shares[peer] = LabelShare(
                peer=peer,
                evaluator=evaluator,
                share=self._shares[peer],
                crypto=self.config.crypto,
                rng=self._rng,
                momentum=self.config.interactive_momentum,
            )
            if peer in self._velocities:
                shares[peer].velocity = self._velocities[peer]
        return shares, owner, hellos

    def _joint_z(
        self, channel: Channel, shares: dict[str, LabelShare], x: torch.Tensor, *, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows = x.shape[0]
        parts = sum(s.forward(channel, rows=rows, train=train) for s in shares.values())
        zp = torch.from_numpy(np.asarray(parts, dtype=np.float32))
        return self._own_z(x), zp

    def _loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.binary:
            return nn.functional.binary_cross_entropy_with_logits(out.reshape(-1), y.float())
        return nn.functional.cross_entropy(out, y)

    def _proba(self, out: torch.Tensor) -> np.ndarray:
        if self.binary:
            return torch.sigmoid(out.reshape(-1)).double().numpy()
        return torch.softmax(out, dim=1).double().numpy()

    # -- training -------------------------------------------------------------------------------
    def fit(
        self,
        df: pd.DataFrame,
        *,
        channel: Channel,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
    ) -> SplitNNLabelParty:
        """Train with the feature parties over ``channel``; rows in the agreed (PSI) order.

        ``on_epoch`` is called after every epoch with ``{"round": epoch (1-based), "metrics":
        {"loss", "val_auc" or "val_accuracy"}, "seconds"}``. With ``config.label_dp_epsilon``
        the model trains on labels perturbed once by randomised response (see
        :meth:`_training_labels`), so everything that leaves this party is label-DP.
        """
        x, y_true = self._x(df), self._y(df)
        y_all = y_true
        self._build(x.shape[1])
        shares, owner, hellos = self._session(channel, df, train=True)
        resume = (
            common_epoch(list_epochs(self.checkpoint_dir), *(h.checkpoints for h in hellos))
            if self.checkpoint_dir is not None
            else None
        )
        for peer in self.feature_parties:
            channel.send(peer, TOPIC_RESUME, Resume(epoch=resume))
        start, best_loss, best, stale = 0, float("inf"), None, 0
        saved_labels = None
        if resume is not None:
            state = self._load(resume)
            for peer, s in shares.items():
                s.share = self._shares[peer]
                if peer in self._velocities:
                    s.velocity = self._velocities[peer]
            start = resume + 1
            best_loss, best, stale = (
                float(state["best_loss"]),
                state.get("best"),
                int(state["stale"]),
            )
            saved_labels = state.get("train_labels")
        y_all = self._training_labels(y_true, saved_labels)
        train_rows, val_rows = split_rows(x.shape[0], self.config)
        y_t = torch.from_numpy(y_all)
        for epoch in range(start, self.config.epochs):
            epoch_started = time.perf_counter()
            if stale >= self.config.patience:
                log.info("early stopping after epoch %d", epoch)
                channel.broadcast(TOPIC_CTL, Control(stop=True), peers=self.feature_parties)
                break
            channel.broadcast(TOPIC_CTL, Control(stop=False), peers=self.feature_parties)
            record = self._epoch(channel, shares, owner, x, y_t, train_rows, epoch, y_true)
            if val_rows.size:
                proba = self._infer(channel, shares, x, val_rows)
                record.update(self._metrics(y_all[val_rows], proba, prefix="val_"))
                loss = float(record["val_logloss"])
            else:
                loss = record["train_loss"]
            # Early stopping and the best-epoch restore watch the validation loss; without a
            # validation split there is nothing held out to watch, so every epoch is kept (the
            # training loss of a noisy mini-batch epoch would stop runs early at random).
            improved = loss < best_loss - 1e-6 if val_rows.size else True
            best_loss, stale = (loss, 0) if improved else (best_loss, stale + 1)
            if improved:
                best = self._state(epoch)
            channel.broadcast(TOPIC_VERDICT, Verdict(best=improved), peers=self.feature_parties)
            self.history.append(record)
            log.info(
                "epoch %d/%d %s",
                epoch + 1,
                self.config.epochs,
                " ".join(f"{k}={v:.4g}" for k, v in record.items() if isinstance(v, float)),
            )
            if self.checkpoint_dir is not None:
                state = self._state(epoch)
                state.update(best=best, best_loss=best_loss, stale=stale)
                if self._rr_labels is not None:
                    state["train_labels"] = torch.from_numpy(self._rr_labels.copy())
                save_checkpoint(self.checkpoint_dir, epoch, state)
            if on_epoch is not None:
                metrics = {"loss": float(record["train_loss"])}
                for key in ("val_auc", "val_accuracy"):
                    if key in record:
                        metrics[key] = float(record[key])
                on_epoch(
                    {
                        "round": epoch + 1,
                        "metrics": metrics,
                        "seconds": time.perf_counter() - epoch_started,
                    }
                )
        else:
            channel.broadcast(TOPIC_CTL, Control(stop=True), peers=self.feature_parties)
        if best is not None:
            self._restore(best)
        self.privacy = privacy_summary(self.config, self.history)
        return self

    def _training_labels(self, y: np.ndarray, saved: Any) -> np.ndarray:
        """``y``, or with ``label_dp_epsilon`` its randomised response (drawn once per job)."""
        epsilon = self.config.label_dp_epsilon
        if epsilon is None:
            self._rr_labels = None
            return y
        assert self.classes_ is not None
        self._rr_labels = rr_training_labels(
            y, saved, epsilon=epsilon, num_classes=int(self.classes_.size), rng=self._rng
        )
        return self._rr_labels

    def _epoch(
        self,
        channel: Channel,
        shares: dict[str, LabelShare],
        owner: Any,
        x: torch.Tensor,
        y: torch.Tensor,
        train_rows: np.ndarray,
        epoch: int,
        y_true: np.ndarray,
    ) -> dict[str, Any]:
        assert self.optimizer is not None
        lr = self.config.interactive_lr_at(epoch)
        self.top.train()
        if self.bottom is not None:
            self.bottom.train()
        started, total, seen = time.perf_counter(), 0.0, 0
        labels: list[np.ndarray] = []
        for rows in batches(
            train_rows, batch_size=self.config.batch_size, seed=self.config.seed, epoch=epoch
        ):
            z_own, zp = self._joint_z(channel, shares, x[rows], train=True)
            zp.requires_grad_(True)
            loss = self._loss(self.top(z_own + zp), y[rows])
            self.optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            self.optimizer.step()
            assert zp.grad is not None
            delta = zp.grad.double().numpy()
            defended = defend(delta, config=self.config.defence, rng=self._rng)
            ct = owner.encrypt(defended)
            for s in shares.values():
                s.backward(
                    channel,
                    owner=owner,
                    ct_delta_defended=ct,
                    delta_defended=defended,
                    delta=delta,
                    lr=lr,
                )
            total += float(loss.detach()) * rows.size
            seen += rows.size
            labels.append(y_true[rows])  # the attack meter measures leakage of the true labels
        self.scheduler.step()
        for peer, s in shares.items():
            self._shares[peer] = s.share
            self._velocities[peer] = s.velocity
        elapsed = time.perf_counter() - started
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "train_loss": total / seen,
            "seconds": elapsed,
            "samples_per_s": seen / elapsed,
        }
        if self.config.attack_meter:
            record.update(
                receive_leak_aucs(channel, self.feature_parties, labels, binary=self.binary)
            )
        return record

    # -- inference ------------------------------------------------------------------------------
    def _infer(
        self, channel: Channel, shares: dict[str, LabelShare], x: torch.Tensor, rows: np.ndarray
    ) -> np.ndarray:
        self.top.eval()
        if self.bottom is not None:
            self.bottom.eval()
        out = []
        with torch.no_grad():
            for start in range(0, rows.size, self.config.batch_size):
                part = rows[start : start + self.config.batch_size]
                z_own, zp = self._joint_z(channel, shares, x[part], train=False)
                out.append(self._proba(self.top(z_own + zp)))
        return np.concatenate(out)

    def predict_proba(self, df: pd.DataFrame, *, channel: Channel) -> np.ndarray:
        """Joint inference on new rows (same order at every party): ``P(y = 1)`` or ``n x K``."""
        if self.own is None or self.classes_ is None:
            raise VflError("predict before fit")
        x = self._x(df)
        shares, _, _ = self._session(channel, df, train=False)
        return self._infer(channel, shares, x, np.arange(x.shape[0], dtype=np.int64))

    def evaluate(
        self, df: pd.DataFrame, *, channel: Channel, prefix: str = "test_"
    ) -> dict[str, Any]:
        """Metrics of :meth:`predict_proba` against ``df``'s labels (AUC, KS, accuracy, log-loss)."""
        proba = self.predict_proba(df, channel=channel)
        return self._metrics(self._y(df), proba, prefix=prefix)

    def _metrics(self, y: np.ndarray, proba: np.ndarray, *, prefix: str) -> dict[str, Any]:
        if self.binary:
            return binary_metrics(y, proba, prefix=prefix)
        return multiclass_metrics(y, proba, prefix=prefix)

    # -- state ------------------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        assert self.own is not None and self.optimizer is not None and self.classes_ is not None
        state: dict[str, Any] = {
            "epoch": epoch,
            "top": _clone(self.top.state_dict()),
            "own": _clone(self.own.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "shares": {p: torch.from_numpy(s.copy()) for p, s in self._shares.items()},
            "velocities": {p: torch.from_numpy(v.copy()) for p, v in self._velocities.items()},
            "classes": self.classes_.tolist(),
            "history": [dict(r) for r in self.history],
        }
        if self.bottom is not None:
            state["bottom"] = _clone(self.bottom.state_dict())
        return state

    def _restore(self, state: dict[str, Any]) -> None:
        assert self.own is not None
        self.top.load_state_dict(state["top"])
        self.own.load_state_dict(state["own"])
        if self.bottom is not None:
            self.bottom.load_state_dict(state["bottom"])
        self._shares = {p: t.double().numpy().copy() for p, t in state["shares"].items()}
        self._velocities = {
            p: t.double().numpy().copy() for p, t in state.get("velocities", {}).items()
        }
        self.classes_ = np.asarray(state["classes"])

    def _load(self, epoch: int) -> dict[str, Any]:
        assert self.checkpoint_dir is not None and self.optimizer is not None
        state = load_checkpoint(self.checkpoint_dir, epoch)
        self._restore(state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history = list(state["history"])
        log.info("label party resumed from epoch %d", epoch + 1)
        return state

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save this party's part (top, own layer, bottom, shares ``W_G``) with ``torch.save``."""
        if self.own is None:
            raise VflError("nothing to save: fit first")
        torch.save(self._state(-1), path)

    def load(self, path: str | os.PathLike[str], *, n_features: int) -> SplitNNLabelParty:
        """Load :meth:`save` output (``weights_only=True``) into modules of the same shapes."""
        self._build(n_features)
        self._restore(torch.load(path, weights_only=True))
        self._fresh_own = False
        return self


class _Bias(nn.Module):
    """The interactive layer's bias when the label party has no bottom model."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(x.shape[0], -1)


def _clone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in state.items()}
