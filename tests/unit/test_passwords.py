from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from core.auth import passwords
from core.errors import ValidationError


@pytest.fixture(autouse=True)
def production_hasher(
    fast_password_hashing: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rest of the suite hashes at the lowest cost (tests/conftest.py); these tests are
    about the real hasher."""
    monkeypatch.setattr(passwords, "_hasher", fast_password_hashing)


def test_hash_is_argon2id_and_verifies() -> None:
    digest = passwords.hash_password("a long enough password")
    recommended = PasswordHasher()  # the library's current recommended cost parameters
    assert digest.startswith(
        f"$argon2id$v=19$m={recommended.memory_cost},t={recommended.time_cost},"
        f"p={recommended.parallelism}$"
    )
    assert passwords.verify_password(digest, "a long enough password")
    assert not passwords.verify_password(digest, "a long enough passworD")
    assert not passwords.needs_rehash(digest)


def test_same_password_hashes_differently() -> None:
    assert passwords.hash_password("same password!!") != passwords.hash_password("same password!!")


def test_unknown_user_and_garbage_hash_never_verify() -> None:
    assert not passwords.verify_password(None, "anything at all")
    assert not passwords.verify_password("not-a-hash", "anything at all")
    assert not passwords.verify_password(passwords.hash_password("x" * 12), "x" * 10_000)


def test_generated_passwords_pass_policy_and_differ() -> None:
    generated = {passwords.generate_password() for _ in range(20)}
    assert len(generated) == 20
    for pw in generated:
        passwords.check_policy(pw, username="someone", min_length=12)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 12"),
        ("x" * 300, "at most 256"),
        ("alice-is-the-best", "must not contain the username"),
        ("abababababababab", "too repetitive"),
    ],
)
def test_policy_rejects(password: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        passwords.check_policy(password, username="alice", min_length=12)
