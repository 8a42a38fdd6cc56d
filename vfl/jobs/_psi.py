"""Job type ``psi`` as a :class:`vfl.core.JobKind`: the runner's aligned rows, saved as a CSV.

The runner has already aligned this party's rows (and its ``test_data``, if any) by PSI; the
kind writes the aligned ``data`` rows to ``RUN_DIR/aligned.csv`` and trains nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

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
        partial = out.with_name(f".{out.name}.partial")
        aligned.to_csv(partial, index=False)
        os.replace(partial, out)  # never a half-written aligned.csv
        return PartResult(crypto={"scheme": "ecdh-x25519"}, extra={"aligned_csv": str(out)})


PSI = PsiKind()
