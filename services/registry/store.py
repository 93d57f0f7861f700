"""The registry's own tables beside the event store, and the engine that writes them.

- ``registry_chain``: one row per log entry: its hash and its predecessor's, its Merkle leaf.
- ``registry_claims``: registration numbers, invoice numbers and bank serials, each unique
  across the whole registry under ``domain.number_key`` (case, width and spaces aside).
- ``registry_idempotency``: the receipt of the first request under each (principal,
  Idempotency-Key): what its events' envelopes said, no HTTP status.
- ``registry_relay``: the last log position the relay has published to Kafka.
- ``registry_checkpoints``: signed Merkle tree heads over the log.
- ``registry_merkle_nodes``: the root of every perfect subtree of the log's Merkle tree.
- ``registry_migrations``: the one-time changes already made to this store's content.
- ``registry_contracts``: one summary row per contract, as its events left it, for the listing.

The first three and the last are written in the same transaction as the events they belong to.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from services.common.db import BIGINT

metadata = MetaData()


chain = Table(
    "registry_chain",
    metadata,
    Column("position", BIGINT, primary_key=True, autoincrement=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The entry's place among entries (from 0) and its Merkle leaf hash (RFC 6962).
    Column("leaf_index", BIGINT, nullable=False, unique=True),
    Column("leaf_hash", String(64), nullable=False),
)

claims = Table(
    "registry_claims",
    metadata,
    Column("kind", String(16), nullable=False),
    Column("key", String(128), nullable=False),
    Column("registration_no", String(128), nullable=False),
    # Key first: a group looks up hundreds of keys of one kind, and with the kind first a
    # planner that misjudges how many rows a kind has scans them all for each key.
    PrimaryKeyConstraint("key", "kind"),
)

idempotency = Table(
    "registry_idempotency",
    metadata,
    Column("principal", String(128), nullable=False),
    Column("key", String(256), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("result", LargeBinary, nullable=False),  # the receipt, as JSON
    PrimaryKeyConstraint("principal", "key"),
)

relay_positions = Table(
    "registry_relay",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BIGINT, nullable=False),
)

checkpoints = Table(
    "registry_checkpoints",
    metadata,
    Column("tree_size", BIGINT, primary_key=True, autoincrement=False),
    Column("root_hash", String(64), nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("signature", String(128), nullable=False),
)

# Node (level, index) is the root of leaves [index << level, (index + 1) << level), stored
# once the last of them is in the log; level 0 (the leaves) is ``registry_chain.leaf_hash``.
# A proof reads O(log n) of these by key instead of every leaf. One row per leaf, ~n in all.
# A log older than the table gains it here and its rows from the checkpointer's first pass.
merkle_nodes = Table(
    "registry_merkle_nodes",
    metadata,
    Column("level", Integer, nullable=False),
    Column("index", BIGINT, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "index"),
)

migrations = Table(
    "registry_migrations",
    metadata,
    Column("name", String(64), primary_key=True),
)


# The listing's rows. Every index ends in the listing's order (newest registration date first,
# then registration number), after the one column a filter fixes: a page walks one index in
# order and stops at its limit, whatever the planner knows of the table (autovacuum is off,
# so it may know nothing). ``search`` holds the lower-cased text ``q`` matches as a substring.
contracts = Table(
    "registry_contracts",
    metadata,
    Column("registration_no", String(128), primary_key=True),
    Column("station_id", String(128), nullable=False),
    Column("registered_on", String(10), nullable=False),
    Column("signed_on", String(10), nullable=False),
    Column("title", Text, nullable=False),
    Column("contract_type", String(32), nullable=False),
    Column("seller_name", Text, nullable=False),
    Column("seller_credit_code", String(32), nullable=False),
    Column("buyer_name", Text, nullable=False),
    Column("buyer_credit_code", String(32), nullable=False),
    Column("contract_amount_fen", BIGINT, nullable=False),
    Column("technology_amount_fen", BIGINT, nullable=False),
    Column("status", String(16), nullable=False),  # active | cancelled
    Column("invoiced_fen", BIGINT, nullable=False),
    Column("paid_fen", BIGINT, nullable=False),
    Column("invoices", Integer, nullable=False),  # not voided
    Column("transfer_proofs", Integer, nullable=False),  # not withdrawn
    Column("search", Text, nullable=False),
    Index("registry_contracts_newest", "registered_on", "registration_no"),
    Index("registry_contracts_station", "station_id", "registered_on", "registration_no"),
    Index("registry_contracts_seller", "seller_credit_code", "registered_on", "registration_no"),
    Index("registry_contracts_buyer", "buyer_credit_code", "registered_on", "registration_no"),
    Index("registry_contracts_status", "status", "registered_on", "registration_no"),
)


def create_tables(engine: Engine) -> None:
    """The registry's own tables (the event store's are the library's); adds missing ones."""
    metadata.create_all(engine)
