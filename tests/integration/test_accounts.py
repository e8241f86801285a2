"""Accounts and sign-in on a real database: lockout, expiry, disabling, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.audit.models import AuditEntry
from core.auth.actor import Actor
from core.auth.models import AuthSession, User
from core.auth.roles import Role
from core.auth.service import (
    change_own_password,
    create_user,
    list_users,
    reset_password,
    resolve_session,
    set_active,
    set_role,
    sign_in,
    sign_out,
    unlock,
)
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    SessionExpired,
    ValidationError,
)
from tests.helpers import ADMIN, PASSWORD, make_user

INJECTIONS = ["' OR '1'='1", "x'; DROP TABLE users; --", "%", "_", "\\", '" OR 1=1 --']


def _audit(action: str | None = None) -> list[AuditEntry]:
    with unit_of_work() as session:
        stmt = select(AuditEntry).order_by(AuditEntry.seq)
        if action:
            stmt = stmt.where(AuditEntry.action == action)
        return list(session.scalars(stmt))


def _user_count() -> int:
    with unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def test_sign_in_opens_a_session_and_sign_out_ends_it(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    grant = sign_in("  Ann ", PASSWORD)
    assert grant.actor.username == "ann" and grant.actor.role is Role.FINANCE
    assert resolve_session(grant.token).username == "ann"
    with unit_of_work() as session:  # only a hash of the token is stored
        assert session.scalar(select(AuthSession.token_hash)) != grant.token
    sign_out(grant.token)
    with pytest.raises(SessionExpired):
        resolve_session(grant.token)
    assert [e.outcome for e in _audit("auth.sign_in")] == ["ok"]
    assert len(_audit("auth.sign_out")) == 1


def test_wrong_password_and_unknown_user_get_the_same_message(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    for name, password in (("ann", "wrong-password!!"), ("nobody", PASSWORD)):
        with pytest.raises(AuthenticationFailed, match=r"^Wrong username or password\.$"):
            sign_in(name, password)
    failed = _audit("auth.sign_in")
    assert [(e.outcome, e.target) for e in failed] == [("failed", "ann"), ("failed", "nobody")]
    assert PASSWORD not in repr([e.summary for e in failed])  # passwords never reach the log


def test_lockout_after_repeated_failures_and_admin_unlock(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed) as info:
            sign_in("ann", "wrong-password!!")
        assert not isinstance(info.value, AccountLocked)
    with pytest.raises(AccountLocked, match="locked until"):
        sign_in("ann", "wrong-password!!")
    with pytest.raises(AccountLocked):  # even the right password is refused while locked
        sign_in("ann", PASSWORD)
    assert len(_audit("auth.lockout")) == 1
    unlock(ADMIN, "ann")
    assert sign_in("ann", PASSWORD).actor.username == "ann"


def test_lock_expires_by_itself(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    with unit_of_work() as session:
        session.execute(update(User).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert sign_in("ann", PASSWORD).actor.username == "ann"


def test_session_expiry_absolute_and_idle(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    absolute, idle = sign_in("ann", PASSWORD), sign_in("ann", PASSWORD)
    with unit_of_work() as session:
        rows = {s.id: s for s in session.scalars(select(AuthSession).order_by(AuthSession.id))}
        first, second = list(rows.values())
        first.expires_at = utcnow() - timedelta(seconds=1)
        second.last_seen_at = utcnow() - timedelta(minutes=61)
    for grant in (absolute, idle):
        with pytest.raises(SessionExpired, match="expired"):
            resolve_session(grant.token)
    with pytest.raises(SessionExpired):
        resolve_session("not-a-token")


def test_disabling_ends_sessions_and_blocks_sign_in(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    grant = sign_in("ann", PASSWORD)
    set_active(ADMIN, "ann", False)
    with pytest.raises(SessionExpired):
        resolve_session(grant.token)
    with pytest.raises(AuthenticationFailed, match="disabled"):
        sign_in("ann", PASSWORD)
    set_active(ADMIN, "ann", True)
    assert sign_in("ann", PASSWORD)


def test_reset_password_generates_one_that_must_be_changed(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    old = sign_in("ann", PASSWORD)
    temporary = reset_password(ADMIN, "ann")
    with pytest.raises(SessionExpired):
        resolve_session(old.token)
    with pytest.raises(AuthenticationFailed):
        sign_in("ann", PASSWORD)
    grant = sign_in("ann", temporary)
    assert grant.must_change_password
    with pytest.raises(AuthenticationFailed, match="current password is wrong"):
        change_own_password(grant.actor, "not-it-at-all", "my own new passphrase")
    change_own_password(grant.actor, temporary, "my own new passphrase")
    assert not sign_in("ann", "my own new passphrase").must_change_password


def test_role_change_takes_effect_at_next_sign_in(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    grant = sign_in("ann", PASSWORD)
    set_role(ADMIN, "ann", "compliance_officer")
    with pytest.raises(SessionExpired):
        resolve_session(grant.token)
    assert sign_in("ann", PASSWORD).actor.role is Role.COMPLIANCE_OFFICER
    assert _audit("users.set_role")[0].summary == '{"from":"finance","to":"compliance_officer"}'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "x" * 65}, "Invalid username"),
        ({"username": "Robert'); DROP TABLE users;--"}, "Invalid username"),
        ({"username": "okname", "full_name": "n" * 201}, "Invalid full_name"),
        ({"username": "okname", "email": "not-an-email"}, "Invalid email"),
        ({"username": "okname", "email": "a@" + "b" * 300 + ".com"}, "Invalid email"),
        ({"username": "okname", "role": "root"}, "Unknown role"),
        ({"username": "okname", "password": "short"}, "at least 12"),
    ],
)
def test_bad_account_input_is_refused_and_writes_nothing(
    db_url: str, kwargs: dict[str, str], message: str
) -> None:
    args = {"role": "finance", **kwargs}
    with pytest.raises(ValidationError, match=message):
        create_user(ADMIN, args.pop("username"), args.pop("role"), **args)
    assert _user_count() == 0
    assert _audit("users.create") == []


def test_duplicates_conflict(db_url: str) -> None:
    make_user("ann", Role.FINANCE, email="ann@example.com")
    with pytest.raises(Conflict, match="username"):
        make_user("ann", Role.ADMIN)
    with pytest.raises(Conflict, match="e-mail"):
        make_user("bob", Role.ADMIN, email="ANN@example.com")
    assert _user_count() == 1


@pytest.mark.parametrize("needle", INJECTIONS)
def test_injection_strings_are_literal_in_search_and_sign_in(db_url: str, needle: str) -> None:
    make_user("ann", Role.FINANCE)
    assert list_users(ADMIN, needle) == []
    with pytest.raises(AuthenticationFailed):
        sign_in(needle, needle + "x" * 12)
    assert [u.username for u in list_users(ADMIN, "")] == ["ann"]


def test_control_characters_are_stripped_not_sent_to_the_database(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    assert [u.username for u in list_users(ADMIN, "an\x00n")] == ["ann"]
    with pytest.raises(AuthenticationFailed):
        sign_in("ann\x00", "\x00" * 20)
    assert _audit("auth.sign_in")[0].target == "ann"


def test_over_long_sign_in_fields_are_refused_without_lookup(db_url: str) -> None:
    with pytest.raises(AuthenticationFailed, match="Wrong username or password"):
        sign_in("u" * 10_000, "p" * 10_000)
    entry = _audit("auth.sign_in")[0]
    assert entry.outcome == "failed" and len(entry.target) <= 64


def test_non_admins_cannot_manage_accounts(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    finance = Actor("ann", Role.FINANCE)
    calls = [
        lambda: create_user(finance, "eve", "admin"),
        lambda: set_active(finance, "ann", False),
        lambda: set_role(finance, "ann", "admin"),
        lambda: reset_password(finance, "ann"),
        lambda: unlock(finance, "ann"),
        lambda: list_users(finance),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert _user_count() == 1
    denied = [e.action for e in _audit() if e.outcome == "denied"]
    assert denied == [
        "users.create",
        "users.disable",
        "users.set_role",
        "users.reset_password",
        "users.unlock",
        "users.list",
    ]


def test_admin_cannot_disable_self_and_unknown_user_is_not_found(db_url: str) -> None:
    admin = make_user("root-admin", Role.ADMIN)
    with pytest.raises(ValidationError, match="your own account"):
        set_active(admin, "root-admin", False)
    with pytest.raises(NotFound, match="No user named"):
        set_active(admin, "ghost", False)
