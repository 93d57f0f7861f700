"""Bearer tokens: principals in a TOML file, each token kept only as its SHA-256."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

from services.common.text import text_problem

# station: registers and reads its own contracts; bureau: the science bureau; finance;
# auditor; service: the services' own reader of the registry (the relay, the subsidy feed).
ROLES = ("station", "bureau", "finance", "auditor", "service")
_SHA256 = re.compile(r"[0-9a-f]{64}")

log = logging.getLogger("tcr.tokens")


@dataclass(frozen=True)
class Principal:
    """A principal named in the tokens file."""

    name: str
    role: str
    station_id: str | None = None


def token_sha256(token: str) -> str:
    """The hex SHA-256 under which a token is kept."""
    return hashlib.sha256(token.encode()).hexdigest()


def load_principals(path: Path) -> dict[str, Principal]:
    """Principals by token hash; a missing file holds none. ``ValueError`` names what is wrong
    with a file that does not parse or breaks a rule."""
    if not path.exists():
        return {}
    return parse_principals(path.read_bytes(), path)


def parse_principals(content: bytes, path: Path) -> dict[str, Principal]:
    """The principals a tokens file's bytes hold (``path`` only names it in errors)."""
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path} is not a valid TOML tokens file: {exc}") from None
    holders: dict[str, Principal] = {}
    entries = data.get("principals", [])
    if not isinstance(entries, list):
        raise ValueError(f"{path}: principals must be an array of tables")
    for i, entry in enumerate(entries):
        where = f"{path}: principals[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table")
        name, role, station_id = entry.get("name"), entry.get("role"), entry.get("station_id")
        digest = entry.get("token_sha256")
        if not isinstance(name, str) or label_problem(name):
            raise ValueError(f"{where}.name {label_problem(name) or 'is missing'}")
        if role not in ROLES:
            raise ValueError(f"{where}.role must be one of {', '.join(ROLES)}")
        if role == "station" and not station_id:
            raise ValueError(f"{where} is a station without station_id")
        if station_id is not None and (
            not isinstance(station_id, str) or label_problem(station_id)
        ):
            raise ValueError(f"{where}.station_id {label_problem(station_id) or 'must be text'}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError(f"{where}.token_sha256 must be 64 lowercase hex digits")
        holders[digest] = Principal(name, role, station_id)
    return holders


def label_problem(value: object) -> str | None:
    """Why ``value`` cannot name a principal or station, or None: it must be non-empty one-line
    text by the rule of every text field (no control characters, no lone surrogates: what a
    shell passes for bytes that are not UTF-8, e.g. ``$'bad\\xffname'``, and TOML cannot hold)."""
    if not isinstance(value, str) or not value.strip():
        return "must be non-empty text"
    if any("\ud800" <= char <= "\udfff" for char in value):
        return "must be valid UTF-8 text (it holds bytes that are not UTF-8)"
    return text_problem(value)


def add_principal(path: Path, name: str, role: str, station_id: str | None = None) -> str:
    """Add a principal to the tokens file and return its new token (shown once, never kept).

    The file is replaced whole and atomically (a temporary file renamed over it), and only
    after the new content has parsed: a service re-reading it never sees half a file, and a
    name TOML cannot hold never reaches it."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "station") != (station_id is not None):
        raise ValueError("a station needs --station-id, and only a station has one")
    for what, value in (("name", name), ("station id", station_id)):
        problem = label_problem(value) if value is not None else None
        if problem:
            raise ValueError(f"the {what} {value!a} {problem}")
    existing = path.read_bytes() if path.exists() else b""
    if any(h.name == name for h in parse_principals(existing, path).values()):
        raise ValueError(f"a principal named {name!r} already exists in {path}")
    token = secrets.token_urlsafe(32)
    lines = ["", "[[principals]]", f"name = {_toml_string(name)}", f"role = {_toml_string(role)}"]
    if station_id is not None:
        lines.append(f"station_id = {_toml_string(station_id)}")
    lines.append(f"token_sha256 = {_toml_string(token_sha256(token))}")
    if existing and not existing.endswith(b"\n"):
        existing += b"\n"
    content = existing + ("\n".join(lines) + "\n").encode("utf-8")
    parse_principals(content, path)  # what is written must read back
    _replace_atomically(path, content)
    return token


def _toml_string(text: str) -> str:
    # A JSON string of text without surrogates or control characters is a TOML basic string.
    return json.dumps(text, ensure_ascii=False)


def _replace_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class TokenBook:
    """Looks tokens up, re-reading the file when it has changed since the last read.

    A changed file that does not parse is not used: the principals last read stay in force,
    and the error is logged once per change, so a broken edit never locks every caller out."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._holders: dict[str, Principal] = {}
        self._holders = load_principals(path)  # at start-up a broken file stops the service
        self._seen = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reload(self) -> None:
        seen = self._stat()
        if seen == self._seen:
            return
        self._seen = seen
        try:
            self._holders = load_principals(self._path)
        except (OSError, ValueError) as exc:
            log.error(
                "tokens file %s not reloaded, keeping the %d principals last read: %s",
                self._path,
                len(self._holders),
                exc,
            )

    def holder(self, token: str) -> Principal | None:
        """The principal holding this token, or None; a changed file is re-read first, so added
        and removed principals take effect at once."""
        with self._lock:
            self._reload()
            return self._holders.get(token_sha256(token))

    def station_ids(self) -> frozenset[str]:
        """The ids of the stations that hold a token now (a changed file is re-read first)."""
        with self._lock:
            self._reload()
            return frozenset(
                h.station_id for h in self._holders.values() if h.station_id is not None
            )


DEMO_PRINCIPALS = (
    ("station-demo", "station", "S0001"),
    # The demo history's stations (services.demo.population.STATIONS): the bureau registers
    # only under station ids that hold a token.
    ("station-pds-kjj", "station", "PDS-KJJ"),
    ("station-pds-gxq", "station", "PDS-GXQ"),
    ("station-rz-kjj", "station", "RZ-KJJ"),
    ("station-wg-kjj", "station", "WG-KJJ"),
    ("bureau", "bureau", None),
    ("finance", "finance", None),
    ("auditor", "auditor", None),
    ("service", "service", None),  # the subsidy feed's reader of the registry
)


def init_demo_tokens(path: Path, saved: Path) -> dict[str, str] | None:
    """On first start, one principal per role; their tokens are saved to ``saved`` (mode 600)
    for local use and returned. Returns None when the tokens file already exists."""
    if path.exists():
        return None
    tokens = {
        name: add_principal(path, name, role, station) for name, role, station in DEMO_PRINCIPALS
    }
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(
        "".join(f"{name}={token}\n" for name, token in tokens.items()), encoding="utf-8"
    )
    saved.chmod(0o600)
    return tokens


def complete_demo_tokens(path: Path, saved: Path) -> dict[str, str]:
    """Add the demo principals a tokens file made by an older :func:`init_demo_tokens` lacks
    (the service reader, the demo history's stations), saving their tokens beside the others;
    only for a file made for local use (``saved`` exists). Returns the tokens added."""
    if not (path.exists() and saved.exists()):
        return {}
    held = {h.name for h in load_principals(path).values()}
    added = {
        name: add_principal(path, name, role, station)
        for name, role, station in DEMO_PRINCIPALS
        if name not in held
    }
    if added:
        with saved.open("a", encoding="utf-8") as f:
            f.write("".join(f"{name}={token}\n" for name, token in added.items()))
    return added
