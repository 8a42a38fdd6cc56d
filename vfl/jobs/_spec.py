"""Job files: parse and validate the TOML of DESIGN.md "The job file" into a :class:`Job`.

The frozen sections live in :mod:`vfl.core` (the learning packages read them); the ``[model]``
table is parsed by the job's kind (:data:`vfl.jobs.KINDS`).

Every party runs the same file and reads only its own ``[parties.NAME]`` section's data. Unknown
keys and wrong types are :class:`ConfigError` naming the key; so are a party that is not in the
file, a label column configured at a feature party, and data that lacks a configured column.
``Job.digest`` is a SHA-256 over the canonical parsed content: parties compare it before any
work, so a party running a different file is refused.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vfl.core import (
    CryptoSection,
    EvaluationSection,
    Job,
    JobSection,
    MonitorSection,
    PartySection,
)
from vfl.errors import ConfigError
from vfl.jobs._kinds import kind_of

__all__ = [
    "CryptoSection",
    "EvaluationSection",
    "Job",
    "JobSection",
    "MonitorSection",
    "PartySection",
    "load_job",
    "parse_job",
]

# Job types whose Paillier key size comes from crypto.key_bits, and the smallest size allowed
# without --insecure-small-keys (the error names that flag, so an operator knows the way out).
_PAILLIER_KEYED = ("hetero_lr", "split_nn", "secureboost")
_MIN_KEY_BITS = 2048
_TOP_KEYS = {"job", "parties", "crypto", "evaluation", "model", "psi", "monitor"}


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a table")
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key {prefix}.{key} (allowed: {', '.join(sorted(allowed))})")


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    prefix: str,
    *,
    default: Any = ...,
    required: bool = False,
) -> Any:
    if key not in table:
        if required or default is ...:
            raise ConfigError(f"missing key {prefix}.{key}")
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(
            f"{prefix}.{key} has the wrong type: expected {'/'.join(k.__name__ for k in kinds)}, got bool"
        )
    if not isinstance(value, kinds):
        raise ConfigError(
            f"{prefix}.{key} has the wrong type: expected {'/'.join(k.__name__ for k in kinds)}, got {type(value).__name__}"
        )
    return value


def parse_job(
    raw: Mapping[str, Any], *, base_dir: Path | None = None, allow_small_keys: bool = False
) -> Job:
    """Validate a job file's parsed TOML; relative data paths are resolved against ``base_dir``."""
    _check_keys(raw, _TOP_KEYS, "job file")
    jt = _table(raw.get("job"), "job") if "job" in raw else None
    if jt is None:
        raise ConfigError("missing table [job]")
    _check_keys(jt, {"id", "type", "label_party", "aggregator", "model_name"}, "job")
    job = JobSection(
        id=_get(jt, "id", str, "job", required=True),
        type=_get(jt, "type", str, "job", required=True),
        label_party=_get(jt, "label_party", str, "job", default=None),
        aggregator=_get(jt, "aggregator", str, "job", default=None),
        model_name=_get(jt, "model_name", str, "job", default=None),
    )
    if job.model_name is not None and not job.model_name.strip():
        raise ConfigError("job.model_name must not be empty")
    if not job.id:
        raise ConfigError("job.id must not be empty")
    kind = kind_of(job.type)  # ConfigError naming the registered types
    pt = _table(raw.get("parties", {}), "parties")
    if len(pt) < 2:
        raise ConfigError("parties needs at least two [parties.NAME] tables")
    base = base_dir or Path.cwd()
    parties: dict[str, PartySection] = {}
    for name, section in pt.items():
        prefix = f"parties.{name}"
        section = _table(section, prefix)
        _check_keys(section, {"data", "test_data", "id_column", "label_column", "features"}, prefix)
        features = _get(section, "features", list, prefix, default=None)
        if features is not None and not all(isinstance(f, str) for f in features):
            raise ConfigError(f"{prefix}.features must be a list of column names")
        test = _get(section, "test_data", str, prefix, default=None)
        parties[name] = PartySection(
            name=name,
            data=base / _get(section, "data", str, prefix, required=True),
            id_column=_get(section, "id_column", str, prefix, required=True),
            test_data=base / test if test is not None else None,
            label_column=_get(section, "label_column", str, prefix, default=None),
            features=tuple(features) if features is not None else None,
        )
    if kind.needs_label:
        if job.label_party is None:
            raise ConfigError(f"missing key job.label_party (required for {job.type})")
        if job.label_party not in parties:
            raise ConfigError(
                f"job.label_party {job.label_party!r} has no [parties.{job.label_party}] table"
            )
        if parties[job.label_party].label_column is None:
            raise ConfigError(
                f"missing key parties.{job.label_party}.label_column (the label party's label)"
            )
        for name, section in parties.items():
            if name != job.label_party and section.label_column is not None:
                raise ConfigError(
                    f"parties.{name}.label_column: {name} is a feature party and must not have a label column"
                )
    ct = _table(raw.get("crypto", {}), "crypto")
    _check_keys(ct, {"scheme", "key_bits", "obfuscator", "precision_bits"}, "crypto")
    crypto = CryptoSection(
        scheme=_get(ct, "scheme", str, "crypto", default="paillier"),
        key_bits=_get(ct, "key_bits", int, "crypto", default=2048),
        obfuscator=_get(ct, "obfuscator", str, "crypto", default="djn"),
        precision_bits=_get(ct, "precision_bits", int, "crypto", default=16),
    )
    if crypto.scheme not in ("paillier", "ckks", "plain"):
        raise ConfigError(f"crypto.scheme must be paillier, ckks or plain, got {crypto.scheme!r}")
    if crypto.scheme not in kind.schemes:
        raise ConfigError(
            f"crypto.scheme {crypto.scheme!r} is not available for {kind.name} "
            f"({' or '.join(kind.schemes)})"
        )
    if (
        job.type in _PAILLIER_KEYED
        and crypto.scheme == "paillier"
        and crypto.key_bits < _MIN_KEY_BITS
        and not allow_small_keys
    ):
        raise ConfigError(
            f"crypto.key_bits must be >= {_MIN_KEY_BITS} (got {crypto.key_bits}): "
            "pass --insecure-small-keys to allow smaller keys (tests only)"
        )
    et = _table(raw.get("evaluation", {}), "evaluation")
    _check_keys(et, {"test_fraction", "seed"}, "evaluation")
    evaluation = EvaluationSection(
        test_fraction=float(_get(et, "test_fraction", (int, float), "evaluation", default=0.2)),
        seed=_get(et, "seed", int, "evaluation", default=0),
    )
    if not 0.0 <= evaluation.test_fraction < 1.0:
        raise ConfigError(
            f"evaluation.test_fraction must be in [0, 1), got {evaluation.test_fraction}"
        )
    psi = dict(_table(raw.get("psi", {}), "psi"))
    _check_keys(psi, {"reveal", "duplicates"}, "psi")
    if psi.get("reveal", "all") != "all":
        raise ConfigError("psi.reveal must be 'all' in vfl run (every party trains on the rows)")
    if psi.get("duplicates", "error") not in ("error", "first"):
        raise ConfigError(
            f"psi.duplicates must be 'error' or 'first', got {psi.get('duplicates')!r}"
        )
    monitor = _parse_monitor(_table(raw.get("monitor", {}), "monitor"))
    model_table = dict(_table(raw.get("model", {}), "model"))
    model = kind.parse_model(
        _table(raw.get("model", {}), "model"), crypto, allow_small_keys=allow_small_keys
    )
    canonical = json.dumps(raw, sort_keys=True, default=str).encode()
    return Job(
        job=job,
        parties=parties,
        crypto=crypto,
        evaluation=evaluation,
        model=model,
        psi=psi,
        digest=hashlib.sha256(canonical).hexdigest(),
        model_table=model_table,
        monitor=monitor,
    )


def _parse_monitor(table: Mapping[str, Any]) -> MonitorSection:
    keys = {"plateau_rounds", "min_delta", "max_dropout", "silent_rounds", "round_time_limit"}
    _check_keys(table, keys, "monitor")
    limit = _get(table, "round_time_limit", (int, float), "monitor", default=None)
    section = MonitorSection(
        plateau_rounds=_get(table, "plateau_rounds", int, "monitor", default=5),
        min_delta=float(_get(table, "min_delta", (int, float), "monitor", default=0.0)),
        max_dropout=float(_get(table, "max_dropout", (int, float), "monitor", default=0.2)),
        silent_rounds=_get(table, "silent_rounds", int, "monitor", default=3),
        round_time_limit=None if limit is None else float(limit),
    )
    if section.plateau_rounds < 1 or section.silent_rounds < 1:
        raise ConfigError("monitor.plateau_rounds and monitor.silent_rounds must be >= 1")
    if not 0.0 <= section.max_dropout <= 1.0:
        raise ConfigError(f"monitor.max_dropout must be in [0, 1], got {section.max_dropout}")
    if section.min_delta < 0:
        raise ConfigError(f"monitor.min_delta must be >= 0, got {section.min_delta}")
    if section.round_time_limit is not None and not section.round_time_limit > 0:
        raise ConfigError(
            f"monitor.round_time_limit must be > 0 seconds, got {section.round_time_limit}"
        )
    return section


def load_job(path: str | Path, *, allow_small_keys: bool = False) -> Job:
    """Read and validate a job file."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_job(raw, base_dir=p.parent, allow_small_keys=allow_small_keys)
