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
from core.privacy.models import (
    ConsentEvent,
    ConsentPurpose,
    DataRequest,
    DataSubject,
    ErasureStep,
    RetentionPolicy,
    RetentionRun,
)
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
    "ConsentEvent",
    "ConsentPurpose",
    "DataRequest",
    "DataSubject",
    "Document",
    "ErasureStep",
    "LLMBudget",
    "LLMPrice",
    "LLMUsage",
    "Organisation",
    "QueryLog",
    "RetentionPolicy",
    "RetentionRun",
    "RouterConfigVersion",
    "User",
]
