"""Job files (DESIGN.md "The job file"): parse and validate them, and run one party's side.

>>> # job = load_job("credit.toml"); result = run_job(job, party="bank", channel=ch, work_dir=".")
"""

from vfl.jobs._metered import MeteredChannel
from vfl.jobs._run import agreed_test_rows, run_job
from vfl.jobs._spec import (
    MODEL_PARSERS,
    CryptoSection,
    EvaluationSection,
    Job,
    JobSection,
    PartySection,
    load_job,
    parse_job,
)

__all__ = [
    "CryptoSection",
    "EvaluationSection",
    "Job",
    "JobSection",
    "MODEL_PARSERS",
    "MeteredChannel",
    "PartySection",
    "agreed_test_rows",
    "load_job",
    "parse_job",
    "run_job",
]
