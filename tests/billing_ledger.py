"""A small billing ledger built directly through core's session-level helpers: four customers
whose VAT treatment differs (domestic IE, reverse-charged DE business, French consumer under the
OSS, a US company outside EU VAT), a flat and a per-seat plan, and metered LLM tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import catalog
from core.billing.catalog import PriceSpec
from core.billing.customers import ensure_customers
from core.billing.models import Customer
from core.billing.pricing import Tier
from core.billing.subscriptions import ItemSpec, add_subscription
from core.db import unit_of_work
from core.orgs.models import Organisation
from tests.helpers import ADMIN

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORGS = {  # name: (country, vat id)
    "Dublin Data Ltd": ("IE", None),
    "Berlin Robotics GmbH": ("DE", "DE136695976"),
    "Lyon Retail SAS": ("FR", None),
    "Austin Health Inc.": ("US", None),
}


@dataclass(frozen=True)
class Ledger:
    customers: dict[str, int]  # organisation name -> billing customer id


def catalogue(s: Session) -> None:
    catalog.add_product(s, ADMIN, "starter", "Starter plan")
    catalog.add_product(s, ADMIN, "pro", "Pro plan")
    catalog.add_product(s, ADMIN, "llm-tokens", "LLM tokens")
    for currency in ("EUR", "USD"):
        c = currency.lower()
        for spec in (
            PriceSpec("starter", f"starter-{c}", currency, "flat", "4900", "Monthly"),
            PriceSpec("pro", f"pro-{c}", currency, "per_seat", "2500", "Per seat"),
            PriceSpec(
                "llm-tokens",
                f"llm-input-{c}",
                currency,
                "graduated",
                nickname="Input tokens",
                metric="llm_input_tokens",
                tiers=[Tier(1000, Decimal(0)), Tier(None, Decimal("0.5"))],
            ),
        ):
            catalog.add_price(s, ADMIN, spec)
    catalog.add_coupon(s, ADMIN, "HALF", "Half off", percent_off_bp=5000, duration="once")


def build_ledger(subscribe: bool = True) -> Ledger:
    """Organisations, customers and the catalogue; with `subscribe`, everyone on Starter from
    T0, and Berlin on Pro with 4 seats plus metered tokens instead."""
    with unit_of_work() as session:
        for name, (country, _) in ORGS.items():
            session.add(
                Organisation(
                    name=name,
                    country=country,
                    plan="starter",
                    industry="Software",
                    employees=50,
                    domain=name.split()[0].lower() + ".example",
                    signed_up_at=T0,
                )
            )
        session.flush()
        ensure_customers(session)
        catalogue(session)
        ids = {}
        for customer in session.scalars(select(Customer)):
            customer.vat_id = ORGS[customer.name][1]
            ids[customer.name] = customer.id
            if not subscribe:
                continue
            c = customer.currency.lower()
            if customer.name.startswith("Berlin"):
                items = [ItemSpec(f"pro-{c}", 4), ItemSpec(f"llm-input-{c}")]
            else:
                items = [ItemSpec(f"starter-{c}")]
            add_subscription(session, ADMIN, customer, items, T0)
        return Ledger(ids)
