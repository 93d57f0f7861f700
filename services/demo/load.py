"""Load a history file into the registry through ``POST /v1/batch``, resumably.

Each batch carries an Idempotency-Key made of the file's SHA-256, the batch size and the
batch's index, so running the load again replays the batches already stored (the registry
answers with their original positions) and stores only the rest. A batch the registry refuses
(a key it does not know whose commands clash with what it holds, e.g. from a different file or
batch size) stops the load with the registry's reason and the file line it concerns.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from tqdm import tqdm

from services.common.web.errors import MAX_BODY_BYTES

MAX_BATCH = 1000  # the registry's limit of commands per batch
FINANCE_OPS = frozenset({"record_payout"})  # posted with finance's token, in batches of their own
_BODY_ROOM = MAX_BODY_BYTES - 4096  # keep well inside the registry's body limit
RETRIES = 5
_RETRY_STATUSES = frozenset({502, 503, 504})


class LoadError(Exception):
    """The load stopped: the registry refused a batch, or could not be reached."""


@dataclass(frozen=True)
class Batch:
    """Consecutive lines of the file, posted as one request."""

    index: int
    numbers: list[int]  # the 1-based file line of each command
    lines: list[bytes]
    finance: bool = False  # payouts, which finance alone records: posted with its token

    def body(self) -> bytes:
        return b'{"commands":[' + b",".join(self.lines) + b"]}"


@dataclass(frozen=True)
class LoadSummary:
    """What a load did; positions are those of the file's commands in the registry's log."""

    commands: int
    batches: int
    stored_batches: int
    skipped_batches: int
    stored_commands: int
    skipped_commands: int
    first_position: int | None
    last_position: int | None
    head: int
    seconds: float

    def describe(self) -> str:
        positions = (
            f"at log positions {self.first_position:,}–{self.last_position:,}"
            if self.first_position is not None and self.last_position is not None
            else "(empty file)"
        )
        return (
            f"{self.commands:,} commands in {self.batches} batches {positions}: "
            f"stored {self.stored_commands:,} in {self.stored_batches} batches, "
            f"skipped {self.skipped_batches} batches ({self.skipped_commands:,} commands) "
            f"stored before; log head {self.head:,}; {self.seconds:.1f} s"
        )


def file_digest(path: Path) -> str:
    """SHA-256 hex of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_batches(path: Path, batch_size: int) -> Iterator[Batch]:
    """The file's commands in batches of at most ``batch_size`` that fit the body limit; a
    line that is not a command is refused with its number."""
    lines: list[bytes] = []
    numbers: list[int] = []
    size = 0
    index = 0
    finance = False
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            of_finance = _check_line(line, number, path) in FINANCE_OPS
            if lines and (
                len(lines) >= batch_size
                or size + len(line) + 1 > _BODY_ROOM
                or of_finance != finance
            ):
                yield Batch(index, numbers, lines, finance)
                index += 1
                lines, numbers, size = [], [], 0
            lines.append(line)
            numbers.append(number)
            size += len(line) + 1
            finance = of_finance
    if lines:
        yield Batch(index, numbers, lines, finance)


def _check_line(line: bytes, number: int, path: Path) -> str:
    """The line's op, once it is known to be a command that fits a request."""
    try:
        command = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LoadError(f"{path} line {number} is not JSON: {exc}") from None
    if not (
        isinstance(command, dict)
        and isinstance(command.get("op"), str)
        and isinstance(command.get("body"), dict)
    ):
        raise LoadError(f'{path} line {number} is not a command {{"op": …, "body": {{…}}}}')
    if len(line) > _BODY_ROOM:
        raise LoadError(f"{path} line {number} alone exceeds the registry's body limit")
    op: str = command["op"]
    return op


def count_commands(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for raw in f if raw.strip())


def load_history(
    path: Path,
    registry_url: str,
    token: str,
    batch_size: int = 500,
    progress: bool = True,
    finance_token: str | None = None,
    backlog: bool = True,
) -> LoadSummary:
    """Post the history in ``path`` to the registry; batches stored before are skipped.
    ``backlog``: the history is loaded after the fact, and its entries say so
    (``intake: "backlog"``), so the audit tells them from events recorded late.

    ``token`` must be the science bureau's: it registers under every station id and files
    brokers and provincial funding; ``finance_token`` records the payouts. Raises
    :class:`LoadError` when the registry refuses a batch or cannot be reached; what was stored
    before stays stored.
    """
    if not 1 <= batch_size <= MAX_BATCH:
        raise LoadError(f"batch size must be between 1 and {MAX_BATCH}")
    started = time.monotonic()
    digest = file_digest(path)
    total = count_commands(path)
    headers = {"Authorization": f"Bearer {token}"}
    stored_batches = skipped_batches = stored_commands = skipped_commands = 0
    first_position: int | None = None
    last_position: int | None = None
    batches = 0
    with (
        httpx.Client(
            base_url=registry_url.rstrip("/"),
            headers=headers,
            params={"intake": "backlog"} if backlog else None,  # /v1/batch's; others ignore it
            timeout=120.0,
        ) as client,
        tqdm(
            total=total,
            desc="load",
            unit=" commands",
            unit_scale=True,
            file=sys.stderr,
            disable=None if progress else True,
        ) as bar,
    ):
        head_before = _head(client, registry_url)
        for batch in read_batches(path, batch_size):
            batches += 1
            key = f"tcr-demo/{digest[:32]}/{batch_size}/{batch.index}"
            first, last = _post(client, batch, key, path, _finance(batch, finance_token, path))
            # A stored batch took positions after the head we saw; a replayed one, before.
            if first > head_before:
                stored_batches += 1
                stored_commands += len(batch.lines)
            else:
                skipped_batches += 1
                skipped_commands += len(batch.lines)
            first_position = first if first_position is None else first_position
            last_position = last
            bar.update(len(batch.lines))
            bar.set_postfix(skipped=skipped_batches, refresh=False)
        head = _head(client, registry_url)
    return LoadSummary(
        commands=total,
        batches=batches,
        stored_batches=stored_batches,
        skipped_batches=skipped_batches,
        stored_commands=stored_commands,
        skipped_commands=skipped_commands,
        first_position=first_position,
        last_position=last_position,
        head=head,
        seconds=time.monotonic() - started,
    )


def _head(client: httpx.Client, url: str) -> int:
    try:
        response = client.get("/v1/health")
    except httpx.TransportError as exc:
        raise LoadError(f"cannot reach the registry at {url}: {exc}") from None
    if response.status_code != 200:
        raise LoadError(f"the registry at {url} is not healthy: {response.status_code}")
    head: int = response.json()["head"]
    return head


def _finance(batch: Batch, token: str | None, path: Path) -> dict[str, str]:
    """The header that posts a batch of payouts as finance (none for the bureau's batches)."""
    if not batch.finance:
        return {}
    if not token:
        raise LoadError(
            f"{path} line {batch.numbers[0]} records a payout, which finance alone records: "
            "give finance's token too"
        )
    return {"Authorization": f"Bearer {token}"}


def _post(
    client: httpx.Client, batch: Batch, key: str, path: Path, headers: dict[str, str]
) -> tuple[int, int]:
    """Post one batch, retrying what the registry or the network could not do; its positions."""
    body = batch.body()
    for attempt in range(RETRIES + 1):
        try:
            response = client.post(
                "/v1/batch",
                content=body,
                headers={"Idempotency-Key": key, "Content-Type": "application/json", **headers},
            )
        except httpx.TransportError as exc:
            if attempt == RETRIES:
                raise LoadError(
                    f"batch {batch.index + 1}: the registry did not answer: {exc}"
                ) from None
        else:
            if response.status_code == 201:
                answer = response.json()
                return int(answer["positions"][0]), int(answer["positions"][1])
            if response.status_code not in _RETRY_STATUSES or attempt == RETRIES:
                raise LoadError(_refusal(response, batch, path))
        time.sleep(0.5 * 2**attempt)  # safe: the key makes a retry replay, never duplicate
    raise AssertionError("unreachable")


def _refusal(response: httpx.Response, batch: Batch, path: Path) -> str:
    """Why the registry refused a batch, with the file line it concerns."""
    where = f"batch {batch.index + 1} (lines {batch.numbers[0]}–{batch.numbers[-1]} of {path})"
    try:
        error: dict[str, Any] = response.json()
    except ValueError:
        return f"{where} was refused: {response.status_code} {response.text[:200]}"
    message = error.get("message", response.text[:200])
    field = f" ({error['field']})" if error.get("field") else ""
    index = error.get("index")
    line = ""
    if isinstance(index, int) and 0 <= index < len(batch.lines):
        command = orjson.loads(batch.lines[index])
        line = f" at line {batch.numbers[index]}, {command['op']}"
        number = command["body"].get("registration_no")
        line += f" {number}" if number else ""
    status = response.status_code
    text = f"{where} was refused ({status}){line}: {message}{field}. Nothing of it was stored."
    if status == 401:
        text += " The token was not accepted."
    elif status == 403:
        text += " Load with the science bureau's token: only it files brokers and funding."
    elif status == 409 and error.get("field") == "Idempotency-Key":
        text += " The file changed since an earlier load with the same key; load it anew."
    elif status == 409:
        text += (
            " The registry already holds some of these commands under other keys (an earlier "
            "load of a different file, batch size or token?); stopping."
        )
    return text
