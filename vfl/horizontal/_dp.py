"""Differentially private local training and its plan: record-level DP-SGD, central DP settings.

Record-level DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016,
Algorithm 1), inside one client's local training. Each step:

1. **Poisson sampling**: every local row joins the batch ``B`` independently with probability
   ``q`` (the job's ``dp_sampling_rate``), drawn from the injected :class:`RandomSource` (the OS
   CSPRNG by default), so the sampled Gaussian mechanism's amplification by sampling -- which the
   RDP accountant assumes (Mironov, Talwar and Zhang 2019) -- holds. ``q`` is rounded *down* to a
   multiple of ``2^-64`` (a smaller ``q`` is a smaller privacy cost than the one accounted).
2. **Per-sample clipping**: ``g_i <- g_i * min(1, C / ||g_i||_2)`` for the per-sample gradients
   of the data loss (computed in closed form for the logistic model, by ``torch.func.vmap`` of
   ``torch.func.grad`` for torch models).
3. **Noise**: ``g = (sum_{i in B} g_i + N(0, (z C)^2 I)) / (q n)``, the noise from the exact
   discrete Gaussian sampler (:func:`vfl.privacy.central_dp`, which also covers the grid
   rounding). The denominator is the *expected* batch size, a public constant, so one row changes
   the noised sum by at most ``C`` (add/remove adjacency). An empty batch is still noised.
4. **Step**: ``w <- w - lr (g + l2 w + mu (w - w_g))``: the weight decay and FedProx terms do
   not depend on the data (``w_g`` is the public global model), so they are post-processing.

One round runs ``local_epochs * ceil(1 / q)`` such steps; a client's plan over ``rounds`` rounds
is ``rounds * local_epochs * ceil(1/q)`` steps of the sampled Gaussian mechanism with noise
multiplier ``z``, and ``z`` is derived from a target ``(epsilon, delta)`` with
:func:`vfl.privacy.noise_for_epsilon` unless it is given.

Central DP (McMahan et al., "Learning Differentially Private Recurrent Language Models",
ICLR 2018): the aggregator clips every client's update to ``C`` and noises the sum with
``N(0, (z C)^2)``; each round is one Gaussian mechanism per client, accounted with ``q = 1``
(the aggregator's client sampling uses a public seed and a fixed size, so no amplification is
claimed).
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from crypto.random import RandomSource, resolve
from vfl.errors import ConfigError
from vfl.horizontal._models import LocalTraining
from vfl.privacy import BudgetPolicy, central_dp, epsilon_for_plan, noise_for_epsilon

__all__ = [
    "DpMode",
    "DpSpec",
    "DpPlan",
    "PerSampleModel",
    "plan_dp",
    "parse_dp",
    "poisson_sample",
    "clip_per_sample",
    "dp_sgd_train",
    "DP_KEYS",
]

DP_KEYS = frozenset(
    {
        "dp",
        "dp_epsilon",
        "dp_delta",
        "dp_max_grad_norm",
        "dp_noise_multiplier",
        "dp_sampling_rate",
        "dp_budget_policy",
        "dp_secure_noise",
    }
)
"""The ``[model]`` keys of a fedavg job that configure differential privacy."""


class DpMode(enum.Enum):
    """``record``: DP-SGD inside each client. ``central``: the aggregator noises the sum."""

    RECORD = "record"
    CENTRAL = "central"


@dataclass(frozen=True, kw_only=True)
class DpSpec:
    """Differential privacy of a horizontal job.

    ``epsilon`` is both the target from which the noise multiplier is derived (when
    ``noise_multiplier`` is not given) and the budget enforced with ``budget_policy``.
    ``max_grad_norm`` is the clip norm ``C``: per sample (record) or per update (central).
    ``sampling_rate`` is the Poisson rate of each local batch (record level only).
    ``secure_noise=False`` draws float noise from numpy (fast, but exposed to the
    least-significant-bit attack; it warns).
    """

    mode: DpMode = DpMode.RECORD
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    epsilon: float | None = None
    noise_multiplier: float | None = None
    sampling_rate: float = 0.01
    budget_policy: BudgetPolicy = BudgetPolicy.REFUSE
    secure_noise: bool = True

    def __post_init__(self) -> None:
        if self.epsilon is None and self.noise_multiplier is None:
            raise ConfigError("dp needs dp_epsilon or dp_noise_multiplier")
        if self.epsilon is not None and not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"dp_epsilon must be positive, got {self.epsilon}")
        if self.noise_multiplier is not None and not (
            self.noise_multiplier > 0 and math.isfinite(self.noise_multiplier)
        ):
            raise ConfigError(f"dp_noise_multiplier must be positive, got {self.noise_multiplier}")
        if not 0.0 < self.delta < 1.0:
            raise ConfigError(f"dp_delta must be in (0, 1), got {self.delta}")
        if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
            raise ConfigError(f"dp_max_grad_norm must be positive, got {self.max_grad_norm}")
        if not 0.0 < self.sampling_rate <= 1.0:
            raise ConfigError(f"dp_sampling_rate must be in (0, 1], got {self.sampling_rate}")


@dataclass(frozen=True)
class DpPlan:
    """What one client spends if it takes part in every round: ``rounds * steps_per_round``
    steps of the sampled Gaussian mechanism, ``epsilon`` in total at ``delta``."""

    noise_multiplier: float
    sampling_rate: float
    steps_per_round: int
    rounds: int
    delta: float
    epsilon: float


@functools.lru_cache(maxsize=64)
def _cached_plan(spec: DpSpec, rounds: int, local_epochs: int) -> DpPlan:
    return _plan(spec, rounds=rounds, local_epochs=local_epochs)


def plan_dp(spec: DpSpec, *, rounds: int, local_epochs: int) -> DpPlan:
    """The plan of ``spec`` over ``rounds`` rounds of ``local_epochs`` local epochs.

    Record level: ``q = dp_sampling_rate`` and ``local_epochs * ceil(1/q)`` steps per round.
    Central: ``q = 1`` and one step per round. The noise multiplier is the given one, or the
    smallest one whose plan meets ``spec.epsilon`` (:func:`vfl.privacy.noise_for_epsilon`;
    plans are cached, as every party of a job computes the same one).
    """
    return _cached_plan(spec, rounds, local_epochs)


def _plan(spec: DpSpec, *, rounds: int, local_epochs: int) -> DpPlan:
    if rounds < 1:
        raise ConfigError(f"a DP plan needs at least one round, got {rounds}")
    if spec.mode is DpMode.RECORD:
        if local_epochs < 1:
            raise ConfigError("dp = 'record' needs local_epochs >= 1")
        q = spec.sampling_rate
        steps = local_epochs * math.ceil(1.0 / q - 1e-12)
    else:
        q, steps = 1.0, 1
    z = spec.noise_multiplier
    if z is None:
        assert spec.epsilon is not None  # DpSpec guarantees one of the two
        try:
            z = noise_for_epsilon(
                epsilon=spec.epsilon, sampling_rate=q, steps=rounds * steps, delta=spec.delta
            )
        except ValueError as exc:
            raise ConfigError(f"dp_epsilon {spec.epsilon:g} is out of reach: {exc}") from None
    eps = epsilon_for_plan(
        noise_multiplier=z, sampling_rate=q, steps=rounds * steps, delta=spec.delta
    )
    return DpPlan(z, q, steps, rounds, spec.delta, eps)


def _get(table: Mapping[str, Any], key: str, kinds: tuple[type, ...]) -> Any:
    value = table.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise ConfigError(
            f"model.{key} has the wrong type: expected {names}, got {type(value).__name__}"
        )
    return value


def parse_dp(model: Mapping[str, Any]) -> DpSpec | None:
    """The DP settings of a fedavg ``[model]`` table (``None`` when ``dp`` is absent or "none")."""
    mode = _get(model, "dp", (str,))
    others = sorted(k for k in model if k in DP_KEYS and k != "dp")
    if mode is None or mode == "none":
        if others:
            raise ConfigError(f"model.{others[0]} needs model.dp = 'record' or 'central'")
        return None
    if mode not in ("record", "central"):
        raise ConfigError(f"model.dp must be 'none', 'record' or 'central', got {mode!r}")
    num = (int, float)
    policy = _get(model, "dp_budget_policy", (str,)) or "refuse"
    if policy not in ("refuse", "stop"):
        raise ConfigError(f"model.dp_budget_policy must be 'refuse' or 'stop', got {policy!r}")
    if mode == "central" and "dp_sampling_rate" in model:
        raise ConfigError("model.dp_sampling_rate applies to dp = 'record' only")
    fields: dict[str, Any] = {"mode": DpMode(mode), "budget_policy": BudgetPolicy(policy)}
    for key, name in (
        ("dp_epsilon", "epsilon"),
        ("dp_delta", "delta"),
        ("dp_max_grad_norm", "max_grad_norm"),
        ("dp_noise_multiplier", "noise_multiplier"),
        ("dp_sampling_rate", "sampling_rate"),
    ):
        value = _get(model, key, num)
        if value is not None:
            fields[name] = float(value)
    secure = _get(model, "dp_secure_noise", (bool,))
    if secure is not None:
        fields["secure_noise"] = secure
    try:
        return DpSpec(**fields)
    except ConfigError as exc:
        raise ConfigError(f"model.{exc}") from None


@runtime_checkable
class PerSampleModel(Protocol):
    """A local model that gives the gradient of each row's loss at given parameters."""

    def get_params(self) -> np.ndarray: ...

    def set_params(self, params: np.ndarray) -> None: ...

    def per_sample_grads(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(rows, parameters)`` float64: row ``i`` is the gradient of row ``i``'s loss."""
        ...


def poisson_sample(n: int, *, sampling_rate: float, rng: RandomSource | None = None) -> np.ndarray:
    """Indices of ``range(n)``, each kept independently with probability ``floor(q 2^64) / 2^64``.

    One uniform 64-bit integer per row from ``rng`` (the OS CSPRNG by default), compared with
    the threshold: exact, and never above ``q``.
    """
    if not 0.0 < sampling_rate <= 1.0:
        raise ValueError(f"sampling rate must be in (0, 1], got {sampling_rate}")
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    if sampling_rate >= 1.0:
        return np.arange(n, dtype=np.int64)
    threshold = np.uint64(math.floor(sampling_rate * 2.0**64))
    draws = np.frombuffer(resolve(rng).random_bytes(8 * n), dtype="<u8")
    return np.flatnonzero(draws < threshold).astype(np.int64)


def clip_per_sample(grads: np.ndarray, *, clip_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to ``g_i * min(1, C / ||g_i||_2)``, and the norms before clipping."""
    if not clip_norm > 0:
        raise ValueError(f"clip norm must be positive, got {clip_norm}")
    arr = np.asarray(grads, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"per-sample gradients must be (rows, parameters), got {arr.shape}")
    norms = np.linalg.norm(arr, axis=1)
    if not np.all(np.isfinite(norms)):
        raise ValueError("cannot clip per-sample gradients with non-finite entries")
    scale = np.minimum(1.0, clip_norm / np.maximum(norms, np.finfo(np.float64).tiny))
    return arr * scale[:, None], norms


def dp_sgd_train(
    model: PerSampleModel,
    x: np.ndarray,
    y: np.ndarray,
    *,
    settings: LocalTraining,
    plan: DpPlan,
    clip_norm: float,
    secure: bool = True,
    rng: RandomSource | None = None,
) -> int:
    """One round of DP-SGD from the model's current parameters (the FedProx anchor); returns
    the number of steps run (``plan.steps_per_round``, each one accounted).

    ``settings`` gives the learning rate, ``l2`` and ``mu``; its ``epochs`` and ``batch_size``
    are ignored: the plan fixes the steps and the Poisson rate.
    """
    source = resolve(rng)
    start = model.get_params()
    anchor = np.asarray(start, dtype=np.float64).copy()
    w = anchor.copy()
    n = int(np.asarray(y).size)
    if n < 1:
        raise ConfigError("DP-SGD needs at least one training row")
    expected = plan.sampling_rate * n
    for _ in range(plan.steps_per_round):
        idx = poisson_sample(n, sampling_rate=plan.sampling_rate, rng=source)
        total = np.zeros_like(w)
        if idx.size:
            clipped, _ = clip_per_sample(
                model.per_sample_grads(w, x[idx], y[idx]), clip_norm=clip_norm
            )
            total = clipped.sum(axis=0)
        noisy = central_dp(
            total,
            clip_norm=clip_norm,
            noise_multiplier=plan.noise_multiplier,
            divide_by=expected,
            secure=secure,
            rng=source,
        )
        grad = noisy + settings.l2 * w
        if settings.mu:
            grad += settings.mu * (w - anchor)
        w -= settings.learning_rate * grad
    model.set_params(w.astype(start.dtype))
    return plan.steps_per_round
