"""The tokens file on disk: what cannot be written is refused, what is written is whole, and a
broken file never locks every caller out of a running service."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.common.tokens import TokenBook, add_principal, load_principals
from tests.conftest import Tokens

TCR = str(Path(sys.executable).with_name("tcr"))


def _touch_later(path: Path) -> None:
    """A changed modification time, whatever the file system's clock granularity."""
    later = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))


@pytest.mark.parametrize(
    "name",
    [
        "bad\udcffname",  # what Python makes of the shell's $'bad\xffname'
        "bad\x00name",
        "bad\nname",
        "bad\tname",
        "bad\x7fname",
        "bad\x85name",
        "",
    ],
)
def test_a_name_toml_cannot_hold_is_refused_and_the_file_left_as_it_was(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / "tokens.toml"
    add_principal(path, "bureau", "bureau")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="name"):
        add_principal(path, name, "finance")
    assert path.read_bytes() == before
    assert [p.name for p in load_principals(path).values()] == ["bureau"]


def test_a_station_id_with_control_characters_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    with pytest.raises(ValueError, match="station id"):
        add_principal(path, "station-x", "station", "S\x1b1")
    assert not path.exists()


def test_tcr_tokens_add_refuses_a_name_that_is_not_utf8_with_a_clear_message(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.toml"
    add_principal(path, "bureau", "bureau")
    before = path.read_bytes()
    args = [TCR, "tokens", "add", "--name", b"bad\xffname", "--role", "finance", "--file", path]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    assert "not UTF-8" in done.stderr
    assert path.read_bytes() == before


def test_a_principal_is_added_by_replacing_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    add_principal(path, "bureau", "bureau")
    inode = path.stat().st_ino
    add_principal(path, "财务处", "finance")  # any real text is a fine name
    assert path.stat().st_ino != inode  # renamed over, never appended to in place
    assert sorted(p.name for p in load_principals(path).values()) == ["bureau", "财务处"]
    assert [f.name for f in tmp_path.iterdir()] == ["tokens.toml"]  # no temporary file left


def test_adding_to_a_broken_file_is_refused_rather_than_appending_to_it(tmp_path: Path) -> None:
    path = tmp_path / "tokens.toml"
    path.write_text("[[principals]\nname = 'half", encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid TOML"):
        add_principal(path, "bureau", "bureau")
    assert path.read_text(encoding="utf-8") == "[[principals]\nname = 'half"


@pytest.mark.parametrize(
    "broken",
    [
        b'[[principals]]\nname = "bad\\udcffname"\n',  # what the old `tokens add` wrote
        b"\xff\xfe not even UTF-8",
        b'[[principals]]\nname = "x"\nrole = "admin"\ntoken_sha256 = "00"\n',
        b'[[principals]]\nrole = "bureau"\n',
    ],
)
def test_a_tokens_file_swapped_for_a_broken_one_keeps_the_last_good_principals(
    tmp_path: Path, broken: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.toml"
    token = add_principal(path, "bureau", "bureau")
    book = TokenBook(path)
    path.write_bytes(broken)
    _touch_later(path)
    with caplog.at_level(logging.ERROR, logger="tcr.tokens"):
        assert book.holder(token) is not None
        assert book.holder(token) is not None  # logged once per change, not per request
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "keeping the 1 principals" in errors[0].getMessage()
    # Mended, the file is read again: a principal added since takes effect.
    path.unlink()
    add_principal(path, "bureau", "bureau")
    added = add_principal(path, "finance", "finance")
    assert book.holder(added) is not None
    assert book.holder(token) is None  # that token is no longer in the file


def test_a_running_registry_keeps_answering_when_its_tokens_file_breaks(
    client: TestClient, tokens: Tokens
) -> None:
    tokens.path.write_bytes(b'[[principals]]\nname = "bad\\udcffname"\n')
    _touch_later(tokens.path)
    response = client.get("/v1/checkpoints")
    assert response.status_code == 200, response.text
    refused = client.get("/v1/checkpoints", headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    assert refused.json()["field"] == "Authorization"
