"""A history from ``tcr demo generate`` stored in a real registry (SQLite file, in-process) and
exported as a bundle by the same writer as ``tcr audit export``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from services.audit.sources import export_bundle
from services.demo.generate import write_history
from services.registry.api.batch import batch_args
from services.registry.application import Registry
from services.registry.commands import Command, Principal

BUREAU = Principal("bureau", "bureau")
FINANCE = Principal("finance", "finance")  # records the history's payouts
BATCH = 1000  # the registry's limit of commands per batch
CHECKPOINT_EVERY = 500


class InProcessRegistry:
    """The registry application read as ``export_bundle`` reads the HTTP feed."""

    url = "in-process registry"

    def __init__(self, app: Registry) -> None:
        self.app = app

    def envelopes(self) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            page = self.app.read_log(after, 1000)
            if not page["events"]:
                return
            yield from page["events"]
            after = page["next_after"]

    def checkpoints(self) -> list[dict[str, Any]]:
        return self.app.checkpoints.all()

    def public_key_pem(self) -> str:
        return self.app.checkpoints.public_key


def demo_bundle(folder: Path, years: range, per_year: int, seed: int = 1) -> Path:
    """Generate, store and export a demo history; returns the bundle folder."""
    folder.mkdir(parents=True, exist_ok=True)
    history = folder / "history.jsonl"
    write_history(history, years, per_year, seed)
    app = Registry(f"sqlite:///{folder / 'registry.db'}", checkpoint_every=CHECKPOINT_EVERY)
    try:
        app.start()
        for principal, commands in _batches(history):
            parsed = [Command(c["op"], batch_args(c["op"], c["body"])) for c in commands]
            app.submit(principal, parsed, batch=True).result(timeout=120)
        app.checkpoints.issue()  # signs every checkpoint due, and one of the whole log
        export_bundle(InProcessRegistry(app), folder / "bundle")  # type: ignore[arg-type]
    finally:
        app.close()
    return folder / "bundle"


def _batches(history: Path) -> Iterator[tuple[Principal, list[dict[str, Any]]]]:
    """The history's commands in order, in batches of one principal: finance's payouts apart."""
    batch: list[dict[str, Any]] = []
    principal = BUREAU
    for line in history.read_bytes().splitlines():
        command = orjson.loads(line)
        who = FINANCE if command["op"] == "record_payout" else BUREAU
        if batch and (who is not principal or len(batch) == BATCH):
            yield principal, batch
            batch = []
        principal = who
        batch.append(command)
    if batch:
        yield principal, batch
