"""Per-party checkpoints: ``torch.save`` of tensors and plain containers, loaded with
``torch.load(weights_only=True)`` only (no pickle of arbitrary objects, ever).

One file per finished epoch, ``epoch-NNNN.pt`` under the party's own directory; the last
:data:`KEEP` are kept. After a crash the parties announce their epochs and resume from the
latest one they all have (:func:`common_epoch`), so a party that died while the other was
writing still resumes consistently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from vfl._atomic import atomic_path
from vfl.errors import VflError

__all__ = ["save_checkpoint", "load_checkpoint", "list_epochs", "common_epoch", "KEEP"]

KEEP = 2
_NAME = re.compile(r"^epoch-(\d{4,})\.pt$")


def list_epochs(directory: str | os.PathLike[str] | None) -> list[int]:
    """Epochs with a checkpoint in ``directory`` (sorted; empty when none or no directory)."""
    if directory is None or not Path(directory).is_dir():
        return []
    found = (_NAME.match(p.name) for p in Path(directory).iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def save_checkpoint(directory: str | os.PathLike[str], epoch: int, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (temp file + rename) and prune all but the last :data:`KEEP`."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"epoch-{epoch:04d}.pt"
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    for old in list_epochs(root)[:-KEEP]:
        (root / f"epoch-{old:04d}.pt").unlink(missing_ok=True)
    return path


def load_checkpoint(directory: str | os.PathLike[str], epoch: int) -> dict[str, Any]:
    """Load one checkpoint with ``weights_only=True``."""
    path = Path(directory) / f"epoch-{epoch:04d}.pt"
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise VflError(f"cannot load checkpoint {path.name}: {exc}") from None
    if not isinstance(state, dict):
        raise VflError(f"checkpoint {path.name} is not a state dictionary")
    return state


def common_epoch(mine: Iterable[int], *others: Iterable[int]) -> int | None:
    """The latest epoch every party has a checkpoint for, or ``None``."""
    common = set(mine)
    for other in others:
        common &= set(other)
    return max(common) if common else None
