"""The job seam below the learning packages: the parsed job and the job-kind protocol.

Learning packages (:mod:`vfl.hetero_lr`, :mod:`vfl.split_nn`, :mod:`vfl.horizontal`) implement
:class:`JobKind` against these types; the runner (:mod:`vfl.jobs`) drives them. Nothing here
does I/O.
"""

from vfl.core._kinds import JobKind, ModelPart, PartResult, PartyContext, RunTracker
from vfl.core._spec import (
    CryptoSection,
    EvaluationSection,
    Job,
    JobSection,
    MonitorSection,
    PartySection,
)

__all__ = [
    "CryptoSection",
    "EvaluationSection",
    "Job",
    "JobKind",
    "JobSection",
    "ModelPart",
    "MonitorSection",
    "PartResult",
    "PartySection",
    "PartyContext",
    "RunTracker",
]
