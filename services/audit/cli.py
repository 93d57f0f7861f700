"""``tcr audit …``: export, verify, replay, compare, report, serve."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from services.audit.sources import BundleSource, LogSource, RegistrySource, export_bundle
from services.common.errors import Invalid
from services.common.instants import parse_instant


def _instant(text: str) -> datetime:
    try:
        return parse_instant("--as-of", text)
    except Invalid as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc.message}") from None


def add_audit_commands(services: Any) -> None:
    """Register ``tcr audit`` and its actions on the top-level subparsers."""
    audit = services.add_parser(
        "audit",
        help="verify the registry's history and recompute every figure (third-party evaluation)",
    )
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")

    export = actions.add_parser("export", help="export the log, checkpoints and public key")
    export.add_argument(
        "--registry", required=True, help="registry URL, e.g. http://127.0.0.1:8000"
    )
    export.add_argument("--token", required=True, help="an auditor (or finance) token")
    export.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    export.set_defaults(func=_export)

    verify = actions.add_parser(
        "verify",
        help="prove the log unaltered: hash chain, Merkle roots, checkpoint signatures",
        description=(
            "Recompute every entry's hash and the chain, the Merkle root at every checkpoint, "
            "check each checkpoint's Ed25519 signature and, with --trusted-checkpoint, that the "
            "log extends a checkpoint you held before. Exits 1 naming the first bad position or "
            "checkpoint. Give a bundle folder, or --registry and --token to verify live."
        ),
    )
    verify.add_argument("bundle", nargs="?", type=Path, help="bundle folder (or use --registry)")
    verify.add_argument("--registry", help="verify the live registry at this URL instead")
    verify.add_argument("--token", help="token for --registry")
    verify.add_argument(
        "--trusted-checkpoint", type=Path, help="a checkpoint JSON file you hold independently"
    )
    verify.add_argument(
        "--public-key",
        type=Path,
        help="the registry's public key (PEM) as published to you; without it the key inside "
        "the bundle is trusted, which proves integrity only against a trusted checkpoint",
    )
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.set_defaults(func=_verify)

    replay = actions.add_parser("replay", help="recompute all entitlements from the history alone")
    replay.add_argument("bundle", type=Path)
    cut = replay.add_mutually_exclusive_group()
    cut.add_argument("--until", type=int, metavar="POSITION", help="stop after this log position")
    cut.add_argument(
        "--as-of",
        type=_instant,
        help="only events recorded by this ISO 8601 instant, with its time zone",
    )
    replay.add_argument("--out", type=Path, help="write the JSON here instead of stdout")
    replay.set_defaults(func=_replay)

    compare = actions.add_parser(
        "compare", help="compare the recomputation with what the subsidy service serves"
    )
    compare.add_argument("bundle", type=Path)
    compare.add_argument("--subsidy", required=True, help="subsidy (finance API) URL")
    compare.add_argument("--token", required=True, help="a finance or auditor token")
    compare.set_defaults(func=_compare)

    report = actions.add_parser(
        "report",
        help="write the evaluation report: HTML page, figures (JSON, CSV), findings (CSV)",
        description=(
            "Verify the history and compute, in one streaming pass, the plan's evaluation "
            "figures for every year in force up to --year (turnover against the targets, per "
            "county as seller and buyer, subsidies, brokers filed, achievements transformed "
            "locally) and the findings. Writes report.html (self-contained), figures.json, "
            "figures.csv and findings.csv into --out. Exits 1 when the chain does not verify "
            "(the report is still written, under that verdict)."
        ),
    )
    report.add_argument("bundle", nargs="?", type=Path, help="bundle folder (or use --registry)")
    report.add_argument("--registry", help="read the live registry at this URL instead")
    report.add_argument("--token", help="token for --registry")
    report.add_argument("--year", type=int, required=True, help="the evaluation year")
    report.add_argument("--out", type=Path, required=True, help="folder to write the report to")
    report.add_argument(
        "--trusted-checkpoint", type=Path, help="a checkpoint JSON file you hold independently"
    )
    report.set_defaults(func=_report)

    serve = actions.add_parser(
        "serve",
        help="serve the audit HTTP API over the live registry (OpenAPI docs at /docs)",
        description=(
            "Auditor tokens from $TCR_TOKENS_FILE; the live log from $TCR_REGISTRY_URL with "
            "$TCR_REGISTRY_TOKEN; compare against $TCR_SUBSIDY_URL."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8002, help="port to bind (default 8002)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)


def _bar(desc: str, total: int | None = None) -> tqdm[Any]:
    return tqdm(
        total=total, desc=desc, unit=" events", unit_scale=True, file=sys.stderr, disable=None
    )


def _export(args: argparse.Namespace) -> int:
    source = RegistrySource(args.registry, args.token)
    try:
        with _bar("export", total=source.head()) as bar:
            manifest = export_bundle(source, args.out, bar.update)
    finally:
        source.close()
    print(
        f"exported {manifest['events']:,} events (to position {manifest['last_position']}) and "
        f"{manifest['checkpoints']} checkpoints to {args.out}"
    )
    return 0


def _open_source(args: argparse.Namespace, stack: ExitStack) -> LogSource:
    if args.registry:
        if not args.token:
            raise SystemExit("tcr audit: --registry needs --token")
        source = RegistrySource(args.registry, args.token)
        stack.callback(source.close)
        return source
    if args.bundle is None:
        raise SystemExit("tcr audit: give a bundle folder or --registry URL")
    return BundleSource(args.bundle)


def _verify(args: argparse.Namespace) -> int:
    from services.audit.verify import verify_log

    trusted = (
        json.loads(args.trusted_checkpoint.read_text("utf-8")) if args.trusted_checkpoint else None
    )
    with ExitStack() as stack:
        source = _open_source(args, stack)
        with _bar("verify") as bar:
            key = args.public_key.read_text("utf-8") if args.public_key else source.public_key_pem()
            verdict = verify_log(source.envelopes(), source.checkpoints(), key, trusted, bar.update)
    if args.json:
        print(json.dumps(verdict.as_json(), indent=2))
    elif verdict.ok:
        extends = (
            f"; it extends the trusted checkpoint of {trusted['tree_size']}" if trusted else ""
        )
        print(
            f"verified: {verdict.checked:,} entries to position {verdict.last_position}, "
            f"{verdict.checkpoints_verified} checkpoints, root {verdict.root_hash}{extends}"
        )
    else:
        where = (
            f"position {verdict.position}"
            if verdict.position is not None
            else f"checkpoint {verdict.checkpoint}"
            if verdict.checkpoint is not None
            else "the bundle"
        )
        print(f"TAMPERING DETECTED at {where}: {verdict.problem}")
        print(f"({verdict.checked:,} entries before it verified)")
    return 0 if verdict.ok else 1


def _replay(args: argparse.Namespace) -> int:
    from services.audit.replay import replay, replay_facts, until
    from services.common.policy.loader import load_policy

    source = BundleSource(args.bundle)
    with _bar("replay") as bar:

        def counted() -> Any:
            for n, envelope in enumerate(source.envelopes(), start=1):
                if n % 10_000 == 0:
                    bar.update(10_000)
                yield envelope

        facts = replay_facts(until(counted(), args.until, args.as_of))
    result = replay(facts, load_policy())
    text = json.dumps(result, ensure_ascii=False, indent=2)
    if args.out:
        args.out.write_text(text + "\n", "utf-8")
        print(f"recomputed {sum(len(v) for v in result['years'].values())} entitlements at "
              f"position {result['position']} into {args.out}")  # fmt: skip
    else:
        print(text)
    return 0


def _compare(args: argparse.Namespace) -> int:
    import httpx

    from services.audit.replay import differences, replay_facts, until
    from services.common.policy.engine import entitlements
    from services.common.policy.loader import load_policy
    from services.common.policy.present import entitlement_json

    policy = load_policy()
    source = BundleSource(args.bundle)
    found: list[dict[str, Any]] = []
    facts_at: dict[int, Any] = {}
    with httpx.Client(
        base_url=args.subsidy.rstrip("/"), headers={"Authorization": f"Bearer {args.token}"}
    ) as client:
        for year in range(policy.first_year, policy.last_year + 1):
            response = client.get("/v1/entitlements", params={"year": year})
            response.raise_for_status()
            served = response.json()
            position = int(served["position"])
            if position not in facts_at:
                facts_at[position] = replay_facts(until(source.envelopes(), position))
            facts = facts_at[position]
            if facts.position < position:
                print(
                    f"the bundle ends at position {facts.position} but the subsidy service "
                    f"answers at {position}: export a newer bundle",
                    file=sys.stderr,
                )
                return 2
            ours = [entitlement_json(e) for e in entitlements(facts, year, policy)]
            found += differences(ours, served["entitlements"], year)
            print(f"{year}: {len(ours)} entitlements at position {position}, "
                  f"{sum(1 for d in found if d['year'] == year)} differences")  # fmt: skip
    if found:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        print(f"{len(found)} differences between the recomputation and the subsidy service")
        return 1
    print("the subsidy service serves exactly the recomputed entitlements")
    return 0


def _report(args: argparse.Namespace) -> int:
    from services.audit.report import audit_report, write_report
    from services.common.policy.loader import load_policy

    trusted = (
        json.loads(args.trusted_checkpoint.read_text("utf-8")) if args.trusted_checkpoint else None
    )
    with ExitStack() as stack:
        source = _open_source(args, stack)
        with _bar("report") as bar:
            try:
                report = audit_report(
                    source,
                    args.year,
                    load_policy(),
                    trusted=trusted,
                    described_as=str(args.registry or args.bundle),
                    progress=bar.update,
                )
            except ValueError as exc:
                raise SystemExit(f"tcr audit report: {exc}") from None
    paths = write_report(report, args.out)
    verdict = report.verdict
    if verdict.ok:
        print(f"chain verified: {verdict.checked:,} entries to position {verdict.last_position}")
    else:
        print(f"TAMPERING DETECTED: {report.findings[0].detail}")
    print(f"{len(report.findings):,} findings; report of {args.year} written to:")
    for path in paths.values():
        print(f"  {path}")
    return 0 if verdict.ok else 1


def _serve(args: argparse.Namespace) -> int:
    from services.common.runtime import serve

    return serve("services.audit.app:app_from_environment", args)
