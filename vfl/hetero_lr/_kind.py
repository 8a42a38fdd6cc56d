"""Job type ``hetero_lr``: the ``[model]`` parser and one party's side of the job (a JobKind).

The runner aligns the rows by PSI and splits train / test; :meth:`HeteroLRKind.run` fits this
party's estimator on the aligned train rows, evaluates on the test rows, saves its part
(``model.json``) and returns it for registration with its weight norm (the contribution figure).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vfl.core import CryptoSection, Job, ModelPart, PartResult, PartyContext
from vfl.hetero_lr._config import CryptoSettings, HeteroLRConfig, Obfuscator, SchemeName
from vfl.hetero_lr._feature import HeteroLRFeatureParty
from vfl.hetero_lr._label import HeteroLRLabelParty

__all__ = ["HETERO_LR", "HeteroLRKind", "weight_norm"]


def weight_norm(model_file: Path) -> float | None:
    """``||w_p||`` of a hetero LR model part (``model.json``): the Frobenius norm of its weights
    over all tasks, without the label party's intercept row; ``None`` for other model files."""
    try:
        state = json.loads(model_file.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("weights"), list):
        return None
    try:
        weights = np.asarray(state["weights"], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if state.get("role") == "label" and state.get("fit_intercept") and weights.shape[0]:
        weights = weights[1:]
    norm = float(np.linalg.norm(weights))
    return norm if np.isfinite(norm) else None


def _estimator(
    job: Job, party: str, *, progress: bool = False
) -> HeteroLRLabelParty | HeteroLRFeatureParty:
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


class HeteroLRKind:
    """``job.type = "hetero_lr"`` (:class:`vfl.core.JobKind`)."""

    name = "hetero_lr"
    aligns = True
    splits = True
    needs_label = True
    needs_features = True
    schemes = ("paillier", "plain")
    trains = True

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> HeteroLRConfig:
        settings = CryptoSettings(
            scheme=SchemeName(crypto.scheme),
            key_bits=crypto.key_bits,
            precision_bits=crypto.precision_bits,
            obfuscator=Obfuscator(crypto.obfuscator)
            if crypto.obfuscator in ("djn", "standard")
            else crypto.obfuscator,  # type: ignore[arg-type]
            insecure_allow_small_keys=allow_small_keys,
        )
        return HeteroLRConfig.from_mapping(table, crypto=settings)

    def check(self, job: Job, party: str) -> None:
        _estimator(job, party)  # the estimator's own configuration errors, before any message

    def run(self, ctx: PartyContext, settings: HeteroLRConfig) -> PartResult:
        job, party = ctx.job, ctx.party
        train, evaluate = ctx.aligned()
        label_party = job.job.label_party
        assert label_party is not None  # parse_job requires it (needs_label)
        model = _estimator(job, party, progress=ctx.progress)
        if ctx.is_label_party and settings.label_dp_epsilon is not None:
            ctx.tracker.privacy_spent(epsilon=float(settings.label_dp_epsilon), delta=0.0)
        timing: dict[str, float] = {}
        start, cpu = time.perf_counter(), time.process_time()
        if isinstance(model, HeteroLRLabelParty):
            model.fit(
                train, channel=ctx.channel, feature_parties=job.feature_parties,
                on_epoch=ctx.on_epoch,
            )  # fmt: skip
        else:
            model.fit(train, channel=ctx.channel, label_party=label_party, on_epoch=ctx.on_epoch)
        timing["train"] = time.perf_counter() - start
        timing["train_cpu"] = time.process_time() - cpu  # this process, all threads
        ctx.tracker.phase("evaluate")
        start = time.perf_counter()
        metrics: dict[str, float] = {}
        if evaluate.shape[0]:
            if isinstance(model, HeteroLRLabelParty):
                metrics = model.evaluate(evaluate, channel=ctx.channel, prefix="test_")
            else:
                model.evaluate(evaluate, channel=ctx.channel)
        timing["evaluate"] = time.perf_counter() - start
        path = ctx.run_dir / "model.json"
        model.save(path)
        crypto = dict(model.crypto_)
        if crypto.get("scheme"):
            ctx.record_training_crypto(crypto)
        history = list(model.history_) if isinstance(model, HeteroLRLabelParty) else []
        privacy = None
        if isinstance(model, HeteroLRLabelParty) and model.privacy_:
            privacy = dict(model.privacy_)
        return PartResult(
            metrics=metrics,
            timing=timing,
            crypto=crypto,
            history=history,
            privacy=privacy,
            model=ModelPart(
                path=path,
                parties=tuple(sorted(job.parties)),
                holder=label_party,
                weight_norm=weight_norm(path),
            ),
            extra={"model_path": str(path)},
        )


HETERO_LR = HeteroLRKind()
