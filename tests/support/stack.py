"""The whole pipeline as real processes: registry, relay, subsidy consumer, finance API.

Each service is a ``tcr`` subprocess with its own environment and a log file under the test's
``tmp_path``; a test kills and restarts them to stage crashes. Also here: a deterministic
history of contracts and evidence to load through ``POST /v1/batch``, and the from-scratch
computation of entitlements over the registry's log that the subsidy service must match.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx
import orjson
import pytest
from sqlalchemy import create_engine, text

from services.common.money import format_fen
from services.common.policy.engine import entitlements, round_half_up
from services.common.policy.facts import FactsBuilder
from services.common.policy.loader import load_policy
from services.common.policy.model import Party
from services.registry.api.batch import batch_args
from services.registry.commands import Command, Principal
from tests.support.broker import free_port, kafka
from tests.support.policy_facts import (
    LOCAL_FIRM,
    LOCAL_INSTITUTE,
    LOCAL_NEW_RD,
    LOCAL_OTHER,
    LOCAL_UNIVERSITY,
    OTHER_LOCAL_FIRM,
    OUTSIDE_FIRM,
    OUTSIDE_FIRM_SH,
    OUTSIDE_UNIVERSITY,
)

TCR = str(Path(sys.executable).with_name("tcr"))
YEARS = range(2020, 2026)
Entitlements = dict[tuple[str, str], dict[str, Any]]


# -- processes ---------------------------------------------------------------------------------


class Service:
    """One ``tcr`` subprocess: started, SIGKILLed, restarted; its output appended to one log."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.starts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Service:
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._log = self.log_path.open("ab")
        self.starts += 1
        self._log.write(f"---- start #{self.starts} of {self.name} ----\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up runs, as in a crash. Safe when not running."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds."""
        self._end(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def terminate(self, timeout: float) -> tuple[float, int | None]:
        """SIGTERM, as a supervisor stops a service: (seconds until it exited, its exit code),
        or (``timeout``, None) when it had not exited by then and was SIGKILLed."""
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"{self.name} is not running")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code: int | None = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - started
        self.kill()
        return took, code

    def wait_exited(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the process to end by itself; its exit code."""
        deadline = time.monotonic() + timeout
        while self.exited() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.exited()

    def logged(self, text: str) -> bool:
        """Whether the service's log holds ``text`` (every start of it)."""
        return self.log_path.exists() and text in self.log_path.read_text(
            encoding="utf-8", errors="replace"
        )

    def pause(self) -> None:
        """SIGSTOP: the process holds still until :meth:`resume`."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def exited(self) -> int | None:
        """The exit code if the process has ended by itself."""
        return self._process.poll() if self._process is not None else None

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        elif process is not None:
            process.wait()  # reap it
        if self._log is not None:
            self._log.close()
            self._log = None


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Stack:
    """Registry, relay, subsidy consumer and finance API over the given stores and broker."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        registry_database_url: str,
        subsidy_database_url: str,
        bootstrap: str,
        topic: str,
        group: str,
        tokens_file: Path,
        writer_token: str,
        feed_token: str,
        finance_token: str,
        partitions: int = 3,
        gap_grace_seconds: float = 0.5,
    ) -> None:
        self.registry_port = free_port()
        self.finance_port = free_port()
        self.registry_url = f"http://127.0.0.1:{self.registry_port}"
        self.finance_url = f"http://127.0.0.1:{self.finance_port}"
        self.bootstrap = bootstrap
        self.topic = topic
        self.group = group
        self.registry_database_url = registry_database_url
        self.subsidy_database_url = subsidy_database_url
        common = {"TCR_TOKENS_FILE": str(tokens_file)}
        kafka = {
            "TCR_KAFKA_BOOTSTRAP": bootstrap,
            "TCR_KAFKA_TOPIC": topic,
            "TCR_KAFKA_PARTITIONS": str(partitions),
        }
        registry_env = {
            **common,
            "TCR_REGISTRY_DATABASE_URL": registry_database_url,
            "TCR_SIGNING_KEY_FILE": str(tmp_path / "registry-signing-key.pem"),
        }
        subsidy_env = {
            **common,
            "TCR_SUBSIDY_DATABASE_URL": subsidy_database_url,
            "TCR_REGISTRY_URL": self.registry_url,
            "TCR_REGISTRY_TOKEN": feed_token,
        }
        base = _base_env()
        self.registry = Service(
            "registry",
            [TCR, "registry", "serve", "--port", str(self.registry_port), "--no-access-log"],
            {**base, **registry_env},
            tmp_path / "registry.log",
        )
        self.relay = Service(
            "relay", [TCR, "relay"], {**base, **registry_env, **kafka}, tmp_path / "relay.log"
        )
        self.consumer = Service(
            "consumer",
            [TCR, "subsidy", "consume"],
            {
                **base,
                **subsidy_env,
                **kafka,
                "TCR_KAFKA_GROUP": group,
                "TCR_GAP_GRACE_SECONDS": str(gap_grace_seconds),
            },
            tmp_path / "consumer.log",
        )
        self.finance = Service(
            "finance",
            [TCR, "subsidy", "serve", "--port", str(self.finance_port), "--log-level", "warning"],
            {**base, **subsidy_env},
            tmp_path / "finance.log",
        )
        self.services = [self.registry, self.relay, self.consumer, self.finance]
        self._exit = ExitStack()
        self.writer = self._client(self.registry_url, writer_token, timeout=60.0)
        self.reader = self._client(self.registry_url, feed_token)
        self.finance_client = self._client(self.finance_url, finance_token)

    def _client(self, url: str, token: str, timeout: float = 10.0) -> httpx.Client:
        client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        self._exit.callback(client.close)
        return client

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> Stack:
        """Start everything: the HTTP services first (each creates its tables), then the rest."""
        self._exit.callback(self.kill_all)
        self.registry.start()
        self.finance.start()
        self.wait_healthy(self.registry, self.reader)
        self.wait_healthy(self.finance, self.finance_client)
        self.relay.start()
        self.consumer.start()
        return self

    def kill_all(self) -> None:
        for service in self.services:
            service.kill()

    def close(self) -> None:
        self._exit.close()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_healthy(self, service: Service, client: httpx.Client, timeout: float = 30.0) -> None:
        """Wait until the service answers ``GET /v1/health`` with 200."""
        self.wait_for(
            lambda: client.get("/v1/health").status_code == 200,
            f"{service.name} to answer /v1/health",
            timeout,
        )

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll ``condition`` until true; fail the test with every service's last log lines."""
        deadline = time.monotonic() + timeout
        while not self._holds(condition):
            dead = [s.name for s in self.services if s.exited() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{', '.join(dead)} exited" if dead else f"timed out after {timeout}s"
                pytest.fail(f"waiting for {what}: {why}\n{self.logs()}")
            time.sleep(0.1)

    @staticmethod
    def _holds(condition: Callable[[], bool]) -> bool:
        try:
            return condition()
        except httpx.TransportError:  # a service restarting, or slow under load: ask again
            return False

    def logs(self, lines: int = 30) -> str:
        return "\n".join(f"==== {s.name} ====\n{s.tail(lines)}" for s in self.services)

    # -- registry ----------------------------------------------------------------------------

    def post(self, commands: list[dict[str, Any]]) -> tuple[int, int]:
        """Store commands through ``POST /v1/batch``, 1,000 at a time; the positions taken."""
        first = last = 0
        for start in range(0, len(commands), 1000):
            response = self.writer.post(
                "/v1/batch", json={"commands": commands[start : start + 1000]}
            )
            assert response.status_code == 201, response.text
            positions = response.json()["positions"]
            first, last = first or positions[0], positions[1]
        return first, last

    def registry_head(self) -> int:
        head: int = self.reader.get("/v1/health").raise_for_status().json()["head"]
        return head

    def registry_log(self) -> list[dict[str, Any]]:
        """Every envelope of the registry's log, read through ``GET /v1/events``."""
        return read_feed(self.reader)

    def relay_position(self) -> int:
        engine = create_engine(self.registry_database_url)
        try:
            with engine.connect() as conn:
                value = conn.execute(
                    text("SELECT position FROM registry_relay WHERE name = 'kafka'")
                ).scalar()
        finally:
            engine.dispose()
        return int(value or 0)

    def set_relay_position(self, position: int) -> None:
        engine = create_engine(self.registry_database_url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE registry_relay SET position = :p WHERE name = 'kafka'"),
                    {"p": position},
                )
        finally:
            engine.dispose()

    # -- subsidy -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.finance_client.get("/v1/health").raise_for_status().json()
        return answer

    def wait_caught_up(self, timeout: float = 60.0) -> int:
        """Wait until subsidy has applied everything up to the registry's head; return it."""
        reached: list[int] = []

        def caught_up() -> bool:
            head = self.registry_head()
            applied = self.health()["applied_position"]
            reached[:] = [head]
            return bool(applied == head)

        self.wait_for(caught_up, "subsidy to apply up to the registry's head", timeout)
        return reached[0]

    def served_entitlements(self, year: int) -> tuple[int, Entitlements]:
        """What the finance API serves for a year: (position, entitlements by key)."""
        response = self.finance_client.get(
            "/v1/entitlements", params={"year": year, "include": "claims"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["position"], {
            (e["category"], e["beneficiary"]): {
                "turnover": e["turnover"],
                "gross": e["gross"],
                "entitlement": e["entitlement"],
                "contracts": sorted(c["registration_no"] for c in e["contracts"]),
                "excluded": sorted((x["registration_no"], x["reason"]) for x in e["excluded"]),
            }
            for e in body["entitlements"]
        }

    def assert_serves_the_log(self) -> int:
        """Catch up, then check every year's entitlements equal a from-scratch computation."""
        head = self.wait_caught_up()
        expected = recompute(self.registry_log())
        for year in YEARS:
            position, served = self.served_entitlements(year)
            assert position == head, f"{year}: served at position {position}, head {head}"
            assert served == expected[year], f"entitlements of {year} differ from the log"
        return head


def make_stack(
    tmp_path: Path, registry_url: str, subsidy_url: str, bootstrap: str, tokens: Any
) -> Stack:
    """A stack over these stores and broker, on a topic and consumer group of its own, with the
    bureau writing, the service principal reading the feed and finance reading entitlements."""
    name = uuid.uuid4().hex[:8]
    return Stack(
        tmp_path,
        registry_database_url=registry_url,
        subsidy_database_url=subsidy_url,
        bootstrap=bootstrap,
        topic=f"events-{name}",
        group=f"subsidy-{name}",
        tokens_file=tokens.path,
        writer_token=tokens.bureau,
        feed_token=tokens.service,
        finance_token=tokens.finance,
    )


def read_feed(client: httpx.Client, after: int = 0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    while True:
        page = client.get("/v1/events", params={"after": after, "limit": 5000})
        page.raise_for_status()
        body = page.json()
        events.extend(body["events"])
        if not body["events"]:
            return events
        after = body["next_after"]


def recompute(envelopes: Iterable[dict[str, Any]]) -> dict[int, Entitlements]:
    """Every year's entitlements computed from scratch over the log, keyed as served."""
    facts = FactsBuilder().apply_all(envelopes).facts()
    policy = load_policy()
    result: dict[int, Entitlements] = {}
    for year in YEARS:
        result[year] = {
            (e.category, e.beneficiary): {
                "turnover": format_fen(round_half_up(e.turnover)),
                "gross": format_fen(e.gross_fen),
                "entitlement": format_fen(e.entitlement_fen),
                "contracts": sorted(c.registration_no for c in e.contracts),
                "excluded": sorted((x.registration_no, x.reason) for x in e.excluded),
            }
            for e in entitlements(facts, year, policy)
        }
    return result


# -- Kafka -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    key: str
    envelope: dict[str, Any]


def topic_records(bootstrap: str, topic: str, quiet: float = 1.5) -> list[TopicRecord]:
    """Every record the topic holds, read from the beginning of each partition until quiet."""
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
        consumer_timeout_ms=int(quiet * 1000),
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [kafka.TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        return [
            TopicRecord(r.partition, r.offset, r.key.decode(), orjson.loads(r.value))
            for r in consumer
        ]
    finally:
        consumer.close()


def topic_positions(bootstrap: str, topic: str) -> list[int]:
    """Every log position the topic holds, with repeats."""
    return [int(r.envelope["position"]) for r in topic_records(bootstrap, topic)]


def topic_partitions(bootstrap: str, topic: str) -> set[int]:
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return set(consumer.partitions_for_topic(topic) or ())
    finally:
        consumer.close()


def committed_offsets(stack: Stack, partitions: list[int]) -> dict[int, int | None]:
    """The subsidy consumer group's committed offset of each partition."""
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=stack.bootstrap, group_id=stack.group, enable_auto_commit=False
    )
    try:
        return {p: consumer.committed(kafka.TopicPartition(stack.topic, p)) for p in partitions}
    finally:
        consumer.close()


def follow_until_every_partition_is_committed(stack: Stack, next_contract: int) -> None:
    """Post a contract at a time until the consumer group has committed on every partition:
    then it has joined and follows the topic (it starts at the end of the topic, not before)."""
    numbers = iter(range(next_contract, next_contract + 1000))

    def committed_everywhere() -> bool:
        partitions = topic_partitions(stack.bootstrap, stack.topic)
        if partitions and None not in committed_offsets(stack, sorted(partitions)).values():
            return True
        stack.post(contract_commands(next(numbers), 1))
        time.sleep(0.3)
        return False

    stack.wait_for(committed_everywhere, "the consumer to join its group", 60)


# -- a history to load -------------------------------------------------------------------------


def _party(p: Party) -> dict[str, str]:
    return asdict(p)


# (seller, buyer): absorption, output and broker-only pairs.
PAIRS = [
    (OUTSIDE_FIRM, LOCAL_FIRM),
    (LOCAL_UNIVERSITY, OTHER_LOCAL_FIRM),
    (LOCAL_INSTITUTE, LOCAL_FIRM),
    (OUTSIDE_FIRM_SH, OTHER_LOCAL_FIRM),
    (LOCAL_NEW_RD, LOCAL_OTHER),
    (OUTSIDE_UNIVERSITY, LOCAL_FIRM),
    (LOCAL_FIRM, OUTSIDE_FIRM),
]


def setup_commands() -> list[dict[str, Any]]:
    """Brokers filed at different dates and provincial funding for two sellers."""
    brokers = [("B-1", "2019-06-01"), ("B-2", "2021-03-01"), ("B-3", "2024-02-01")]
    funding = [(LOCAL_UNIVERSITY, 2021), (LOCAL_INSTITUTE, 2023)]
    return [
        {
            "op": "file_broker",
            "body": {
                "broker_id": broker_id,
                "name": f"经纪人 {broker_id}",
                "organisation_credit_code": LOCAL_FIRM.credit_code,
                "filed_on": filed_on,
            },
        }
        for broker_id, filed_on in brokers
    ] + [
        {
            "op": "record_provincial_funding",
            "body": {
                "credit_code": seller.credit_code,
                "year": year,
                "programme": "河南省科技成果转化专项",
                "amount": "300000.00",
            },
        }
        for seller, year in funding
    ]


def registration_no(i: int) -> str:
    return f"TC{i:06d}"


def _amount_fen(i: int) -> int:
    if i % 17 == 9:
        return 620_000_000  # 6.2 million yuan: its buyer or seller reaches a cap
    return 20_000_000 + 1_357_700 * i + (i * 7) % 100


def contract_commands(start: int, count: int) -> list[dict[str, Any]]:
    """``count`` contracts from number ``start``: registration, invoices and payments.

    Contracts are registered 2019–2025, of eligible and ineligible types, some between related
    parties, some with brokers; each is paid 60% in its year and 40% the next January, and the
    second payment is invoiced only for some of them (the rest wait for a late invoice).
    """
    commands: list[dict[str, Any]] = []
    for i in range(start, start + count):
        seller, buyer = PAIRS[i % len(PAIRS)]
        year = 2019 + i % 7
        month = 1 + (i * 5) % 10
        brokers = ["B-1"] if i % 3 == 0 else ["B-1", "B-2"] if i % 5 == 1 else []
        if i % 7 == 2 and not brokers:
            brokers = ["B-3"]
        no = registration_no(i)
        amount = _amount_fen(i)
        first, second = amount * 6 // 10, amount - amount * 6 // 10
        commands.append(
            {
                "op": "register_contract",
                "body": {
                    "registration_no": no,
                    "station_id": f"S{i % 2 + 1}",  # the stations of the tokens file
                    "registered_on": f"{year}-{month:02d}-10",
                    "signed_on": f"{year}-{month:02d}-01",
                    "title": f"技术合同 {i}",
                    "contract_type": "consulting" if i % 11 == 7 else "development",
                    "domain": "advanced manufacturing",
                    "seller": _party(seller),
                    "buyer": _party(buyer),
                    "brokers": brokers,
                    "contract_amount": format_fen(amount),
                    "technology_amount": format_fen(amount * 9 // 10),
                    "related_party": i % 13 == 5,
                },
            }
        )
        commands.append(_invoice(i, 1, f"{year}-{month:02d}-20", first))
        commands.append(_transfer(i, 1, f"{year}-{month + 1:02d}-05", first))
        commands.append(_transfer(i, 2, f"{year + 1}-01-20", second))
        if i % 4 != 3:
            commands.append(_invoice(i, 2, f"{year + 1}-01-25", second))
    return commands


def correction_commands(numbers: Iterable[int]) -> list[dict[str, Any]]:
    """For each contract number, a correction by its number modulo 4: a cancellation, a voided
    invoice reissued for less, a withdrawn payment and a raised amount, or a late invoice."""
    commands: list[dict[str, Any]] = []
    for i in numbers:
        no = registration_no(i)
        amount = _amount_fen(i)
        first, second = amount * 6 // 10, amount - amount * 6 // 10
        kind = i % 4
        if kind == 0:
            commands.append(
                {
                    "op": "cancel_contract",
                    "body": {
                        "registration_no": no,
                        "cancelled_on": "2026-06-01",
                        "reason": "合同解除",
                    },
                }
            )
        elif kind == 1:
            commands.append(
                {
                    "op": "void_invoice",
                    "body": {
                        "registration_no": no,
                        "invoice_no": f"INV-{i}-1",
                        "voided_on": "2026-06-02",
                        "reason": "开票有误",
                    },
                }
            )
            commands.append(_invoice(i, 3, "2026-06-03", first // 2))
        elif kind == 2:
            commands.append(
                {
                    "op": "withdraw_transfer_proof",
                    "body": {
                        "registration_no": no,
                        "serial_no": f"BANK-{i}-2",
                        "withdrawn_on": "2026-06-02",
                        "reason": "凭证录入有误",
                    },
                }
            )
            commands.append(
                {
                    "op": "amend_contract",
                    "body": {
                        "registration_no": no,
                        "contract_amount": format_fen(amount * 2),
                        "amended_on": "2026-06-02",
                        "reason": "补充协议",
                    },
                }
            )
        else:  # its second payment was never invoiced (see contract_commands)
            commands.append(_invoice(i, 4, "2026-06-04", second))
    return commands


def _invoice(i: int, n: int, issued_on: str, fen: int) -> dict[str, Any]:
    seller, buyer = PAIRS[i % len(PAIRS)]
    return {
        "op": "record_invoice",
        "body": {
            "registration_no": registration_no(i),
            "invoice_no": f"INV-{i}-{n}",
            "issued_on": issued_on,
            "amount": format_fen(fen),
            "issuer_credit_code": seller.credit_code,
            "recipient_credit_code": buyer.credit_code,
        },
    }


def _transfer(i: int, n: int, paid_on: str, fen: int) -> dict[str, Any]:
    seller, buyer = PAIRS[i % len(PAIRS)]
    return {
        "op": "record_transfer_proof",
        "body": {
            "registration_no": registration_no(i),
            "serial_no": f"BANK-{i}-{n}",
            "paid_on": paid_on,
            "amount": format_fen(fen),
            "payer_credit_code": buyer.credit_code,
            "payee_credit_code": seller.credit_code,
            "bank": "中国银行平顶山分行",
        },
    }


def submit(registry: Any, commands: list[dict[str, Any]]) -> tuple[int, int]:
    """Store batch commands in an in-process ``Registry`` as the science bureau."""
    bureau = Principal("bureau", "bureau")
    first = last = 0
    for chunk in in_chunks(commands, 1000):
        batch = [Command(c["op"], batch_args(c["op"], c["body"])) for c in chunk]
        receipt = registry.submit(bureau, batch, batch=True).result(60)
        first, last = first or receipt["positions"][0], receipt["positions"][1]
    return first, last


def read_all(registry: Any) -> list[dict[str, Any]]:
    """Every envelope of an in-process ``Registry``'s log."""
    events: list[dict[str, Any]] = []
    while True:
        page = registry.read_log(events[-1]["position"] if events else 0, 5000)
        if not page["events"]:
            return events
        events.extend(page["events"])


def open_at_once(open_and_close: Callable[[], None], openers: int = 4) -> list[str]:
    """Run ``open_and_close`` on several threads released together; the errors raised.

    A store that fails to open leaves its engine's connections to the garbage collector, whose
    ResourceWarnings the calling test must expect; collect garbage before it ends.
    """
    import threading

    barrier = threading.Barrier(openers)
    errors: list[str] = []

    def one() -> None:
        barrier.wait()
        try:
            open_and_close()
        except Exception as exc:  # reported by message, its frames let go
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    threads = [threading.Thread(target=one) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def in_chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
