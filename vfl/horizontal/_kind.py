"""Job type ``fedavg`` as a :class:`vfl.core.JobKind`: no PSI, every party reads its own files.

:meth:`FedAvgKind.run` runs :func:`~vfl.horizontal._job.run_fedavg_job` with a round hook that
logs each round (:func:`report_round`) and reports it to the runner's tracker; the aggregator's
global parameters are registered by the aggregator alone.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from vfl.core import CryptoSection, Job, ModelPart, PartResult, PartyContext
from vfl.horizontal._job import FedJobModel, parse_fedavg_model, run_fedavg_job
from vfl.horizontal._server import RoundRecord

__all__ = ["FEDAVG", "FedAvgKind", "report_round"]

logger = logging.getLogger("vfl.jobs")

# Keys of run_fedavg_job's result that PartResult carries in its own fields (or the runner adds).
_OWN = ("job_id", "party", "run_dir", "metrics", "timing", "crypto", "privacy")


def report_round(record: RoundRecord, *, progress: bool) -> None:
    """Progress of one horizontal round (the aggregator's view): logged, and printed if asked."""
    metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted(record.metrics.items()))
    line = (
        f"round {record.round}: {len(record.accepted)}/{len(record.sampled)} updates accepted"
        f"{f', dropped {sorted(record.dropped)}' if record.dropped else ''}"
        f"{f', rejected {sorted(record.rejected)}' if record.rejected else ''}"
        f", {record.seconds:.2f} s {metrics}"
    )
    privacy = record.privacy
    if isinstance(privacy.get("epsilon"), int | float):
        # Per-round and cumulative epsilon shown apart: the total is what the job has spent.
        line += (
            f", epsilon {privacy.get('epsilon_round', float('nan')):.3f} this round"
            f" / {privacy['epsilon']:.3f} total (delta {privacy.get('delta', float('nan')):g})"
        )
    up, down = record.bytes_up, record.bytes_down
    if up or down:  # encoded update payloads as they crossed the wire (after compression)
        line += f", updates {up / 1e3:.1f} kB up / {down / 1e3:.1f} kB down"
    logger.info(line)
    if progress:
        print(line, file=sys.stderr, flush=True)


class FedAvgKind:
    """``job.type = "fedavg"`` (:class:`vfl.core.JobKind`): horizontal, so nothing to align."""

    name = "fedavg"
    aligns = False
    splits = False
    needs_label = False
    needs_features = True
    schemes = ("paillier", "ckks", "plain")
    trains = True

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> FedJobModel:
        return parse_fedavg_model(table)

    def check(self, job: Job, party: str) -> None:
        """Checked by :func:`run_fedavg_job` (the aggregator, the client's data)."""

    def run(self, ctx: PartyContext, settings: FedJobModel) -> PartResult:
        def on_round(record: RoundRecord) -> None:
            report_round(record, progress=ctx.progress)
            privacy = record.privacy  # with DP: epsilon, epsilon_round, delta

            def number(key: str) -> float | None:
                value = privacy.get(key)
                return float(value) if isinstance(value, int | float) else None

            ctx.tracker.round(
                metrics=dict(record.metrics),
                seconds=float(record.seconds),
                expected=list(record.sampled),
                responded=[p for p in record.sampled if p not in record.dropped],
                epsilon=number("epsilon"),
                epsilon_round=number("epsilon_round"),
                delta=number("delta"),
                contributions=dict(record.contributions),
            )

        fed = run_fedavg_job(
            ctx.job, party=ctx.party, channel=ctx.channel, work_dir=ctx.run_dir, on_round=on_round
        )
        crypto: dict[str, Any] = dict(fed.get("crypto", {}))
        aggregator = fed.get("role") == "aggregator"
        if aggregator:
            ctx.tracker.crypto(
                scheme=str(crypto.get("scheme", "plain")), key_bits=None, purpose="train"
            )
        artefact = ctx.run_dir / "global_params.npy"
        return PartResult(
            metrics=fed.get("metrics", {}),
            timing=fed.get("timing", {}),
            crypto=crypto,
            privacy=fed.get("privacy"),
            model=ModelPart(path=artefact, parties=(ctx.party,), holder=ctx.job.job.aggregator)
            if aggregator and artefact.is_file()
            else None,
            extra={k: v for k, v in fed.items() if k not in _OWN},
        )


FEDAVG = FedAvgKind()
