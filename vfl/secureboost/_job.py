"""One party's side of a ``secureboost`` job, independent of the runner (no gRPC, no job files).

The runner hands over this party's PSI-aligned ``train`` / ``test`` frames (id column dropped),
its channel and the parsed :class:`SecureBoostConfig`; this module trains, evaluates on ``test``
through the joint routing of :meth:`SecureBoostLabelParty.predict_proba`, and saves this party's
part as JSON (no pickle).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from protocols.channel import Channel
from vfl.secureboost._config import SecureBoostConfig
from vfl.secureboost._feature import SecureBoostFeatureParty
from vfl.secureboost._label import SecureBoostLabelParty

__all__ = ["run_secureboost_job"]


def run_secureboost_job(
    *,
    model: SecureBoostConfig,
    party: str,
    label_party: str,
    feature_parties: Sequence[str],
    train: pd.DataFrame,
    test: pd.DataFrame | None,
    channel: Channel,
    run_dir: str | Path,
    label_column: str = "y",
    feature_columns: Sequence[str] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    processes: int | None = None,
) -> dict[str, Any]:
    """Train this party's part; returns ``metrics`` (label party), ``history``, ``timing``,
    ``crypto``, ``model_path`` and ``trees``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"metrics": {}}
    model_path = run_dir / "model.json"
    start = time.perf_counter()
    if party == label_party:
        label = SecureBoostLabelParty(
            model, label_column=label_column, feature_columns=feature_columns, processes=processes
        )
        label.fit(train, channel=channel, feature_parties=feature_parties, on_round=on_round)
        out["timing"] = {"train": time.perf_counter() - start}
        if test is not None and test.shape[0]:
            start = time.perf_counter()
            out["metrics"] = label.evaluate(test, channel=channel, prefix="test_")
            out["timing"]["evaluate"] = time.perf_counter() - start
        label.save(model_path)
        out["history"] = label.history_
        out["crypto"] = dict(label.crypto_)
        out["trees"] = len(label.forest_)
        out["timing"].update({f"train_{k}": v for k, v in label.timing_.items()})
    else:
        feature = SecureBoostFeatureParty(
            model, feature_columns=feature_columns, processes=processes
        )
        feature.fit(train, channel=channel, label_party=label_party)
        out["timing"] = {"train": time.perf_counter() - start}
        if test is not None and test.shape[0]:
            start = time.perf_counter()
            feature.predict(test, channel=channel)
            out["timing"]["evaluate"] = time.perf_counter() - start
        feature.save(model_path)
        out["history"] = []
        out["crypto"] = dict(feature.crypto_)
        out["timing"].update({f"train_{k}": v for k, v in feature.timing_.items()})
    out["model_path"] = str(model_path)
    return out
