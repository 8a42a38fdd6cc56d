"""Job type ``psi`` as a :class:`vfl.core.JobKind`: the runner's aligned rows, saved as a CSV.

The runner has already aligned this party's rows (and its ``test_data``, if any) by PSI; the
kind writes the aligned ``data`` rows to ``RUN_DIR/aligned.csv`` and trains nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vfl._atomic import atomic_path
from vfl.core import CryptoSection, Job, PartResult, PartyContext
from vfl.errors import ConfigError

__all__ = ["PSI", "PsiKind"]


class PsiKind:
    """``job.type = "psi"`` (:class:`vfl.core.JobKind`)."""

    name = "psi"
    aligns = True
    splits = False
    needs_label = False
    needs_features = False
    schemes = ("paillier", "ckks", "plain")
    trains = False

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> None:
        if table:
            raise ConfigError(
                f"unknown key model.{next(iter(table))} (a psi job has no [model] settings)"
            )

    def check(self, job: Job, party: str) -> None:
        """A psi job has no settings to check beyond the job file's."""

    def run(self, ctx: PartyContext, settings: None) -> PartResult:
        aligned = ctx.train
        if aligned is None:
            raise TypeError("a psi job was run without aligned rows")
        out = ctx.run_dir / "aligned.csv"
        with atomic_path(out) as partial:  # never a half-written aligned.csv
            aligned.to_csv(partial, index=False)
        return PartResult(crypto={"scheme": "ecdh-x25519"}, extra={"aligned_csv": str(out)})


PSI = PsiKind()
