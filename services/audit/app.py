"""The audit service's composition root: the live registry feed, the subsidy service and the
policy wired under the audit API."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.audit.api_routes import router
from services.audit.application import Audit
from services.audit.live import LiveAudit
from services.audit.settings import AuditSettings
from services.audit.sources import RegistrySource
from services.audit.verify import Trust
from services.common.web.api import build_api


def create_app(
    settings: AuditSettings, *, subsidy_transport: httpx.BaseTransport | None = None
) -> FastAPI:
    """Wire the audit API over the live registry feed and the subsidy service."""
    registry_token = settings.registry_token.get_secret_value()
    subsidy_token = settings.subsidy_token.get_secret_value() or registry_token

    def open_subsidy() -> httpx.Client:
        return httpx.Client(
            base_url=settings.subsidy_url.rstrip("/"),
            headers={"Authorization": f"Bearer {subsidy_token}"},
            timeout=60.0,
            transport=subsidy_transport,
        )

    schedule = settings.schedule()
    app = build_api(
        title="Technology contract audit",
        description=(
            "Third-party evaluation over the registry's live log: verify the hash chain and "
            "signed checkpoints, recompute every entitlement, compare with what the subsidy "
            "service serves, and compute the plan's evaluation figures and findings. Every "
            "answer reads the whole history afresh; a history that does not verify is refused "
            "(422, field `verdict`), except by /v1/verify, which says why. Auditor tokens only."
        ),
        router=router,
        tokens_file=settings.tokens_file,
        # An evaluation year before the policy's first has nothing to evaluate (a 422).
        parameters={"year": {"minimum": schedule.first_year, "examples": [schedule.last_year]}},
    )
    app.state.audit = LiveAudit(
        Audit(schedule, Trust(checkpoint_every=settings.checkpoint_every)),
        lambda: RegistrySource(settings.registry_url, registry_token),
        open_subsidy,
        settings.registry_url,
    )
    return app
