"""Imports every domain's models so `Base.metadata` is complete (Alembic, schema checks)."""

from core.audit.models import AuditEntry, AuditHead
from core.auth.models import AuthSession, User
from core.db import Base
from core.llm.models import (
    CompareResult,
    CompareRun,
    LLMBudget,
    LLMPrice,
    LLMUsage,
    RouterConfigVersion,
)
from core.orgs.models import Organisation

__all__ = [
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Base",
    "CompareResult",
    "CompareRun",
    "LLMBudget",
    "LLMPrice",
    "LLMUsage",
    "Organisation",
    "RouterConfigVersion",
    "User",
]
