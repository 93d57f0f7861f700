"""The finance page: server-rendered HTML over the finance application, for officers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.common.web.session import Sessions
from services.subsidy.web.routes import router

STATIC = Path(__file__).with_name("static")


def mount_page(app: FastAPI, registry_url: str, session_secret: str) -> None:
    """Serve the page at ``/`` and its own CSS and script at ``/static`` (nothing from any
    other origin), its sessions sealed with ``session_secret``."""
    app.state.sessions = Sessions(session_secret)
    app.state.registry_url = registry_url
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
