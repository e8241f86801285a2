"""Imports every domain's models so `Base.metadata` is complete (Alembic, schema checks)."""

from core.audit.models import AuditEntry, AuditHead
from core.auth.models import AuthSession, User
from core.db import Base
from core.orgs.models import Organisation

__all__ = ["AuditEntry", "AuditHead", "AuthSession", "Base", "Organisation", "User"]
