"""``vfl privacy``: the privacy of a DP training plan, from the RDP accountant.

    vfl privacy epsilon --noise-multiplier Z --sampling-rate Q --steps T --delta D [--json]
    vfl privacy noise   --epsilon E          --sampling-rate Q --steps T --delta D [--json]

``epsilon`` prints the plan's ``(epsilon, delta)``: ``T`` steps of the Poisson-sampled Gaussian
mechanism with noise multiplier ``Z`` and sampling rate ``Q`` (RDP accounting, Mironov et al.
2019, improved conversion of Balle et al. 2020). ``noise`` prints the smallest noise multiplier
reaching the target ``epsilon`` (bisection).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("privacy", help="(epsilon, delta) of a DP training plan")
    commands = parser.add_subparsers(dest="privacy_command", metavar="SUBCOMMAND")
    commands.required = True

    eps = commands.add_parser("epsilon", help="epsilon of a plan (noise, sampling rate, steps)")
    eps.add_argument("--noise-multiplier", type=float, required=True, help="noise stddev / clip")
    _common(eps)
    eps.set_defaults(func=_epsilon)

    noise = commands.add_parser("noise", help="noise multiplier for a target epsilon")
    noise.add_argument("--epsilon", type=float, required=True, help="target epsilon")
    _common(noise)
    noise.set_defaults(func=_noise)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sampling-rate", type=float, required=True, help="batch / dataset size")
    parser.add_argument("--steps", type=int, required=True, help="number of noisy steps")
    parser.add_argument("--delta", type=float, required=True, help="target delta, e.g. 1e-5")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _check(args: argparse.Namespace) -> None:
    from vfl.errors import ConfigError

    if not 0.0 < args.sampling_rate <= 1.0:
        raise ConfigError(f"--sampling-rate must be in (0, 1], got {args.sampling_rate}")
    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {args.steps}")
    if not 0.0 < args.delta < 1.0:
        raise ConfigError(f"--delta must be in (0, 1), got {args.delta}")


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "sampling_rate": args.sampling_rate,
        "steps": args.steps,
        "delta": args.delta,
        "accountant": "rdp",
    }


def _epsilon(args: argparse.Namespace) -> int:
    from vfl.errors import ConfigError
    from vfl.privacy import epsilon_for_plan

    _check(args)
    z = args.noise_multiplier
    if not (z > 0 and math.isfinite(z)):
        raise ConfigError(f"--noise-multiplier must be positive, got {z}")
    eps = epsilon_for_plan(
        noise_multiplier=z, sampling_rate=args.sampling_rate, steps=args.steps, delta=args.delta
    )
    out = {"epsilon": eps, "noise_multiplier": z, **_plan(args)}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"epsilon = {eps:.4f} at delta = {args.delta:g} after {args.steps} steps "
            f"(noise multiplier {z:g}, sampling rate {args.sampling_rate:g})"
        )
    return 0


def _noise(args: argparse.Namespace) -> int:
    from vfl.errors import ConfigError
    from vfl.privacy import epsilon_for_plan, noise_for_epsilon

    _check(args)
    if not (args.epsilon > 0 and math.isfinite(args.epsilon)):
        raise ConfigError(f"--epsilon must be positive, got {args.epsilon}")
    try:
        z = noise_for_epsilon(
            epsilon=args.epsilon,
            sampling_rate=args.sampling_rate,
            steps=args.steps,
            delta=args.delta,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    eps = epsilon_for_plan(
        noise_multiplier=z, sampling_rate=args.sampling_rate, steps=args.steps, delta=args.delta
    )
    out = {"noise_multiplier": z, "epsilon": eps, "target_epsilon": args.epsilon, **_plan(args)}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"noise multiplier = {z:.4f} gives epsilon = {eps:.4f} <= {args.epsilon:g} at "
            f"delta = {args.delta:g} after {args.steps} steps (sampling rate "
            f"{args.sampling_rate:g})"
        )
    return 0
