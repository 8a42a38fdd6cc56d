"""Job type ``split_nn`` as a :class:`vfl.core.JobKind`: the runner's rows into run_split_nn_job.

The runner aligns the rows by PSI and splits train / test; :meth:`SplitNNKind.run` drops the id
column, trains and evaluates through :func:`~vfl.split_nn._job.run_split_nn_job` and returns
this party's part for registration.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vfl._progress import epoch_bar
from vfl.core import CryptoSection, Job, ModelPart, PartResult, PartyContext
from vfl.split_nn._job import SplitNNJobModel, parse_split_nn_model, run_split_nn_job

__all__ = ["SPLIT_NN", "SplitNNKind"]


class SplitNNKind:
    """``job.type = "split_nn"`` (:class:`vfl.core.JobKind`)."""

    name = "split_nn"
    aligns = True
    splits = True
    needs_label = True
    needs_features = True
    schemes = ("paillier", "ckks", "plain")
    trains = True

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> SplitNNJobModel:
        return parse_split_nn_model(
            table,
            scheme=crypto.scheme,
            key_bits=crypto.key_bits,
            insecure_allow_small_keys=allow_small_keys,
        )

    def check(self, job: Job, party: str) -> None:
        """Nothing beyond ``parse_model`` and the data checks."""

    def run(self, ctx: PartyContext, settings: SplitNNJobModel) -> PartResult:
        job, party = ctx.job, ctx.party
        train, evaluate = ctx.aligned()
        section = job.party(party)
        label_party = job.job.label_party
        assert label_party is not None  # parse_job requires it (needs_label)
        epsilon = settings.config.label_dp_epsilon
        if ctx.is_label_party and epsilon is not None:
            ctx.tracker.privacy_spent(epsilon=float(epsilon), delta=0.0)
        with epoch_bar("split NN", epochs=settings.config.epochs, enabled=ctx.progress) as advance:

            def on_epoch(info: Mapping[str, Any]) -> None:
                ctx.on_epoch(info)
                advance()

            out = run_split_nn_job(
                model=settings,
                party=party,
                label_party=label_party,
                feature_parties=job.feature_parties,
                train=train.drop(columns=[section.id_column]),
                test=evaluate.drop(columns=[section.id_column]) if evaluate.shape[0] else None,
                channel=ctx.channel,
                run_dir=ctx.run_dir,
                label_column=section.label_column or "y",
                feature_columns=list(section.features) if section.features else None,
                on_epoch=on_epoch,
            )
        ctx.tracker.phase("evaluate")  # split NN evaluates inside run_split_nn_job
        crypto = out["crypto"]
        ctx.record_training_crypto(crypto)
        path = Path(out["model_path"])
        return PartResult(
            metrics=out.get("metrics", {}),
            timing=out["timing"],
            crypto=crypto,
            history=out.get("history"),
            privacy=out.get("privacy"),
            model=ModelPart(path=path, parties=tuple(sorted(job.parties)), holder=label_party),
            extra={"model_path": out["model_path"]},
        )


SPLIT_NN = SplitNNKind()
