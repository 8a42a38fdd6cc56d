"""``vfl models list|show|promote|rollback``: the party's model registry from the command line."""

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
    parser.add_argument("--registry", type=Path, required=True, help="registry file (SQLite)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    if writes:
        parser.add_argument("--actor", default=None, help="who makes the change (default: $USER)")
        parser.add_argument("--audit", type=Path, help="audit log to record the change in")
        parser.add_argument("--signing-key", type=Path, help="audit signing key (PEM, 0600)")
        parser.add_argument("--party", help="this party's name (for the audit log)")


def _open(args: argparse.Namespace, *, writes: bool = False) -> Any:
    from vfl.governance import AuditLog, ModelRegistry, PromotionPolicy

    if not writes and not args.registry.is_file():
        raise ConfigError(f"no model registry at {args.registry}")
    audit = None
    if writes and args.audit is not None:
        if args.signing_key is None or not args.party:
            raise ConfigError("--audit needs --signing-key and --party")
        from crypto.keys import SigningKey

        audit = AuditLog(
            args.audit, party=args.party, signing_key=SigningKey.load(args.signing_key)
        )
    policy = PromotionPolicy()
    if hasattr(args, "metric"):
        policy = PromotionPolicy(
            metric=args.metric, minimum=args.min, higher_is_better=not args.lower_is_better
        )
    party = getattr(args, "party", None) or ""
    return ModelRegistry(args.registry, party=party, audit_log=audit, policy=policy)


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
