"""The label party of SecureBoost: gradients, encrypted histograms in, splits and leaves out.

Message sequence (per tree; every feature party gets every message, so the message count and
sizes depend only on the public settings and the tree shape, which the paper reveals anyway):

1. ``tree`` (continue flag), ``gh`` (one packed ciphertext of ``(g, h)`` per sampled row),
   ``rows`` (the sampled rows: the root's instance space).
2. For each of ``max_depth`` levels: ``build`` (nodes whose histogram a feature party builds:
   the root, then the smaller child of every split; the label party gets the sibling by
   subtraction from the parent), answered by ``hist``; then ``split`` (only this party's chosen
   splits: node, feature slot, bin, missing side) and ``split-rows`` (the node's rows), answered
   by ``part`` (record ids) and ``part-bits`` (which rows go left).

Leaf weights and the decrypted histograms never leave this party.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crypto.paillier import ObfuscatorPool, PaillierPrivateKey, generate_keypair
from crypto.random import RandomSource
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.metrics import binary_metrics, multiclass_metrics
from vfl.secureboost._binning import Binner
from vfl.secureboost._cipher import (
    Layout,
    ciphertexts_from_wire,
    ciphertexts_to_wire,
    decrypt_histograms,
    encrypt_gradients,
    plain_histograms,
)
from vfl.secureboost._config import Objective, SecureBoostConfig
from vfl.secureboost._math import (
    Split,
    base_margin,
    best_split,
    gradients,
    leaf_weight,
    loss,
    transform,
)
from vfl.secureboost._tree import LEAF, OWN, REMOTE, Forest
from vfl.secureboost._wire import TOPIC, bool_array, int_array, pack_lists

__all__ = ["SecureBoostLabelParty"]

logger = logging.getLogger("vfl.secureboost")
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class _Node:
    rows: IntArray  # rows in the histogram (sampled training rows)
    other: IntArray  # rows routed alongside (not sampled, validation)
    hists: dict[int, FloatArray] = field(default_factory=dict)  # -1 = own, else party index


def _features(
    frame: pd.DataFrame, columns: Sequence[str] | None, exclude: Sequence[str]
) -> list[str]:
    cols = list(columns) if columns is not None else [c for c in frame.columns if c not in exclude]
    for c in cols:
        if c not in frame.columns:
            raise VflError(f"feature column {c!r} is missing")
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise VflError(f"feature column {c!r} is not numeric")
    return cols


class SecureBoostLabelParty:
    """The party holding ``y``: boosts the trees and keeps every leaf weight."""

    def __init__(
        self,
        config: SecureBoostConfig,
        *,
        label_column: str = "y",
        feature_columns: Sequence[str] | None = None,
        rng: RandomSource | None = None,
        processes: int | None = None,
        private_key: PaillierPrivateKey | None = None,
    ) -> None:
        self.config = config
        self.label_column = label_column
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self._rng = rng
        self._processes = processes
        self._private_key = private_key
        self.forest_ = Forest.empty(config.max_depth)
        self.history_: list[dict[str, Any]] = []
        self.timing_: dict[str, float] = {}
        self.crypto_: dict[str, Any] = {}
        self.classes_: list[Any] = []
        self.feature_parties_: list[str] = []
        self.base_ = np.zeros(config.outputs)
        self.y_shift_, self.y_scale_ = 0.0, 1.0
        self._pool: ObfuscatorPool | None = None
        self._layout = Layout(gradient_bits=8, row_bits=1)
        self._prefetch: threading.Thread | None = None

    # -- training ------------------------------------------------------------------------------
    def _labels(self, frame: pd.DataFrame, *, fit: bool) -> FloatArray:
        if self.label_column not in frame.columns:
            raise VflError(f"label column {self.label_column!r} is missing")
        raw = frame[self.label_column].to_numpy()
        cfg = self.config
        if cfg.objective is Objective.REGRESSION:
            y = raw.astype(np.float64)
            if fit:
                self.y_shift_ = float(np.mean(y))
                self.y_scale_ = float(np.std(y)) or 1.0
            return np.asarray((y - self.y_shift_) / self.y_scale_)
        if fit:
            self.classes_ = sorted(np.unique(raw).tolist())
            want = cfg.num_class if cfg.objective is Objective.MULTICLASS else 2
            if len(self.classes_) > want:
                raise VflError(
                    f"label column has {len(self.classes_)} classes, the objective takes {want}"
                )
        index = {c: i for i, c in enumerate(self.classes_)}
        try:
            return np.asarray([index[v] for v in raw.tolist()], dtype=np.float64)
        except KeyError as exc:
            raise VflError(f"label {exc.args[0]!r} was not seen in training") from None

    def _add(self, key: str, seconds: float) -> None:
        self.timing_[key] = self.timing_.get(key, 0.0) + seconds

    def fit(
        self,
        train: pd.DataFrame,
        *,
        channel: Channel,
        feature_parties: Sequence[str],
        on_round: Callable[[dict[str, Any]], None] | None = None,
    ) -> SecureBoostLabelParty:
        cfg = self.config
        parties = list(feature_parties)
        self.feature_parties_ = parties
        cols = _features(train, self.feature_columns, [self.label_column])
        self.feature_columns = cols
        x = train[cols].to_numpy(dtype=np.float64)
        y = self._labels(train, fit=True)
        n = len(y)
        setup = {
            p: int_array(channel.recv(p, TOPIC["setup"]), "setup", (2 + len(cfg.shape_key),))
            for p in parties
        }
        widths = {}
        for p, (rows, feats, *shape) in setup.items():
            if tuple(shape) != cfg.shape_key:
                raise VflError(
                    f"party {p} runs other settings (max_depth, max_bin, outputs, scheme): "
                    f"{tuple(shape)} vs {cfg.shape_key}"
                )
            if rows != n:
                raise VflError(f"party {p} has {rows} training rows, the label party {n}")
            widths[p] = int(feats)
        self._layout = Layout.for_job(cfg.objective, n)
        if cfg.scheme == "paillier":
            start = time.perf_counter()
            if self._private_key is None:
                _, self._private_key = generate_keypair(
                    cfg.key_bits,
                    rng=self._rng,
                    insecure_allow_small_keys=cfg.insecure_allow_small_keys,
                )
            self._add("keygen", time.perf_counter() - start)
            channel.broadcast(TOPIC["key"], self._private_key.public_key, peers=parties)
            # obfuscators for the next tree are computed while the feature parties build
            # histograms (a background thread: this party mostly waits on the channel then)
            self._pool = ObfuscatorPool(
                self._private_key.public_key,
                rng=self._rng,
                obfuscator=cfg.obfuscator,
                private_key=self._private_key,
            )
        self.crypto_ = {
            "scheme": cfg.scheme,
            "key_bits": cfg.key_bits if cfg.scheme == "paillier" else 0,
        }
        binner = Binner.fit(x, cfg.max_bin)
        self._binner = binner
        bins = binner.transform(x)
        gen = np.random.default_rng(cfg.seed)
        perm = gen.permutation(n)
        n_val = int(round(cfg.validation_fraction * n))
        val = np.sort(perm[:n_val])
        trn = np.sort(perm[n_val:])
        self.base_ = base_margin(cfg.objective, y[trn], cfg.outputs)
        margin = np.tile(self.base_, (n, 1))
        best_loss, best_round = float("inf"), 0
        self.forest_ = Forest.empty(cfg.max_depth)
        for rnd in range(cfg.trees):
            start = time.perf_counter()
            g_all, h_all = gradients(cfg.objective, y, margin)
            for k in range(cfg.outputs):
                if cfg.subsample < 1.0:
                    size = max(1, int(round(cfg.subsample * trn.size)))
                    sampled = np.sort(gen.choice(trn, size=size, replace=False))
                else:
                    sampled = trn
                channel.broadcast(TOPIC["tree"], np.asarray([1], np.int64), peers=parties)
                gh = np.zeros((n, 2))
                gh[:, 0], gh[:, 1] = g_all[:, k], h_all[:, k]
                last = rnd == cfg.trees - 1 and k == cfg.outputs - 1
                leaves = self._tree(
                    channel, parties, widths, x, bins, gh, sampled, n, k, prefetch=not last
                )
                for rows, value in leaves:
                    margin[rows, k] += value
            record: dict[str, Any] = {
                "round": rnd + 1,
                "seconds": time.perf_counter() - start,
                "train_loss": loss(cfg.objective, y[trn], margin[trn]),
            }
            if val.size:
                record["val_loss"] = loss(cfg.objective, y[val], margin[val])
            self.history_.append(record)
            logger.info("secureboost round %d: %s", rnd + 1, record)
            if on_round is not None:
                on_round({"round": rnd + 1, "metrics": record, "seconds": record["seconds"]})
            if val.size:
                if record["val_loss"] < best_loss - 1e-12:
                    best_loss, best_round = record["val_loss"], rnd + 1
                elif (
                    cfg.early_stopping_rounds and rnd + 1 - best_round >= cfg.early_stopping_rounds
                ):
                    break
        channel.broadcast(TOPIC["tree"], np.asarray([0], np.int64), peers=parties)
        self._join_prefetch()
        self._pool = None
        if val.size and cfg.early_stopping_rounds:
            self.forest_.truncate(best_round * cfg.outputs)
        self.best_round_ = len(self.forest_) // cfg.outputs
        return self

    def _join_prefetch(self) -> None:
        if self._prefetch is not None:
            self._prefetch.join()
            self._prefetch = None

    def _fill(self, count: int) -> None:
        assert self._pool is not None
        start = time.perf_counter()
        self._pool.fill(count, processes=self._processes)
        self._add("prefetch_background", time.perf_counter() - start)

    def _encrypt(self, gh: FloatArray, *, prefetch: bool) -> npt.NDArray[Any]:
        """The ``gh`` payload; with ``prefetch``, start filling the pool for the next tree."""
        cfg = self.config
        if cfg.scheme == "plain":
            return np.ascontiguousarray(gh)
        assert self._private_key is not None and self._pool is not None
        start = time.perf_counter()
        self._join_prefetch()
        count = gh.shape[0]
        if len(self._pool) < count:
            self._pool.fill(count - len(self._pool), processes=self._processes)
        cts = encrypt_gradients(
            self._private_key,
            gh[:, 0],
            gh[:, 1],
            layout=self._layout,
            obfuscator=cfg.obfuscator,
            obfuscators=self._pool.take(count),
        )
        wire = ciphertexts_to_wire(self._private_key.public_key, cts)
        self._add("encrypt", time.perf_counter() - start)
        if prefetch:  # the next tree samples the same number of rows (a public setting)
            self._prefetch = threading.Thread(
                target=self._fill, args=(count,), name="secureboost-prefetch", daemon=True
            )
            self._prefetch.start()
        return wire

    def _receive_hists(self, channel: Channel, party: str, count: int, width: int) -> FloatArray:
        cfg = self.config
        nbins = cfg.max_bin + 1
        data = channel.recv(party, TOPIC["hist"])
        if cfg.scheme == "plain":
            if (
                not isinstance(data, np.ndarray)
                or data.dtype != np.float64
                or data.shape != (count, width, nbins, 2)
            ):
                raise VflError(f"party {party} sent a malformed histogram")
            return data
        assert self._private_key is not None
        start = time.perf_counter()
        key = self._private_key.public_key
        bins = count * width * nbins
        cts = ciphertexts_from_wire(
            key, data, (-(-bins // self._layout.per_ciphertext(key)),), "histograms"
        )
        out = decrypt_histograms(
            self._private_key, cts.tolist(), bins, self._layout, processes=self._processes
        )
        self._add("decrypt", time.perf_counter() - start)
        return out.reshape(count, width, nbins, 2)

    def _tree(
        self,
        channel: Channel,
        parties: list[str],
        widths: dict[str, int],
        x: FloatArray,
        bins: npt.NDArray[np.int32],
        gh: FloatArray,
        sampled: IntArray,
        n: int,
        output: int,
        *,
        prefetch: bool = False,
    ) -> list[tuple[IntArray, float]]:
        cfg = self.config
        nbins = cfg.max_bin + 1
        t = self.forest_.new_tree(output)
        f = self.forest_
        payload = self._encrypt(gh[sampled], prefetch=prefetch)
        for p in parties:
            channel.send(p, TOPIC["gh"], payload)
            channel.send(p, TOPIC["rows"], sampled.astype(np.int64))
        routed = np.ones(n, bool)
        routed[sampled] = False
        frontier: dict[int, _Node] = {0: _Node(sampled, np.flatnonzero(routed))}
        parents: dict[int, _Node] = {}
        leaves: list[tuple[IntArray, float]] = []

        def make_leaf(node_id: int, node: _Node) -> None:
            g, h = gh[node.rows, 0].sum(), gh[node.rows, 1].sum()
            value = leaf_weight(g, h, reg_lambda=cfg.reg_lambda, learning_rate=cfg.learning_rate)
            f.kind[t, node_id], f.value[t, node_id] = LEAF, value
            leaves.append((np.concatenate([node.rows, node.other]), value))

        for _depth in range(cfg.max_depth):
            ids = sorted(frontier)
            build: list[int] = []
            for i in ids:
                if i == 0:
                    build.append(i)
                elif i % 2 == 1:  # left child: build the smaller of the pair
                    sib = i + 1
                    build.append(i if frontier[i].rows.size <= frontier[sib].rows.size else sib)
            packed = pack_lists(build, [frontier[i].rows for i in build])
            for p in parties:
                channel.send(p, TOPIC["build"], packed)
            for i in build:
                node = frontier[i]
                node.hists[-1] = plain_histograms(gh[node.rows], bins[node.rows], nbins)
            for j, p in enumerate(parties):
                hists = self._receive_hists(channel, p, len(build), widths[p])
                for b, i in enumerate(build):
                    frontier[i].hists[j] = hists[b]
            for i in ids:
                if i not in build:  # the sibling: parent minus the built child
                    parent = parents[(i - 1) // 2]
                    built = frontier[i - 1 if i % 2 == 0 else i + 1]
                    frontier[i].hists = {k: parent.hists[k] - built.hists[k] for k in parent.hists}
            chosen: dict[int, tuple[int, Split]] = {}
            for i in ids:
                best: tuple[int, Split] | None = None
                for k in [-1, *range(len(parties))]:
                    s = best_split(
                        frontier[i].hists[k],
                        reg_lambda=cfg.reg_lambda,
                        min_child_weight=cfg.min_child_weight,
                    )
                    if s is not None and (best is None or s.gain > best[1].gain):
                        best = (k, s)
                if best is not None:
                    chosen[i] = best
            lefts: dict[int, npt.NDArray[np.bool_]] = {}
            for j, p in enumerate(parties):
                mine = [i for i in ids if i in chosen and chosen[i][0] == j]
                spec = np.asarray(
                    [
                        [i, chosen[i][1].slot, chosen[i][1].bin, int(chosen[i][1].missing_left)]
                        for i in mine
                    ],
                    dtype=np.int64,
                ).reshape(-1, 4)
                channel.send(p, TOPIC["split"], spec)
                rows = [np.concatenate([frontier[i].rows, frontier[i].other]) for i in mine]
                channel.send(p, TOPIC["split_rows"], pack_lists(mine, rows))
            for j, p in enumerate(parties):
                mine = [i for i in ids if i in chosen and chosen[i][0] == j]
                records = int_array(channel.recv(p, TOPIC["part"]), "record ids", (len(mine),))
                total = sum(frontier[i].rows.size + frontier[i].other.size for i in mine)
                bits = bool_array(channel.recv(p, TOPIC["part_bits"]), "partition", total)
                pos = 0
                for i, rec in zip(mine, records.tolist(), strict=True):
                    size = frontier[i].rows.size + frontier[i].other.size
                    lefts[i] = bits[pos : pos + size]
                    pos += size
                    f.kind[t, i], f.owner[t, i], f.ref[t, i] = REMOTE, j, rec
            for i in ids:
                if i in chosen and chosen[i][0] == -1:
                    s = chosen[i][1]
                    node = frontier[i]
                    both = np.concatenate([node.rows, node.other])
                    col = bins[both, s.slot]
                    lefts[i] = np.where(col == cfg.max_bin, s.missing_left, col <= s.bin)
                    f.kind[t, i], f.ref[t, i] = OWN, s.slot
                    f.threshold[t, i] = self._binner.threshold(s.slot, s.bin)
                    f.missing_left[t, i] = s.missing_left
            nxt: dict[int, _Node] = {}
            parents = {}
            for i in ids:
                node = frontier[i]
                if i not in lefts:
                    make_leaf(i, node)
                    continue
                left = lefts[i]
                nr = node.rows.size
                lr, lo = left[:nr], left[nr:]
                nxt[2 * i + 1] = _Node(node.rows[lr], node.other[lo])
                nxt[2 * i + 2] = _Node(node.rows[~lr], node.other[~lo])
                parents[i] = node
            frontier = nxt
        for i, node in frontier.items():
            make_leaf(i, node)
        return leaves

    # -- prediction ----------------------------------------------------------------------------
    def decision_function(self, frame: pd.DataFrame, *, channel: Channel) -> FloatArray:
        """Margins (rows x outputs) by joint routing: each feature party answers for its own nodes."""
        if self.feature_columns is None:
            raise VflError("the model is not fitted")
        x = frame[_features(frame, self.feature_columns, [])].to_numpy(dtype=np.float64)
        n = x.shape[0]
        parties = self.feature_parties_
        f = self.forest_
        channel.broadcast(TOPIC["predict"], np.asarray([n, len(f)], np.int64), peers=parties)
        trees = np.arange(len(f))[:, None]
        cur = np.zeros((len(f), n), np.int64)
        rows = np.broadcast_to(np.arange(n), cur.shape)
        for _level in range(f.max_depth):
            kind = f.kind[trees, cur]
            go_left = np.zeros(cur.shape, bool)
            own = kind == OWN
            if own.any():
                xv = x[rows[own], f.ref[trees, cur][own]]
                go_left[own] = np.where(
                    np.isnan(xv), f.missing_left[trees, cur][own], xv < f.threshold[trees, cur][own]
                )
            remote = kind == REMOTE
            owner = f.owner[trees, cur]
            masks = []
            for j, p in enumerate(parties):
                mask = remote & (owner == j)
                masks.append(mask)
                ask = np.stack([rows[mask], f.ref[trees, cur][mask]], axis=1).astype(np.int64)
                channel.send(p, TOPIC["route"], ask)
            for j, p in enumerate(parties):
                mask = masks[j]
                go_left[mask] = bool_array(
                    channel.recv(p, TOPIC["bits"]), "routing bits", int(mask.sum())
                )
            split = own | remote
            cur = np.where(split, np.where(go_left, 2 * cur + 1, 2 * cur + 2), cur)
        if np.any(f.kind[trees, cur] != LEAF):
            raise VflError("routing ended outside a leaf (corrupt model)")
        margin = np.tile(self.base_, (n, 1))
        values = f.value[trees, cur]
        for k in range(self.config.outputs):
            margin[:, k] += values[f.output == k].sum(axis=0)
        return margin

    def predict_proba(self, frame: pd.DataFrame, *, channel: Channel) -> FloatArray:
        """P(y = 1) (binary), class probabilities (multiclass) or predicted values (regression)."""
        out = transform(self.config.objective, self.decision_function(frame, channel=channel))
        if self.config.objective is Objective.REGRESSION:
            return np.asarray(out * self.y_scale_ + self.y_shift_)
        return out

    def evaluate(
        self, frame: pd.DataFrame, *, channel: Channel, prefix: str = "test_"
    ) -> dict[str, Any]:
        """The job's metrics on ``frame`` (it must hold the label column)."""
        pred = self.predict_proba(frame, channel=channel)
        cfg = self.config
        if cfg.objective is Objective.REGRESSION:
            y = frame[self.label_column].to_numpy(dtype=np.float64)
            return {f"{prefix}rmse": float(np.sqrt(np.mean((pred - y) ** 2)))}
        y = self._labels(frame, fit=False)
        if cfg.objective is Objective.BINARY:
            return binary_metrics(y, pred, prefix=prefix)
        return multiclass_metrics(y, pred, prefix=prefix)

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """This party's part as JSON: trees (leaf weights, own thresholds, remote record ids)."""
        cfg = self.config
        doc = {
            "format": "vfl.secureboost.label/1",
            "objective": cfg.objective.value,
            "outputs": cfg.outputs,
            "label_column": self.label_column,
            "feature_columns": self.feature_columns,
            "feature_parties": self.feature_parties_,
            "classes": self.classes_,
            "base": self.base_.tolist(),
            "y_shift": self.y_shift_,
            "y_scale": self.y_scale_,
            "forest": self.forest_.to_json(),
        }
        Path(path).write_text(json.dumps(doc))

    @classmethod
    def load(cls, path: str | Path, config: SecureBoostConfig) -> SecureBoostLabelParty:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != "vfl.secureboost.label/1":
            raise VflError(f"{path} is not a SecureBoost label-party model")
        if doc["objective"] != config.objective.value or doc["outputs"] != config.outputs:
            raise VflError(f"{path} was trained with another objective")
        party = cls(
            config, label_column=doc["label_column"], feature_columns=doc["feature_columns"]
        )
        party.feature_parties_ = list(doc["feature_parties"])
        party.classes_ = list(doc["classes"])
        party.base_ = np.asarray(doc["base"], dtype=np.float64)
        party.y_shift_, party.y_scale_ = float(doc["y_shift"]), float(doc["y_scale"])
        party.forest_ = Forest.from_json(doc["forest"])
        return party
