"""The subsidy store's tables: the applied log, the facts the money rules read, and the
materialised claims, entitlements and totals, each change kept as a version.

A version holds from the log position that made it true (``valid_from``) until the position
that replaced it (``valid_to``, NULL while current). "As known at position P" is every row with
``valid_from <= P`` and ``valid_to`` NULL or ``> P``; "now" is every row whose ``valid_to`` is
NULL, read through partial indexes that hold only those rows, so a query costs the rows it
returns whatever the log's length.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from services.common.db import BIGINT

metadata = MetaData()

# Bumped whenever the projection's tables or rules of folding change: a store written by
# another version is rebuilt from the registry feed rather than read wrongly.
PROJECTION_VERSION = 3

meta = Table(
    "subsidy_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("projection_version", Integer, nullable=False),
)

# The digest of the policy schedule the projection was computed under (one row): a store
# opened under another schedule is rebuilt, so a year a new version governs is computed.
schedule = Table(
    "subsidy_schedule",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", String(64), nullable=False),
)

head = Table(
    "subsidy_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", BIGINT, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=True),
)

# Every applied entry, without its payload: what `as_of` instants and revisions' events read.
log = Table(
    "subsidy_log",
    metadata,
    Column("position", BIGINT, primary_key=True, autoincrement=False),
    Column("subject", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Index("subsidy_log_recorded_at", "recorded_at", "position"),
    Index("subsidy_log_subject", "subject", "position"),
)

# Entries of types this projection does not know (a newer registry's), applied as nothing and
# counted, by type: the health answer says how many, so the consumer is upgraded. A store older
# than the table gains it empty.
skipped = Table(
    "subsidy_skipped",
    metadata,
    Column("type", String(64), primary_key=True),
    Column("entries", BIGINT, nullable=False),
    Column("last_position", BIGINT, nullable=False),
)

# Entries that arrived beyond a hole in the chain, whole, until the hole is filled.
pending = Table(
    "subsidy_pending",
    metadata,
    Column("position", BIGINT, primary_key=True, autoincrement=False),
    Column("prev_hash", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
)

# -- facts ---------------------------------------------------------------------------------------

contracts = Table(
    "subsidy_contracts",
    metadata,
    Column("registration_no", String(128), primary_key=True),
    Column("facts", LargeBinary, nullable=False),  # JSON: the contract with its evidence
)

brokers = Table(
    "subsidy_brokers",
    metadata,
    Column("broker_id", String(128), primary_key=True),
    Column("name", Text, nullable=False),
    Column("filed_on", String(10), nullable=False),
    Column("region_code", String(6), nullable=False),
)

funding = Table(
    "subsidy_funding",
    metadata,
    Column("credit_code", String(18), nullable=False),
    Column("year", Integer, nullable=False),
    PrimaryKeyConstraint("credit_code", "year"),
)

# One-time grants (一次性补助) as decided: what explains a beneficiary's one_time entitlement.
grants = Table(
    "subsidy_grants",
    metadata,
    Column("grant_no", String(128), primary_key=True),
    Column("credit_code", String(18), nullable=False),
    Column("year", Integer, nullable=False),
    Column("programme", String(32), nullable=False),
    Column("amount_fen", BIGINT, nullable=False),
    Column("decided_on", String(10), nullable=False),
    Column("document_no", Text, nullable=False),
    Index("subsidy_grants_beneficiary", "credit_code", "year"),
)

# Which contracts name a party as seller or broker: what a funding record or a broker's
# filing must recompute.
roles = Table(
    "subsidy_roles",
    metadata,
    Column("party", String(128), nullable=False),
    Column("role", String(8), nullable=False),
    Column("registration_no", String(128), nullable=False),
    PrimaryKeyConstraint("party", "role", "registration_no"),
)

# -- materialised, versioned ------------------------------------------------------------------

_CURRENT = {"postgresql_where": text("valid_to IS NULL"), "sqlite_where": text("valid_to IS NULL")}

claims = Table(
    "subsidy_claims",
    metadata,
    Column("year", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("beneficiary", String(128), nullable=False),
    Column("registration_no", String(128), nullable=False),
    Column("valid_from", BIGINT, nullable=False),
    Column("valid_to", BIGINT, nullable=True),
    Column("name", Text, nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("share", String(64), nullable=False),  # fen, an exact fraction "n" or "n/d"
    Column("reason", String(32), nullable=True),  # None: counted
    PrimaryKeyConstraint("year", "category", "beneficiary", "registration_no", "valid_from"),
    Index("subsidy_claims_by_contract", "registration_no", **_CURRENT),  # type: ignore[arg-type]
    Index("subsidy_claims_changed", "year", "valid_from"),
)

entitlements = Table(
    "subsidy_entitlements",
    metadata,
    Column("year", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("beneficiary", String(128), nullable=False),
    Column("valid_from", BIGINT, nullable=False),
    Column("valid_to", BIGINT, nullable=True),
    Column("name", Text, nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("first_registration_no", String(128), nullable=False),  # whose name it bears
    Column("claims", Integer, nullable=False),  # contracts counted or excluded
    Column("turnover", String(64), nullable=False),  # fen, an exact fraction
    Column("gross_fen", BIGINT, nullable=False),
    Column("entitlement_fen", BIGINT, nullable=False),
    Column("capped", Boolean, nullable=False),
    PrimaryKeyConstraint("year", "category", "beneficiary", "valid_from"),
    Index(
        "subsidy_entitlements_current",
        "year",
        "category",
        "beneficiary",
        **_CURRENT,  # type: ignore[arg-type]
    ),
    Index(
        "subsidy_entitlements_by_beneficiary",
        "beneficiary",
        "year",
        **_CURRENT,  # type: ignore[arg-type]
    ),
    Index("subsidy_entitlements_changed", "year", "valid_from"),
    Index("subsidy_entitlements_ended", "year", "valid_to"),
    # A year's page in the other orders finance sorts by (``reads.SORTS``).
    Index(
        "subsidy_entitlements_by_amount",
        "year",
        "entitlement_fen",
        "category",
        "beneficiary",
        **_CURRENT,  # type: ignore[arg-type]
    ),
    Index(
        "subsidy_entitlements_by_county",
        "year",
        "region_code",
        "category",
        "beneficiary",
        **_CURRENT,  # type: ignore[arg-type]
    ),
)

# Per year and category: over every county (county "*"), and per county ("" for brokers whose
# organisation is not filed yet).
totals = Table(
    "subsidy_totals",
    metadata,
    Column("year", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("county", String(6), nullable=False),
    Column("valid_from", BIGINT, nullable=False),
    Column("valid_to", BIGINT, nullable=True),
    Column("beneficiaries", Integer, nullable=False),
    Column("turnover", String(64), nullable=False),
    Column("gross_fen", BIGINT, nullable=False),
    Column("entitlement_fen", BIGINT, nullable=False),
    PrimaryKeyConstraint("year", "category", "county", "valid_from"),
    Index("subsidy_totals_current", "county", "year", **_CURRENT),  # type: ignore[arg-type]
)

# -- payouts (PayoutRecorded) ---------------------------------------------------------------
# Recorded once each, by position; what was paid and recovered per year, category and
# beneficiary (and per county) summed as they are applied, so a balance reads one row beside
# its entitlement.

payouts = Table(
    "subsidy_payouts",
    metadata,
    Column("position", BIGINT, primary_key=True, autoincrement=False),
    Column("payout_no", String(128), nullable=False),
    Column("year", Integer, nullable=False),
    Column("paid_on", String(10), nullable=False),
    Column("basis_position", BIGINT, nullable=False),
    Index("subsidy_payouts_by_year", "year", "position"),
)

payout_lines = Table(
    "subsidy_payout_lines",
    metadata,
    Column("position", BIGINT, nullable=False),
    Column("year", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("beneficiary", String(128), nullable=False),
    Column("kind", String(8), nullable=False),  # payment | recovery
    Column("amount_fen", BIGINT, nullable=False),
    PrimaryKeyConstraint("position", "category", "beneficiary"),
    Index("subsidy_payout_lines_by_beneficiary", "beneficiary", "year", "position"),
)

paid = Table(
    "subsidy_paid",
    metadata,
    Column("year", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("beneficiary", String(128), nullable=False),
    # As the entitlement named them when first paid: a recovery may outlive the entitlement.
    Column("name", Text, nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("paid_fen", BIGINT, nullable=False),
    Column("recovered_fen", BIGINT, nullable=False),
    Column("last_position", BIGINT, nullable=False),  # of the last payout that touched it
    PrimaryKeyConstraint("year", "category", "beneficiary"),
    Index("subsidy_paid_by_county", "year", "region_code", "category", "beneficiary"),
)

paid_totals = Table(
    "subsidy_paid_totals",
    metadata,
    Column("year", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("county", String(6), nullable=False),  # ALL_COUNTIES, or a region code
    Column("paid_fen", BIGINT, nullable=False),
    Column("recovered_fen", BIGINT, nullable=False),
    PrimaryKeyConstraint("year", "category", "county"),
)

ALL_COUNTIES = "*"
PROJECTION_TABLES = (
    claims,
    entitlements,
    totals,
    contracts,
    brokers,
    funding,
    grants,
    roles,
    payouts,
    payout_lines,
    paid,
    paid_totals,
)
