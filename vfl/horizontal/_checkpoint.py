"""Aggregator checkpoints: arrays in ``.npz`` (loaded with ``allow_pickle=False``), the rest in
JSON. Both are written to temporary files and renamed, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vfl._atomic import atomic_path, atomic_write
from vfl.errors import ConfigError
from vfl.horizontal._server import FedServer, RoundRecord

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 1
_NPZ = "aggregator.npz"
_JSON = "aggregator.json"


def save_checkpoint(server: FedServer, directory: Path) -> Path:
    """Write the server's state after its last completed round to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"params": server.params}
    arrays.update({f"agg/{k}": v for k, v in server.aggregator.state().items()})
    with atomic_path(directory / _NPZ) as tmp_npz, open(tmp_npz, "wb") as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]
    meta = {
        "version": CHECKPOINT_VERSION,
        "round": server.round,
        "aggregator": server.aggregator.name,
        "clients": list(server.clients),
        "reputation": server.reputation.as_dict(),
        "history": [r.to_json() for r in server.history],
        "events": server.events,
    }
    atomic_write(directory / _JSON, json.dumps(meta, indent=1, sort_keys=True))  # last: the commit
    return directory / _JSON


def load_checkpoint(server: FedServer, directory: Path) -> bool:
    """Restore ``server`` from ``directory`` if a checkpoint is there; returns whether it was."""
    meta_path = directory / _JSON
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(f"checkpoint {meta_path}: unsupported version {meta.get('version')!r}")
    if meta["aggregator"] != server.aggregator.name:
        raise ConfigError(
            f"checkpoint {meta_path}: aggregator {meta['aggregator']!r} != {server.aggregator.name!r}"
        )
    if sorted(meta["clients"]) != list(server.clients):
        raise ConfigError(f"checkpoint {meta_path}: written for other clients {meta['clients']}")
    with np.load(directory / _NPZ, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    params = arrays.pop("params")
    if params.shape != server.params.shape or params.dtype != server.params.dtype:
        raise ConfigError(f"checkpoint {directory}: parameters {params.shape} do not fit the model")
    server.params = params
    server.round = int(meta["round"])
    server.aggregator.load_state({k[4:]: v for k, v in arrays.items() if k.startswith("agg/")})
    server.reputation.load(meta["reputation"])
    server.history = [RoundRecord.from_json(r) for r in meta["history"]]
    server.events = list(meta["events"])
    return True
