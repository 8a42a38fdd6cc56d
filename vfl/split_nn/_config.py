"""Configuration of a split-NN job: small frozen dataclasses validated on creation.

Every party of a job builds the same :class:`SplitNNConfig` (from the job file's ``[model]`` and
``[crypto]`` tables with :meth:`SplitNNConfig.from_mapping`); the parties compare
:meth:`SplitNNConfig.fingerprint` before training, so a party running another file fails fast.
"""

from __future__ import annotations

import enum
import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vfl.errors import ConfigError

__all__ = ["Scheme", "CryptoConfig", "DefenceConfig", "SplitNNConfig"]


class Scheme(enum.Enum):
    """How the interactive layer is protected."""

    PLAIN = "plain"  # no encryption: debugging and baseline only (warns)
    PAILLIER = "paillier"
    CKKS = "ckks"


#: Default half-width ``R`` of the uniform masks, per scheme (see docs/protocols/split_nn.md).
#: Float64 carries the masked values, so ``R * 2**-32`` must stay above the value precision;
#: CKKS also bounds ``R`` by its plaintext range (``2**18`` at the default preset).
DEFAULT_MASK_BOUND = {Scheme.PLAIN: 2.0**12, Scheme.PAILLIER: 2.0**20, Scheme.CKKS: 2.0**12}


@dataclass(frozen=True)
class CryptoConfig:
    """Scheme and key sizes. ``mask_bound=None`` takes :data:`DEFAULT_MASK_BOUND` (plain and
    CKKS; Paillier masks are integers with 40 bits of slack). ``processes`` spreads Paillier
    encryption, multi-exponentiation and decryption over that many worker processes.
    """

    scheme: Scheme = Scheme.CKKS
    key_bits: int = 2048
    ckks_preset: str = "default"
    mask_bound: float | None = None
    weight_noise: float = 1.0
    release_bits: int = 20
    insecure_allow_small_keys: bool = False
    processes: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.scheme, Scheme):
            raise ConfigError(f"crypto.scheme must be one of {[s.value for s in Scheme]}")
        if self.key_bits < 2048 and not self.insecure_allow_small_keys:
            raise ConfigError("crypto.key_bits below 2048 needs insecure_allow_small_keys")
        if self.mask_bound is not None and not 0 < self.mask_bound <= 2.0**20:
            raise ConfigError("crypto.mask_bound must be in (0, 2**20]")
        if self.scheme is Scheme.CKKS and self.mask > 2.0**16:
            raise ConfigError("crypto.mask_bound must be <= 2**16 with CKKS (plaintext range)")
        if not 0 <= self.weight_noise <= 2.0**10:
            raise ConfigError("crypto.weight_noise must be in [0, 1024]")
        if self.processes is not None and not 1 <= self.processes <= 256:
            raise ConfigError("crypto.processes must be in [1, 256]")
        if not 8 <= self.release_bits <= 30:
            raise ConfigError("crypto.release_bits must be in [8, 30]")
        if self.scheme is Scheme.PLAIN:
            warnings.warn(
                "split NN with crypto.scheme = 'plain': embeddings and gradients are NOT "
                "encrypted; use only for debugging and baselines",
                UserWarning,
                stacklevel=3,
            )

    @property
    def mask(self) -> float:
        """The mask half-width actually used."""
        return DEFAULT_MASK_BOUND[self.scheme] if self.mask_bound is None else self.mask_bound


@dataclass(frozen=True)
class DefenceConfig:
    """Label-leakage defence on the cut-layer gradients (see :mod:`vfl.split_nn._defence`).

    ``noise_multiplier`` (sigma, 0 = off) is the strength knob; ``clip`` (C) bounds each
    sample's cut-layer gradient before the noise ``N(0, (sigma C)^2)`` is added. On by default
    (sigma = 0.5, C = 1: on default credit the norm and direction attacks fall to about 0.52-0.55
    leak AUC for a test-AUC cost of about 0.01; see docs/protocols/split_nn.md).
    """

    noise_multiplier: float = 0.5
    clip: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.noise_multiplier <= 1e3:
            raise ConfigError("model.defence_noise must be in [0, 1000]")
        if not 0 < self.clip <= 1e6:
            raise ConfigError("model.defence_clip must be positive")

    @property
    def enabled(self) -> bool:
        return self.noise_multiplier > 0


@dataclass(frozen=True)
class SplitNNConfig:
    """Training settings shared by every party of a split-NN job.

    ``interactive_lr`` / ``interactive_momentum``: SGD (heavy-ball) on the shared interactive
    weights ``W_H``; ``label_dp_epsilon``: train on randomised-response labels (``None`` = off).
    """

    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 0.01
    interactive_lr: float = 0.05
    interactive_momentum: float = 0.0
    interactive_units: int = 8
    lr_decay: float = 1.0
    validation_fraction: float = 0.1
    patience: int = 3
    seed: int = 0
    attack_meter: bool = True
    label_dp_epsilon: float | None = None
    crypto: CryptoConfig = field(default_factory=CryptoConfig)
    defence: DefenceConfig = field(default_factory=DefenceConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "model.epochs must be >= 1"),
            (self.batch_size >= 2, "model.batch_size must be >= 2"),
            (self.learning_rate > 0, "model.learning_rate must be positive"),
            (self.interactive_lr > 0, "model.interactive_lr must be positive"),
            (
                0 <= self.interactive_momentum < 1,
                "model.interactive_momentum must be in [0, 1)",
            ),
            (self.interactive_units >= 1, "model.interactive_units must be >= 1"),
            (0 < self.lr_decay <= 1, "model.lr_decay must be in (0, 1]"),
            (0 <= self.validation_fraction < 0.5, "model.validation_fraction must be in [0, 0.5)"),
            (self.patience >= 1, "model.patience must be >= 1"),
            (
                self.label_dp_epsilon is None or 0 < self.label_dp_epsilon <= 50,
                "model.label_dp_epsilon must be in (0, 50]",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def interactive_lr_at(self, epoch: int) -> float:
        """Interactive-layer SGD rate: ``interactive_lr * lr_decay**epoch``."""
        return self.interactive_lr * self.lr_decay**epoch

    def fingerprint(self) -> str:
        """SHA-256 over the settings every party must share (JSON, sorted keys)."""
        data = asdict(self)
        data["crypto"]["scheme"] = self.crypto.scheme.value
        del data["crypto"]["processes"]  # a local performance choice, not a shared setting
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    @classmethod
    def from_mapping(
        cls, model: Mapping[str, Any], crypto: Mapping[str, Any] | None = None
    ) -> SplitNNConfig:
        """Build from a job file's ``[model]`` and ``[crypto]`` tables; unknown keys are errors.

        ``[model]`` may also hold ``defence_noise`` / ``defence_clip`` (the defence),
        ``label_dp_epsilon`` (randomised response on the training labels) and the
        layer keys read by :func:`vfl.split_nn.build_mlp` callers (``bottom_layers``,
        ``top_layers``, ``embedding_dim``), which are returned untouched by
        :func:`model_layers`.
        """
        scalars = {f.name: f.type for f in fields(cls) if f.name not in ("crypto", "defence")}
        kwargs: dict[str, Any] = {}
        defence: dict[str, Any] = {}
        for key, value in model.items():
            if key in LAYER_KEYS:
                continue
            if key == "defence_noise":
                defence["noise_multiplier"] = _number(value, f"model.{key}")
            elif key == "defence_clip":
                defence["clip"] = _number(value, f"model.{key}")
            elif key == "label_dp_epsilon":
                kwargs[key] = _number(value, f"model.{key}")
            elif key in scalars:
                kwargs[key] = _typed(value, scalars[key], f"model.{key}")
            else:
                raise ConfigError(f"unknown key model.{key}")
        crypto_kwargs: dict[str, Any] = {}
        for key, value in (crypto or {}).items():
            if key == "scheme":
                try:
                    crypto_kwargs["scheme"] = Scheme(value)
                except ValueError:
                    raise ConfigError(
                        f"crypto.scheme must be one of {[s.value for s in Scheme]}"
                    ) from None
            elif key == "key_bits":
                crypto_kwargs[key] = _typed(value, "int", f"crypto.{key}")
            elif key == "ckks_preset":
                crypto_kwargs[key] = _typed(value, "str", f"crypto.{key}")
            elif key in ("mask_bound", "weight_noise"):
                crypto_kwargs[key] = _number(value, f"crypto.{key}")
            elif key == "processes":
                crypto_kwargs[key] = _typed(value, "int", f"crypto.{key}")
            elif key == "insecure_allow_small_keys":
                crypto_kwargs[key] = _typed(value, "bool", f"crypto.{key}")
            else:
                raise ConfigError(f"unknown key crypto.{key}")
        return cls(crypto=CryptoConfig(**crypto_kwargs), defence=DefenceConfig(**defence), **kwargs)


#: ``[model]`` keys describing the torch modules (used by the job runner, not the protocol).
LAYER_KEYS = frozenset({"bottom_layers", "top_layers", "embedding_dim"})


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number")
    return float(value)


def _typed(value: Any, type_name: Any, name: str) -> Any:
    kind = str(type_name)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer")
        return value
    if kind == "float":
        return _number(value, name)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string")
        return value
    raise ConfigError(f"{name} has an unsupported type")
