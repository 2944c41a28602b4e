"""Encryption at rest of secrets the platform must be able to read back (role passwords, DSNs)."""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet


def _fernet(key: str) -> MultiFernet:
    keys = [k.strip() for k in key.split(",") if k.strip()]
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt(key: str, plaintext: str) -> str:
    return _fernet(key).encrypt(plaintext.encode()).decode()


def decrypt(key: str, token: str) -> str:
    return _fernet(key).decrypt(token.encode()).decode()
