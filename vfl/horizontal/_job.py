"""Job type ``fedavg`` for ``vfl run``: the ``[model]`` table parser and one party's side.

The aggregator is ``job.aggregator``; every other party is a client. Each client reads its
``data`` (features and ``label_column``); the aggregator evaluates the global model after every
round on its own ``test_data`` (or ``data``) when its section has a label column. ``[model]``:

==================== ==========================================================================
key                  meaning (default)
==================== ==========================================================================
model                ``"logistic"`` or ``"mlp"`` (logistic); ``hidden`` for mlp ([32])
rounds               rounds or, async, buffered model updates (20)
clients_per_round    sampled each round (all); ``min_clients`` (1); ``round_timeout`` s (60)
aggregator           fedavg | median | trimmed_mean | krum | multi_krum | centered_clip (fedavg)
aggregator_options   table of keyword options for the aggregator ({})
max_update_norm      absolute update norm bound (none); ``norm_ratio`` x median (none)
local_epochs         local epochs (1); ``learning_rate`` (0.1); ``batch_size`` (64); ``l2`` (0)
mu                   FedProx proximal weight (0 = FedAvg)
personalise_epochs   local fine-tuning epochs after training (0)
mode                 ``"sync"`` or ``"async"``; ``buffer_size`` (3), ``concurrency`` (5)
seed                 sampling and local shuffling seed (0); ``val_fraction`` per client (0.2)
server_lr            step applied to the aggregate (1.0)
secure_aggregation   double-masked updates with dropout recovery: the aggregator sees only the sum
compression          updates sent as ``none``, ``q8``, ``q4``, ``topk``, ``topk+q8`` or ``sketch``
compression_ratio    fraction of entries top-k keeps / size of the sketch (0.1)
dp                   ``"none"``, ``"record"`` (DP-SGD in each client) or ``"central"`` (none)
dp_epsilon           target and budget epsilon; ``dp_delta`` (1e-5); ``dp_max_grad_norm`` C (1.0)
dp_noise_multiplier  fixed z (default: derived from dp_epsilon over the planned steps)
dp_sampling_rate     Poisson rate q of each local batch, record level (0.01)
dp_budget_policy     ``"refuse"`` a plan that overspends, or ``"stop"`` before such a round
dp_secure_noise      exact discrete Gaussian noise (true); false: numpy floats, warns
==================== ==========================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from protocols.channel import Channel
from vfl.errors import ConfigError
from vfl.horizontal._aggregator import run_aggregator
from vfl.horizontal._buffered import run_buffered_aggregator
from vfl.horizontal._checkpoint import load_checkpoint
from vfl.horizontal._client import FedClient, run_client
from vfl.horizontal._config import FedConfig, Mode
from vfl.horizontal._dp import DP_KEYS, DpMode, parse_dp
from vfl.horizontal._dp_accounting import ClientPrivacy
from vfl.horizontal._heterogeneity import save_profile
from vfl.horizontal._models import LocalTraining, ModelFactory, logistic_factory
from vfl.horizontal._server import FedServer, RoundRecord
from vfl.horizontal._validation import ValidationPolicy
from vfl.metrics import binary_metrics

if TYPE_CHECKING:
    from vfl.core import Job

__all__ = ["FedJobModel", "parse_fedavg_model", "run_fedavg_job"]

_KEYS = {
    "model", "hidden", "rounds", "clients_per_round", "min_clients", "round_timeout",
    "aggregator", "aggregator_options", "max_update_norm", "norm_ratio", "local_epochs",
    "learning_rate", "batch_size", "l2", "mu", "personalise_epochs", "mode", "buffer_size",
    "concurrency", "seed", "val_fraction", "server_lr", "secure_aggregation", *DP_KEYS,
    "compression", "compression_ratio",
}  # fmt: skip


@dataclass(frozen=True)
class FedJobModel:
    """The parsed ``[model]`` table of a fedavg job."""

    config: FedConfig
    model: str = "logistic"
    hidden: tuple[int, ...] = (32,)
    val_fraction: float = 0.2
    extra: Mapping[str, Any] = field(default_factory=dict)

    def factory(self) -> ModelFactory:
        if self.model == "mlp":
            from vfl.horizontal._torch import mlp_factory

            return mlp_factory(hidden=self.hidden, seed=self.config.seed)
        return logistic_factory()


def _typed(table: Mapping[str, Any], key: str, kinds: tuple[type, ...], default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise ConfigError(
            f"model.{key} has the wrong type: expected {names}, got {type(value).__name__}"
        )
    return value


def parse_fedavg_model(model: Mapping[str, Any]) -> FedJobModel:
    """Validate the ``[model]`` table of a fedavg job; errors name the key."""
    for key in model:
        if key not in _KEYS:
            raise ConfigError(f"unknown key model.{key} (allowed: {', '.join(sorted(_KEYS))})")
    num = (int, float)
    kind = _typed(model, "model", (str,), "logistic")
    if kind not in ("logistic", "mlp"):
        raise ConfigError(f"model.model must be 'logistic' or 'mlp', got {kind!r}")
    hidden = _typed(model, "hidden", (list,), [32])
    if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ConfigError("model.hidden must be a list of positive integers")
    mode = _typed(model, "mode", (str,), "sync")
    if mode not in ("sync", "async"):
        raise ConfigError(f"model.mode must be 'sync' or 'async', got {mode!r}")
    options = _typed(model, "aggregator_options", (dict,), {})
    dp = parse_dp(model)
    try:
        local = LocalTraining(
            epochs=_typed(model, "local_epochs", (int,), 1),
            learning_rate=float(_typed(model, "learning_rate", num, 0.1)),
            batch_size=_typed(model, "batch_size", (int,), 64),
            mu=float(_typed(model, "mu", num, 0.0)),
            l2=float(_typed(model, "l2", num, 0.0)),
        )
        max_norm = _typed(model, "max_update_norm", num, None)
        ratio = _typed(model, "norm_ratio", num, None)
        config = FedConfig(
            rounds=_typed(model, "rounds", (int,), 20),
            clients_per_round=_typed(model, "clients_per_round", (int,), None),
            min_clients=_typed(model, "min_clients", (int,), 1),
            round_timeout=float(_typed(model, "round_timeout", num, 60.0)),
            aggregator=_typed(model, "aggregator", (str,), "fedavg"),
            aggregator_options=dict(options),
            validation=ValidationPolicy(
                max_norm=None if max_norm is None else float(max_norm),
                norm_ratio=None if ratio is None else float(ratio),
            ),
            server_lr=float(_typed(model, "server_lr", num, 1.0)),
            local=local,
            personalise_epochs=_typed(model, "personalise_epochs", (int,), 0),
            seed=_typed(model, "seed", (int,), 0),
            mode=Mode(mode),
            buffer_size=_typed(model, "buffer_size", (int,), 3),
            concurrency=_typed(model, "concurrency", (int,), 5),
            secure_aggregation=_typed(model, "secure_aggregation", (bool,), False),
            compression=_typed(model, "compression", (str,), "none"),
            compression_ratio=float(_typed(model, "compression_ratio", num, 0.1)),
            dp=dp,
        )
    except ConfigError as exc:
        raise ConfigError(f"model: {exc}") from None
    val = float(_typed(model, "val_fraction", num, 0.2))
    if not 0 <= val < 1:
        raise ConfigError(f"model.val_fraction must be in [0, 1), got {val}")
    return FedJobModel(config, kind, tuple(hidden), val)


def _read(path: Path, key: str) -> pd.DataFrame:
    if not path.is_file():
        raise ConfigError(f"{key}: file not found: {path}")
    return pd.read_csv(path)


def _xy(job: Job, name: str, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    section = job.party(name)
    label = section.label_column
    cols = (
        list(section.features)
        if section.features is not None
        else [c for c in df.columns if c not in (section.id_column, label)]
    )
    x = df[cols].to_numpy(dtype=np.float64)
    y = None if label is None else df[label].to_numpy(dtype=np.float64)
    return x, y, cols


def run_fedavg_job(
    job: Job,
    *,
    party: str,
    channel: Channel,
    work_dir: Path,
    on_round: Callable[[RoundRecord], None] | None = None,
) -> dict[str, Any]:
    """Run ``party``'s side of a fedavg job (``job`` is a :class:`vfl.core.Job` whose ``model``
    is a :class:`FedJobModel`); returns the JSON-ready result of ``vfl run --json``.

    A client's ``test_*`` metrics are of its final model on its ``test_data``: the personalised
    one when ``personalise_epochs > 0``, else the global one. The aggregator checkpoints to ``work_dir/checkpoint`` after every round and resumes from it
    when restarted; it saves the heterogeneity profile to ``work_dir/heterogeneity.json``.
    """
    spec: FedJobModel = job.model
    if not isinstance(spec, FedJobModel):
        raise ConfigError(
            "job.model is not a fedavg [model] table (parse it with parse_fedavg_model)"
        )
    agg_name = job.job.aggregator
    if agg_name is None or agg_name not in job.parties:
        raise ConfigError(f"job.aggregator must name one of the parties, got {agg_name!r}")
    clients = sorted(p for p in job.parties if p != agg_name)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    base: dict[str, Any] = {
        "job_id": job.job.id,
        "party": party,
        "run_dir": str(work_dir),
        "crypto": {"scheme": "plain", "note": "signed, mutual-TLS channel; no secure aggregation"},
    }
    if spec.config.secure_aggregation:
        base["crypto"] = {
            "scheme": "secure-aggregation",
            "note": "double masking, X25519 + ChaCha20-Poly1305 shares, Shamir t = majority",
        }
    if party == agg_name:
        return {
            **base,
            "role": "aggregator",
            **_aggregate(job, spec, channel, clients, agg_name, work_dir, on_round, started),
        }
    section = job.party(party)
    df = _read(section.data, f"parties.{party}.data")
    job.check_data(party, df)
    x, y, _ = _xy(job, party, df)
    if y is None:
        raise ConfigError(
            f"missing key parties.{party}.label_column (every fedavg client has labels)"
        )
    dp = spec.config.dp
    privacy = None
    if dp is not None and dp.mode is DpMode.RECORD:  # refuses an overspending plan right here
        privacy = ClientPrivacy(
            dp, party=party, rounds=spec.config.rounds, local_epochs=spec.config.local.epochs,
            job_id=job.job.id, state_path=work_dir / "privacy.json",
        )  # fmt: skip
    client = FedClient(
        x,
        y,
        model_factory=spec.factory(),
        val_fraction=spec.val_fraction,
        seed=spec.config.seed + clients.index(party) + 1,
        privacy=privacy,
    )
    result = run_client(
        channel,
        client,
        aggregator=agg_name,
        idle_timeout=max(600.0, 10 * spec.config.round_timeout),
    )
    metrics = dict(result.report.metrics) if result.report is not None else {}
    if section.test_data is not None and result.report is not None:
        tdf = _read(section.test_data, f"parties.{party}.test_data")
        tx, ty, _ = _xy(job, party, tdf)
        if ty is not None:
            metrics.update(binary_metrics(ty, client.model.predict_proba(tx), prefix="test_"))
    return {
        **base,
        "role": "client",
        "rounds_trained": list(result.rounds_trained),
        "metrics": metrics,
        "bytes_sent": len(result.rounds_trained) * int(client.model.get_params().nbytes),
        "timing": {"total": time.monotonic() - started},
        **({} if privacy is None else {"privacy": privacy.summary()}),
    }


def _aggregate(
    job: Job,
    spec: FedJobModel,
    channel: Channel,
    clients: list[str],
    agg_name: str,
    work_dir: Path,
    on_round: Callable[[RoundRecord], None] | None,
    started: float,
) -> dict[str, Any]:
    section = job.party(agg_name)
    eval_path = section.test_data or section.data
    edf = _read(eval_path, f"parties.{agg_name}.test_data")
    ex, ey, cols = _xy(job, agg_name, edf)
    init = spec.factory()(len(cols)).get_params()
    server = FedServer(spec.config, init, clients=clients)
    resumed = load_checkpoint(server, work_dir / "checkpoint")
    if server.privacy is not None:  # resume the accountant; refuse an overspending plan
        done = [(r.round, r.sampled) for r in server.history]
        server.privacy.attach(work_dir / "privacy.json", rounds_done=done)
        server.privacy.check_start(rounds_left=spec.config.rounds - server.round)
    model = spec.factory()(len(cols))

    def evaluate(params: np.ndarray) -> dict[str, float]:
        model.set_params(params)
        return binary_metrics(ey, model.predict_proba(ex), prefix="test_") if ey is not None else {}

    run = run_buffered_aggregator if spec.config.mode is Mode.ASYNC else run_aggregator
    result = run(
        channel,
        server,
        evaluate=evaluate,
        checkpoint_dir=work_dir / "checkpoint",
        on_round=on_round,
    )
    if result.profile is not None:
        save_profile(result.profile, work_dir / "heterogeneity.json")
    np.save(work_dir / "global_params.npy", result.params, allow_pickle=False)
    (work_dir / "history.json").write_text(
        json.dumps([r.to_json() for r in result.history], indent=1)
    )
    return {
        "resumed": resumed,
        "metrics": evaluate(result.params),
        "client_reports": result.reports,
        "rounds": len(result.history),
        "events": list(result.events),
        "heterogeneity": result.profile,
        **({} if server.privacy is None else {"privacy": server.privacy.summary()}),
        "bytes_sent": sum(r.bytes_down for r in result.history),
        "bytes_received": sum(r.bytes_up for r in result.history),
        "compression": spec.config.compression,
        "bytes_per_round": [
            {"round": r.round, "bytes_up": r.bytes_up, "bytes_down": r.bytes_down}
            for r in result.history
        ],
        "timing": {
            "total": time.monotonic() - started,
            "rounds": [r.seconds for r in result.history],
        },
    }
