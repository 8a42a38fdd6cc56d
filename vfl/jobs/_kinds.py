"""The registry of job kinds: ``job.type`` -> the :class:`vfl.core.JobKind` that runs it.

One line per kind, ``"TYPE": "module:ATTRIBUTE"``; the module is imported the first time a job
of that type is parsed, so a ``psi`` job never loads torch (docs/jobs.md, "Adding a job type").
"""

from __future__ import annotations

import importlib
from typing import Any

from vfl.core import JobKind
from vfl.errors import ConfigError

__all__ = ["JOB_TYPES", "KINDS", "kind_of"]

KINDS: dict[str, str] = {
    "psi": "vfl.jobs._psi:PSI",
    "hetero_lr": "vfl.hetero_lr:HETERO_LR",
    "split_nn": "vfl.split_nn:SPLIT_NN",
    "fedavg": "vfl.horizontal:FEDAVG",
    "secureboost": "vfl.secureboost:SECUREBOOST",
}

JOB_TYPES = tuple(KINDS)

_loaded: dict[str, tuple[str, JobKind[Any]]] = {}  # type -> (registry entry, kind)


def kind_of(name: str) -> JobKind[Any]:
    """The registered kind of ``job.type = name`` (imported on first use)."""
    if name not in KINDS:
        raise ConfigError(f"job.type must be one of {', '.join(KINDS)}, got {name!r}")
    if name in _loaded and _loaded[name][0] == KINDS[name]:
        return _loaded[name][1]
    module, _, attribute = KINDS[name].partition(":")
    kind = getattr(importlib.import_module(module), attribute)
    if not isinstance(kind, JobKind) or kind.name != name:
        raise TypeError(f"{KINDS[name]} is not the JobKind of job type {name!r}")
    _loaded[name] = (KINDS[name], kind)
    return kind
