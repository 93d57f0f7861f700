"""Who may read which contracts: a station its own, everyone else every station's.

One rule for every read route, the listing and the station page. A contract a principal may
not read is answered exactly as one that does not exist, so its existence does not leak.
"""

from __future__ import annotations

from services.common.tokens import Principal

# The roles that read every station's contracts, the log and the proofs.
READS_EVERYTHING = frozenset({"bureau", "finance", "auditor", "service"})


def station_scope(who: Principal) -> str | None:
    """The one station whose contracts ``who`` may read, or None when it reads every station."""
    if who.role in READS_EVERYTHING:
        return None
    # A station reads its own; any other role reads none ("" is no station's id).
    return (who.station_id or "") if who.role == "station" else ""


def may_read(who: Principal, station_id: str) -> bool:
    """Whether ``who`` may read a contract registered under ``station_id``."""
    scope = station_scope(who)
    return scope is None or scope == station_id


def reads_everything(who: Principal) -> bool:
    """Whether ``who`` may read the whole log and every entry's proof."""
    return station_scope(who) is None
