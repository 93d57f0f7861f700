"""A loopback TCP proxy that a test can take down and bring back, to stage a database outage.

A service pointed at the proxy instead of its server sees the server go away when the test
closes the listener (new connections refused) and drops the live connections (each end gets a
reset), and sees it come back when the test reopens the listener on the same port. Nothing is
inspected or altered on the way: it stands for any TCP server.

Bounded: it listens on 127.0.0.1 only, forwards only to a loopback target, and holds at most
``max_connections`` at once (more are refused).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
from types import TracebackType

from tests.support.broker import free_port


class DbProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``down()`` and ``up()`` stage an outage."""

    def __init__(self, target: tuple[str, int], *, max_connections: int = 64) -> None:
        host = socket.gethostbyname(target[0])
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the proxy forwards to loopback addresses only, not {target[0]}")
        self.target = (host, target[1])
        self.port = free_port()
        self.max_connections = max_connections
        self.accepted = 0
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    @classmethod
    def start(cls, target: tuple[str, int], **options: int) -> DbProxy:
        """A proxy to ``target``, listening."""
        return cls(target, **options).reopen()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    # -- an outage -------------------------------------------------------------------------

    def down(self) -> None:
        """The server goes away: nothing new gets in, and every live connection is reset."""
        self.close_listener()
        self.drop_connections()

    def up(self) -> None:
        """The server is back on the same port."""
        self.reopen()

    def close_listener(self) -> None:
        """Refuse new connections (the port is closed); live ones go on."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None

    def drop_connections(self) -> None:
        """Reset every live connection, both ends, as a server that died would."""
        with self._lock:
            pairs, self._pairs = set(self._pairs), set()
        for pair in pairs:
            for sock in pair:
                _reset(sock)

    def reopen(self) -> DbProxy:
        """Listen again on the same port."""
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener,), name=f"db-proxy-{self.port}", daemon=True
        )
        self._acceptor.start()
        return self

    def close(self) -> None:
        self.down()

    def url_for(self, url: str) -> str:
        """A database URL like ``url`` with its host and port replaced by the proxy's."""
        from sqlalchemy import make_url

        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(False)

    def __enter__(self) -> DbProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- forwarding ------------------------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            with self._lock:
                full = len(self._pairs) >= self.max_connections
            if full:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            pair = (client, server)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            for source, sink in (pair, pair[::-1]):
                threading.Thread(target=self._pump, args=(source, sink, pair), daemon=True).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        for sock in pair:
            _close(sock)


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN. Shutting the reading side
    first wakes the pump blocked in ``recv`` on it (a bare close does not, on Linux)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
