"""How ``run_job`` trains each vertical model type, with a per-epoch hook into the tracker.

Hetero LR and split NN take this party's PSI-aligned ``train`` / ``evaluate`` rows, report every
epoch to the :class:`~vfl.jobs._tracker.JobTracker` (``on_epoch``), evaluate, save this party's
part and fill the job's result (``metrics``, ``crypto``, ``history``, ``privacy``, ``model_path``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from protocols.channel import Channel
from vfl.jobs._metered import MeteredChannel
from vfl.jobs._spec import Job
from vfl.jobs._tracker import JobTracker

__all__ = [
    "model_for",
    "train_hetero_lr",
    "train_split_nn",
    "train_secureboost",
    "epoch_hook",
    "report_round",
]

logger = logging.getLogger("vfl.jobs")


def model_for(job: Job, party: str, *, progress: bool = False) -> Any:
    from vfl.hetero_lr import HeteroLRFeatureParty, HeteroLRLabelParty

    section = job.party(party)
    features = list(section.features) if section.features is not None else None
    if party == job.job.label_party:
        return HeteroLRLabelParty(
            job.model,
            label_column=section.label_column or "y",
            id_column=section.id_column,
            feature_columns=features,
            progress=progress,
        )
    return HeteroLRFeatureParty(job.model, id_column=section.id_column, feature_columns=features)


def train_hetero_lr(
    job: Job,
    party: str,
    channel: MeteredChannel,
    train: pd.DataFrame,
    evaluate: pd.DataFrame,
    run_dir: Path,
    result: dict[str, Any],
    tracker: JobTracker,
    progress: bool,
) -> None:
    timing = result["timing"]
    model = model_for(job, party, progress=progress)
    on_epoch = functools.partial(epoch_hook, tracker)
    _label_dp_spent(job, party, tracker)
    start, cpu = time.perf_counter(), time.process_time()
    if party == job.job.label_party:
        model.fit(train, channel=channel, feature_parties=job.feature_parties, on_epoch=on_epoch)
    else:
        model.fit(train, channel=channel, label_party=job.job.label_party, on_epoch=on_epoch)
    timing["train"] = time.perf_counter() - start
    timing["train_cpu"] = time.process_time() - cpu  # this process, all threads
    tracker.phase("evaluate")
    start = time.perf_counter()
    if evaluate.shape[0]:
        if party == job.job.label_party:
            result["metrics"] = model.evaluate(evaluate, channel=channel, prefix="test_")
        else:
            model.evaluate(evaluate, channel=channel)
    timing["evaluate"] = time.perf_counter() - start
    model_path = run_dir / "model.json"
    model.save(model_path)
    result["model_path"] = str(model_path)
    result["crypto"] = dict(model.crypto_)
    result["history"] = getattr(model, "history_", [])
    privacy = getattr(model, "privacy_", None)
    if privacy:
        result["privacy"] = dict(privacy)


def epoch_hook(tracker: JobTracker, info: dict[str, Any]) -> None:
    """The per-epoch hook of hetero LR and split NN: one round for the tracker."""
    metrics = info.get("metrics") or {}
    tracker.round(
        metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        seconds=float(info.get("seconds") or 0.0),
    )


def _label_dp_spent(job: Job, party: str, tracker: JobTracker) -> None:
    """Label DP (``[model] label_dp_epsilon``) is paid once, up front, at the label party."""
    epsilon = getattr(job.model, "label_dp_epsilon", None)
    if epsilon is None:
        epsilon = getattr(getattr(job.model, "config", None), "label_dp_epsilon", None)
    if party == job.job.label_party and isinstance(epsilon, int | float):
        tracker.privacy_spent(epsilon=float(epsilon), delta=0.0)


def train_split_nn(
    job: Job,
    party: str,
    channel: Channel,
    train: pd.DataFrame,
    evaluate: pd.DataFrame,
    run_dir: Path,
    result: dict[str, Any],
    tracker: JobTracker,
    *,
    progress: bool = False,
) -> None:
    from vfl._progress import epoch_bar
    from vfl.split_nn import run_split_nn_job

    section = job.party(party)
    label_party = job.job.label_party
    assert label_party is not None  # parse_job requires it for split_nn
    _label_dp_spent(job, party, tracker)
    hooks: dict[str, Any] = {}
    epochs = getattr(getattr(job.model, "config", None), "epochs", None)  # SplitNNJobModel
    with epoch_bar(
        "split NN", epochs=epochs if isinstance(epochs, int) else None, enabled=progress
    ) as advance:
        if "on_epoch" in inspect.signature(run_split_nn_job).parameters:

            def on_epoch(info: dict[str, Any]) -> None:
                epoch_hook(tracker, info)
                advance()

            hooks["on_epoch"] = on_epoch
        out = run_split_nn_job(
            **hooks,
            model=job.model,
            party=party,
            label_party=label_party,
            feature_parties=job.feature_parties,
            train=train.drop(columns=[section.id_column]),
            test=evaluate.drop(columns=[section.id_column]) if evaluate.shape[0] else None,
            channel=channel,
            run_dir=run_dir,
            label_column=section.label_column or "y",
            feature_columns=list(section.features) if section.features else None,
        )
    for key in ("metrics", "privacy", "history", "crypto", "model_path"):
        if key in out:
            result[key] = out[key]
    result["_timing"] = out.get("timing", {})
    tracker.phase("evaluate")  # split NN evaluates inside run_split_nn_job


def train_secureboost(
    job: Job,
    party: str,
    channel: Channel,
    train: pd.DataFrame,
    evaluate: pd.DataFrame,
    run_dir: Path,
    result: dict[str, Any],
    tracker: JobTracker,
) -> None:
    from vfl.secureboost import run_secureboost_job

    section = job.party(party)
    label_party = job.job.label_party
    assert label_party is not None  # parse_job requires it for secureboost
    out = run_secureboost_job(
        model=job.model,
        party=party,
        label_party=label_party,
        feature_parties=job.feature_parties,
        train=train.drop(columns=[section.id_column]),
        test=evaluate.drop(columns=[section.id_column]) if evaluate.shape[0] else None,
        channel=channel,
        run_dir=run_dir,
        label_column=section.label_column or "y",
        feature_columns=list(section.features) if section.features else None,
        on_round=functools.partial(epoch_hook, tracker),
    )
    for key in ("metrics", "history", "crypto", "model_path"):
        if key in out:
            result[key] = out[key]
    result["_timing"] = out.get("timing", {})
    tracker.phase("evaluate")  # SecureBoost evaluates inside run_secureboost_job


def report_round(record: Any, *, progress: bool) -> None:
    """Progress of one horizontal round (the aggregator's view): logged, and printed if asked."""
    metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(record.metrics.items()))
    line = (
        f"round {record.round}: {len(record.accepted)}/{len(record.sampled)} updates accepted"
        f"{f', dropped {sorted(record.dropped)}' if record.dropped else ''}"
        f"{f', rejected {sorted(record.rejected)}' if record.rejected else ''}"
        f", {record.seconds:.2f} s {metrics}"
    )
    privacy = getattr(record, "privacy", None) or {}
    if isinstance(privacy.get("epsilon"), int | float):
        # Per-round and cumulative epsilon shown apart: the total is what the job has spent.
        line += (
            f", epsilon {privacy.get('epsilon_round', float('nan')):.3f} this round"
            f" / {privacy['epsilon']:.3f} total (delta {privacy.get('delta', float('nan')):g})"
        )
    up, down = getattr(record, "bytes_up", 0), getattr(record, "bytes_down", 0)
    if up or down:  # encoded update payloads as they crossed the wire (after compression)
        line += f", updates {up / 1e3:.1f} kB up / {down / 1e3:.1f} kB down"
    logger.info(line)
    if progress:
        print(line, file=sys.stderr, flush=True)
