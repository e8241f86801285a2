"""Imports every domain's models so `Base.metadata` is complete (Alembic, schema checks)."""

from core.audit.models import AuditEntry, AuditHead
from core.auth.models import AuthSession, User
from core.billing.models import (
    Coupon,
    CreditNote,
    Customer,
    Dispute,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    Payment,
    PendingItem,
    Price,
    Product,
    StripeEvent,
    Subscription,
    SubscriptionItem,
    SyncState,
    UsageEvent,
)
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
    "Coupon",
    "CreditNote",
    "Customer",
    "DataRequest",
    "DataSubject",
    "Dispute",
    "Document",
    "ErasureStep",
    "Invoice",
    "InvoiceLine",
    "InvoiceRun",
    "LLMBudget",
    "LLMPrice",
    "LLMUsage",
    "Organisation",
    "Payment",
    "PendingItem",
    "Price",
    "Product",
    "QueryLog",
    "RetentionPolicy",
    "RetentionRun",
    "RouterConfigVersion",
    "StripeEvent",
    "Subscription",
    "SubscriptionItem",
    "SyncState",
    "UsageEvent",
    "User",
]
