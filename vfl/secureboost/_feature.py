"""A feature party of SecureBoost: bins its own features, sums encrypted gradients per bin.

It never sees ``g`` or ``h`` in the clear (Paillier), never learns a leaf weight, and keeps the
threshold of each of its chosen splits in its own lookup table (record id -> feature,
threshold, missing side), as in Cheng et al. (SecureBoost, 2019), section 4. Feature slots on
the wire are a fresh secret permutation of its features for every tree, so the label party
learns the chosen slot and bin, not which column.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crypto.paillier import PaillierPublicKey
from crypto.random import RandomSource
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.secureboost._binning import Binner
from vfl.secureboost._cipher import (
    Layout,
    ciphertexts_from_wire,
    ciphertexts_to_wire,
    encrypted_histograms,
    pack_bins,
    plain_histograms,
    rerandomise,
)
from vfl.secureboost._config import SecureBoostConfig
from vfl.secureboost._label import _features
from vfl.secureboost._wire import TOPIC, int_array, unpack_lists

__all__ = ["SecureBoostFeatureParty"]

_MAX_FLOAT = float(np.finfo(np.float64).max)


class SecureBoostFeatureParty:
    """A party without labels: answers histogram, split and routing requests for its features."""

    def __init__(
        self,
        config: SecureBoostConfig,
        *,
        feature_columns: Sequence[str] | None = None,
        rng: RandomSource | None = None,
        processes: int | None = None,
    ) -> None:
        self.config = config
        self.feature_columns = list(feature_columns) if feature_columns is not None else None
        self._rng = rng
        self._processes = processes
        self.label_party_: str | None = None
        self.feature_: list[int] = []
        self.threshold_: list[float] = []
        self.missing_left_: list[bool] = []
        self.timing_: dict[str, float] = {}
        self.crypto_: dict[str, Any] = {}
        # what this party received, for the leakage tests: the routed instance spaces
        self.instance_spaces_: list[npt.NDArray[np.int64]] = []

    def _add(self, key: str, seconds: float) -> None:
        self.timing_[key] = self.timing_.get(key, 0.0) + seconds

    def fit(
        self, train: pd.DataFrame, *, channel: Channel, label_party: str
    ) -> SecureBoostFeatureParty:
        cfg = self.config
        self.label_party_ = label_party
        cols = _features(train, self.feature_columns, [])
        self.feature_columns = cols
        x = train[cols].to_numpy(dtype=np.float64)
        n, width = x.shape
        channel.send(label_party, TOPIC["setup"], np.asarray([n, width, *cfg.shape_key], np.int64))
        key: PaillierPublicKey | None = None
        if cfg.scheme == "paillier":
            key = channel.recv(label_party, TOPIC["key"])
            if not isinstance(key, PaillierPublicKey):
                raise VflError("label party sent no Paillier public key")
            if key.bits < 2048 and not cfg.insecure_allow_small_keys:
                raise VflError(f"label party's Paillier key has {key.bits} bits, below 2048")
        self.crypto_ = {"scheme": cfg.scheme, "key_bits": key.bits if key is not None else 0}
        layout = Layout.for_job(cfg.objective, n)
        binner = Binner.fit(x, cfg.max_bin)
        bins = binner.transform(x)
        nbins = binner.bins
        gen = np.random.default_rng(
            int.from_bytes(self._rng.random_bytes(8), "big") if self._rng is not None else None
        )
        while True:
            flag = int_array(channel.recv(label_party, TOPIC["tree"]), "tree flag", (1,))
            if flag[0] == 0:
                break
            perm = gen.permutation(width)  # slot s on the wire is feature perm[s]
            slot_bins = bins[:, perm]
            gh = channel.recv(label_party, TOPIC["gh"])
            sampled = int_array(channel.recv(label_party, TOPIC["rows"]), "sampled rows")
            if sampled.ndim != 1 or (sampled.size and (sampled.min() < 0 or sampled.max() >= n)):
                raise VflError("label party sent bad sampled rows")
            pos = np.full(n, -1, np.int64)
            pos[sampled] = np.arange(sampled.size)
            if key is not None:
                start = time.perf_counter()
                cts = ciphertexts_from_wire(key, gh, (sampled.size,), "gradients")
                self._add("decode", time.perf_counter() - start)
            else:
                if (
                    not isinstance(gh, np.ndarray)
                    or gh.dtype != np.float64
                    or gh.shape != (sampled.size, 2)
                ):
                    raise VflError("label party sent malformed gradients")
            for _depth in range(cfg.max_depth):
                build = unpack_lists(
                    channel.recv(label_party, TOPIC["build"]), n_rows=n, what="build request"
                )
                start = time.perf_counter()
                if key is not None:
                    hists = np.empty((len(build), width, nbins), dtype=object)
                    for b, (_node, rows) in enumerate(build):
                        p = pos[rows]
                        if np.any(p < 0):
                            raise VflError("label party asked for a histogram over unsampled rows")
                        hists[b] = encrypted_histograms(cts[p], slot_bins[rows], nbins, key.nsquare)
                    self._add("histograms", time.perf_counter() - start)
                    start = time.perf_counter()
                    fresh = rerandomise(
                        key,
                        pack_bins(key, hists, layout),
                        obfuscator=cfg.obfuscator,
                        rng=self._rng,
                        processes=self._processes,
                    )
                    payload: Any = ciphertexts_to_wire(key, fresh)
                    self._add("pack_rerandomise", time.perf_counter() - start)
                else:
                    payload = np.zeros((len(build), width, nbins, 2))
                    for b, (_node, rows) in enumerate(build):
                        p = pos[rows]
                        if np.any(p < 0):
                            raise VflError("label party asked for a histogram over unsampled rows")
                        payload[b] = plain_histograms(gh[p], slot_bins[rows], nbins)
                    self._add("histograms", time.perf_counter() - start)
                channel.send(label_party, TOPIC["hist"], payload)
                spec = int_array(channel.recv(label_party, TOPIC["split"]), "split")
                if spec.ndim != 2 or spec.shape[1] != 4:
                    raise VflError("label party sent a malformed split")
                lists = unpack_lists(
                    channel.recv(label_party, TOPIC["split_rows"]), n_rows=n, what="split rows"
                )
                if len(lists) != spec.shape[0] or any(
                    node != int(s[0]) for (node, _), s in zip(lists, spec, strict=True)
                ):
                    raise VflError("label party's split rows do not match its splits")
                records, bits = [], []
                for (_node, slot, b, miss), (_, rows) in zip(spec.tolist(), lists, strict=True):
                    if not 0 <= slot < width or not 0 <= b < cfg.max_bin or miss not in (0, 1):
                        raise VflError("label party sent a split outside this party's features")
                    feature = int(perm[slot])
                    records.append(len(self.feature_))
                    self.feature_.append(feature)
                    self.threshold_.append(binner.threshold(feature, b))
                    self.missing_left_.append(bool(miss))
                    self.instance_spaces_.append(rows)
                    col = bins[rows, feature]
                    bits.append(np.where(col == cfg.max_bin, bool(miss), col <= b))
                channel.send(label_party, TOPIC["part"], np.asarray(records, np.int64))
                channel.send(
                    label_party,
                    TOPIC["part_bits"],
                    np.concatenate(bits).astype(np.uint8) if bits else np.zeros(0, np.uint8),
                )
        return self

    def predict(self, frame: pd.DataFrame, *, channel: Channel) -> None:
        """Answer the label party's routing questions (left/right for this party's own nodes)."""
        if self.label_party_ is None or self.feature_columns is None:
            raise VflError("the model is not fitted")
        label = self.label_party_
        x = frame[_features(frame, self.feature_columns, [])].to_numpy(dtype=np.float64)
        head = int_array(channel.recv(label, TOPIC["predict"]), "predict header", (2,))
        if int(head[0]) != x.shape[0]:
            raise VflError(f"label party scores {int(head[0])} rows, this party has {x.shape[0]}")
        feature = np.asarray(self.feature_, np.int64)
        threshold = np.asarray(self.threshold_, np.float64)
        missing_left = np.asarray(self.missing_left_, bool)
        for _level in range(self.config.max_depth):
            ask = int_array(channel.recv(label, TOPIC["route"]), "routing request")
            if ask.ndim != 2 or ask.shape[1] != 2:
                raise VflError("label party sent a malformed routing request")
            rows, rec = ask[:, 0], ask[:, 1]
            if ask.size and (
                rows.min() < 0
                or rows.max() >= x.shape[0]
                or rec.min() < 0
                or rec.max() >= feature.size
            ):
                raise VflError("label party asked about an unknown row or record")
            xv = x[rows, feature[rec]]
            left = np.where(np.isnan(xv), missing_left[rec], xv < threshold[rec])
            channel.send(label, TOPIC["bits"], left.astype(np.uint8))

    def save(self, path: str | Path) -> None:
        """This party's part as JSON: its feature columns and its split lookup table."""
        doc = {
            "format": "vfl.secureboost.feature/1",
            "label_party": self.label_party_,
            "feature_columns": self.feature_columns,
            "records": {
                "feature": self.feature_,
                "threshold": [min(t, _MAX_FLOAT) for t in self.threshold_],
                "missing_left": self.missing_left_,
            },
        }
        Path(path).write_text(json.dumps(doc))

    @classmethod
    def load(cls, path: str | Path, config: SecureBoostConfig) -> SecureBoostFeatureParty:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != "vfl.secureboost.feature/1":
            raise VflError(f"{path} is not a SecureBoost feature-party model")
        party = cls(config, feature_columns=doc["feature_columns"])
        party.label_party_ = doc["label_party"]
        rec = doc["records"]
        party.feature_ = [int(v) for v in rec["feature"]]
        party.threshold_ = [float(v) for v in rec["threshold"]]
        party.missing_left_ = [bool(v) for v in rec["missing_left"]]
        return party
