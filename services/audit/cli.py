"""``tcr audit …``: export, verify, replay, compare, report, serve."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from services.audit.sources import BundleSource, LogSource, RegistrySource, export_bundle
from services.common.cli_tokens import add_token_options, required_token
from services.common.errors import Invalid
from services.common.instants import parse_instant

if TYPE_CHECKING:  # imported when a command runs: ``tcr --help`` stays quick
    from services.audit.application import Audit, Unverified
    from services.audit.verify import Verdict


def _instant(text: str) -> datetime:
    try:
        return parse_instant("--as-of", text)
    except Invalid as exc:
        raise argparse.ArgumentTypeError(f"{text!r} {exc.message}") from None


def _interval(text: str) -> int:
    try:
        every = int(text)
    except ValueError:
        every = 0
    if every < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of entries above 0")
    return every


def _add_verification_options(parser: argparse.ArgumentParser, *, gate: bool) -> None:
    """What verification trusts and how long a tail it allows; with ``gate``, --no-verify."""
    parser.add_argument(
        "--trusted-checkpoint", type=Path, help="a checkpoint JSON file you hold independently"
    )
    parser.add_argument(
        "--public-key",
        type=Path,
        help="the registry's public key (PEM) as published to you; without it the key inside "
        "the bundle is trusted, which proves integrity only against a trusted checkpoint",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=_interval,
        metavar="N",
        help="the registry's checkpoint interval: more entries than this after the last signed "
        "checkpoint fail verification ($TCR_CHECKPOINT_EVERY, default 1000)",
    )
    if gate:
        parser.add_argument(
            "--no-verify",
            action="store_true",
            help="do not verify the history first (what follows then proves nothing about it)",
        )


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
    add_token_options(export, "an auditor (or finance) token")
    export.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    export.set_defaults(func=_export)

    verify = actions.add_parser(
        "verify",
        help="prove the log unaltered: hash chain, Merkle roots, checkpoint signatures",
        description=(
            "Recompute every entry's hash and the chain, the Merkle root at every checkpoint, "
            "check each checkpoint's Ed25519 signature and, with --trusted-checkpoint, that the "
            "log extends a checkpoint you held before. Says how many entries no signed checkpoint "
            "covers. Exits 1 naming the first bad position or checkpoint, when more entries "
            "than --checkpoint-every follow the last checkpoint (or a log has none), or when "
            "the bundle's manifest disagrees with its entries. Give a bundle folder, or "
            "--registry and a token to verify live."
        ),
    )
    verify.add_argument("bundle", nargs="?", type=Path, help="bundle folder (or use --registry)")
    verify.add_argument("--registry", help="verify the live registry at this URL instead")
    add_token_options(verify, "the token for --registry")
    _add_verification_options(verify, gate=False)
    verify.add_argument("--json", action="store_true", help="print the verdict as JSON")
    verify.set_defaults(func=_verify)

    replay = actions.add_parser(
        "replay",
        help="recompute all entitlements from the history alone",
        description="Verify the bundle (as tcr audit verify), then recompute every year's "
        "entitlements from it; a bundle that does not verify is refused.",
    )
    replay.add_argument("bundle", type=Path)
    _add_verification_options(replay, gate=True)
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
        "compare",
        help="compare the recomputation with what the subsidy service serves",
        description="Verify the bundle (as tcr audit verify), then compare its recomputed "
        "entitlements with the subsidy service's; a bundle that does not verify is refused.",
    )
    compare.add_argument("bundle", type=Path)
    compare.add_argument("--subsidy", required=True, help="subsidy (finance API) URL")
    add_token_options(compare, "a finance or auditor token")
    _add_verification_options(compare, gate=True)
    compare.set_defaults(func=_compare)

    report = actions.add_parser(
        "report",
        help="write the evaluation report: HTML page, figures (JSON, CSV), findings (CSV)",
        description=(
            "Verify the history and compute, in one streaming pass, the plan's evaluation "
            "figures for every year in force up to --year (turnover against the targets, per "
            "county as seller and buyer, subsidies, brokers filed, achievements transformed "
            "locally) and the findings. Writes report.html (self-contained), figures.json, "
            "figures.csv and findings.csv into --out. When the history does not verify (as "
            "tcr audit verify) nothing is written and it exits 1; with --no-verify the report "
            "is written all the same, under that verdict, and it still exits 1."
        ),
    )
    report.add_argument("bundle", nargs="?", type=Path, help="bundle folder (or use --registry)")
    report.add_argument("--registry", help="read the live registry at this URL instead")
    add_token_options(report, "the token for --registry")
    report.add_argument("--year", type=int, required=True, help="the evaluation year")
    report.add_argument("--out", type=Path, required=True, help="folder to write the report to")
    _add_verification_options(report, gate=True)
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
    from services.common.settings import PolicySettings

    policy_files = PolicySettings().policy_files()  # the schedule the history is computed under
    source = RegistrySource(args.registry, required_token(args, "tcr audit export"))
    try:
        with _bar("export", total=source.head()) as bar:
            manifest = export_bundle(source, args.out, bar.update, policy_files)
    finally:
        source.close()
    print(
        f"exported {manifest['events']:,} events (to position {manifest['last_position']}) and "
        f"{manifest['checkpoints']} checkpoints, and {len(policy_files)} policy files, to "
        f"{args.out}"
    )
    return 0


def _open_source(args: argparse.Namespace, stack: ExitStack) -> LogSource:
    if args.registry:
        source = RegistrySource(args.registry, required_token(args, "tcr audit: --registry"))
        stack.callback(source.close)
        return source
    if args.bundle is None:
        raise SystemExit("tcr audit: give a bundle folder or --registry URL")
    return BundleSource(args.bundle)


def _bundle(folder: Path) -> BundleSource:
    return _note_policy(BundleSource(folder))


def _note_policy(source: BundleSource) -> BundleSource:
    """A bundle exported before policy schedules is computed under the policy in force here,
    and says so."""
    if source.policy_files() is None:
        print(
            f"note: {source.folder} carries no policy files (exported before policy schedules): "
            "computed under the policy in force here ($TCR_POLICY_DIR, default the bundled one)",
            file=sys.stderr,
        )
    return source


def _audit(args: argparse.Namespace) -> Audit:
    """The audit's use cases under the policy and what the options say verification trusts."""
    from services.audit.application import Audit
    from services.audit.settings import VerifySettings
    from services.audit.verify import Trust

    settings = VerifySettings()  # unset options fall back to TCR_CHECKPOINT_EVERY, the policy
    trusted = None
    if args.trusted_checkpoint is not None:
        trusted = json.loads(args.trusted_checkpoint.read_text("utf-8"))
    trust = Trust(
        trusted_checkpoint=trusted,
        public_key_pem=args.public_key.read_text("utf-8") if args.public_key else None,
        checkpoint_every=args.checkpoint_every or settings.checkpoint_every,
    )
    return Audit(settings.schedule(), trust)


def _verify(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        source = _open_source(args, stack)
        with _bar("verify") as bar:
            verdict = _audit(args).verify(source, bar.update)
    if args.json:
        print(json.dumps(verdict.as_json(), indent=2))
    else:
        print(verdict.summary())
    return 0 if verdict.ok else 1


def _refused(args: argparse.Namespace, exc: Unverified) -> int:
    again = f"--no-verify to {args.action} it all the same"
    print(f"tcr audit {exc.message} ({again})", file=sys.stderr)
    return 1


def _said(verdict: Verdict) -> None:
    print(verdict.summary(), file=sys.stderr)


def _unverified_warning(args: argparse.Namespace) -> None:
    if args.no_verify:
        print(
            f"WARNING: tcr audit {args.action} --no-verify: the history was NOT verified; "
            "nothing below proves it unaltered",
            file=sys.stderr,
        )


def _replay(args: argparse.Namespace) -> int:
    from services.audit.application import Unverified

    _unverified_warning(args)
    with _bar("verify and replay") as bar:
        try:
            result = _audit(args).replay(
                _bundle(args.bundle),
                args.until,
                args.as_of,
                verify=not args.no_verify,
                progress=bar.update,
                seen=_said,
            )
        except Unverified as exc:
            return _refused(args, exc)
    if result["skipped_events"]:
        unread = ", ".join(f"{kind} ×{n}" for kind, n in result["skipped_events"].items())
        print(
            f"skipped entries of types or versions this audit does not read ({unread}): "
            "upgrade tcr to recompute with them",
            file=sys.stderr,
        )
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

    from services.audit.application import Unverified
    from services.audit.replay import StaleHistory
    from services.audit.served import served_entitlements

    token = required_token(args, "tcr audit compare")
    _unverified_warning(args)
    with (
        httpx.Client(
            base_url=args.subsidy.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60.0,
        ) as client,
        _bar("verify") as bar,
    ):
        try:
            result = _audit(args).compare(
                _bundle(args.bundle),
                lambda year, position: served_entitlements(client, year, position),
                verify=not args.no_verify,
                progress=bar.update,
                seen=_said,
            )
        except Unverified as exc:
            return _refused(args, exc)
        except StaleHistory as exc:
            print(f"{exc}: export a newer bundle", file=sys.stderr)
            return 2
    for row in result["years"]:
        when = "as of position" if row["as_of_position"] else "now, at position"
        print(f"{row['year']} {when} {row['position']}: {row['entitlements']} entitlements, "
              f"{row['differences']} differences")  # fmt: skip
    found = result["differences"]
    if found:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        print(f"{len(found)} differences between the recomputation and the subsidy service")
        return 1
    print(
        "the subsidy service serves exactly the recomputed entitlements, now and as of three "
        "past positions" + (" (of a history NOT verified: --no-verify)" if args.no_verify else "")
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from services.audit.application import refusal
    from services.audit.report import write_report

    with ExitStack() as stack:
        source = _open_source(args, stack)
        if isinstance(source, BundleSource):
            _note_policy(source)
        with _bar("report") as bar:
            try:
                # Verified in the same pass that computes the figures; refused before writing.
                report = _audit(args).report(
                    source,
                    args.year,
                    refuse_unverified=False,
                    described_as=str(args.registry or args.bundle),
                    progress=bar.update,
                )
            except Invalid as exc:
                raise SystemExit(f"tcr audit report: {exc.message}") from None
    verdict = report.verdict
    print(verdict.summary())
    if not verdict.ok and not args.no_verify:
        print(
            f"tcr audit {refusal('report', verdict)}; nothing written to {args.out} "
            "(--no-verify writes the report all the same, under this verdict)"
        )
        return 1
    if not verdict.ok:
        print(
            "WARNING: tcr audit report --no-verify: the history does NOT verify; the report is "
            "written all the same and proves nothing about it",
            file=sys.stderr,
        )
    paths = write_report(report, args.out)
    print(f"{len(report.findings):,} findings; report of {args.year} written to:")
    for path in paths.values():
        print(f"  {path}")
    return 0 if verdict.ok else 1


def _serve(args: argparse.Namespace) -> int:
    from services.audit.app import create_app
    from services.audit.settings import AuditSettings
    from services.common.web.api import serve

    return serve(create_app, AuditSettings(), args)
