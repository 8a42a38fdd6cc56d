"""The overlap check right after PSI: no shared ids, or too few to train on, is its own error.

Without it a zero or tiny intersection surfaces later as a message about something else (a single
class, a batch size, an undefined AUC). The rule (docs/jobs.md, "Too small an overlap") depends
only on the intersection size and the job file, which every party has alike, so every party
reaches the same decision and fails with the same error, each naming its own count of ids; no
party learns anything it did not already learn from PSI.
"""

from __future__ import annotations

import pandas as pd

from vfl.errors import OverlapTooSmall
from vfl.jobs._spec import Job

__all__ = ["MIN_TRAINING_ROWS", "check_overlap", "training_rows"]

#: The fewest training rows (aligned rows less the agreed test rows) a hetero LR or split NN job
#: trains on; below it a model is noise and its metrics are undefined or meaningless.
MIN_TRAINING_ROWS = 10


def training_rows(job: Job, shared: int) -> int:
    """How many of ``shared`` aligned rows the job trains on (less the agreed test split)."""
    from vfl.jobs._run import agreed_test_rows  # lazy: _run imports this module

    if job.job.type == "psi":
        return shared
    if any(job.party(p).test_data is not None for p in job.parties):
        return shared  # the test rows come from the separate test_data files
    mask = agreed_test_rows(shared, fraction=job.evaluation.test_fraction, seed=job.evaluation.seed)
    return shared - int(mask.sum())


def _peer_list(peers: list[str]) -> str:
    names = sorted(peers)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def check_overlap(
    job: Job,
    party: str,
    peers: list[str],
    data: pd.DataFrame,
    shared: int,
    *,
    dataset: str = "data",
) -> None:
    """Raise :class:`~vfl.errors.OverlapTooSmall` when ``shared`` ids are too few for ``job``.

    ``data`` is this party's input (its id count goes into the message), ``shared`` the size of
    the intersection PSI found. ``dataset="test_data"`` checks the test intersection, which must
    not be empty.
    """
    import psi

    section = job.party(party)
    ids = len(
        psi.normalise_ids(
            data[section.id_column].tolist(),
            column=section.id_column,
            duplicates=job.psi.get("duplicates", "error"),
        )
    )
    what = "ids" if dataset == "data" else f"{dataset} ids"
    head = f"{shared:,} of {ids:,} {what} are shared with {_peer_list(peers)}"
    hint = "check that every party's id column holds the same ids, written alike"
    if shared == 0:
        raise OverlapTooSmall(
            f"{head}: nothing to {'align' if job.job.type == 'psi' else 'train on'} ({hint})",
            shared=shared, ids=ids, peers=tuple(sorted(peers)), minimum=1,
        )  # fmt: skip
    if dataset != "data" or job.job.type == "psi":
        return
    train = training_rows(job, shared)
    if train < MIN_TRAINING_ROWS:
        split = (
            f" after the {job.evaluation.test_fraction:.0%} test split" if train < shared else ""
        )
        raise OverlapTooSmall(
            f"only {head}: {train:,} training rows{split}, below the {MIN_TRAINING_ROWS} a "
            f"{job.job.type} job needs ({hint})",
            shared=shared, ids=ids, peers=tuple(sorted(peers)), minimum=MIN_TRAINING_ROWS,
        )  # fmt: skip
