"""Where the audit reads the history from: an exported bundle, or the live registry feed.

A bundle is a folder: ``events.jsonl`` (one envelope per line, in log order),
``checkpoints.json``, ``public-key.pem``, ``policy/`` (the policy schedule the history is
computed under, one file per version) and ``manifest.json`` (which holds each policy file's
SHA-256, checked by ``verify`` like the rest). Both sources stream: memory does not grow with
the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from services.common.envelope import GENESIS_HASH, canonical_bytes, format_instant

BUNDLE_FORMAT = "tcr-bundle/1"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints.json"
PUBLIC_KEY = "public-key.pem"
MANIFEST = "manifest.json"
POLICY = "policy"  # the folder of policy files


class LogSource(Protocol):
    """A history to audit."""

    def envelopes(self) -> Iterator[dict[str, Any]]: ...

    def checkpoints(self) -> list[dict[str, Any]]: ...

    def public_key_pem(self) -> str: ...

    def manifest(self) -> dict[str, Any] | None: ...

    def policy_files(self) -> dict[str, str] | None:
        """The policy files the history carries, by name (None: it carries none)."""
        ...


def policy_digests(files: Mapping[str, str]) -> dict[str, str]:
    """Each policy file's SHA-256 (hex) of its UTF-8 bytes, by name: what a manifest records."""
    return {
        name: hashlib.sha256(text.encode("utf-8")).hexdigest()
        for name, text in sorted(files.items())
    }


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

    def manifest(self) -> dict[str, Any] | None:
        """What the export said it wrote (None for a bundle without a manifest)."""
        path = self.folder / MANIFEST
        if not path.exists():
            return None
        loaded = json.loads(path.read_text("utf-8"))
        return loaded if isinstance(loaded, dict) else {"events": None}

    def policy_files(self) -> dict[str, str] | None:
        """The bundle's ``policy/*.toml`` (None for a bundle exported before schedules)."""
        folder = self.folder / POLICY
        if not folder.is_dir():
            return None
        return {p.name: p.read_text("utf-8") for p in sorted(folder.glob("*.toml"))}


class RegistrySource:
    """The registry's live feed, paged."""

    def __init__(self, url: str, token: str, page_size: int = 5000) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
        self._page_size = page_size
        self._until: int | None = None

    def close(self) -> None:
        self._client.close()

    def head(self) -> int:
        return int(self._get("/v1/health")["head"])

    def envelopes(self) -> Iterator[dict[str, Any]]:
        """The log in order; after :meth:`checkpoints`, only up to the head as it was then."""
        after, until = 0, self._until
        while True:
            page = self._get("/v1/events", after=after, limit=self._page_size)
            if not page["events"]:
                return
            for envelope in page["events"]:
                if until is not None and envelope["position"] > until:
                    return
                yield envelope
            after = page["next_after"]

    def checkpoints(self) -> list[dict[str, Any]]:
        """The signed checkpoints, and the head noted at once for :meth:`envelopes`."""
        found: list[dict[str, Any]] = self._get("/v1/checkpoints")
        # Entries appended while a long read runs are covered by no checkpoint read before it:
        # reading the log as it was when its checkpoints were read keeps an honest tail short.
        self._until = self.head()
        return found

    def manifest(self) -> dict[str, Any] | None:
        return None  # a live log: nothing claims a length for it

    def policy_files(self) -> dict[str, str] | None:
        return None  # a live log: computed under the auditor's own schedule

    def public_key_pem(self) -> str:
        return str(self._get("/v1/checkpoints/public-key")["public_key_pem"])

    def _get(self, path: str, **params: Any) -> Any:
        response = self._client.get(path, params=params)
        response.raise_for_status()
        return response.json()


def export_bundle(
    source: RegistrySource,
    folder: Path,
    progress: Callable[[int], None] = lambda n: None,
    policy_files: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write the registry's log, checkpoints, public key and the policy files (by name) into
    ``folder``; returns the manifest.

    The log is exported up to the head as it was when the checkpoints were read, so each of them
    should lie within it (one that does not says the log lost entries). Checkpoints signed
    during the export over entries it holds are added. The manifest records the count, the last
    position, the head hash and each policy file's SHA-256, which ``verify`` checks against
    what the bundle holds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = source.checkpoints()
    public_key = source.public_key_pem()
    count, last, head_hash = 0, 0, GENESIS_HASH
    with (folder / EVENTS).open("wb") as out:
        for envelope in source.envelopes():
            out.write(canonical_bytes(envelope) + b"\n")
            count += 1
            last, head_hash = envelope["position"], envelope.get("hash", head_hash)
            if count % 5000 == 0:
                progress(5000)
    progress(count % 5000)
    sizes = {c.get("tree_size") for c in checkpoints}
    checkpoints += [
        c
        for c in source.checkpoints()
        if c.get("tree_size") not in sizes and int(c["tree_size"]) <= count
    ]
    checkpoints.sort(key=lambda c: int(c["tree_size"]))
    (folder / CHECKPOINTS).write_text(json.dumps(checkpoints, indent=2) + "\n", "utf-8")
    (folder / PUBLIC_KEY).write_text(public_key, "utf-8")
    if policy_files:
        (folder / POLICY).mkdir(exist_ok=True)
        for name, text in policy_files.items():
            (folder / POLICY / name).write_text(text, "utf-8")
    manifest = {
        "format": BUNDLE_FORMAT,
        "registry": source.url,
        "exported_at": format_instant(datetime.now(UTC)),
        "events": count,
        "last_position": last,
        "head_hash": head_hash,
        "checkpoints": len(checkpoints),
        "policy": policy_digests(policy_files or {}),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return manifest
