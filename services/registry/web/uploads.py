"""Uploaded spreadsheets waiting for their commit: the dry run's report is shown first, and the
clerk commits (or downloads the marked workbook) in a later request without uploading again.

Each file lives in one folder on the registry's host, under a random id, for its owner alone
and for an hour. Replicas behind one address each keep their own: a commit that reaches another
replica finds nothing, and asks the clerk to upload again (nothing is stored by halves).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

LIFETIME_SECONDS = 3600
_ID = re.compile(r"[A-Za-z0-9_-]{24}")


@dataclass(frozen=True)
class Upload:
    """One uploaded file, as its owner sent it."""

    id: str
    owner: str  # the principal's name
    filename: str
    data: bytes


class UploadSpool:
    """Keeps uploads under random ids in ``folder`` (made private to this user)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def keep(self, owner: str, filename: str, data: bytes) -> str:
        """Keep a file for ``owner``; its id. Uploads older than the lifetime go first."""
        self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._prune()
        upload_id = secrets.token_urlsafe(18)
        meta = orjson.dumps({"owner": owner, "filename": filename})
        (self._folder / f"{upload_id}.bin").write_bytes(data)
        (self._folder / f"{upload_id}.json").write_bytes(meta)
        return upload_id

    def take(self, upload_id: str, owner: str) -> Upload | None:
        """The upload ``upload_id`` if ``owner`` sent it less than an hour ago, else None."""
        if not _ID.fullmatch(upload_id):
            return None
        meta_path = self._folder / f"{upload_id}.json"
        try:
            if time.time() - meta_path.stat().st_mtime > LIFETIME_SECONDS:
                return None
            meta = orjson.loads(meta_path.read_bytes())
            data = (self._folder / f"{upload_id}.bin").read_bytes()
        except (OSError, orjson.JSONDecodeError):
            return None
        if meta.get("owner") != owner:
            return None
        return Upload(upload_id, owner, str(meta.get("filename", "")), data)

    def drop(self, upload_id: str) -> None:
        """Forget an upload (once it is stored)."""
        if _ID.fullmatch(upload_id):
            for suffix in (".json", ".bin"):
                (self._folder / f"{upload_id}{suffix}").unlink(missing_ok=True)

    def _prune(self) -> None:
        cutoff = time.time() - LIFETIME_SECONDS
        for path in self._folder.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    os.unlink(path)
            except OSError:
                pass  # another worker pruned it first
