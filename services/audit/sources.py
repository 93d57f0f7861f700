"""Where the audit reads the history from: an exported bundle, or the live registry feed.

A bundle is a folder: ``events.jsonl`` (one envelope per line, in log order),
``checkpoints.json``, ``public-key.pem`` and ``manifest.json``. Both sources stream: memory
does not grow with the log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from services.common.envelope import canonical_bytes, format_instant

BUNDLE_FORMAT = "tcr-bundle/1"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints.json"
PUBLIC_KEY = "public-key.pem"
MANIFEST = "manifest.json"


class LogSource(Protocol):
    """A history to audit."""

    def envelopes(self) -> Iterator[dict[str, Any]]: ...

    def checkpoints(self) -> list[dict[str, Any]]: ...

    def public_key_pem(self) -> str: ...


class BundleSource:
    """An exported bundle on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        for name in (EVENTS, CHECKPOINTS, PUBLIC_KEY):
            if not (folder / name).exists():
                raise FileNotFoundError(f"{folder} is not a bundle: {name} is missing")

    def envelopes(self) -> Iterator[dict[str, Any]]:
        with (self.folder / EVENTS).open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{EVENTS} line {number} is not JSON: {exc}") from exc

    def checkpoints(self) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = json.loads((self.folder / CHECKPOINTS).read_text("utf-8"))
        return loaded

    def public_key_pem(self) -> str:
        return (self.folder / PUBLIC_KEY).read_text("utf-8")

    def manifest(self) -> dict[str, Any]:
        path = self.folder / MANIFEST
        loaded: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.exists() else {}
        return loaded


class RegistrySource:
    """The registry's live feed, paged."""

    def __init__(self, url: str, token: str, page_size: int = 5000) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
        self._page_size = page_size

    def close(self) -> None:
        self._client.close()

    def head(self) -> int:
        return int(self._get("/v1/health")["head"])

    def envelopes(self) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            page = self._get("/v1/events", after=after, limit=self._page_size)
            if not page["events"]:
                return
            yield from page["events"]
            after = page["next_after"]

    def checkpoints(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._get("/v1/checkpoints")
        return found

    def public_key_pem(self) -> str:
        return str(self._get("/v1/checkpoints/public-key")["public_key_pem"])

    def _get(self, path: str, **params: Any) -> Any:
        response = self._client.get(path, params=params)
        response.raise_for_status()
        return response.json()


def export_bundle(
    source: RegistrySource, folder: Path, progress: Callable[[int], None] = lambda n: None
) -> dict[str, Any]:
    """Write the registry's log, checkpoints and public key into ``folder``; returns the manifest.

    Checkpoints are read first, so every one of them lies within the exported log.
    """
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = source.checkpoints()
    public_key = source.public_key_pem()
    count, last = 0, 0
    with (folder / EVENTS).open("wb") as out:
        for envelope in source.envelopes():
            out.write(canonical_bytes(envelope) + b"\n")
            count += 1
            last = envelope["position"]
            if count % 5000 == 0:
                progress(5000)
    progress(count % 5000)
    (folder / CHECKPOINTS).write_text(json.dumps(checkpoints, indent=2) + "\n", "utf-8")
    (folder / PUBLIC_KEY).write_text(public_key, "utf-8")
    manifest = {
        "format": BUNDLE_FORMAT,
        "registry": source.url,
        "exported_at": format_instant(datetime.now(UTC)),
        "events": count,
        "last_position": last,
        "checkpoints": len(checkpoints),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return manifest
