"""``tcr``: one command line for every service of the technology contract registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.audit.cli import add_audit_commands
from services.common.logs import configure_logging
from services.common.runtime import run_until_signalled
from services.common.tokens import ROLES, add_principal, init_demo_tokens
from services.demo.cli import add_demo_commands
from services.registry.import_cli import add_import_command
from services.subsidy.simulate_cli import add_simulate_command

if TYPE_CHECKING:  # imported where used: `tcr --help` stays quick
    from services.registry.settings import RegistrySettings


def _given(**options: Any) -> dict[str, Any]:
    """The options given on the command line, to pass to a settings class: they outrank its
    environment variables, and the ones not given leave those in force."""
    return {name: value for name, value in options.items() if value is not None}


def _registry_settings(args: argparse.Namespace) -> RegistrySettings:
    from services.registry.settings import RegistrySettings

    return RegistrySettings(**_given(registry_database_url=args.database_url))


def _registry_serve(args: argparse.Namespace) -> int:
    from services.common.web.api import serve
    from services.registry.app import create_app

    _configure_service_logging()
    settings = _registry_settings(args)
    if args.workers > 1:
        # Create the tables once here, so that workers starting together do not race to.
        from services.registry.application import Registry

        Registry(settings.registry_database_url.get_secret_value()).close()
    return serve(create_app, settings, args)


def _registry_verify(args: argparse.Namespace) -> int:
    url = _registry_settings(args).registry_database_url.get_secret_value()
    if args.read_only:
        return _report_chain(_read_only_steps(url))
    from services.registry.application import Registry

    registry = Registry(url)
    try:
        return _report_chain(registry.verify())
    finally:
        registry.close()


def _read_only_steps(url: str) -> Iterator[dict[str, Any]]:
    import sqlalchemy.exc

    from services.registry.verify import verify_read_only

    try:
        yield from verify_read_only(url)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"tcr registry verify: {exc}") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        why = getattr(exc, "orig", None) or exc
        raise SystemExit(f"tcr registry verify: cannot read the registry's tables: {why}") from None


def _report_chain(steps: Iterable[dict[str, Any]]) -> int:
    for step in steps:
        if "ok" not in step:
            print(f"  checked {step['checked']:,} entries…", file=sys.stderr)
            continue
        if step["ok"]:
            print(f"chain intact: {step['checked']:,} entries, head hash {step['head_hash']}")
            return 0
        print(
            f"chain BROKEN at position {step['position']}: {step['problem']} "
            f"({step['checked']:,} entries before it are intact)"
        )
        return 1
    return 1


def _relay(args: argparse.Namespace) -> int:
    from functools import partial

    from services.common.kafka import ensure_topic, make_producer
    from services.common.metrics import serve_metrics
    from services.registry.application import Registry
    from services.registry.relay import Relay, RelayPosition
    from services.registry.settings import RelaySettings

    _configure_service_logging()
    settings = RelaySettings()
    serve_metrics(settings.relay_metrics_port, settings.metrics_host)
    registry = Registry(settings.registry_database_url.get_secret_value())
    relay = Relay(
        registry.read_log,
        RelayPosition(registry.engine),
        partial(make_producer, settings.kafka_bootstrap),
        settings.kafka_topic,
        ensure_topic=partial(
            ensure_topic, settings.kafka_bootstrap, settings.kafka_topic, settings.kafka_partitions
        ),
    )
    try:
        run_until_signalled(relay.run)
    finally:
        registry.close()
    return 0


def _configure_service_logging() -> None:
    """A long-running service logs as the settings say (JSON unless TCR_LOG_FORMAT=text)."""
    from services.common.settings import LogSettings

    configure_logging(LogSettings().log_format)


def _subsidy_serve(args: argparse.Namespace) -> int:
    from services.common.web.api import serve
    from services.subsidy.app import create_app
    from services.subsidy.settings import SubsidySettings

    return serve(create_app, SubsidySettings(), args)


def _subsidy_consume(args: argparse.Namespace) -> int:
    from services.common.metrics import serve_metrics
    from services.subsidy.app import create_projector
    from services.subsidy.settings import SubsidySettings

    _configure_service_logging()
    settings = SubsidySettings()
    serve_metrics(settings.consumer_metrics_port, settings.metrics_host)
    projector, store, feed = create_projector(settings)
    try:
        run_until_signalled(projector.run)
    finally:
        feed.close()
        store.close()
    return 0


def _subsidy_rebuild(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from services.subsidy.app import create_projector
    from services.subsidy.settings import SubsidySettings

    projector, store, feed = create_projector(SubsidySettings())
    try:
        target = feed.head()
        started = time.monotonic()
        with tqdm(
            total=target, unit=" positions", unit_scale=True, disable=args.no_progress
        ) as bar:
            applied = projector.rebuild(bar.update)
        seconds = time.monotonic() - started
        print(
            f"rebuilt the subsidy projection from {applied:,} entries up to position "
            f"{projector.head.position:,} (registry head {target:,}) in {seconds:.1f} s"
        )
    finally:
        feed.close()
        store.close()
    return 0 if projector.head.position >= target else 1


def _stack(args: argparse.Namespace) -> int:
    from services.stack import StackSettings, run_stack

    settings = StackSettings(
        **_given(
            var=args.var,
            host=args.host,
            registry_port=args.registry_port,
            subsidy_port=args.subsidy_port,
            kafka_port=args.kafka_port,
            audit_port=args.audit_port,
        )
    )
    return run_stack(settings, demo=args.demo)


def _tokens_add(args: argparse.Namespace) -> int:
    from services.registry.settings import RegistrySettings

    path = Path(args.file) if args.file else RegistrySettings().tokens_file
    try:
        token = add_principal(path, args.name, args.role, args.station_id)
    except ValueError as exc:
        print(f"tcr tokens add: {exc}", file=sys.stderr)
        return 2
    print(f"added {args.role} {args.name!r} to {path}; its token (shown only this once):")
    print(token)
    return 0


def _tokens_init(args: argparse.Namespace) -> int:
    from services.registry.settings import RegistrySettings

    path = Path(args.file) if args.file else RegistrySettings().tokens_file
    saved = path.with_name("local-tokens.txt")
    tokens = init_demo_tokens(path, saved)
    if tokens is None:
        print(f"{path} exists; tokens for local use are in {saved} if it was made here")
        return 0
    print(f"created {path} with one principal per role; tokens (also in {saved}):")
    for name, token in tokens.items():
        print(f"  {name:<14} {token}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tcr",
        description="Technology contract registry: registry, subsidy and audit services.",
    )
    services = parser.add_subparsers(dest="service", required=True, metavar="SERVICE")

    registry = services.add_parser("registry", help="the contract registry and its event log")
    reg = registry.add_subparsers(dest="action", required=True, metavar="ACTION")

    serve = reg.add_parser("serve", help="serve the registry HTTP API (OpenAPI docs at /docs)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own writer (default 1)",
    )
    serve.add_argument(
        "--database-url",
        help="event store URL (default: $TCR_REGISTRY_DATABASE_URL or sqlite:///var/registry.db)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log a line per request (as TCR_ACCESS_LOG=false); refusals still are",
    )
    serve.set_defaults(func=_registry_serve)

    verify = reg.add_parser(
        "verify", help="recompute the hash chain from the database; names the first bad position"
    )
    verify.add_argument("--database-url", help="event store URL (default as for serve)")
    verify.add_argument(
        "--read-only",
        action="store_true",
        help="open the database so that nothing can be written: no lock, no table created; "
        "checks a read-only SQLite file or copy, or PostgreSQL through a role that may only "
        "SELECT",
    )
    verify.set_defaults(func=_registry_verify)
    add_import_command(reg)

    relay = services.add_parser(
        "relay",
        help="publish the registry log to Kafka ($TCR_KAFKA_BOOTSTRAP, $TCR_KAFKA_TOPIC)",
        description=(
            "Follow the registry's log from the last published position (kept in the registry's "
            "database) and produce every envelope to $TCR_KAFKA_TOPIC (default tcr.events) at "
            "$TCR_KAFKA_BOOTSTRAP (default 127.0.0.1:9092), keyed by subject. Stops on Ctrl-C."
        ),
    )
    relay.set_defaults(func=_relay)

    subsidy = services.add_parser("subsidy", help="yearly entitlements for finance")
    sub = subsidy.add_subparsers(dest="action", required=True, metavar="ACTION")
    consume = sub.add_parser(
        "consume",
        help="apply the log from Kafka (and the registry feed) to the subsidy store",
        description=(
            "Consume $TCR_KAFKA_TOPIC in group $TCR_KAFKA_GROUP (default tcr-subsidy) into "
            "$TCR_SUBSIDY_DATABASE_URL (default sqlite:///var/subsidy.db); catch up from the "
            "registry feed at $TCR_REGISTRY_URL with $TCR_REGISTRY_TOKEN when Kafka does not "
            "hold everything. Stops on Ctrl-C."
        ),
    )
    consume.set_defaults(func=_subsidy_consume)
    rebuild = sub.add_parser(
        "rebuild",
        help="drop the subsidy projection and build it again from the registry feed",
        description=(
            "Clear $TCR_SUBSIDY_DATABASE_URL (the registry's log is the truth; nothing there "
            "changes) and apply the whole log again from the registry feed at "
            "$TCR_REGISTRY_URL with $TCR_REGISTRY_TOKEN, with a progress bar. Finance reads an "
            "empty or partial projection until it is done; consumers may keep running. Exits 1 "
            "if the feed ended before the registry's head."
        ),
    )
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")
    rebuild.set_defaults(func=_subsidy_rebuild)
    sserve = sub.add_parser("serve", help="serve the finance API (OpenAPI docs at /docs)")
    sserve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sserve.add_argument("--port", type=int, default=8001, help="port to bind (default 8001)")
    sserve.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    sserve.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sserve.set_defaults(func=_subsidy_serve)
    add_simulate_command(sub)

    stack = services.add_parser(
        "stack",
        help="run the whole system on this machine (broker, registry, relay, subsidy)",
        description=(
            "Start the Kafka-compatible broker (unless $TCR_KAFKA_BOOTSTRAP names one), the "
            "registry, the relay, the subsidy consumer and the finance API as child processes on "
            "their embedded defaults (SQLite files under --var), wait until each is healthy, and "
            "supervise them: output prefixed by name, a child that dies is restarted, Ctrl-C or "
            "SIGTERM stops them all. On first start a tokens file with one principal per role is "
            "created and its tokens printed once."
        ),
    )
    stack.add_argument(
        "--host", default="127.0.0.1", help="address the APIs bind (default 127.0.0.1)"
    )
    stack.add_argument(
        "--registry-port", type=int,
        help="registry API port ($TCR_REGISTRY_PORT, default 8000)",
    )  # fmt: skip
    stack.add_argument(
        "--subsidy-port", type=int,
        help="finance API port ($TCR_SUBSIDY_PORT, default 8001)",
    )  # fmt: skip
    stack.add_argument(
        "--kafka-port", type=int,
        help="port of the bundled broker ($TCR_KAFKA_PORT, default 9092)",
    )  # fmt: skip
    stack.add_argument(
        "--var", type=Path,
        help="folder for the SQLite files and tokens ($TCR_VAR, default var)",
    )  # fmt: skip
    stack.add_argument(
        "--audit-port", type=int,
        help="audit API port ($TCR_AUDIT_PORT, default 8002)",
    )  # fmt: skip
    stack.add_argument(
        "--demo",
        action="store_true",
        help="on an empty registry, load the demo history (tcr demo generate) before ready",
    )
    stack.set_defaults(func=_stack)

    add_audit_commands(services)
    add_demo_commands(services)

    tokens = services.add_parser(
        "tokens", help="bearer tokens of stations, bureau, finance, auditors"
    )
    tok = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = tok.add_parser("add", help="add a principal and print its new token once")
    add.add_argument("--name", required=True, help="the principal's name, recorded on its events")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--station-id", help="the station's id (stations only)")
    add.add_argument("--file", help="tokens file (default: $TCR_TOKENS_FILE or var/tokens.toml)")
    add.set_defaults(func=_tokens_add)
    init = tok.add_parser(
        "init", help="first start: one principal per role, tokens saved for local use"
    )
    init.add_argument("--file", help="tokens file (default: $TCR_TOKENS_FILE or var/tokens.toml)")
    init.set_defaults(func=_tokens_init)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tcr`` console script."""
    configure_logging()
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
