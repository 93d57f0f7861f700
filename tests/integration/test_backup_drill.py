"""The backup and restore drill, as README "Operating it" tells it, on real processes.

A live registry takes writes while ``pg_dump`` copies its database; the dump is restored into a
new database, ``tcr registry verify`` proves its chain intact, a registry is started on it, the
relay resumes from the position the dump holds, and the subsidy service, rebuilt from the
restored log, serves exactly what that log entitles. Writes acknowledged after the dump's
snapshot are not in it: that is what a restore loses, and why the subsidy store, which had
applied them, is rebuilt and the pipeline moves to a fresh topic.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Tokens
from tests.support.broker import TansuBroker
from tests.support.databases import fresh_postgres_database
from tests.support.stack import (
    TCR,
    Stack,
    contract_commands,
    correction_commands,
    in_chunks,
    setup_commands,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        shutil.which("pg_dump") is None or shutil.which("pg_restore") is None,
        reason="the drill needs PostgreSQL's pg_dump and pg_restore on PATH",
    ),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path_factory.mktemp("broker") / "tansu.log") as started:
        yield started


def libpq(url: str) -> str:
    """The SQLAlchemy URL as PostgreSQL's own tools take it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv[0]} failed ({done.returncode}):\n{done.stderr}"
    return done


class Writes:
    """Posts contracts in small batches on a thread until stopped, then one batch more."""

    def __init__(self, url: str, token: str, first: int) -> None:
        self._client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self._next = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self.batches = 0
        self.failure: str | None = None

    def __enter__(self) -> Writes:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        self._client.close()

    def _run(self) -> None:
        while self.failure is None:
            last = self._stop.is_set()
            for chunk in in_chunks(contract_commands(self._next, 5), 1000):
                answer = self._client.post("/v1/batch", json={"commands": chunk})
                if answer.status_code != 201:
                    self.failure = answer.text
            self._next += 5
            self.batches += 1
            if last:
                return


def test_a_dump_of_the_live_registry_restores_verifies_and_feeds_the_subsidy_again(
    tmp_path: Path, broker: TansuBroker, tokens: Tokens
) -> None:
    with (
        fresh_postgres_database() as live_url,
        fresh_postgres_database() as restored_url,
        fresh_postgres_database() as subsidy_url,
    ):
        name = uuid.uuid4().hex[:8]
        stack = Stack(
            tmp_path,
            registry_database_url=live_url,
            subsidy_database_url=subsidy_url,
            bootstrap=broker.bootstrap,
            topic=f"events-{name}",
            group=f"subsidy-{name}",
            tokens_file=tokens.path,
            writer_token=tokens.bureau,
            feed_token=tokens.service,
            finance_token=tokens.finance,
        )
        with stack:
            # A history, published and applied, then more writes while the dump runs.
            stack.post(setup_commands() + contract_commands(0, 40))
            head_before = stack.wait_caught_up()
            dump = tmp_path / "registry.dump"
            with Writes(stack.registry_url, tokens.bureau, first=1000) as writes:
                stack.wait_for(lambda: writes.batches >= 2, "writes to flow", 30)
                run(["pg_dump", "--format=custom", f"--file={dump}", libpq(live_url)])
            assert writes.failure is None, writes.failure
            live_head = stack.wait_caught_up()

            # The machine is lost: the registry and its relay go with it.
            stack.registry.kill()
            stack.relay.kill()
            stack.consumer.stop()

            run(["pg_restore", "--no-owner", "--exit-on-error",
                 f"--dbname={libpq(restored_url)}", str(dump)])  # fmt: skip
            verified = run([TCR, "registry", "verify", "--database-url", restored_url])
            found = re.search(r"chain intact: ([\d,]+) entries", verified.stdout)
            assert found, verified.stdout
            restored_head = int(found.group(1).replace(",", ""))
            # The dump is a snapshot taken while writes went on: all that came before it,
            # none of what was acknowledged after it.
            assert head_before < restored_head < live_head

            # A registry and the relay on the restored database; a fresh topic, so that the
            # lost tail Kafka still holds is never applied again; the subsidy store rebuilt.
            topic = f"events-{name}-restored"
            stack.registry_database_url = restored_url
            for service in (stack.registry, stack.relay):
                service.env["TCR_REGISTRY_DATABASE_URL"] = restored_url
            for service in (stack.relay, stack.consumer):
                service.env["TCR_KAFKA_TOPIC"] = topic
            stack.topic = topic
            resumes_after = stack.relay_position()
            assert 0 < resumes_after <= restored_head
            stack.registry.start()
            stack.wait_healthy(stack.registry, stack.reader)
            assert stack.registry_head() == restored_head
            rebuilt = run([TCR, "subsidy", "rebuild", "--no-progress"], env=stack.consumer.env)
            assert f"up to position {restored_head:,}" in rebuilt.stdout, rebuilt.stdout
            stack.relay.start()
            stack.consumer.start()

            # New writes go on from the restored log, and everything converges on it.
            stack.post(correction_commands(range(0, 20)))
            head = stack.assert_serves_the_log()
            assert head > restored_head
            stack.wait_for(lambda: stack.relay_position() == head, "the relay to publish", 30)
            assert f"relay resumes after position {resumes_after}" in stack.relay.tail(200)
