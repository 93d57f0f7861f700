"""The station page's upload spool: a file waits for its owner's commit, for an hour only."""

from __future__ import annotations

import os
import time
from pathlib import Path

from services.registry.web.uploads import LIFETIME_SECONDS, UploadSpool


def test_an_upload_is_given_back_to_its_owner_only(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path / "spool")
    upload_id = spool.keep("station-s1", "登记表.xlsx", b"PK-bytes")

    kept = spool.take(upload_id, "station-s1")

    assert kept is not None and (kept.filename, kept.data) == ("登记表.xlsx", b"PK-bytes")
    assert spool.take(upload_id, "station-s2") is None
    assert spool.take("../../etc/passwd", "station-s1") is None
    spool.drop(upload_id)
    assert spool.take(upload_id, "station-s1") is None


def test_an_upload_older_than_an_hour_is_gone_and_pruned_by_the_next(tmp_path: Path) -> None:
    spool = UploadSpool(tmp_path)
    old = spool.keep("station-s1", "a.csv", b"a,b\n")
    past = time.time() - LIFETIME_SECONDS - 1
    for path in tmp_path.iterdir():
        os.utime(path, (past, past))

    assert spool.take(old, "station-s1") is None
    spool.keep("station-s1", "b.csv", b"c,d\n")
    assert not list(tmp_path.glob(f"{old}.*"))
