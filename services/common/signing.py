"""Ed25519 signatures of checkpoints: the key file, and signing and checking a checkpoint."""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.envelope import canonical_bytes

CHECKPOINT_FIELDS = ("tree_size", "root_hash", "issued_at")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The signing key in ``path`` (PKCS#8 PEM), created with mode 600 if the file is absent."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: a racing process sees no file or a whole one.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 600
    temporary = Path(name)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        os.link(temporary, path)
    except FileExistsError:  # another process created it first: use theirs
        return load_or_create_key(path)
    finally:
        temporary.unlink()
    return key


def public_key_pem(key: Ed25519PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def load_public_key(pem: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def checkpoint_message(checkpoint: dict[str, Any]) -> bytes:
    """What is signed: the canonical bytes of ``{tree_size, root_hash, issued_at}``."""
    return canonical_bytes({k: checkpoint[k] for k in CHECKPOINT_FIELDS})


def sign_checkpoint(key: Ed25519PrivateKey, checkpoint: dict[str, Any]) -> str:
    """The base64 Ed25519 signature of a checkpoint."""
    return base64.b64encode(key.sign(checkpoint_message(checkpoint))).decode()


def checkpoint_signed_by(public_key: Ed25519PublicKey, checkpoint: dict[str, Any]) -> bool:
    """Whether the checkpoint's ``signature`` is the key's signature of its fields."""
    try:
        signature = base64.b64decode(checkpoint["signature"], validate=True)
        public_key.verify(signature, checkpoint_message(checkpoint))
    except (InvalidSignature, ValueError, KeyError):
        return False
    return True
