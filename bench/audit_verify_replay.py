#!/usr/bin/env python3
"""Audit benchmark: ``verify_log`` and replay over an exported bundle of a million envelopes.

The bundle is synthetic but valid: the script writes ``events.jsonl`` itself (no registry),
with the registry's event mix and payload sizes — contracts registered with their parties,
invoices and bank transfer proofs (one to four each), voids, withdrawals, amendments,
cancellations, broker filings and provincial funding — interleaved across contracts, every
envelope hashed into the chain and its canonical bytes into the Merkle tree, and a few
checkpoints signed with a fresh Ed25519 key. Bundles are cached in ``--workdir``.

Each measurement runs in a child process of its own, so that its peak RSS (``ru_maxrss``) is
its own:

* ``decode``: the baseline, a plain pass that only ``orjson.loads`` each line;
* ``verify``: ``services.audit.verify.verify_log`` over ``BundleSource`` (chain, Merkle roots at
  every checkpoint, signatures);
* ``replay``: ``FactsBuilder`` over the bundle, then the entitlements of every year in force
  (``services.audit.replay.replay``);
* ``combined``: one pass that verifies each envelope and then applies it, then entitlements.

Run with the project's virtualenv::

    .venv/bin/python bench/audit_verify_replay.py                    # 100k and 1M events
    .venv/bin/python bench/audit_verify_replay.py --events 200000 --small 20000

A table goes to stdout, progress to stderr, every figure to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``services`` importable
    sys.path.insert(0, str(REPO))

from services.common.codes import credit_code_check_character  # noqa: E402

GOAL_EVENTS_S = 50_000
GENERATOR_VERSION = 1
CHECKPOINT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
ACTIVE_CONTRACTS = 256  # contracts with evidence still to come, interleaved in the log
PHASES = ("decode", "verify", "replay", "combined")

# -- the synthetic history -------------------------------------------------------------------

LOCAL_REGIONS = [
    "410402", "410403", "410404", "410411", "410421",
    "410422", "410423", "410425", "410481", "410482",
]  # fmt: skip
OTHER_REGIONS = [
    "110108", "310115", "440305", "320102", "330106", "410102",
    "410302", "420111", "510107", "610113", "370102", "120116",
]  # fmt: skip
KINDS = [
    ("enterprise", 70), ("university", 10), ("research_institute", 8),
    ("new_rd_institution", 5), ("other", 7),
]  # fmt: skip
CONTRACT_TYPES = [
    ("development", 35), ("transfer", 15), ("licensing", 10), ("consulting", 15), ("service", 25),
]  # fmt: skip
DOMAINS = [
    "advanced manufacturing", "new materials", "electronic information", "biomedicine",
    "new energy", "energy saving and environmental protection", "modern agriculture",
    "aerospace", "resources and mining",
]  # fmt: skip
CITIES = ["平顶山", "郑州", "洛阳", "北京", "上海", "深圳", "武汉", "西安", "南京", "杭州"]
NAME_WORDS = ["华创", "中原", "鹰城", "宏达", "瑞丰", "智造", "天成", "恒信", "博远", "新材"]
SUFFIX = {
    "enterprise": "科技有限公司",
    "university": "大学",
    "research_institute": "研究院",
    "new_rd_institution": "产业技术研究院",
    "other": "技术服务中心",
}
TITLE_WORDS = [
    "煤矿", "智能", "巡检", "机器人", "尼龙", "新材料", "高压", "开关", "电网", "储能", "碳化硅",
    "超高功率", "石墨电极", "绿色", "矿山", "安全", "监测", "系统", "工艺", "优化",
]  # fmt: skip
TITLE_ENDS = ["技术开发", "技术转让", "专利实施许可", "技术咨询", "技术服务", "联合研发"]
BANKS = ["中国银行平顶山分行", "中国工商银行平顶山分行", "中国建设银行郑州分行", "交通银行北京分行"]
REASONS = ["开票有误", "凭证录入有误", "合同解除", "补充协议", "金额调整", "双方协商一致"]
PRINCIPALS = ["station-s1", "station-s2", "station-s3", "station-s4"]
FIRST_DAY = dt.date(2020, 1, 2)
LAST_DAY = dt.date(2026, 10, 31)
START = dt.datetime(2020, 1, 2, 1, 0, tzinfo=dt.UTC)
SPAN_SECONDS = 6.8 * 365 * 86_400


def weighted(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


def make_parties(rng: random.Random, count: int) -> list[dict[str, str]]:
    parties = []
    for i in range(count):
        kind = weighted(rng, KINDS)
        local = rng.random() < 0.4
        region = rng.choice(LOCAL_REGIONS if local else OTHER_REGIONS)
        first17 = f"{'91' if kind == 'enterprise' else '12'}{region}{i:09d}"
        name = f"{rng.choice(CITIES)}{rng.choice(NAME_WORDS)}{rng.choice(NAME_WORDS)}"
        parties.append(
            {
                "credit_code": first17 + credit_code_check_character(first17),
                "name": name + SUFFIX[kind],
                "kind": kind,
                "region_code": region,
            }
        )
    return parties


def day(d: dt.date) -> str:
    return d.isoformat()


def split(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` fen in ``parts`` positive amounts, whole yuan."""
    yuan = max(parts, total // 100)
    cuts = sorted(rng.sample(range(1, yuan), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, yuan]
    return [(b - a) * 100 for a, b in pairwise(edges)]


@dataclass
class History:
    """Contracts in flight and the filings made so far; yields (type, principal, payload)."""

    rng: random.Random
    parties: list[dict[str, str]]
    brokers: list[str] = field(default_factory=list)
    contracts: int = 0

    def contract_script(self, today: dt.date) -> list[tuple[str, str, dict[str, Any]]]:
        rng = self.rng
        self.contracts += 1
        no = f"{today.year}4104{self.contracts:08d}"
        seller, buyer = rng.sample(self.parties, 2)
        amount = rng.randrange(500, 50_000) * 10_000  # 50,000.00 to 5,000,000.00 yuan
        brokers = (
            rng.sample(self.brokers, rng.randint(1, 2))
            if self.brokers and (rng.random() < 0.3)
            else []
        )
        principal = rng.choice(PRINCIPALS)
        signed = today - dt.timedelta(days=rng.randint(0, 60))
        title = "".join(rng.sample(TITLE_WORDS, rng.randint(3, 6))) + rng.choice(TITLE_ENDS)
        script: list[tuple[str, str, dict[str, Any]]] = [
            (
                "ContractRegistered",
                principal,
                {
                    "registration_no": no,
                    "station_id": "S" + principal[-1],
                    "registered_on": day(today),
                    "signed_on": day(signed),
                    "title": title,
                    "contract_type": weighted(rng, CONTRACT_TYPES),
                    "domain": rng.choice(DOMAINS),
                    "seller": seller,
                    "buyer": buyer,
                    "brokers": brokers,
                    "contract_amount_fen": amount,
                    "technology_amount_fen": amount * rng.randint(80, 100) // 100 // 100 * 100,
                    "related_party": rng.random() < 0.05,
                },
            )
        ]

        def later(max_days: int = 540) -> str:
            return day(min(LAST_DAY, today + dt.timedelta(days=rng.randint(0, max_days))))

        evidenced = amount * rng.randint(50, 100) // 100
        invoices = [
            (f"INV-{no}-{i}", fen) for i, fen in enumerate(split(rng, evidenced, rng.randint(1, 4)))
        ]
        proofs = [
            (f"BANK-{no}-{i}", fen)
            for i, fen in enumerate(split(rng, evidenced, rng.randint(1, 4)))
        ]
        for invoice_no, fen in invoices:
            script.append(
                (
                    "InvoiceRecorded",
                    principal,
                    {
                        "registration_no": no,
                        "invoice_no": invoice_no,
                        "issued_on": later(),
                        "amount_fen": fen,
                        "issuer_credit_code": seller["credit_code"],
                        "recipient_credit_code": buyer["credit_code"],
                    },
                )
            )
        for serial_no, fen in proofs:
            script.append(
                (
                    "TransferProofRecorded",
                    principal,
                    {
                        "registration_no": no,
                        "serial_no": serial_no,
                        "paid_on": later(),
                        "amount_fen": fen,
                        "payer_credit_code": buyer["credit_code"],
                        "payee_credit_code": seller["credit_code"],
                        "bank": rng.choice(BANKS),
                    },
                )
            )
        # Evidence arrives in any order after the registration.
        script[1:] = sorted(script[1:], key=lambda _: rng.random())
        if rng.random() < 0.05:
            script.append(
                (
                    "InvoiceVoided",
                    principal,
                    {
                        "registration_no": no,
                        "invoice_no": invoices[0][0],
                        "voided_on": later(),
                        "reason": rng.choice(REASONS),
                    },
                )
            )
        if rng.random() < 0.03:
            script.append(
                (
                    "TransferProofWithdrawn",
                    principal,
                    {
                        "registration_no": no,
                        "serial_no": proofs[-1][0],
                        "withdrawn_on": later(),
                        "reason": rng.choice(REASONS),
                    },
                )
            )
        if rng.random() < 0.08:
            changes: dict[str, Any] = rng.choice(
                [
                    {"title": title + "(补充)"},
                    {"contract_amount_fen": amount + 1_000_000},
                    {"brokers": self.brokers[-1:]},
                    {"related_party": True},
                ]
            )
            script.append(
                (
                    "ContractAmended",
                    principal,
                    {
                        "registration_no": no,
                        "amended_on": later(),
                        "reason": rng.choice(REASONS),
                        "changes": changes,
                    },
                )
            )
        if rng.random() < 0.02:
            script.append(
                (
                    "ContractCancelled",
                    principal,
                    {
                        "registration_no": no,
                        "cancelled_on": later(),
                        "reason": rng.choice(REASONS),
                    },
                )
            )
        return script

    def filing(self, today: dt.date) -> tuple[str, str, dict[str, Any]]:
        rng = self.rng
        if rng.random() < 0.7:
            broker_id = f"B-{len(self.brokers) + 1:06d}"
            self.brokers.append(broker_id)
            return (
                "BrokerFiled",
                "bureau",
                {
                    "broker_id": broker_id,
                    "name": rng.choice(["张", "王", "李", "赵", "刘"]) + rng.choice(["伟", "芳"]),
                    "organisation_credit_code": rng.choice(self.parties)["credit_code"],
                    "filed_on": day(today),
                },
            )
        party = rng.choice(self.parties)
        return (
            "ProvincialFundingRecorded",
            "bureau",
            {
                "credit_code": party["credit_code"],
                "year": today.year,
                "programme": "河南省科技成果转化专项",
                "amount_fen": rng.randrange(10, 300) * 1_000_000,
            },
        )


SUBJECT = {
    "BrokerFiled": "broker_id",
    "ProvincialFundingRecorded": "credit_code",
}


def generate_bundle(folder: Path, events: int, seed: int) -> dict[str, Any]:
    """Write a valid bundle of ``events`` envelopes into ``folder``; returns its manifest."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.common.envelope import GENESIS_HASH, canonical_bytes, format_instant
    from services.common.merkle import CompactRange, leaf_hash
    from services.common.signing import public_key_pem, sign_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    history = History(rng, make_parties(rng, max(1_000, events // 50)))
    key = Ed25519PrivateKey.generate()
    sizes = sorted({max(1, int(events * f)) for f in CHECKPOINT_FRACTIONS})
    tree, checkpoints = CompactRange(), []
    active: list[list[tuple[str, str, dict[str, Any]]]] = []
    prev, position, total_bytes = GENESIS_HASH, 0, 0
    counts: dict[str, int] = {}
    step = SPAN_SECONDS / events
    started = time.perf_counter()
    with (folder / "events.jsonl").open("wb") as out:
        for n in range(events):
            now = START + dt.timedelta(seconds=n * step + rng.random() * step)
            today = now.date()
            if rng.random() < 0.004:
                kind, principal, payload = history.filing(today)
            else:
                while len(active) < ACTIVE_CONTRACTS:
                    active.append(history.contract_script(today)[::-1])
                i = rng.randrange(len(active))
                kind, principal, payload = active[i].pop()
                if not active[i]:
                    active[i] = active[-1]
                    active.pop()
            position += 2 if rng.random() < 0.0005 else 1  # a rolled-back insert's gap
            envelope: dict[str, Any] = {
                "position": position,
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": kind,
                "schema_version": 1,
                "recorded_at": format_instant(now),
                "principal": principal,
                "subject": payload[SUBJECT.get(kind, "registration_no")],
                "payload": payload,
                "prev_hash": prev,
            }
            envelope["hash"] = prev = hashlib.sha256(
                bytes.fromhex(prev) + canonical_bytes(envelope)
            ).hexdigest()
            line = canonical_bytes(envelope)
            out.write(line + b"\n")
            total_bytes += len(line) + 1
            counts[kind] = counts.get(kind, 0) + 1
            tree.append(leaf_hash(line))
            if tree.size in sizes:
                checkpoint: dict[str, Any] = {
                    "tree_size": tree.size,
                    "root_hash": tree.root().hex(),
                    "issued_at": format_instant(now),
                }
                checkpoint["signature"] = sign_checkpoint(key, checkpoint)
                checkpoints.append(checkpoint)
            if (n + 1) % 100_000 == 0:
                progress(f"  generated {n + 1:,} of {events:,} envelopes")
    (folder / "checkpoints.json").write_text(json.dumps(checkpoints, indent=2) + "\n")
    (folder / "public-key.pem").write_text(public_key_pem(key))
    manifest = {
        "format": "tcr-bundle/1",
        "registry": "synthetic",
        "generator": {"version": GENERATOR_VERSION, "seed": seed},
        "exported_at": format_instant(dt.datetime.now(dt.UTC)),
        "events": events,
        "last_position": position,
        "checkpoints": len(checkpoints),
        "contracts": history.contracts,
        "parties": len(history.parties),
        "bytes": total_bytes,
        "mix": dict(sorted(counts.items())),
        "generate_seconds": round(time.perf_counter() - started, 2),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def bundle_for(workdir: Path, events: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """The cached bundle of ``events`` envelopes, generated when missing or stale."""
    folder = workdir / f"bundle-{events}-{seed}"
    manifest_path = folder / "manifest.json"
    if manifest_path.exists():
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if manifest.get("generator") == {"version": GENERATOR_VERSION, "seed": seed} and (
            manifest.get("events") == events
        ):
            progress(f"reusing {folder}")
            return folder, manifest
    progress(f"generating {events:,} envelopes into {folder}")
    return folder, generate_bundle(folder, events, seed)


# -- the measured passes (each in a child process) ---------------------------------------------


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_phase(phase: str, folder: Path, trace: bool) -> dict[str, Any]:
    from services.audit.replay import replay
    from services.audit.sources import BundleSource
    from services.audit.verify import verify_log
    from services.common.policy.facts import FactsBuilder
    from services.common.policy.loader import load_schedule

    schedule = load_schedule()
    source = BundleSource(folder)
    start_rss = maxrss_mib()
    if trace:
        tracemalloc.start()
    result: dict[str, Any] = {"phase": phase}
    started = time.perf_counter()
    if phase == "decode":
        count = 0
        with (folder / "events.jsonl").open("rb") as lines:
            for line in lines:
                orjson.loads(line)
                count += 1
        result["events"] = count
    elif phase == "verify":
        verdict = verify_log(source.envelopes(), source.checkpoints(), source.public_key_pem())
        if not verdict.ok:
            raise SystemExit(f"the synthetic bundle does not verify: {verdict.as_json()}")
        result |= {"events": verdict.checked, "checkpoints": verdict.checkpoints_verified}
    else:
        builder = FactsBuilder()
        counted = [0]
        if phase == "replay":
            for envelope in source.envelopes():
                builder.apply(envelope)
                counted[0] += 1
        else:

            def applied_once_verified() -> Iterator[dict[str, Any]]:
                for envelope in source.envelopes():
                    yield envelope  # verify_log checks it before asking for the next one
                    builder.apply(envelope)
                    counted[0] += 1

            verdict = verify_log(
                applied_once_verified(), source.checkpoints(), source.public_key_pem()
            )
            if not verdict.ok:
                raise SystemExit(f"the synthetic bundle does not verify: {verdict.as_json()}")
        facts_done = time.perf_counter()
        facts = builder.facts()
        answer = replay(facts, schedule)
        result |= {
            "events": counted[0],
            "facts_seconds": facts_done - started,
            "entitlements_seconds": time.perf_counter() - facts_done,
            "contracts": len(facts.contracts),
            "entitlements": sum(len(v) for v in answer["years"].values()),
        }
    result["seconds"] = time.perf_counter() - started
    if trace:
        result["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    result["start_rss_mib"] = start_rss
    result["peak_rss_mib"] = maxrss_mib()
    return result


def measure(phase: str, folder: Path, trace: bool) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its figures."""
    argv = [sys.executable, __file__, "--phase", phase, "--bundle", str(folder)]
    if trace:
        argv.append("--trace")
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- the report ---------------------------------------------------------------------------------


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'events':>9}  {'phase':<9} {'seconds':>8} {'events/s':>10} {'x decode':>9} "
        f"{'peak RSS':>9} {'growth':>8} {'traced':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        traced = f"{r['traced_peak_mib']:.1f}" if "traced_peak_mib" in r else "-"
        lines.append(
            f"{r['bundle_events']:>9,}  {r['phase']:<9} {r['seconds']:>8.2f} "
            f"{r['events_per_s']:>10,.0f} {r['slowdown_vs_decode']:>9.2f} "
            f"{r['peak_rss_mib']:>8.1f}M {r['rss_growth_mib']:>7.1f}M {traced:>8}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="the large bundle's size")
    parser.add_argument("--small", type=int, default=100_000, help="the small bundle's size")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "tcr-bench-audit"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="also run verify and replay under tracemalloc (slow) for the Python heap's peak",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "audit_verify_replay.json"
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # a child: one measured pass, figures as one JSON line
        print(json.dumps(run_phase(args.phase, args.bundle, args.trace)))
        return 0

    bundles: dict[int, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for size in sorted({args.small, args.events}):
        folder, manifest = bundle_for(args.workdir, size, args.seed)
        bundles[size] = manifest
        decode_seconds = 0.0
        for phase in PHASES:
            progress(f"{size:,} events: {phase}")
            figures = measure(phase, folder, trace=False)
            if args.trace and phase in ("verify", "replay"):
                figures["traced_peak_mib"] = measure(phase, folder, trace=True)["traced_peak_mib"]
            if phase == "decode":
                decode_seconds = figures["seconds"]
            figures |= {
                "bundle_events": size,
                "events_per_s": figures["events"] / figures["seconds"],
                "slowdown_vs_decode": figures["seconds"] / decode_seconds,
                "rss_growth_mib": figures["peak_rss_mib"] - figures["start_rss_mib"],
            }
            rows.append(figures)

    def row(size: int, phase: str) -> dict[str, Any]:
        return next(r for r in rows if (r["bundle_events"], r["phase"]) == (size, phase))

    large = args.events
    verify, replayed = row(large, "verify"), row(large, "replay")
    sequential = large / (verify["seconds"] + replayed["seconds"])
    summary = {
        "goal_events_per_s": GOAL_EVENTS_S,
        "verify_events_per_s": verify["events_per_s"],
        "replay_events_per_s": replayed["events_per_s"],
        "verify_then_replay_events_per_s": sequential,
        "combined_one_pass_events_per_s": row(large, "combined")["events_per_s"],
        "verify_meets_goal": verify["events_per_s"] >= GOAL_EVENTS_S,
        "replay_meets_goal": replayed["events_per_s"] >= GOAL_EVENTS_S,
        "combined_meets_goal": row(large, "combined")["events_per_s"] >= GOAL_EVENTS_S,
        "verify_rss_growth_mib": {
            str(s): row(s, "verify")["rss_growth_mib"] for s in sorted(bundles)
        },
        "replay_rss_growth_mib": {
            str(s): row(s, "replay")["rss_growth_mib"] for s in sorted(bundles)
        },
    }
    report = {
        "benchmark": "audit_verify_replay",
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "bundles": {str(k): v for k, v in bundles.items()},
        "results": rows,
        "summary": summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    print(table(rows))
    print()
    for size, manifest in sorted(bundles.items()):
        print(
            f"bundle {size:,}: {manifest['bytes'] / 2**20:,.0f} MiB, {manifest['contracts']:,} "
            f"contracts, {manifest['checkpoints']} checkpoints, mix {manifest['mix']}"
        )
    print(
        f"goal {GOAL_EVENTS_S:,} events/s at {large:,}: verify {verify['events_per_s']:,.0f}, "
        f"replay {replayed['events_per_s']:,.0f}, verify then replay {sequential:,.0f}, "
        f"one pass {summary['combined_one_pass_events_per_s']:,.0f}"
    )
    print(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
