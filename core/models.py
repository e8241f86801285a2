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
from core.rag.models import Chunk, Collection, Document, QueryLog

__all__ = [
    "AuditEntry",
    "AuditHead",
    "AuthSession",
    "Base",
    "Chunk",
    "Collection",
    "CompareResult",
    "CompareRun",
    "Document",
    "LLMBudget",
    "LLMPrice",
    "LLMUsage",
    "Organisation",
    "QueryLog",
    "RouterConfigVersion",
    "User",
]
