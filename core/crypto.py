"""Encryption at rest of secrets the platform must be able to read back (role passwords, DSNs),
and the platform's Ed25519 signing key for documents it hands out (deletion records).

The signing key is derived from the encryption key (``QALITEL_ENCRYPTION_KEY``): the first
comma-separated key signs, and a signature made under any of them verifies, so rotating the
encryption key keeps old documents checkable. Anyone holding the public key
(:func:`public_key_pem`) can check a signature without the platform.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SIGNING_CONTEXT = b"qalitel document signing key\x00"


def _keys(key: str) -> list[str]:
    return [k.strip() for k in key.split(",") if k.strip()]


def _fernet(key: str) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in _keys(key)])


def encrypt(key: str, plaintext: str) -> str:
    return _fernet(key).encrypt(plaintext.encode()).decode()


def decrypt(key: str, token: str) -> str:
    return _fernet(key).decrypt(token.encode()).decode()


def _signing_keys(key: str) -> list[Ed25519PrivateKey]:
    keys = _keys(key)
    if not keys:
        raise ValueError("no encryption key configured to derive the signing key from")
    return [Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(SIGNING_CONTEXT + k.encode()).digest()) for k in keys]


def sign(key: str, data: bytes) -> str:
    """The Ed25519 signature of ``data`` under the current signing key, base64."""
    return base64.b64encode(_signing_keys(key)[0].sign(data)).decode()


def signature_ok(key: str, data: bytes, signature: str) -> bool:
    """Whether ``signature`` (base64) is one of a platform signing key over ``data``."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except ValueError:
        return False
    for private in _signing_keys(key):
        try:
            private.public_key().verify(raw, data)
        except InvalidSignature:
            continue
        return True
    return False


def public_key_pem(key: str) -> str:
    """The current signing key's public half (PEM), for checking signatures by hand."""
    return _signing_keys(key)[0].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def public_key_pems(key: str) -> list[str]:
    """The public halves of every signing key that verifies (current first), PEM."""
    return [private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        for private in _signing_keys(key)]


def keyed_digests(key: str, data: bytes) -> list[str]:
    """HMAC-SHA256 of ``data`` (hex) under each encryption key, the current one first: a
    digest stored under an older key still matches after a rotation."""
    context = b"qalitel keyed digest\x00"
    return [hmac.new(context + k.encode(), data, hashlib.sha256).hexdigest()
            for k in _keys(key)]
