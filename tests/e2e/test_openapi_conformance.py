"""Each service's OpenAPI document tells the whole truth (issue 15).

Schemathesis reads ``/openapi.json`` as an outside client would, from the real service over HTTP
(``tcr stack`` on fresh SQLite stores, the hand-worked history loaded, real tokens), generates
requests from it in every phase with every check, a fixed seed and a bounded number of
examples, and must find nothing: no schema-valid request refused for a rule the document could
have stated (ST202), no status the document does not name (ST103), no server error.

What a schema cannot state is declared here, operation by operation: which refusals of state
(404 for something not held, 409 for a number used before or a cancelled contract) each may
give, and the rules a schema-valid body may still break (:data:`RULES_NO_SCHEMA_STATES`), each
named in its field's description in the document.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import from_schema
from schemathesis.engine.events import EngineFinished, FatalError, NonFatalError, ScenarioFinished
from schemathesis.engine.statistic import Statistic

from tests.e2e import history as h
from tests.e2e.conftest import RunningStack, running_stack
from tests.e2e.test_whole_system import _post_all, _wait_caught_up

pytestmark = pytest.mark.e2e

BENEFICIARY = sorted(h.EXPECTED)[0][2]
SEED = 15
MAX_EXAMPLES = 20

# The words of every refusal a request that satisfies the document may still get (422): the
# check character of a credit code, "not in the future", and rules across fields or against
# what is stored. Any other 422 to a schema-valid request fails the run.
RULES_NO_SCHEMA_STATES = (
    "GB 32100-2015 check character",
    "must not be in the future",
    "must not be after registered_on",
    "must differ from the seller's",
    "must not exceed contract_amount",
    "before the contract was signed",
    "must not be before the registration",
    "must not be before the invoice was issued",
    "must not be before the payment was made",
    "must be the contract's seller",
    "must be the contract's buyer",
    "would total more than the contract amount",
    "must not be below the evidence already recorded",
    "the log's size",  # a position or tree size after the head
    "is not in a tree of",
    "must be at least 1 and at most `to`",
    "cursor",  # an opaque token of an earlier page
    "not both",  # as_of and position
    "at most the applied position",  # finance: a position its store has not reached
    "a turnover year of the policy in force",  # a payout's year
    "must not be beyond the log's head",  # a payout's basis_position
    "one line per beneficiary and category",
    "not recognised as a provincial demonstration institution",  # a demonstration grant's
    "was recognised at",  # decided before the recognition
    "already received its one-time demonstration grant",
    "the draft policy file",  # a simulation's draft: TOML, and the policy file's rules
    "outside the draft's applies_to",
    "must not be before registered_from",  # the listing's dates
    "holds a token",  # the bureau registers only under a station id of the tokens file
    # A spreadsheet's contents: no schema of an uploaded file states its rows' rules.
    "nothing was stored",  # invalid_import: rows with problems
    "not a spreadsheet",
    "no data rows",
)


def _expect(statuses: list[str], **where: str) -> dict[str, Any]:
    """The statuses a schema-valid request to the operations ``where`` selects may get."""
    selector = {key.replace("_", "-"): value for key, value in where.items()}
    return {**selector, "checks": {"positive_data_acceptance": {"expected-statuses": statuses}}}


# What schemathesis expects a request breaking the document to get, by default.
_REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx"]

# Operations not listed may answer a schema-valid request only 2xx, or 422 for a rule above.
OPERATIONS: dict[str, list[dict[str, Any]]] = {
    "registry": [
        # A contract, invoice or proof not held; a number used before; a cancelled contract.
        _expect(["2xx", "404", "409", "422"], include_path_regex="{registration_no}"),
        # A batch may hold a payout, which finance alone records (the run speaks as the bureau).
        # Its dry run (?dry_run=true) answers a command that breaks its schema with 200 and the
        # error in its report, as the document says: 200 is that report, never a stored batch.
        {
            **_expect(["2xx", "403", "404", "409", "422"], include_path="/v1/batch"),
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "403", "404", "409", "422"]
                },
                "negative_data_rejection": {"expected-statuses": [*_REJECTED, "200"]},
            },
        },
        _expect(["2xx", "409", "422"], include_path_regex="^/v1/(contracts|brokers|provincial)"),
        # Recognised at that level before, a grant number used before; the grant's rules.
        _expect(
            ["2xx", "409", "422"],
            include_path_regex="^/v1/(demonstration-institutions|one-time-grants)",
        ),
        _expect(["2xx", "404", "422"], include_path_regex="^/v1/(proofs|checkpoints/latest)"),
        # Finance alone records a payout, and the run speaks as the bureau.
        _expect(["2xx", "403", "409", "422"], include_path="/v1/payouts"),
    ],
    "finance": [
        # A beneficiary of the seeded history, and 404 in a year it has no entitlement.
        {
            **_expect(["2xx", "404", "422"], include_path="/v1/entitlements/{beneficiary}"),
            "parameters": {"beneficiary": BENEFICIARY},
        },
    ],
    "audit": [],
}


@schemathesis.check
def refused_only_for_a_rule_no_schema_states(ctx: Any, response: Any, case: Any) -> None:
    """A schema-valid request answered 422 names one of :data:`RULES_NO_SCHEMA_STATES`."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if response.status_code != 422:
        return
    body = response.json()
    message = f"{body.get('field')}: {body.get('message')}"
    if not any(rule in message for rule in RULES_NO_SCHEMA_STATES):
        raise AssertionError(
            f"a schema-valid request was refused for a rule the document could state: {message}"
        )


@dataclass(frozen=True)
class Outcome:
    """What one schemathesis run over one service found."""

    cases: int
    statuses: dict[str, int]
    failures: list[str]
    errors: list[str]
    seconds: float

    def summary(self) -> str:
        return "\n".join([*self.failures, *self.errors]) or "none"


def run_schemathesis(base_url: str, token: str, operations: list[dict[str, Any]]) -> Outcome:
    """Every phase and check of schemathesis against the service at ``base_url``."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}},
            "operations": operations,
        }
    )
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)
    statistic = Statistic()
    statuses: Counter[str] = Counter()
    errors = []
    for event in from_schema(schema).execute():
        if isinstance(event, ScenarioFinished):
            statistic.on_scenario_finished(event.recorder)
            statuses.update(
                f"{i.response.status_code // 100}xx"
                if i.response.status_code < 400
                else str(i.response.status_code)
                for i in event.recorder.interactions.values()
                if i.response is not None
            )
        elif isinstance(event, NonFatalError):
            errors.append(f"error {event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, FatalError):
            errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, EngineFinished):
            break
    failures = sorted(
        f"{failure.code} {label}: {failure.title}: {failure.message[:300]}"
        + (
            f"\n  answered {group.response.status_code}: {group.response.content[:300]!r}"
            if group.response is not None
            else ""
        )
        for label, groups in statistic.failures.items()
        for group in groups.values()
        for failure in group.failures
    )
    seconds = time.monotonic() - started
    return Outcome(statistic.total_cases, dict(sorted(statuses.items())), failures, errors, seconds)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The whole system on fresh SQLite stores with the hand-worked history applied."""
    with running_stack(tmp_path_factory.mktemp("conformance"), "sqlite") as stack:
        with httpx.Client(base_url=stack.registry, timeout=30) as client:
            _post_all(client, stack, h.HISTORY)
            _wait_caught_up(client, stack)
            # A signed checkpoint over the whole history: the audit refuses (422) to answer
            # from a log no checkpoint covers, and would answer nothing else.
            auditor = {"Authorization": f"Bearer {stack.tokens['auditor']}"}
            client.post("/v1/checkpoints", headers=auditor).raise_for_status()
        yield stack


# (URL attribute of the running stack, the token schemathesis calls with)
SERVICES = {
    "registry": ("registry", "bureau"),
    "finance": ("finance", "finance"),
    "audit": ("audit", "auditor"),
}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_openapi_document_tells_the_whole_truth(seeded: RunningStack, service: str) -> None:
    url_name, who = SERVICES[service]
    outcome = run_schemathesis(getattr(seeded, url_name), seeded.tokens[who], OPERATIONS[service])
    print(
        f"\n{service}: {outcome.cases} cases, answers {outcome.statuses}, "
        f"{len(outcome.failures)} failures, {outcome.seconds:.1f}s\n{outcome.summary()}"
    )
    assert outcome.cases > 0
    assert not outcome.failures and not outcome.errors, outcome.summary()
