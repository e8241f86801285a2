"""Accounts, sign-in with lockout, and sessions with expiry.

Every mutating call takes the acting user, checks the permission matrix through `require`, and
writes an audit entry in the same transaction as the change.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from core.audit.service import record, record_now
from core.auth import passwords
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.models import AuthSession, User
from core.auth.roles import Permission, Role, parse_role
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.errors import (
    AccountLocked,
    AuthenticationFailed,
    Conflict,
    NotFound,
    SessionExpired,
    ValidationError,
)
from core.text import clean_text, search_term

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,63}$")
_BAD_SIGN_IN = "Wrong username or password."


class NewUser(BaseModel):
    """What an admin (or the CLI) provides to create an account; validated at the edge."""

    username: str = Field(min_length=2, max_length=64)
    role: Role
    email: str | None = Field(default=None, max_length=254)
    full_name: str = Field(default="", max_length=200)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        value = value.strip().lower()
        if not _USERNAME.match(value):
            raise ValueError(
                "use 2-64 lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lower()
        if not _EMAIL.match(value):
            raise ValueError("not a valid e-mail address")
        return value


def _validated_user(**data: object) -> NewUser:
    try:
        return NewUser.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "input"
        raise ValidationError(f"Invalid {field}: {first['msg']}.") from None


@dataclass(frozen=True)
class UserView:
    """What the console and CLI show about an account (never the hash)."""

    username: str
    role: Role
    email: str | None
    full_name: str
    is_active: bool
    locked_until: datetime | None
    failed_attempts: int
    last_login_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            user.username,
            Role(user.role),
            user.email,
            user.full_name,
            user.is_active,
            user.locked_until,
            user.failed_attempts,
            user.last_login_at,
            user.created_at,
        )

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > utcnow()


@dataclass(frozen=True)
class SessionGrant:
    token: str
    actor: Actor
    expires_at: datetime
    must_change_password: bool = False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _actor_of(user: User) -> Actor:
    return Actor(username=user.username, role=Role(user.role), user_id=user.id)


def _get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == clean_text(username, 64).lower()))
    if user is None:
        raise NotFound(f"No user named {username[:64]!r}.")
    return user


# --- accounts -------------------------------------------------------------------------------


def create_user(
    actor: Actor,
    username: str,
    role: Role | str,
    *,
    email: str | None = None,
    full_name: str = "",
    password: str | None = None,
) -> tuple[UserView, str | None]:
    """Create an account. Returns the view and, when none was given, the generated password
    (shown once, never stored in clear)."""
    role = parse_role(role) if isinstance(role, str) else role
    data = _validated_user(username=username, role=role, email=email, full_name=full_name)
    require(actor, Permission.USERS_MANAGE, action="users.create", target=data.username)
    settings = get_settings()
    generated = None
    if password is None:
        password = generated = passwords.generate_password()
    passwords.check_policy(
        password, username=data.username, min_length=settings.password_min_length
    )
    with unit_of_work() as session:
        clash = session.scalar(
            select(User).where(
                or_(User.username == data.username, User.email == data.email)
                if data.email
                else User.username == data.username
            )
        )
        if clash is not None:
            what = "username" if clash.username == data.username else "e-mail address"
            raise Conflict(f"A user with that {what} already exists.")
        user = User(
            username=data.username,
            role=data.role.value,
            email=data.email,
            full_name=data.full_name.strip(),
            password_hash=passwords.hash_password(password),
            password_changed_at=utcnow(),
            must_change_password=generated is not None,
        )
        session.add(user)
        session.flush()
        record(
            session,
            actor,
            "users.create",
            user.username,
            {"role": user.role, "email": user.email, "full_name": user.full_name},
        )
        return UserView.of(user), generated


def list_users(actor: Actor, search: str = "") -> list[UserView]:
    require(actor, Permission.USERS_READ, action="users.list")
    with unit_of_work(read_only=True) as session:
        stmt = select(User).order_by(User.username)
        needle = search_term(search)
        if needle:
            stmt = stmt.where(
                or_(
                    User.username.contains(needle.lower(), autoescape=True),
                    User.full_name.icontains(needle, autoescape=True),
                    User.email.contains(needle.lower(), autoescape=True),
                )
            )
        return [UserView.of(u) for u in session.scalars(stmt)]


def set_active(actor: Actor, username: str, active: bool) -> UserView:
    action = "users.enable" if active else "users.disable"
    require(actor, Permission.USERS_MANAGE, action=action, target=username[:64])
    if not active and actor.username == username.strip().lower():
        raise ValidationError("You cannot disable your own account.")
    with unit_of_work() as session:
        user = _get_user(session, username)
        if user.is_active != active:
            user.is_active = active
            if not active:  # a disabled account loses its sessions at once
                _revoke_sessions(session, user.id)
            record(session, actor, action, user.username, {"is_active": active})
        return UserView.of(user)


def set_role(actor: Actor, username: str, role: Role | str) -> UserView:
    role = parse_role(role) if isinstance(role, str) else role
    require(actor, Permission.USERS_MANAGE, action="users.set_role", target=username[:64])
    with unit_of_work() as session:
        user = _get_user(session, username)
        if user.role != role.value:
            record(
                session,
                actor,
                "users.set_role",
                user.username,
                {"from": user.role, "to": role.value},
            )
            user.role = role.value
            _revoke_sessions(session, user.id)  # new rights take effect at the next sign-in
        return UserView.of(user)


def reset_password(actor: Actor, username: str, new_password: str | None = None) -> str:
    """Set a new password (generated unless given), unlock, and end the user's sessions."""
    require(actor, Permission.USERS_MANAGE, action="users.reset_password", target=username[:64])
    with unit_of_work() as session:
        user = _get_user(session, username)
        password = new_password or passwords.generate_password()
        passwords.check_policy(
            password, username=user.username, min_length=get_settings().password_min_length
        )
        user.password_hash = passwords.hash_password(password)
        user.password_changed_at = utcnow()
        user.must_change_password = new_password is None
        user.failed_attempts, user.locked_until = 0, None
        _revoke_sessions(session, user.id)
        record(
            session,
            actor,
            "users.reset_password",
            user.username,
            {"generated": new_password is None},
        )
        return password


def unlock(actor: Actor, username: str) -> UserView:
    require(actor, Permission.USERS_MANAGE, action="users.unlock", target=username[:64])
    with unit_of_work() as session:
        user = _get_user(session, username)
        user.failed_attempts, user.locked_until = 0, None
        record(session, actor, "users.unlock", user.username, {})
        return UserView.of(user)


def change_own_password(actor: Actor, current: str, new: str) -> None:
    with unit_of_work() as session:
        user = _get_user(session, actor.username)
        if not passwords.verify_password(user.password_hash, current):
            raise AuthenticationFailed("The current password is wrong.")
        if current == new:
            raise ValidationError("Choose a password different from the current one.")
        passwords.check_policy(
            new, username=user.username, min_length=get_settings().password_min_length
        )
        user.password_hash = passwords.hash_password(new)
        user.password_changed_at = utcnow()
        user.must_change_password = False
        record(session, actor, "auth.change_password", user.username, {})


def count_users(session: Session) -> dict[str, int]:
    now = utcnow()
    total = session.scalar(select(func.count()).select_from(User)) or 0
    active = session.scalar(select(func.count()).select_from(User).where(User.is_active)) or 0
    locked = (
        session.scalar(select(func.count()).select_from(User).where(User.locked_until > now)) or 0
    )
    live = (
        session.scalar(
            select(func.count())
            .select_from(AuthSession)
            .where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
        )
        or 0
    )
    return {"total": total, "active": active, "locked": locked, "sessions": live}


# --- sign-in and sessions -------------------------------------------------------------------


def sign_in(username: str, password: str) -> SessionGrant:
    """Check the password; lock the account after too many failures. Every attempt is audited."""
    settings = get_settings()
    name = clean_text(username, 10_000).lower()
    if not name or len(name) > 64 or len(password) > passwords.MAX_PASSWORD_LENGTH:
        passwords.verify_password(None, "x")  # same cost as a real check
        record_now(
            "anonymous", "auth.sign_in", name[:64], {"reason": "malformed input"}, outcome="failed"
        )
        raise AuthenticationFailed(_BAD_SIGN_IN)
    # The failure is raised after the unit of work commits, so its audit entry and the failed-
    # attempt counter are kept.
    error: AuthenticationFailed | None = None
    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.username == name))
        now = utcnow()
        if user is not None and user.locked_until and user.locked_until > now:
            record(session, name, "auth.sign_in", name, {"reason": "locked"}, outcome="failed")
            error = _locked(user.locked_until)
        elif user is None or not passwords.verify_password(user.password_hash, password):
            error = AuthenticationFailed(_BAD_SIGN_IN)
            if user is not None:
                user.failed_attempts += 1
                if user.failed_attempts >= settings.lockout_threshold:
                    user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
                    user.failed_attempts = 0
                    record(
                        session,
                        name,
                        "auth.lockout",
                        name,
                        {"minutes": settings.lockout_minutes},
                        outcome="failed",
                    )
                    error = _locked(user.locked_until)
            record(
                session,
                "anonymous" if user is None else name,
                "auth.sign_in",
                name,
                {"reason": "unknown user" if user is None else "wrong password"},
                outcome="failed",
            )
        elif not user.is_active:
            record(session, name, "auth.sign_in", name, {"reason": "disabled"}, outcome="failed")
            error = AuthenticationFailed("This account is disabled. Ask an admin to enable it.")
        else:
            if user.password_hash and passwords.needs_rehash(user.password_hash):
                user.password_hash = passwords.hash_password(password)
            user.failed_attempts, user.locked_until, user.last_login_at = 0, None, now
            grant = _open_session(session, user, "password")
            record(session, _actor_of(user), "auth.sign_in", name, {"method": "password"})
    if error is not None:
        raise error
    return grant


def sign_in_oidc(email: str, subject: str = "") -> SessionGrant:
    """Open a session for an identity the OIDC provider vouched for. The account must exist
    locally and be active: the role comes from here, never from the identity provider."""
    address = clean_text(email or "", 254).lower()
    with unit_of_work() as session:
        user = session.scalar(select(User).where(User.email == address)) if address else None
        if user is None or not user.is_active:
            reason = "no account" if user is None else "disabled"
            record(
                session,
                "anonymous",
                "auth.sign_in",
                address,
                {"method": "oidc", "reason": reason, "subject": subject[:128]},
                outcome="failed",
            )
            grant = None
        else:
            user.last_login_at = utcnow()
            grant = _open_session(session, user, "oidc")
            record(
                session,
                _actor_of(user),
                "auth.sign_in",
                user.username,
                {"method": "oidc", "subject": subject[:128]},
            )
    if grant is None:
        raise AuthenticationFailed(
            f"No active console account has the e-mail {address!r}. Ask an admin to create one."
        )
    return grant


def _locked(until: datetime) -> AccountLocked:
    return AccountLocked(
        f"Too many failed sign-ins: this account is locked until {until:%H:%M} UTC. "
        "Try again then, or ask an admin to unlock it."
    )


def _open_session(session: Session, user: User, method: str) -> SessionGrant:
    settings = get_settings()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + timedelta(minutes=settings.session_ttl_minutes)
    session.add(
        AuthSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            method=method,
            created_at=now,
            expires_at=expires,
            last_seen_at=now,
        )
    )
    return SessionGrant(token, _actor_of(user), expires, user.must_change_password)


def _revoke_sessions(session: Session, user_id: int) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def resolve_session(token: str) -> Actor:
    """The actor behind a session token; raises `SessionExpired` when it no longer holds."""
    return session_status(token)[0]


def session_status(token: str) -> tuple[Actor, bool]:
    """(actor, must change password) for a live session; raises `SessionExpired` otherwise.

    Runs on every page rerun, so it reads without the write lock and touches `last_seen_at` at
    most every 30 seconds.
    """
    if not token or len(token) > 128:
        raise SessionExpired("Please sign in.")
    settings = get_settings()
    with unit_of_work(read_only=True) as session:
        row = session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == _token_hash(token))
        ).first()
        if row is None:
            raise SessionExpired("Please sign in.")
        auth_session, user = row
    now = utcnow()
    idle_limit = auth_session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if auth_session.revoked_at is not None or not user.is_active:
        raise SessionExpired("Your session has ended. Please sign in again.")
    if auth_session.expires_at <= now or idle_limit <= now:
        raise SessionExpired("Your session expired. Please sign in again.")
    if now - auth_session.last_seen_at > timedelta(seconds=30):
        with unit_of_work() as session:
            touch = update(AuthSession).where(AuthSession.id == auth_session.id)
            session.execute(touch.values(last_seen_at=now))
    return _actor_of(user), user.must_change_password


def sign_out(token: str) -> None:
    with unit_of_work() as session:
        auth_session = session.scalar(
            select(AuthSession).where(AuthSession.token_hash == _token_hash(token))
        )
        if auth_session is None or auth_session.revoked_at is not None:
            return
        auth_session.revoked_at = utcnow()
        user = session.get(User, auth_session.user_id)
        if user is not None:
            record(session, _actor_of(user), "auth.sign_out", user.username, {})
