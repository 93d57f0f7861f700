"""Finished workbooks kept on disk, each under a digest of everything its bytes depend on.

Writing a year's workbook is the cost of an export (70,000 cells at 100,000 events, ten times
that at a million); reading one back is a copy. So the same answer asked again (the year now,
while no entry changed that year, or at a past ``as_of`` after which it did not change) is
served from here. What the bytes depend on (the year's last change and the log entry there, the
policy, the code that lays the sheets out) is the caller's key; the ``keep`` most recently used
files stay.

A folder that cannot be written is no error: the workbook is then written for the request only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger("tcr.subsidy")

_CHUNK_BYTES = 256 * 1024
SUFFIX = ".xlsx"
_PART_HOURS = 1  # a workbook still being written after this long was abandoned


def digest(key: Mapping[str, Any]) -> str:
    """A file name for a key: the SHA-256 of its canonical JSON."""
    return hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()


class WorkbookCache:
    """Workbooks in ``folder`` by key, the ``keep`` most recently used."""

    def __init__(self, folder: Path, keep: int = 32) -> None:
        self._folder = folder
        self._keep = keep

    def chunks(self, key: Mapping[str, Any], write: Callable[[IO[bytes]], None]) -> Iterator[bytes]:
        """The bytes of the workbook under ``key``, a chunk at a time: the kept file, or
        ``write`` into a new one, kept once whole (never a half-written one under the key)."""
        path = self._folder / (digest(key) + SUFFIX)
        kept: IO[bytes]
        try:
            kept = path.open("rb")
        except OSError:  # none kept (or no folder to keep it in)
            kept = self._written(path, write)
        else:
            with contextlib.suppress(OSError):
                os.utime(path)  # used now: the last to be evicted
        with kept:
            while chunk := kept.read(_CHUNK_BYTES):
                yield chunk

    def _written(self, path: Path, write: Callable[[IO[bytes]], None]) -> IO[bytes]:
        """A new workbook, open and rewound, kept under ``path`` once whole."""
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            fd, part = tempfile.mkstemp(dir=self._folder, suffix=".part")
        except OSError as error:
            log.warning("workbooks are not kept: %s cannot be written (%s)", self._folder, error)
            fd, part = -1, ""
        # The caller reads it and closes it; so does a failure here.
        out = os.fdopen(fd, "w+b") if part else tempfile.TemporaryFile()  # noqa: SIM115
        try:
            write(out)
            out.flush()
            out.seek(0)
            if part:
                os.replace(part, path)  # whole, under its name in one step; the file stays open
        except BaseException:
            out.close()
            if part:
                with contextlib.suppress(OSError):
                    os.unlink(part)
            raise
        if part:
            self._evict()
        return out

    def _evict(self) -> None:
        """All but the ``keep`` most recently used workbooks removed (one being read stays
        readable through its open file), and parts a stopped process left behind."""
        with contextlib.suppress(OSError):
            kept = sorted(
                self._folder.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True
            )
            stale = time.time() - _PART_HOURS * 3600
            parts = [p for p in self._folder.glob("*.part") if p.stat().st_mtime < stale]
            for old in [*kept[self._keep :], *parts]:
                with contextlib.suppress(OSError):
                    old.unlink()
