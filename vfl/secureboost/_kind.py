"""Job type ``secureboost`` as a :class:`vfl.core.JobKind`: the runner's rows into
:func:`~vfl.secureboost._job.run_secureboost_job`.

The runner aligns the rows by PSI and splits train / test; :meth:`SecureBoostKind.run` drops the
id column, trains and evaluates, and returns this party's part for registration.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vfl.core import CryptoSection, Job, ModelPart, PartResult, PartyContext
from vfl.secureboost._config import SecureBoostConfig, parse_secureboost_model
from vfl.secureboost._job import run_secureboost_job

__all__ = ["SECUREBOOST", "SecureBoostKind"]


class SecureBoostKind:
    """``job.type = "secureboost"`` (:class:`vfl.core.JobKind`)."""

    name = "secureboost"
    aligns = True
    splits = True
    needs_label = True
    needs_features = True
    schemes = ("paillier", "plain")
    trains = True

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> SecureBoostConfig:
        return parse_secureboost_model(
            table,
            scheme=crypto.scheme,
            key_bits=crypto.key_bits,
            obfuscator=crypto.obfuscator,
            insecure_allow_small_keys=allow_small_keys,
        )

    def check(self, job: Job, party: str) -> None:
        """Nothing beyond ``parse_model`` and the data checks."""

    def run(self, ctx: PartyContext, settings: SecureBoostConfig) -> PartResult:
        job, party = ctx.job, ctx.party
        train, evaluate = ctx.aligned()
        section = job.party(party)
        label_party = job.job.label_party
        assert label_party is not None  # parse_job requires it (needs_label)
        out = run_secureboost_job(
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
            on_round=ctx.on_epoch,
        )
        ctx.tracker.phase("evaluate")  # SecureBoost evaluates inside run_secureboost_job
        crypto = out["crypto"]
        ctx.record_training_crypto(crypto)
        path = Path(out["model_path"])
        return PartResult(
            metrics=out.get("metrics", {}),
            timing=out.get("timing", {}),
            crypto=crypto,
            history=out.get("history"),
            model=ModelPart(path=path, parties=tuple(sorted(job.parties)), holder=label_party),
            extra={"model_path": out["model_path"]},
        )


SECUREBOOST = SecureBoostKind()
