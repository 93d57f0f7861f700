"""Bearer tokens: principals in a TOML file, each token kept only as its SHA-256."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROLES = ("station", "bureau", "finance", "auditor")


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
    """Principals by token hash; a missing file holds none."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    holders: dict[str, Principal] = {}
    for i, entry in enumerate(data.get("principals", [])):
        role = entry.get("role")
        if role not in ROLES:
            raise ValueError(f"{path}: principals[{i}].role must be one of {', '.join(ROLES)}")
        if role == "station" and not entry.get("station_id"):
            raise ValueError(f"{path}: principals[{i}] is a station without station_id")
        holders[entry["token_sha256"]] = Principal(entry["name"], role, entry.get("station_id"))
    return holders


def add_principal(path: Path, name: str, role: str, station_id: str | None = None) -> str:
    """Append a principal to the tokens file and return its new token (shown once, never kept)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if (role == "station") != (station_id is not None):
        raise ValueError("a station needs --station-id, and only a station has one")
    if any(h.name == name for h in load_principals(path).values()):
        raise ValueError(f"a principal named {name!r} already exists in {path}")
    token = secrets.token_urlsafe(32)
    lines = ["", "[[principals]]", f"name = {json.dumps(name)}", f"role = {json.dumps(role)}"]
    if station_id is not None:
        lines.append(f"station_id = {json.dumps(station_id)}")
    lines.append(f"token_sha256 = {json.dumps(token_sha256(token))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return token


class TokenBook:
    """Looks tokens up, re-reading the file when it has changed since the last read."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None
        self._holders: dict[str, Principal] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            st = self._path.stat()
            seen: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._holders = load_principals(self._path)
            self._seen = seen

    def holder(self, token: str) -> Principal | None:
        """The principal holding this token, or None; a changed file is re-read first, so added
        and removed principals take effect at once."""
        with self._lock:
            self._reload()
            return self._holders.get(token_sha256(token))


DEMO_PRINCIPALS = (
    ("station-demo", "station", "S0001"),
    ("bureau", "bureau", None),
    ("finance", "finance", None),
    ("auditor", "auditor", None),
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
