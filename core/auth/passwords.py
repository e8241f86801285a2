"""Argon2id password hashing and the password policy."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import ValidationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost parameters

# Verifying against this when the user is unknown keeps sign-in timing the same for both cases.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MAX_PASSWORD_LENGTH = 256  # argon2 accepts more; this bounds the work an attacker can ask for


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    """A random password for seeded and reset accounts (about 128 bits)."""
    return secrets.token_urlsafe(16)


def check_policy(password: str, *, username: str, min_length: int) -> None:
    if len(password) < min_length:
        raise ValidationError(f"The password must have at least {min_length} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"The password must have at most {MAX_PASSWORD_LENGTH} characters.")
    if username and username.lower() in password.lower():
        raise ValidationError("The password must not contain the username.")
    if len(set(password)) < 4:
        raise ValidationError(
            "The password is too repetitive; use at least 4 different characters."
        )
