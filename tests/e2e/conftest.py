"""The whole system as ``tcr stack`` runs it: broker, registry, relay, subsidy, finance, audit.

The stack is one supervising process started exactly as an operator would, with its output in
a log file under the test's ``tmp_path``; it is stopped with SIGTERM, and whatever it started is
killed if it does not stop in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.support.broker import free_port
from tests.support.databases import fresh_postgres_database

TCR = str(Path(sys.executable).with_name("tcr"))
READY = "stack    | ready:"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: the whole system as real processes (tcr stack), over HTTP and the CLI"
    )


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _descendants(pid: int) -> dict[int, str]:
    """Every live descendant of ``pid`` with its start time (to kill only those, later)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            started = _start_time(child)
            if started is not None:
                found[child] = started
                todo.append(child)
    return found


@dataclass
class RunningStack:
    """A ``tcr stack`` process, its URLs, and the tokens it wrote on first start."""

    process: subprocess.Popen[bytes]
    log_path: Path
    var: Path
    workdir: Path
    registry: str
    finance: str
    audit: str
    tokens: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    survivors: list[int] = field(default_factory=list)
    _log: IO[bytes] | None = None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if READY in self.log_path.read_text(encoding="utf-8", errors="replace"):
                return
            if self.process.poll() is not None:
                pytest.fail(f"tcr stack exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.2)
        pytest.fail(f"tcr stack not ready after {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM and wait; on a hang, SIGKILL it and everything it started. Idempotent.

        Returns the stack's exit code (None when it had to be killed); ``survivors`` lists the
        children still alive after the stack itself exited.
        """
        if self.process.returncode is None:
            children = _descendants(self.process.pid)
            self.process.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.exit_code = None
                self.process.kill()
                self.process.wait()
            for pid, started in children.items():
                if _start_time(pid) == started:  # the same process, still there
                    self.survivors.append(pid)
                    os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.exit_code


def _read_tokens(path: Path) -> dict[str, str]:
    tokens = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, token = line.partition("=")
        if token:
            tokens[name] = token
    return tokens


@contextmanager
def running_stack(tmp_path: Path, database: str) -> Iterator[RunningStack]:
    """``tcr stack`` on fresh PostgreSQL databases, or on its SQLite defaults under --var; run
    from an empty working directory ``tmp_path/cwd``, so that stray files show there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env["PYTHONUNBUFFERED"] = "1"
    with ExitStack() as cleanup:
        if database == "postgresql":
            env["TCR_REGISTRY_DATABASE_URL"] = cleanup.enter_context(fresh_postgres_database())
            env["TCR_SUBSIDY_DATABASE_URL"] = cleanup.enter_context(fresh_postgres_database())
        var = tmp_path / "var"
        workdir = tmp_path / "cwd"
        workdir.mkdir()
        ports = {name: free_port() for name in ("registry", "subsidy", "audit", "kafka")}
        log_path = tmp_path / "stack.log"
        log = log_path.open("wb")
        argv = [TCR, "stack", "--var", str(var)]
        argv += [f"--{name}-port={port}" for name, port in ports.items()]
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = RunningStack(
            process=process,
            log_path=log_path,
            var=var,
            workdir=workdir,
            registry=f"http://127.0.0.1:{ports['registry']}",
            finance=f"http://127.0.0.1:{ports['subsidy']}",
            audit=f"http://127.0.0.1:{ports['audit']}",
            _log=log,
        )
        cleanup.callback(running.stop)
        running.wait_ready()
        running.tokens = _read_tokens(var / "local-tokens.txt")
        yield running


@pytest.fixture(params=["postgresql", "sqlite"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningStack]:
    """The whole system on PostgreSQL, then on the SQLite defaults."""
    with running_stack(tmp_path, request.param) as running:
        yield running


@pytest.fixture
def sqlite_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """The whole system on its SQLite defaults."""
    with running_stack(tmp_path, "sqlite") as running:
        yield running
