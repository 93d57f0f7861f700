"""Finished workbooks kept on disk: the same key is read back, never written twice; a failed
write keeps nothing; the least recently used go first; an unwritable folder only means none
is kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import pytest

from services.subsidy.workbook_cache import WorkbookCache, digest


class Writer:
    """Writes ``bytes`` for a key and counts how often it was asked to."""

    def __init__(self, content: bytes = b"PK workbook") -> None:
        self.content = content
        self.calls = 0

    def __call__(self, out: IO[bytes]) -> None:
        self.calls += 1
        out.write(self.content)


def read(cache: WorkbookCache, key: dict[str, object], write: Writer) -> bytes:
    return b"".join(cache.chunks(key, write))


def test_the_same_key_is_read_back_and_written_once(tmp_path: Path) -> None:
    cache, write = WorkbookCache(tmp_path / "exports"), Writer()
    key = {"position": 7, "year": 2024}
    assert read(cache, key, write) == read(cache, dict(reversed(key.items())), write)
    assert write.calls == 1
    assert len(list((tmp_path / "exports").glob("*.xlsx"))) == 1


def test_another_key_is_written_anew(tmp_path: Path) -> None:
    cache = WorkbookCache(tmp_path)
    first, later = Writer(b"at 7"), Writer(b"at 8")
    assert read(cache, {"position": 7}, first) == b"at 7"
    assert read(cache, {"position": 8}, later) == b"at 8"
    assert read(cache, {"position": 7}, later) == b"at 7"
    assert (first.calls, later.calls) == (1, 1)


def test_a_write_that_fails_keeps_nothing_and_the_next_one_writes(tmp_path: Path) -> None:
    cache = WorkbookCache(tmp_path)

    def broken(out: IO[bytes]) -> None:
        out.write(b"half a zip")
        raise RuntimeError("the store went away")

    with pytest.raises(RuntimeError):
        read(cache, {"position": 7}, broken)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    write = Writer()
    assert read(cache, {"position": 7}, write) == b"PK workbook" and write.calls == 1


def test_the_least_recently_used_are_removed_beyond_the_number_kept(tmp_path: Path) -> None:
    cache = WorkbookCache(tmp_path, keep=2)
    for position in (1, 2):
        read(cache, {"position": position}, Writer())
    first, second = (tmp_path / (digest({"position": p}) + ".xlsx") for p in (1, 2))
    for age, path in enumerate((first, second)):  # times can tie within a tick: set apart
        os.utime(path, (1_000_000 + age, 1_000_000 + age))
    read(cache, {"position": 1}, Writer())  # used again: now the newest
    read(cache, {"position": 3}, Writer())
    again = Writer()
    read(cache, {"position": 1}, again)
    assert again.calls == 0
    read(cache, {"position": 2}, again)
    assert again.calls == 1  # 2 was the least recently used


def test_a_folder_that_cannot_be_written_still_gives_the_workbook(tmp_path: Path) -> None:
    blocked = tmp_path / "a file"
    blocked.write_bytes(b"")
    cache, write = WorkbookCache(blocked / "exports"), Writer()
    assert read(cache, {"position": 7}, write) == b"PK workbook"
    assert read(cache, {"position": 7}, write) == b"PK workbook"
    assert write.calls == 2
