"""Signed checkpoints: a signature holds for exactly the fields signed, under exactly one key."""

from __future__ import annotations

import base64
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.common.signing import (
    checkpoint_message,
    checkpoint_signed_by,
    load_or_create_key,
    load_public_key,
    public_key_pem,
    sign_checkpoint,
)

ROOT = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signed(key: Ed25519PrivateKey, **fields: Any) -> dict[str, Any]:
    checkpoint: dict[str, Any] = {
        "tree_size": 8,
        "root_hash": ROOT,
        "issued_at": "2026-11-27T10:00:00.000000Z",
        **fields,
    }
    checkpoint["signature"] = sign_checkpoint(key, checkpoint)
    return checkpoint


def public(key: Ed25519PrivateKey) -> Any:
    return load_public_key(public_key_pem(key))


@pytest.fixture
def umask() -> Iterator[None]:
    """Run with a permissive umask, so only the code's own mode keeps the key private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# -- signing and checking --------------------------------------------------------------------


def test_a_checkpoint_verifies_with_the_signers_public_key(key: Ed25519PrivateKey) -> None:
    assert checkpoint_signed_by(public(key), signed(key))


def test_the_signature_is_base64_ed25519_over_the_canonical_fields(key: Ed25519PrivateKey) -> None:
    checkpoint = signed(key)

    message = checkpoint_message(checkpoint)
    assert message == (
        b'{"issued_at":"2026-11-27T10:00:00.000000Z","root_hash":"' + ROOT.encode() + b'",'
        b'"tree_size":8}'
    )
    signature = base64.b64decode(checkpoint["signature"], validate=True)
    assert len(signature) == 64
    key.public_key().verify(signature, message)  # raises if not


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tree_size", 9),
        ("tree_size", 7),
        ("tree_size", "8"),
        ("root_hash", "0" * 64),
        ("root_hash", ROOT.upper()),
        ("issued_at", "2026-11-27T10:00:00.000001Z"),
    ],
)
def test_a_changed_field_no_longer_verifies(key: Ed25519PrivateKey, field: str, value: Any) -> None:
    checkpoint = signed(key)
    checkpoint[field] = value

    assert not checkpoint_signed_by(public(key), checkpoint)


def test_a_checkpoint_signed_with_another_key_does_not_verify(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()

    assert not checkpoint_signed_by(public(key), signed(other))
    assert checkpoint_signed_by(public(other), signed(other))


def test_another_checkpoints_signature_does_not_verify(key: Ed25519PrivateKey) -> None:
    checkpoint = signed(key)
    checkpoint["signature"] = signed(key, tree_size=9)["signature"]

    assert not checkpoint_signed_by(public(key), checkpoint)


@pytest.mark.parametrize(
    "signature",
    ["", "not base64!", base64.b64encode(b"\x00" * 64).decode(), base64.b64encode(b"x").decode()],
)
def test_a_garbled_signature_is_refused_not_raised(key: Ed25519PrivateKey, signature: str) -> None:
    checkpoint = signed(key)
    checkpoint["signature"] = signature

    assert not checkpoint_signed_by(public(key), checkpoint)


@pytest.mark.parametrize("missing", ["signature", "tree_size", "root_hash", "issued_at"])
def test_a_checkpoint_missing_a_field_is_refused_not_raised(
    key: Ed25519PrivateKey, missing: str
) -> None:
    checkpoint = signed(key)
    del checkpoint[missing]

    assert not checkpoint_signed_by(public(key), checkpoint)


def test_a_flipped_bit_in_the_signature_is_refused(key: Ed25519PrivateKey) -> None:
    checkpoint = signed(key)
    raw = bytearray(base64.b64decode(checkpoint["signature"]))
    raw[10] ^= 0x01
    checkpoint["signature"] = base64.b64encode(bytes(raw)).decode()

    assert not checkpoint_signed_by(public(key), checkpoint)


def test_the_public_key_pem_round_trips(key: Ed25519PrivateKey) -> None:
    pem = public_key_pem(key)

    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert public_key_pem(key) == pem
    loaded = load_public_key(pem)
    assert loaded.public_bytes_raw() == key.public_key().public_bytes_raw()


def test_a_public_key_that_is_not_ed25519_is_refused() -> None:
    ec = generate_private_key(SECP256R1()).public_key()
    pem = ec.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()

    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key(pem)
    with pytest.raises(ValueError):
        load_public_key("not a key")


# -- the key file --------------------------------------------------------------------------


@pytest.mark.usefixtures("umask")
def test_the_key_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "keys" / "registry-signing-key.pem"

    load_or_create_key(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left


def test_the_key_file_is_reloaded_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    created = load_or_create_key(path)
    pem = path.read_bytes()

    reloaded = load_or_create_key(path)

    assert path.read_bytes() == pem
    assert public_key_pem(reloaded) == public_key_pem(created)
    checkpoint = signed(created)
    assert checkpoint_signed_by(public(reloaded), checkpoint)
    assert sign_checkpoint(reloaded, checkpoint) == checkpoint["signature"]  # Ed25519: same


def test_two_key_files_hold_two_keys(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path / "a.pem")
    second = load_or_create_key(tmp_path / "b.pem")

    assert public_key_pem(first) != public_key_pem(second)
    assert not checkpoint_signed_by(public(first), signed(second))


def test_a_key_file_holding_another_kind_of_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_key(path)


def test_a_key_file_made_elsewhere_is_used_as_is(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "key.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    assert public_key_pem(load_or_create_key(path)) == public_key_pem(key)


def create_at_once(path: Path, creators: int = 8) -> set[str]:
    """What ``creators`` threads get from ``load_or_create_key`` called at the same moment."""
    start = threading.Barrier(creators)
    got: list[str] = []

    def create() -> None:
        start.wait()
        try:
            got.append(public_key_pem(load_or_create_key(path)))
        except Exception as exc:  # a creator that fails is a finding too
            got.append(repr(exc))

    threads = [threading.Thread(target=create) for _ in range(creators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return set(got)


def test_creators_racing_in_one_process_all_get_the_key_in_the_file(tmp_path: Path) -> None:
    for attempt in range(40):
        path = tmp_path / f"attempt-{attempt}" / "key.pem"
        got = create_at_once(path)
        assert got == {public_key_pem(load_or_create_key(path))}, (attempt, got)
