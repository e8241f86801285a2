"""One error hierarchy for the whole service layer.

Pages catch `DomainError` and show its message; every message is written for a person to act on.
Vendor and driver exceptions are translated at the adapter boundary into these classes.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a failure the user can understand and act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(DomainError):
    """Input failed validation (too long, wrong type, unknown value)."""


class NotFound(DomainError):
    """The thing asked for does not exist."""


class Conflict(DomainError):
    """The change conflicts with existing state (duplicate name, concurrent write)."""


class AuthenticationFailed(DomainError):
    """Sign-in failed. The message never says whether the user exists."""


class AccountLocked(AuthenticationFailed):
    """Too many failed sign-ins; the account is locked until `until`."""


class SessionExpired(DomainError):
    """The sign-in session is unknown, revoked or past its expiry."""


class PermissionDenied(DomainError):
    """The acting user's role lacks the permission the call needs. Always audited."""


class ConfigurationError(DomainError):
    """Settings name something that does not exist or cannot work together."""


class DatabaseUnavailable(DomainError):
    """The relational store cannot be reached."""


class IntegrityError(DomainError):
    """Stored data failed an integrity check (for example the audit hash chain)."""


def stored_error_text(exc: BaseException, limit: int = 1000) -> str:
    """An error as it may be stored or shown: domain messages verbatim, anything else by its type
    only, since driver messages can quote the data being changed (log the details instead)."""
    if isinstance(exc, DomainError):
        return exc.message[:limit]
    return f"unexpected {type(exc).__name__}; the server log has the details."
