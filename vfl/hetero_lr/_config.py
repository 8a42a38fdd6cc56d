"""Configuration of hetero logistic regression: small frozen dataclasses validated on creation.

``HeteroLRConfig.from_mapping`` reads the ``[model]`` table of a job file; unknown keys and wrong
types are :class:`vfl.errors.ConfigError` naming the key (``model.learning_rate`` ...).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from vfl.errors import ConfigError

__all__ = [
    "Approximation",
    "ClassWeight",
    "CryptoSettings",
    "HeteroLRConfig",
    "LRSchedule",
    "Obfuscator",
    "Penalty",
    "SchemeName",
]


class Penalty(enum.Enum):
    NONE = "none"
    L2 = "l2"
    L1 = "l1"


class LRSchedule(enum.Enum):
    CONSTANT = "constant"
    INVERSE_TIME = "inverse_time"  # lr / (1 + decay * epoch)
    EXPONENTIAL = "exponential"  # lr * decay ** epoch


class Approximation(enum.Enum):
    """How the label party linearises sigmoid(u_G + u_H) in the feature parties' scores u_H.

    ``taylor``: sigmoid(z) ~ 0.5 + 0.25 z around z = 0 (the classic choice, Hardy et al. 2017).
    ``local``: first-order expansion around the label party's own partial score u_G, per sample:
    sigmoid(u_G + u_H) ~ sigmoid(u_G) + sigmoid'(u_G) u_H. Exact when u_H = 0; see the protocol page.
    """

    TAYLOR = "taylor"
    LOCAL = "local"


class ClassWeight(enum.Enum):
    NONE = "none"
    BALANCED = "balanced"  # w_k = n / (K n_k), per binary task


class Obfuscator(enum.Enum):
    """How Paillier randomness r^n mod n^2 is made (see docs/crypto/paillier.md).

    ``djn``: Damgard-Jurik-Nielsen fixed base h_s^a with a short random exponent a (about 20x
    faster; relies on a stronger assumption than DCR, DJN 2010). ``standard``: r^n for uniform r.
    """

    DJN = "djn"
    STANDARD = "standard"


class SchemeName(enum.Enum):
    PAILLIER = "paillier"
    PLAIN = "plain"  # no encryption: for debugging and measuring; warns loudly


def _enum(cls: type[enum.Enum], value: Any, key: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {type(value).__name__}")
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
        raise ConfigError(f"{key} must be one of {allowed}, got {value!r}") from None


def _number(value: Any, key: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ConfigError(
            f"{key} must be {'a number' if kind is float else 'an integer'}, got {type(value).__name__}"
        )
    return kind(value)


@dataclass(frozen=True)
class CryptoSettings:
    """Which homomorphic scheme protects the protocol, and its key size."""

    scheme: SchemeName = SchemeName.PAILLIER
    key_bits: int = 2048
    insecure_allow_small_keys: bool = False
    obfuscator: Obfuscator = Obfuscator.DJN
    precision_bits: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "scheme", _enum(SchemeName, self.scheme, "crypto.scheme"))
        object.__setattr__(
            self, "obfuscator", _enum(Obfuscator, self.obfuscator, "crypto.obfuscator")
        )
        _number(self.key_bits, "crypto.key_bits", int)
        _number(self.precision_bits, "crypto.precision_bits", int)
        if not 8 <= self.precision_bits <= 64:
            raise ConfigError(
                f"crypto.precision_bits must be in [8, 64], got {self.precision_bits}"
            )
        if self.key_bits < 2048 and not self.insecure_allow_small_keys:
            raise ConfigError(
                f"crypto.key_bits must be >= 2048 (got {self.key_bits}); smaller keys only for tests"
            )
        if self.key_bits < 256:
            raise ConfigError(f"crypto.key_bits is too small: {self.key_bits}")


@dataclass(frozen=True)
class HeteroLRConfig:
    """Training settings. Every party builds the same config from the same job file.

    The label party's plan (epochs, batches, validation split, seed) is authoritative: it is sent
    to the feature parties at the start of ``fit`` and a mismatch is an error.

    ``label_dp_epsilon``: when set, the label party trains on labels perturbed once by K-ary
    randomized response (:func:`vfl.privacy.randomized_response`), so everything that leaves it
    during training is ``label_dp_epsilon``-label-DP (post-processing).
    """

    epochs: int = 20
    batch_size: int = 1024
    learning_rate: float = 0.3
    lr_schedule: LRSchedule = LRSchedule.CONSTANT
    lr_decay: float = 0.0
    penalty: Penalty = Penalty.NONE
    alpha: float = 0.0
    approximation: Approximation = Approximation.LOCAL
    class_weight: ClassWeight = ClassWeight.NONE
    fit_intercept: bool = True
    validation_fraction: float = 0.1
    early_stopping_patience: int = 3
    tol: float = 1e-4
    seed: int = 0
    label_dp_epsilon: float | None = None
    crypto: CryptoSettings = field(default_factory=CryptoSettings)

    def __post_init__(self) -> None:
        _number(self.epochs, "model.epochs", int)
        _number(self.batch_size, "model.batch_size", int)
        _number(self.early_stopping_patience, "model.early_stopping_patience", int)
        _number(self.seed, "model.seed", int)
        for name in ("learning_rate", "lr_decay", "alpha", "validation_fraction", "tol"):
            object.__setattr__(self, name, _number(getattr(self, name), f"model.{name}", float))
        object.__setattr__(
            self, "lr_schedule", _enum(LRSchedule, self.lr_schedule, "model.lr_schedule")
        )
        object.__setattr__(self, "penalty", _enum(Penalty, self.penalty, "model.penalty"))
        object.__setattr__(
            self, "approximation", _enum(Approximation, self.approximation, "model.approximation")
        )
        object.__setattr__(
            self, "class_weight", _enum(ClassWeight, self.class_weight, "model.class_weight")
        )
        if not isinstance(self.fit_intercept, bool):
            raise ConfigError("model.fit_intercept must be true or false")
        if self.epochs < 1:
            raise ConfigError(f"model.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"model.batch_size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"model.learning_rate must be > 0, got {self.learning_rate}")
        if self.lr_decay < 0:
            raise ConfigError(f"model.lr_decay must be >= 0, got {self.lr_decay}")
        if self.alpha < 0:
            raise ConfigError(f"model.alpha must be >= 0, got {self.alpha}")
        if not 0.0 <= self.validation_fraction < 0.5:
            raise ConfigError(
                f"model.validation_fraction must be in [0, 0.5), got {self.validation_fraction}"
            )
        if self.early_stopping_patience < 0:
            raise ConfigError(
                "model.early_stopping_patience must be >= 0 (0 disables early stopping)"
            )
        if self.label_dp_epsilon is not None:
            eps = _number(self.label_dp_epsilon, "model.label_dp_epsilon", float)
            object.__setattr__(self, "label_dp_epsilon", eps)
            if not eps > 0:
                raise ConfigError(f"model.label_dp_epsilon must be > 0, got {eps}")
        if not isinstance(self.crypto, CryptoSettings):
            raise ConfigError("crypto must be a CryptoSettings")

    @classmethod
    def from_mapping(
        cls, model: Mapping[str, Any], *, crypto: CryptoSettings | None = None
    ) -> HeteroLRConfig:
        """Build from a job file's ``[model]`` table; unknown keys are errors naming the key."""
        known = {f.name for f in fields(cls)} - {"crypto"}
        for key in model:
            if key not in known:
                raise ConfigError(f"unknown key model.{key} (known: {', '.join(sorted(known))})")
        return cls(**dict(model), crypto=crypto or CryptoSettings())

    def plan(self) -> dict[str, Any]:
        """The settings every party must agree on, as a small JSON-ready dict."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "validation_fraction": self.validation_fraction,
            "seed": self.seed,
            "approximation": self.approximation.value,
            "scheme": self.crypto.scheme.value,
            # Every receiver derives the fixed-point scales of what it receives from this (the
            # wire carries none), so the parties must agree on it.
            "precision_bits": self.crypto.precision_bits,
        }
