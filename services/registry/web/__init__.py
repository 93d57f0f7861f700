"""The station page: server-rendered HTML over the registry, for registration stations' clerks
(and the bureau): their contracts, one contract, and spreadsheet uploads."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.common.web.session import Sessions
from services.registry.web.routes import router
from services.registry.web.uploads import UploadSpool

STATIC = Path(__file__).with_name("static")


def mount_page(app: FastAPI, session_secret: str, spool: Path | None = None) -> None:
    """Serve the page at ``/`` and its own CSS at ``/static`` (nothing from any other origin),
    its sessions sealed with ``session_secret``; uploads wait for their commit in ``spool``."""
    app.state.sessions = Sessions(session_secret)
    app.state.uploads = UploadSpool(spool or Path(tempfile.gettempdir()) / "tcr-station-uploads")
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
