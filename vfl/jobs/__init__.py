"""Job files (DESIGN.md "The job file"): parse and validate them, and run one party's side.

>>> # job = load_job("credit.toml"); result = run_job(job, party="bank", channel=ch, work_dir=".")

``run_job`` records the job in the work dir: ``audit.db`` (signed audit trail), ``registry.db``
(the trained model part, as a candidate version) and ``runs/JOB_ID/PARTY/{status.json,
events.jsonl, result.json}`` (docs/governance.md, "What a job writes").
"""

from vfl.jobs._kinds import JOB_TYPES, KINDS, kind_of
from vfl.jobs._metered import MeteredChannel, PeerTraffic
from vfl.jobs._provenance import PartyIdentity, code_version, identity_from_federation
from vfl.jobs._run import agreed_test_rows, run_job
from vfl.jobs._runfiles import RunFiles, jsonable
from vfl.jobs._spec import (
    CryptoSection,
    EvaluationSection,
    Job,
    JobSection,
    MonitorSection,
    PartySection,
    load_job,
    parse_job,
)
from vfl.jobs._tracker import JobTracker

__all__ = [
    "CryptoSection",
    "EvaluationSection",
    "Job",
    "JobSection",
    "JOB_TYPES",
    "KINDS",
    "MeteredChannel",
    "MonitorSection",
    "PartyIdentity",
    "PartySection",
    "PeerTraffic",
    "JobTracker",
    "RunFiles",
    "agreed_test_rows",
    "code_version",
    "identity_from_federation",
    "jsonable",
    "kind_of",
    "load_job",
    "parse_job",
    "run_job",
]
