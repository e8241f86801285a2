"""Customers: find a billing customer by name, e-mail, VAT id or number; their billing details
(with an edit form), their subscriptions with each item's history, actions on the live one
(change plan or seats after a proration preview; cancel with a reason) or starting one, invoices,
usage per metric and LLM cost against revenue."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.billing import catalog, customers, invoices_read, subscriptions, usage
from core.billing.catalog import LICENSED, METERED, METRICS, PriceRow
from core.billing.customers import CustomerRow
from core.billing.formatting import money
from core.billing.margin import margin, margin_pct
from core.billing.periods import add_months, label, month_of
from core.billing.pricing import exponent
from core.billing.subscriptions import ItemView, SubscriptionView
from core.clock import utcnow
from core.errors import DomainError

FLASH_KEY = "billing_customers_flash"
PREVIEW_KEY = "billing_change_preview"
PREVIEW_VALID = timedelta(minutes=15)
SEARCH_LIMIT = 200
NO_COUPON = "(no coupon)"


def render() -> None:
    actor = deps.page_actor(Permission.BILLING_READ)
    st.title("Customers")
    st.caption(
        "Billing customers, one per customer organisation. Pick one for their billing details, "
        "subscription, invoices, usage and margin."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        rows = _search(actor)
        customer = _pick(rows)
        if customer is not None:
            _detail(actor, customer)
    except DomainError as exc:
        deps.show_error(exc)


# --- search -------------------------------------------------------------------------------------


def _search(actor: Actor) -> list[CustomerRow]:
    query = st.text_input(
        "Search",
        placeholder="Name, e-mail, VAT id or customer number",
        max_chars=100,
        key="cust_search",
    )
    rows = customers.search_customers(actor, query, limit=SEARCH_LIMIT)
    if not rows:
        st.info(f"No customer matches {query!r}." if query else "There are no customers yet.")
        return rows
    frame = pd.DataFrame(
        [
            {
                "Customer #": r.id,
                "Name": r.name,
                "Country": r.country,
                "Currency": r.currency,
                "VAT id": r.vat_id or "",
                "Tax treatment": r.tax_note,
                "Plan": r.plan,
                "Subscription": r.subscription_status,
                "Since": deps.local_time(r.since, "%Y-%m-%d"),
            }
            for r in rows
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    more = " (the first ones: narrow the search to see others)" if len(rows) == SEARCH_LIMIT else ""
    st.caption(f"{len(rows):,} customer(s){more}.")
    widgets.csv_download(frame, "Download CSV", "customers.csv", key="cust_csv")
    return rows


def _pick(rows: list[CustomerRow]) -> CustomerRow | None:
    if not rows:
        return None
    by_id = {r.id: r for r in rows}
    # A new search keeps the choice while it is still listed, and opens a single match at once.
    if st.session_state.get("cust_pick") not in by_id:
        st.session_state["cust_pick"] = rows[0].id if len(rows) == 1 else None
    chosen = st.selectbox(
        "Customer",
        list(by_id),
        format_func=lambda i: f"{by_id[i].name} (#{i}, {by_id[i].country})",
        placeholder="Choose a customer from the list",
        key="cust_pick",
    )
    return by_id.get(chosen) if chosen is not None else None


# --- one customer -------------------------------------------------------------------------------


def _detail(actor: Actor, customer: CustomerRow) -> None:
    st.subheader(customer.name)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Plan", customer.plan)
    c2.metric("Subscription", customer.subscription_status)
    c3.metric("Since", deps.local_time(customer.since, "%Y-%m-%d") or "-")
    c4.metric("Currency", customer.currency)
    details, subscription, invoices, usage_tab = st.tabs(
        ["Billing details", "Subscriptions", "Invoices", "Usage & margin"]
    )
    manage = has_permission(actor.role, Permission.BILLING_MANAGE)
    with details:
        _billing_details(actor, customer, manage)
    with subscription:
        _subscription(actor, customer, manage)
    with invoices:
        _invoices(actor, customer)
    with usage_tab:
        _usage_and_margin(actor, customer)


def _billing_details(actor: Actor, customer: CustomerRow, manage: bool) -> None:
    st.dataframe(
        pd.DataFrame(
            [
                ("Customer #", str(customer.id)),
                ("Billing e-mail", customer.email or "(none)"),
                ("Country", customer.country),
                ("Billing currency", customer.currency),
                ("VAT id", customer.vat_id or "(none)"),
                ("Tax treatment", customer.tax_note),
                ("Stripe id", customer.stripe_id or "(not synced)"),
            ],
            columns=["Field", "Value"],
        ),
        hide_index=True,
        width="stretch",
    )
    if not manage:
        return
    cid = customer.id
    with st.form(f"cust_edit_{cid}"):
        st.write("**Change billing details**")
        c1, c2, c3 = st.columns([2, 1, 2])
        email = c1.text_input(
            "Billing e-mail", value=customer.email, max_chars=254, key=f"cust_email_{cid}"
        )
        country = c2.text_input(
            "Country (ISO code)", value=customer.country, max_chars=2, key=f"cust_country_{cid}"
        )
        vat_id = c3.text_input(
            "VAT id",
            value=customer.vat_id or "",
            max_chars=32,
            help="With its country prefix, e.g. DE123456788; clear it to remove the VAT id.",
            key=f"cust_vat_{cid}",
        )
        if st.form_submit_button("Save details"):
            changes: dict[str, str] = {}
            if email.strip() != customer.email:
                changes["email"] = email
            if country.strip().upper() != customer.country:
                changes["country"] = country
            if vat_id.strip() != (customer.vat_id or ""):
                changes["vat_id"] = vat_id
            if not changes:
                st.info("Nothing to change.")
                return
            try:
                customers.update_customer(actor, cid, **changes)
            except DomainError as exc:
                deps.show_error(exc)
                return
            names = {"email": "e-mail", "country": "country", "vat_id": "VAT id"}
            widgets.flash(
                FLASH_KEY,
                f"Saved {', '.join(names[k] for k in changes)} of {customer.name}.",
            )
            st.rerun()


# --- subscription -------------------------------------------------------------------------------


def _price_label(p: PriceRow) -> str:
    amount = money(int(Decimal(p.unit_amount)), p.currency)
    per = " per seat" if p.scheme == "per_seat" else ""
    archived = "" if p.active else ", archived"
    return f"{p.product}: {p.lookup_key} ({amount}{per} / month{archived})"


def _plan_item(sub: SubscriptionView) -> ItemView | None:
    """The subscription's current plan item (flat or per seat)."""
    return next((i for i in sub.items if i.ended_at is None and i.scheme in LICENSED), None)


def _subscription(actor: Actor, customer: CustomerRow, manage: bool) -> None:
    subs = subscriptions.customer_subscriptions(actor, customer.id)
    if subs:
        _history(customer, subs)
    else:
        st.write("No subscription yet.")
    if not manage:
        return
    live = next((s for s in subs if s.live), None)
    prices = [
        p
        for p in catalog.list_prices(actor)
        if p.currency == customer.currency and p.scheme in LICENSED + METERED
    ]
    if live is None:
        active = [p for p in prices if p.active]
        plans = {p.lookup_key: p for p in active if p.scheme in LICENSED}
        _start_form(actor, customer, plans, [p for p in active if p.scheme in METERED])
        return
    current = _plan_item(live)
    if current is None:
        st.warning(f"Subscription #{live.id} has no current plan item to change.")
    else:
        # The current price stays on offer even when archived, so seats can still change on it.
        plans = {
            p.lookup_key: p
            for p in prices
            if p.scheme in LICENSED and (p.active or p.lookup_key == current.price_key)
        }
        _change(actor, customer, live, current, plans)
    _cancel(actor, customer, live)


def _history(customer: CustomerRow, subs: list[SubscriptionView]) -> None:
    day = "%Y-%m-%d"
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Subscription #": s.id,
                    "Status": s.status,
                    "Started": deps.local_time(s.started_at, day),
                    "Trial until": deps.local_time(s.trial_end, day),
                    "Ended": deps.local_time(s.ended_at, day),
                    "Cancel reason": s.cancel_reason,
                    "Coupon": s.coupon or "",
                    "Stripe id": s.stripe_id or "",
                }
                for s in subs
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.write("**Item history**")
    items = pd.DataFrame(
        [
            {
                "Subscription #": s.id,
                "Product": i.product,
                "Price key": i.price_key,
                "Scheme": i.scheme,
                "Quantity": i.quantity,
                "From": deps.local_time(i.started_at, "%Y-%m-%d %H:%M"),
                "Until": deps.local_time(i.ended_at, "%Y-%m-%d %H:%M") or "(current)",
            }
            for s in subs
            for i in s.items
        ],
        columns=["Subscription #", "Product", "Price key", "Scheme", "Quantity", "From", "Until"],
    )
    st.dataframe(items, hide_index=True, width="stretch")
    st.caption(
        "Each plan change or seat change ends one item and starts the next; the month's invoice "
        "charges each for the time it ran. Quantity: seats for a per-seat plan, 1 otherwise."
    )
    widgets.csv_download(
        items, "Download CSV", f"subscription-items-{customer.id}.csv", key="cust_items_csv"
    )


def _start_form(
    actor: Actor, customer: CustomerRow, plans: dict[str, PriceRow], metered: list[PriceRow]
) -> None:
    if not plans:
        st.warning(f"There is no active plan price in {customer.currency}: add one first.")
        return
    coupons = [NO_COUPON] + [
        c.code
        for c in catalog.list_coupons(actor)
        if c.currency is None or c.currency == customer.currency
    ]
    cid = customer.id
    with st.form(f"cust_start_{cid}"):
        st.write("**Start a subscription**")
        c1, c2 = st.columns([3, 1])
        plan = c1.selectbox(
            "Plan price",
            list(plans),
            format_func=lambda k: _price_label(plans[k]),
            key=f"cust_start_plan_{cid}",
        )
        seats = c2.number_input(
            "Seats",
            min_value=1,
            max_value=subscriptions.MAX_SEATS,
            value=1,
            help="Per-seat plans only.",
            key=f"cust_start_seats_{cid}",
        )
        extra = st.multiselect(
            "Usage prices (metered, optional)",
            [p.lookup_key for p in metered],
            key=f"cust_start_usage_{cid}",
        )
        c1, c2 = st.columns(2)
        trial = c1.number_input(
            "Trial days",
            min_value=0,
            max_value=subscriptions.MAX_TRIAL_DAYS,
            value=0,
            key=f"cust_start_trial_{cid}",
        )
        coupon = c2.selectbox("Coupon", coupons, key=f"cust_start_coupon_{cid}")
        if st.form_submit_button("Start subscription", type="primary"):
            items = [subscriptions.ItemSpec(plan, int(seats))]
            items += [subscriptions.ItemSpec(key) for key in extra]
            try:
                sub_id = subscriptions.create_subscription(
                    actor,
                    cid,
                    items,
                    trial_days=int(trial),
                    coupon_code=None if coupon == NO_COUPON else coupon,
                )
            except DomainError as exc:
                deps.show_error(exc)
                return
            widgets.flash(FLASH_KEY, f"Started subscription #{sub_id} for {customer.name}.")
            st.rerun()


def _change(
    actor: Actor,
    customer: CustomerRow,
    live: SubscriptionView,
    current: ItemView,
    plans: dict[str, PriceRow],
) -> None:
    st.write("**Change plan or seats**")
    sid = live.id
    st.caption(
        f"Subscription #{sid} ({live.status}): {current.price_key} x {current.quantity} since "
        f"{deps.local_time(current.started_at, '%Y-%m-%d')}."
    )
    keys = list(plans)
    c1, c2 = st.columns([3, 1])
    plan = c1.selectbox(
        "New plan price",
        keys,
        index=keys.index(current.price_key) if current.price_key in keys else 0,
        format_func=lambda k: _price_label(plans[k]),
        key=f"cust_change_plan_{sid}",
    )
    seats = int(
        c2.number_input(
            "Seats",
            min_value=1,
            max_value=subscriptions.MAX_SEATS,
            value=current.quantity,
            help="Per-seat plans only.",
            key=f"cust_change_seats_{sid}",
        )
    )
    wanted = (customer.id, sid, plan, seats)
    if st.button("Preview change", key=f"cust_preview_{sid}"):
        try:
            st.session_state[PREVIEW_KEY] = (
                wanted,
                subscriptions.preview_change(actor, sid, plan, seats, customer_id=customer.id),
            )
        except DomainError as exc:
            deps.show_error(exc)
            return
    stored = st.session_state.get(PREVIEW_KEY)
    if stored is None or stored[0] != wanted:
        st.caption("Preview the change to see this month's proration before confirming it.")
        return
    preview = stored[1]
    cur = preview.currency
    st.write(
        f"From {money(preview.old_monthly, cur)} to {money(preview.new_monthly, cur)} a month, "
        f"effective {deps.local_time(preview.at, '%Y-%m-%d %H:%M')}. "
        "Proration on this month's invoice:"
    )
    c1, c2, c3 = st.columns(3)
    c1.metric("Credit for the unused rest", money(preview.credit, cur))
    c2.metric("Charge for the new plan", money(preview.charge, cur))
    c3.metric("Net this month", money(preview.net, cur))
    if utcnow() - preview.at > PREVIEW_VALID:
        st.warning("This preview is more than 15 minutes old: preview the change again.")
        return
    if st.button("Confirm change", type="primary", key=f"cust_confirm_{sid}"):
        try:
            # At the previewed instant, so the proration is exactly what was shown.
            result = subscriptions.change_plan(
                actor, sid, plan, seats, at=preview.at, customer_id=customer.id
            )
        except DomainError as exc:
            deps.show_error(exc)
            return
        st.session_state.pop(PREVIEW_KEY, None)
        now_on = f"{plan} x {seats}" if plans[plan].scheme == "per_seat" else plan
        widgets.flash(
            FLASH_KEY,
            f"Subscription #{sid} now on {now_on}; net proration this month "
            f"{money(result.net, result.currency)}.",
        )
        st.rerun()


def _cancel(actor: Actor, customer: CustomerRow, live: SubscriptionView) -> None:
    st.write("**Cancel the subscription**")
    sid = live.id
    reason = st.text_input(
        "Reason (for churn reporting)", max_chars=200, key=f"cust_cancel_reason_{sid}"
    )
    sure = st.checkbox(
        "End it now; this month's invoice charges up to today", key=f"cust_cancel_ok_{sid}"
    )
    if st.button("Cancel subscription", disabled=not sure, key=f"cust_cancel_{sid}"):
        try:
            subscriptions.cancel_subscription(actor, sid, reason, customer_id=customer.id)
        except DomainError as exc:
            deps.show_error(exc)
            return
        st.session_state.pop(PREVIEW_KEY, None)
        widgets.flash(FLASH_KEY, f"Subscription #{sid} of {customer.name} cancelled.")
        st.rerun()


# --- invoices, usage, margin --------------------------------------------------------------------


def _major(amount: int, currency: str) -> float:
    """Major units as a float, for the height of a bar only (every figure shown is exact)."""
    return float(Decimal(amount).scaleb(-exponent(currency)))


def _invoices(actor: Actor, customer: CustomerRow) -> None:
    rows = invoices_read.list_invoices(actor, customer_id=customer.id)
    if not rows:
        st.info("No invoices yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "Number": r.number or "(draft)",
                "Period": r.period,
                "Status": r.status,
                "Total": money(r.total, r.currency),
                "Amount due": money(r.amount_due, r.currency),
                "Issued": deps.local_time(r.issued_at, "%Y-%m-%d"),
                "Due": deps.local_time(r.due_at, "%Y-%m-%d"),
            }
            for r in rows
        ]
    )
    bars = pd.DataFrame(
        {
            "Period": [r.period for r in rows],
            customer.currency: [_major(r.total, r.currency) for r in rows],
            "Status": [r.status for r in rows],
        }
    ).sort_values("Period")
    widgets.chart(px.bar(bars, x="Period", y=customer.currency, color="Status"), height=200)
    st.dataframe(frame, hide_index=True, width="stretch")
    widgets.csv_download(frame, "Download CSV", f"invoices-{customer.id}.csv", key="cust_inv_csv")


def _usage_and_margin(actor: Actor, customer: CustomerRow) -> None:
    this_month, _ = month_of(utcnow())
    months = [add_months(this_month, -n) for n in range(6)]
    start = st.selectbox("Month", months, format_func=label, key="cust_month")
    end = add_months(start, 1)
    used = usage.customer_usage(actor, customer.id, start, end)
    st.write(f"**Usage in {label(start)}**")
    if used:
        st.dataframe(
            pd.DataFrame(
                [{"Metric": METRICS.get(m, m), "Quantity": q} for m, q in sorted(used.items())]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info(f"No metered usage in {label(start)}.")
    st.write(f"**LLM cost against revenue in {label(start)}**")
    figures = _margin_row(actor, customer, start, end)
    cur = customer.currency
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Revenue", money(figures["revenue"], cur))
    c2.metric("LLM cost", money(figures["llm_cost"], cur))
    c3.metric("Gross margin", money(figures["gross_margin"], cur))
    pct = margin_pct(figures["gross_margin"], figures["revenue"])
    c4.metric("Margin", "-" if math.isnan(pct) else f"{pct} %")
    if figures["llm_cost"] > figures["revenue"]:
        st.warning(
            f"{customer.name}'s LLM traffic cost more than they were billed in {label(start)}."
        )
    st.caption(
        "Revenue: invoices for the month net of discounts, tax and credit notes (drafts "
        "included). LLM cost: the customer's model traffic at provider prices."
    )
    if st.toggle("Show the last six months", key="cust_margin_history"):
        bars = []
        for month in reversed(months):
            row = _margin_row(actor, customer, month, add_months(month, 1))
            bars += [
                {"Month": label(month), "What": "Revenue", cur: _major(row["revenue"], cur)},
                {"Month": label(month), "What": "LLM cost", cur: _major(row["llm_cost"], cur)},
            ]
        widgets.chart(px.bar(pd.DataFrame(bars), x="Month", y=cur, color="What", barmode="group"))


def _margin_row(
    actor: Actor, customer: CustomerRow, start: datetime, end: datetime
) -> dict[str, int]:
    frame = margin(actor, start, end, customer.currency).customers
    mine = frame[frame["customer_id"] == customer.id]
    if mine.empty:
        return {"revenue": 0, "llm_cost": 0, "gross_margin": 0}
    row = mine.iloc[0]
    return {k: int(row[k]) for k in ("revenue", "llm_cost", "gross_margin")}


if __name__ == "__main__":
    render()
