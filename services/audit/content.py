"""What an evaluation report holds, as the report computes it and its page and files show it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.audit.figures import Figures
from services.audit.findings import FindingsLog
from services.audit.verify import Verdict


@dataclass(frozen=True)
class AuditReport:
    """The report's content: verdict, figures and findings, and what they were computed from."""

    year: int
    verdict: Verdict
    figures: Figures
    findings: FindingsLog
    position: int
    policy_version: str
    generated_at: datetime
    source: str
