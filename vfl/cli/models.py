"""``vfl models list|show|promote|rollback``: the party's model registry from the command line.

The registry is ``WORK/registry.db`` of the party's work dir (``--work-dir``, default ``.``; where
``vfl run`` registers each trained model part) unless ``--registry`` names a file. Changes are
recorded in the work dir's audit log ``WORK/audit.db`` when it exists, signed with the key that
created it: ``--signing-key PEM``, the party's key from ``--config federation.toml``, or the work
dir's own ``audit.key``.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from vfl.errors import ConfigError

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("models", help="list / show / promote / roll back model versions")
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", help="list model versions")
    _common(listing)
    listing.add_argument("--name", help="only this model")
    listing.set_defaults(func=_list)

    show = actions.add_parser("show", help="one version with its metadata and history")
    _common(show)
    show.add_argument("name")
    show.add_argument("version")
    show.set_defaults(func=_show)

    promote = actions.add_parser("promote", help="promote a version to staging or production")
    _common(promote, writes=True)
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--to", choices=("staging", "production"), default="production")
    promote.add_argument("--metric", default="test_auc", help="held-out metric gating production")
    promote.add_argument("--min", type=float, default=0.5, help="the metric's threshold")
    promote.add_argument(
        "--lower-is-better", action="store_true", help="the metric must be <= the threshold"
    )
    promote.set_defaults(func=_promote)

    rollback = actions.add_parser("rollback", help="restore the previous production version")
    _common(rollback, writes=True)
    rollback.add_argument("name")
    rollback.set_defaults(func=_rollback)


def _common(parser: argparse.ArgumentParser, *, writes: bool = False) -> None:
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path("."),
        help="the party's work dir (registry.db and audit.db inside; default .)",
    )
    parser.add_argument(
        "--registry", type=Path, help="registry file (SQLite; default WORK_DIR/registry.db)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    if writes:
        parser.add_argument("--actor", default=None, help="who makes the change (default: $USER)")
        parser.add_argument(
            "--audit",
            type=Path,
            help="audit log to record the change in (default WORK_DIR/audit.db)",
        )
        parser.add_argument("--signing-key", type=Path, help="audit signing key (PEM, 0600)")
        parser.add_argument(
            "--config", type=Path, help="federation.toml: take --party's signing key from it"
        )
        parser.add_argument("--party", help="this party's name (default: the audit log's party)")


def _registry_path(args: argparse.Namespace) -> Path:
    return Path(args.registry) if args.registry is not None else args.work_dir / "registry.db"


def _audit_log(args: argparse.Namespace) -> Any:
    """The audit log to record a change in, or ``None`` when there is none to write to."""
    from crypto.keys import SigningKey
    from vfl.governance import AuditLog
    from vfl.governance._verify import read_log_identity

    path = args.audit
    if path is None:
        path = args.work_dir / "audit.db"
        if not path.is_file():
            return None
    party = args.party
    if not party and path.is_file():
        party = read_log_identity(path)[0]
    if not party:
        raise ConfigError("--audit needs --party (the audit log does not exist yet)")
    if args.signing_key is not None:
        key = SigningKey.load(args.signing_key)
    elif args.config is not None:
        from protocols.config import load_federation

        key = load_federation(args.config).signing_key(party)
    elif (args.work_dir / "audit.key").is_file():
        key = SigningKey.load(args.work_dir / "audit.key")
    else:
        raise ConfigError(
            f"recording in {path} needs its signing key: --signing-key PEM or --config FEDERATION.toml"
        )
    return AuditLog(path, party=party, signing_key=key)


def _open(args: argparse.Namespace, *, writes: bool = False) -> Any:
    from vfl.governance import ModelRegistry, PromotionPolicy

    registry_path = _registry_path(args)
    if not registry_path.is_file():
        raise ConfigError(f"no model registry at {registry_path}")
    audit = _audit_log(args) if writes else None
    policy = PromotionPolicy()
    if hasattr(args, "metric"):
        policy = PromotionPolicy(
            metric=args.metric, minimum=args.min, higher_is_better=not args.lower_is_better
        )
    party = getattr(args, "party", None) or (audit.party if audit is not None else "")
    return ModelRegistry(registry_path, party=party, audit_log=audit, policy=policy)


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def _list(args: argparse.Namespace) -> int:
    with _open(args) as registry:
        models = registry.versions(args.name)
    lines = [f"{m.name:20} {m.version:10} {m.stage:11} {m.created}" for m in models]
    _print(args, {"models": [m.to_dict() for m in models]}, "\n".join(lines) or "no models")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as registry:
        model = registry.get(args.name, args.version)
        history = [h for h in registry.history(args.name) if h["version"] == args.version]
        rollout = registry.rollout(args.name)
    data = {**model.to_dict(), "history": history, "rollout": rollout}
    _print(args, data, json.dumps(data, indent=2))
    return 0


def _close_audit(registry: Any) -> None:
    if registry.audit_log is not None:
        registry.audit_log.close()


def _promote(args: argparse.Namespace) -> int:
    with _open(args, writes=True) as registry:
        try:
            model = registry.promote(
                args.name, args.version, to=args.to, actor=args.actor or getpass.getuser()
            )
        finally:
            _close_audit(registry)
    _print(args, model.to_dict(), f"{model.name} {model.version} is now {model.stage}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    with _open(args, writes=True) as registry:
        try:
            model = registry.rollback(args.name, actor=args.actor or getpass.getuser())
        finally:
            _close_audit(registry)
    _print(args, model.to_dict(), f"{model.name} rolled back: {model.version} is in production")
    return 0
