#!/usr/bin/env python3
"""Merkle proofs from stored subtree roots, against recomputing the tree from every leaf.

For each size N (default 100,000 and 1,000,000) the script fills ``registry_chain`` of a fresh
PostgreSQL database directly with N synthetic leaves (``COPY``), then measures:

* ``build``: a new ``Checkpointer`` advancing from leaf 0, storing every perfect subtree root
  (and a checkpoint every 1,000 leaves, as the registry does by default): leaves/s;
* ``replay``: a new ``Checkpointer`` folding every leaf again from leaf 0 over the stored
  roots, which is what every registry process did after it started: leaves/s;
* ``restart``: ``--restarts`` new checkpointers, each timed from its creation to its
  first ``advance()`` answering N, as a registry process starts now (from the stored roots'
  right edge): p50 / max ms;
* ``inclusion`` / ``consistency``: ``--proofs`` proofs at the head (tree size N; random leaf,
  random first size) through ``Checkpointer.inclusion`` / ``.consistency``: p50/p99 ms;
* ``baseline``: the method these replaced (count the chain, read every leaf up to the tree
  size, recompute with ``merkle.inclusion_proof`` / ``consistency_proof``) on the same data,
  ``--baseline-proofs`` of each (fewer: it takes seconds at 1M). Its answers must be equal.

    .venv/bin/python bench/proofs.py
    .venv/bin/python bench/proofs.py --sizes 100000 --proofs 50

A table goes to stdout, progress to stderr, every figure to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pipeline_support import (
    DEFAULT_ADMIN_URL,
    REPO,
    db_name,
    fmt,
    log,
    machine,
    percentile,
    postgres_database,
    render_table,
    sqlalchemy_url,
    write_results,
)
from sqlalchemy import Connection, Engine, func, select

from services.common.db import make_engine
from services.common.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
)
from services.registry.checkpoints import Checkpointer
from services.registry.store import chain, create_tables

GOAL_P99_MS = 20.0
CHECKPOINT_EVERY = 1000


def fill_chain(libpq_url: str, size: int) -> float:
    """``size`` chain rows by COPY, then their statistics; answers rows/s (COPY alone)."""
    started = time.perf_counter()
    with psycopg.connect(libpq_url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY registry_chain (position, prev_hash, hash, leaf_index, leaf_hash) FROM STDIN"
        ) as copy:
            buffer = io.StringIO()
            for i in range(size):
                leaf = leaf_hash(f"entry {i}".encode()).hex()
                buffer.write(f"{i + 1}\t{'0' * 64}\t{i + 1:064x}\t{i}\t{leaf}\n")
                if i % 50_000 == 49_999:
                    copy.write(buffer.getvalue())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue())
        conn.commit()
    rate = size / (time.perf_counter() - started)
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        # Statistics as autovacuum keeps them on a live log. Without, the planner guesses a
        # third of the chain past any leaf index and scans it all to find the few new leaves:
        # 17 ms of each 100,000-leaf restart, until autovacuum came by.
        conn.execute("ANALYZE registry_chain")
    return rate


def timed(calls: list[Callable[[], Any]]) -> tuple[list[float], list[float], list[Any]]:
    """Each call's wall and CPU milliseconds, sorted, and its answers in call order.

    CPU time is this process's only (PostgreSQL's is not in it): the figure a busy machine
    disturbs least.
    """
    wall, cpu, answers = [], [], []
    for call in calls:
        started, started_cpu = time.perf_counter(), time.process_time()
        answers.append(call())
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return sorted(wall), sorted(cpu), answers


class ReplayingCheckpointer(Checkpointer):
    """The checkpointer as it was before it resumed from the stored roots: from leaf 0."""

    def _skip_to_the_stored_nodes(self, conn: Connection) -> None:
        pass


def summary(times: list[float], cpu: list[float]) -> dict[str, Any]:
    return {
        "count": len(times),
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "max_ms": times[-1] if times else None,
        "cpu_p50_ms": percentile(cpu, 50),
    }


# -- the method the stored nodes replaced (services/registry/checkpoints.py before them) --------


def all_leaves(engine: Engine, tree_size: int) -> list[bytes]:
    with engine.connect() as conn:
        size = int(conn.execute(select(func.count()).select_from(chain)).scalar_one())
        assert 0 < tree_size <= size
        rows = conn.execute(
            select(chain.c.leaf_hash)
            .where(chain.c.leaf_index < tree_size)
            .order_by(chain.c.leaf_index)
        )
        return [bytes.fromhex(leaf) for (leaf,) in rows]


def old_inclusion(engine: Engine, position: int, tree_size: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            select(chain.c.leaf_index, chain.c.leaf_hash).where(chain.c.position == position)
        ).one()
    leaves = all_leaves(engine, tree_size)
    return {
        "position": position,
        "leaf_index": row.leaf_index,
        "leaf_hash": row.leaf_hash,
        "tree_size": tree_size,
        "root_hash": root(leaves).hex(),
        "proof": [h.hex() for h in inclusion_proof(row.leaf_index, leaves)],
    }


def old_consistency(engine: Engine, first: int, second: int) -> dict[str, Any]:
    leaves = all_leaves(engine, second)
    return {
        "from": first,
        "to": second,
        "from_root": root(leaves[:first]).hex(),
        "to_root": root(leaves).hex(),
        "proof": [h.hex() for h in consistency_proof(first, leaves)],
    }


# -- one size -------------------------------------------------------------------------------------


def measure(
    admin_url: str, size: int, proofs: int, baseline_proofs: int, restarts: int
) -> dict[str, Any]:
    rng = random.Random(size)
    with postgres_database(admin_url, db_name("proofs", str(size))) as url:
        engine = make_engine(sqlalchemy_url(url))
        try:
            create_tables(engine)
            log(f"{size:,} leaves: filling registry_chain by COPY")
            copy_rate = fill_chain(url, size)
            key = Ed25519PrivateKey.generate()

            log(f"{size:,} leaves: building the stored nodes from leaf 0")
            started = time.perf_counter()
            built = Checkpointer(engine, key, CHECKPOINT_EVERY)
            assert built.advance() == size
            build_s = time.perf_counter() - started

            log(f"{size:,} leaves: a checkpointer replaying them from leaf 0, as before")
            started = time.perf_counter()
            assert ReplayingCheckpointer(engine, key, CHECKPOINT_EVERY).advance() == size
            replay_s = time.perf_counter() - started

            log(f"{size:,} leaves: {restarts} restarts from the stored roots' right edge")
            restart_ms, restart_cpu, ready = timed(
                [lambda: Checkpointer(engine, key, CHECKPOINT_EVERY).advance()] * restarts
            )
            assert ready == [size] * restarts

            log(f"{size:,} leaves: {proofs} inclusion and {proofs} consistency proofs at the head")
            positions = [rng.randrange(1, size + 1) for _ in range(proofs)]
            firsts = [rng.randrange(1, size + 1) for _ in range(proofs)]
            # A fresh checkpointer: answers from the stored nodes, nothing in memory.
            prover = Checkpointer(engine, key, CHECKPOINT_EVERY)
            inclusion_ms, inclusion_cpu, inclusions = timed(
                [lambda p=p: prover.inclusion(p, size) for p in positions]
            )
            consistency_ms, consistency_cpu, consistencies = timed(
                [lambda f=f: prover.consistency(f, size) for f in firsts]
            )

            log(f"{size:,} leaves: baseline, {baseline_proofs} of each from every leaf")
            old_inclusion_ms, old_inclusion_cpu, old_inclusions = timed(
                [lambda p=p: old_inclusion(engine, p, size) for p in positions[:baseline_proofs]]
            )
            old_consistency_ms, old_consistency_cpu, old_consistencies = timed(
                [lambda f=f: old_consistency(engine, f, size) for f in firsts[:baseline_proofs]]
            )
            assert old_inclusions == inclusions[:baseline_proofs], "inclusion answers differ"
            assert old_consistencies == consistencies[:baseline_proofs], (
                "consistency answers differ"
            )
        finally:
            engine.dispose()
    return {
        "leaves": size,
        "copy_rows_per_s": copy_rate,
        "build_s": build_s,
        "build_leaves_per_s": size / build_s,
        "replay_from_0_s": replay_s,
        "replay_from_0_leaves_per_s": size / replay_s,
        "restart": summary(restart_ms, restart_cpu),
        "inclusion": summary(inclusion_ms, inclusion_cpu),
        "consistency": summary(consistency_ms, consistency_cpu),
        "baseline_inclusion": summary(old_inclusion_ms, old_inclusion_cpu),
        "baseline_consistency": summary(old_consistency_ms, old_consistency_cpu),
        "answers_equal_to_baseline": True,
        "load_average_after": os.getloadavg(),
    }


def table(results: list[dict[str, Any]]) -> str:
    def ms(s: dict[str, Any]) -> str:
        wall = f"{fmt(s['p50_ms'], ',.1f')} / {fmt(s['p99_ms'], ',.1f')}"
        return f"{wall} (cpu {fmt(s['cpu_p50_ms'], ',.1f')})"

    rows = []
    for r in results:
        rows += [
            [f"{r['leaves']:,}: build nodes, leaves/s", fmt(r["build_leaves_per_s"]), ""],
            [
                f"{r['leaves']:,}: restart to ready, p50 / max ms (cpu p50)",
                f"{fmt(r['restart']['p50_ms'], ',.1f')} / {fmt(r['restart']['max_ms'], ',.1f')}"
                f" (cpu {fmt(r['restart']['cpu_p50_ms'], ',.1f')})",
                f"replay from leaf 0: {fmt(r['replay_from_0_s'], ',.1f')} s"
                f" ({fmt(r['replay_from_0_leaves_per_s'])} leaves/s)",
            ],
            [
                f"{r['leaves']:,}: inclusion p50 / p99 ms (cpu p50)",
                ms(r["inclusion"]),
                f"{ms(r['baseline_inclusion'])} ({r['baseline_inclusion']['count']})",
            ],
            [
                f"{r['leaves']:,}: consistency p50 / p99 ms (cpu p50)",
                ms(r["consistency"]),
                f"{ms(r['baseline_consistency'])} ({r['baseline_consistency']['count']})",
            ],
        ]
    return render_table(["", "stored nodes", "baseline: every leaf (proofs, restarts)"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--proofs", type=int, default=200, help="proofs of each kind per size")
    parser.add_argument(
        "--baseline-proofs", type=int, default=10, help="baseline proofs of each kind per size"
    )
    parser.add_argument("--restarts", type=int, default=20, help="restarts timed per size")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    parser.add_argument("--out", help="JSON result file (default bench/results/proofs-*.json)")
    args = parser.parse_args(argv)

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    measured_on = machine()
    results = [
        measure(args.admin_url, size, args.proofs, args.baseline_proofs, args.restarts)
        for size in args.sizes
    ]
    print(table(results))
    worst = max(max(r["inclusion"]["p99_ms"], r["consistency"]["p99_ms"]) for r in results)
    print(
        f"\ngoal: proofs p99 ≤ {GOAL_P99_MS:.0f} ms: {worst:.1f} ms, "
        f"{'MET' if worst <= GOAL_P99_MS else 'NOT MET'}"
    )
    report = {
        "bench": "proofs",
        "commit": commit,
        "machine": measured_on,
        "parameters": vars(args),
        "results": results,
        "goal_p99_ms": GOAL_P99_MS,
    }
    log(f"wrote {write_results('proofs', report, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
