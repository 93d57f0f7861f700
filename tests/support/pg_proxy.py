"""A TCP proxy between a service and PostgreSQL that can lose a COMMIT's answer or the server.

It listens on a free loopback port and forwards to a loopback PostgreSQL, reading the client's
side of the wire protocol just enough to see each message. Told to, it forwards the next COMMIT
of a transaction that ran a given statement, lets the server commit it, swallows the answer and
drops the connection: the client cannot tell whether its transaction was committed. Closed, it
drops every connection and refuses new ones, as an unreachable database does; reopened, it
listens on the same port again.

Bounded: at most ``max_connections`` at once (more are closed at once), messages up to 256 MiB;
everything runs on one asyncio loop in a daemon thread, stopped by :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import struct
import threading
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import make_url

from tests.support.broker import free_port

_SSL_REQUEST = 80877103
_GSS_REQUEST = 80877104
_MAX_MESSAGE = 256 * 1024 * 1024


class _Link:
    """One client connection and its server connection."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.marked = False  # the open transaction ran the statement a drop waits for
        self.swallowing = False

    def close(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class PostgresProxy:
    """A loopback proxy to PostgreSQL; see the module docstring."""

    def __init__(
        self, target_host: str = "127.0.0.1", target_port: int = 5432, max_connections: int = 64
    ) -> None:
        if not ipaddress.ip_address(target_host).is_loopback:
            raise ValueError("the proxy forwards to a loopback address only")
        self.target = (target_host, target_port)
        self.port = free_port()
        self.max_connections = max_connections
        self.dropped_commits = 0
        self._marker: bytes | None = None
        self._then_close = False
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="pg-proxy")

    # -- control, from any thread ----------------------------------------------------------

    def start(self) -> PostgresProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def url(self, database_url: str) -> str:
        """``database_url`` (a loopback PostgreSQL URL) pointed at this proxy instead."""
        return (
            make_url(database_url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    def drop_next_commit_answer(
        self, after: bytes = b'INSERT INTO "registry_chain"', *, then_close: bool = False
    ) -> None:
        """Swallow the answer to the next COMMIT of a transaction that sent ``after``, and drop
        that connection; with ``then_close``, then also :meth:`close` (nobody can ask)."""
        self._call(self._arm(after, then_close))

    def close(self) -> None:
        """Drop every connection and refuse new ones: the database is unreachable."""
        self._call(self._close())

    def reopen(self) -> None:
        """Listen again on the same port."""
        self._call(self._listen())

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> PostgresProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # -- on the loop -------------------------------------------------------------------------

    async def _arm(self, marker: bytes, then_close: bool) -> None:
        self._marker, self._then_close = marker, then_close

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for link in list(self._links):
            link.close()
        self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._links) >= self.max_connections:
            writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, server_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._client_to_server(reader, link),
                self._server_to_client(server_reader, link),
                return_exceptions=True,  # either side ending ends the link
            )
        finally:
            link.close()
            self._links.discard(link)

    async def _client_to_server(self, reader: asyncio.StreamReader, link: _Link) -> None:
        # Start-up: untyped messages. Encryption requests are declined here (answered "N"), so
        # that everything after them is plain protocol the proxy can read.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            rest = await reader.readexactly(_bounded(length) - 8)
            if code in (_SSL_REQUEST, _GSS_REQUEST):
                link.client.write(b"N")
                await link.client.drain()
                continue
            link.server.write(head + rest)
            await link.server.drain()
            break
        while True:
            head = await reader.readexactly(5)
            kind = head[:1]
            body = await reader.readexactly(_bounded(struct.unpack("!i", head[1:])[0]) - 4)
            if self._marker is not None and self._marker in body:
                link.marked = True
            if kind == b"Q":
                statement = body.rstrip(b"\0").strip().upper()
                if statement == b"COMMIT" and link.marked and self._marker is not None:
                    self._marker = None
                    link.swallowing = True
                if statement in (b"COMMIT", b"ROLLBACK"):
                    link.marked = False
            link.server.write(head + body)
            await link.server.drain()

    async def _server_to_client(self, reader: asyncio.StreamReader, link: _Link) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            if link.swallowing:
                # The server answered, so it has committed; the client never hears of it.
                self.dropped_commits += 1
                link.close()
                if self._then_close:
                    self._then_close = False
                    await self._close()
                return
            link.client.write(data)
            await link.client.drain()


def _bounded(length: int) -> int:
    if not 4 <= length <= _MAX_MESSAGE:
        raise ValueError(f"not a PostgreSQL message length: {length}")
    return length
