"""``[model]`` settings of a SecureBoost job (one frozen dataclass, checked on construction)."""

from __future__ import annotations

import enum
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vfl.errors import ConfigError

__all__ = ["Objective", "SecureBoostConfig", "parse_secureboost_model"]


class Objective(enum.Enum):
    """The loss the trees are boosted on (XGBoost's names in brackets)."""

    BINARY = "binary"  # binary:logistic
    MULTICLASS = "multiclass"  # multi:softprob
    REGRESSION = "regression"  # reg:squarederror


@dataclass(frozen=True)
class SecureBoostConfig:
    """Boosting and crypto settings shared by every party of one job.

    ``scheme`` is ``"paillier"`` (default) or ``"plain"`` (the baseline: gradients in the clear,
    warns). ``validation_fraction > 0`` holds out that share of the training rows for early
    stopping after ``early_stopping_rounds`` rounds without improvement of the validation loss.
    """

    trees: int = 20
    max_depth: int = 5
    learning_rate: float = 0.3
    max_bin: int = 32
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    subsample: float = 1.0
    objective: Objective = Objective.BINARY
    num_class: int = 0
    validation_fraction: float = 0.0
    early_stopping_rounds: int = 0
    seed: int = 0
    scheme: str = "paillier"
    key_bits: int = 2048
    obfuscator: str = "djn"
    insecure_allow_small_keys: bool = False

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"model.{key}: {why}")

        if not 1 <= self.trees <= 10_000:
            raise bad("trees", "must be in [1, 10000]")
        if not 1 <= self.max_depth <= 16:
            raise bad("max_depth", "must be in [1, 16]")
        if not 0.0 < self.learning_rate <= 1.0:
            raise bad("learning_rate", "must be in (0, 1]")
        if not 2 <= self.max_bin <= 1024:
            raise bad("max_bin", "must be in [2, 1024]")
        if self.min_child_weight < 0:
            raise bad("min_child_weight", "must be >= 0")
        if self.reg_lambda < 0:
            raise bad("reg_lambda", "must be >= 0")
        if not 0.0 < self.subsample <= 1.0:
            raise bad("subsample", "must be in (0, 1]")
        if not isinstance(self.objective, Objective):
            raise bad("objective", "must be binary, multiclass or regression")
        if self.objective is Objective.MULTICLASS and self.num_class < 3:
            raise bad("num_class", "multiclass needs num_class >= 3")
        if self.objective is not Objective.MULTICLASS and self.num_class not in (0, 1):
            raise bad("num_class", "only the multiclass objective takes num_class")
        if not 0.0 <= self.validation_fraction < 0.5:
            raise bad("validation_fraction", "must be in [0, 0.5)")
        if self.early_stopping_rounds < 0:
            raise bad("early_stopping_rounds", "must be >= 0")
        if self.early_stopping_rounds and not self.validation_fraction:
            raise bad("early_stopping_rounds", "needs validation_fraction > 0")
        if self.scheme not in ("paillier", "plain"):
            raise ConfigError(
                f"crypto.scheme {self.scheme!r} is not available for secureboost (paillier or plain)"
            )
        if self.obfuscator not in ("djn", "standard"):
            raise ConfigError(f"crypto.obfuscator {self.obfuscator!r}: djn or standard")
        if (
            self.scheme == "paillier"
            and self.key_bits < 2048
            and not self.insecure_allow_small_keys
        ):
            raise ConfigError(f"crypto.key_bits {self.key_bits} is below 2048")
        if self.scheme == "plain":
            warnings.warn(
                "secureboost with crypto.scheme = 'plain': gradients and histograms cross the "
                "wire in the clear (a baseline, not a private protocol)",
                UserWarning,
                stacklevel=3,
            )

    @property
    def shape_key(self) -> tuple[int, int, int, int]:
        """What both sides must agree on before any data moves (checked in the setup message)."""
        return (self.max_depth, self.max_bin, self.outputs, int(self.scheme == "paillier"))

    @property
    def outputs(self) -> int:
        """Trees per boosting round: ``num_class`` for multiclass, else 1."""
        return self.num_class if self.objective is Objective.MULTICLASS else 1


_KEYS: dict[str, type | tuple[type, ...]] = {
    "trees": int,
    "max_depth": int,
    "learning_rate": (int, float),
    "max_bin": int,
    "min_child_weight": (int, float),
    "reg_lambda": (int, float),
    "subsample": (int, float),
    "objective": str,
    "num_class": int,
    "validation_fraction": (int, float),
    "early_stopping_rounds": int,
    "seed": int,
}


def parse_secureboost_model(
    model: Mapping[str, Any],
    *,
    scheme: str,
    key_bits: int,
    obfuscator: str = "djn",
    insecure_allow_small_keys: bool = False,
) -> SecureBoostConfig:
    """The ``[model]`` table of a ``secureboost`` job; unknown keys and wrong types name the key."""
    values: dict[str, Any] = {}
    for key, value in model.items():
        if key not in _KEYS:
            raise ConfigError(f"unknown key model.{key} (secureboost takes {', '.join(_KEYS)})")
        want = _KEYS[key]
        if isinstance(value, bool) or not isinstance(value, want):
            raise ConfigError(f"model.{key} has the wrong type ({type(value).__name__})")
        values[key] = value
    if "objective" in values:
        try:
            values["objective"] = Objective(values["objective"])
        except ValueError:
            raise ConfigError(
                f"model.objective {values['objective']!r}: binary, multiclass or regression"
            ) from None
    for key in (
        "learning_rate",
        "min_child_weight",
        "reg_lambda",
        "subsample",
        "validation_fraction",
    ):
        if key in values:
            values[key] = float(values[key])
    return SecureBoostConfig(
        **values,
        scheme=scheme,
        key_bits=key_bits,
        obfuscator=obfuscator,
        insecure_allow_small_keys=insecure_allow_small_keys,
    )
