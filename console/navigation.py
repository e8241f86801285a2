"""Which pages exist, where they sit, and which permission each needs.

The sidebar is built from this list and the signed-in role; later issues append their pages here
(and their permissions to `core.auth.roles`) without changing the shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.auth.roles import Permission, Role, has_permission

ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = ROOT / "pages"

# Sidebar sections, in order; "" is the unlabelled top section shared by everyone.
SECTIONS = ("", "Compliance", "Knowledge", "ML", "Finance", "Admin")


@dataclass(frozen=True)
class PageSpec:
    key: str
    title: str
    icon: str
    section: str
    permission: Permission | None  # None: every signed-in user

    @property
    def script(self) -> Path:
        return PAGES_DIR / f"{self.key}.py"


PAGES: tuple[PageSpec, ...] = (
    PageSpec("home", "Home", ":material/home:", "", None),
    PageSpec("organisations", "Organisations", ":material/apartment:", "", Permission.ORGS_READ),
    PageSpec("account", "My account", ":material/person:", "", None),
    PageSpec("audit", "Audit log", ":material/receipt_long:", "Compliance", Permission.AUDIT_READ),
    PageSpec("consent", "Consent", ":material/fact_check:", "Compliance", Permission.PRIVACY_READ),
    PageSpec(
        "data_requests",
        "Data-subject requests",
        ":material/assignment_ind:",
        "Compliance",
        Permission.PRIVACY_READ,
    ),
    PageSpec(
        "retention", "Retention", ":material/auto_delete:", "Compliance", Permission.PRIVACY_READ
    ),
    PageSpec("pii_scanner", "PII scanner", ":material/policy:", "Compliance", Permission.PII_SCAN),
    PageSpec(
        "dataset_anonymiser",
        "Dataset anonymiser",
        ":material/table_view:",
        "Compliance",
        Permission.PII_SCAN,
    ),
    PageSpec(
        "knowledge_base",
        "Knowledge base",
        ":material/menu_book:",
        "Knowledge",
        Permission.RAG_QUERY,
    ),
    PageSpec(
        "kb_documents", "Documents", ":material/folder_open:", "Knowledge", Permission.RAG_MANAGE
    ),
    PageSpec("llm_compare", "Compare LLMs", ":material/compare:", "ML", Permission.LLM_COMPARE),
    PageSpec("llm_router", "LLM router", ":material/alt_route:", "ML", Permission.LLM_ROUTER_READ),
    PageSpec("models", "Models", ":material/model_training:", "ML", Permission.MLOPS_READ),
    PageSpec("monitoring", "Monitoring", ":material/troubleshoot:", "ML", Permission.MLOPS_READ),
    PageSpec("experiments", "Experiments", ":material/science:", "ML", Permission.MLOPS_READ),
    PageSpec(
        "llm_costs",
        "LLM spend & prices",
        ":material/payments:",
        "Finance",
        Permission.LLM_PRICES_MANAGE,
    ),
    PageSpec("revenue", "Revenue", ":material/monitoring:", "Finance", Permission.BILLING_READ),
    PageSpec(
        "billing_customers",
        "Customers",
        ":material/storefront:",
        "Finance",
        Permission.BILLING_READ,
    ),
    PageSpec(
        "billing_invoices",
        "Invoices",
        ":material/request_quote:",
        "Finance",
        Permission.BILLING_READ,
    ),
    PageSpec(
        "billing_plans", "Plans & prices", ":material/sell:", "Finance", Permission.BILLING_READ
    ),
    PageSpec("stripe_sync", "Stripe sync", ":material/sync:", "Finance", Permission.BILLING_READ),
    PageSpec("users", "Users & roles", ":material/group:", "Admin", Permission.USERS_READ),
    PageSpec("platform", "Platform", ":material/dns:", "Admin", Permission.PLATFORM_READ),
)


def pages_for(role: Role) -> list[PageSpec]:
    return [p for p in PAGES if p.permission is None or has_permission(role, p.permission)]


def sections_for(role: Role) -> dict[str, list[PageSpec]]:
    allowed = pages_for(role)
    grouped = {s: [p for p in allowed if p.section == s] for s in SECTIONS}
    return {s: pages for s, pages in grouped.items() if pages}
