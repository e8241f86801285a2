"""Stripe sync: whether it is on (and in which mode), what is in Stripe and what the next push
would create, the last push and pull and their errors, buttons to push and pull now, the events
applied so far (counts, and the most recent ones one by one), and how to run the webhook receiver
and the scheduled pull.

Everything shown is read from the ledger (`sync_status`), so the page opens at once and works
with the sync off; only the two buttons talk to Stripe."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.billing.stripe.pull import pull_events
from core.billing.stripe.push import push_all
from core.billing.stripe.status import SyncStatus, recent_events, sync_status
from core.errors import DomainError

FLASH_KEY = "stripe_sync_flash"
REPORT_KEY = "stripe_sync_report"
RECENT_LIMIT = 50
VIA_LABELS = {"webhook": "webhook", "poll": "Events API pull"}
KIND_LABELS = {
    "products": "Products",
    "meters": "Usage meters",
    "prices": "Prices",
    "customers": "Customers",
    "coupons": "Coupons",
    "subscriptions": "Subscriptions (live)",
    "invoices": "Invoices (finalised)",
}


def render() -> None:
    actor = deps.page_actor(Permission.BILLING_READ)
    st.title("Stripe sync")
    st.caption(
        "The console's ledger is the source of truth and its invoice run the one billing engine; "
        "Stripe mirrors the ledger and collects payments. A push creates in Stripe what it does "
        "not have yet; Stripe's events (payments, failures, disputes, cancellations) come back "
        "by webhook, and by pulling the Events API as a safety net."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        status = sync_status(actor)
        _state(status)
        _actions(actor, status)
        _counts(status)
        _last_runs(status)
        _events(actor, status)
        _how_to_run()
    except DomainError as exc:
        deps.show_error(exc)


def _state(status: SyncStatus) -> None:
    if not status.enabled:
        st.warning(
            f"{status.message} Until then the ledger works on its own: customers, subscriptions, "
            "invoices, payments and the revenue reports need no Stripe. What is counted as "
            "pending below is pushed once a key is set.",
            icon=":material/sync_disabled:",
        )
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Sync", f"on ({status.mode} mode)" if status.enabled else "off", border=True)
    c2.metric("Pending objects", f"{status.pending_total:,}", border=True)
    c3.metric("Webhooks", "on" if status.webhooks_enabled else "off", border=True)
    c4.metric("Events applied", f"{sum(status.events_by_via.values()):,}", border=True)
    if status.enabled and status.mode == "live":
        st.warning(
            "Live mode: a push creates real customers, subscriptions and invoices in the Stripe "
            "account of this key.",
            icon=":material/warning:",
        )
    elif status.enabled and status.mode == "unknown":
        st.warning(
            "The API key is neither a test nor a live secret key (sk_test_..., sk_live_..., or a "
            "restricted rk_ key); Stripe will likely refuse it."
        )
    if status.enabled and not status.webhooks_enabled:
        st.info(status.webhooks_message)
    if status.last_error:
        when = deps.local_time(status.last_error_at)
        st.error(
            f"The last {status.last_error_operation or 'sync'} failed ({when}): "
            f"{status.last_error}",
            icon=":material/error:",
        )


def _actions(actor: Actor, status: SyncStatus) -> None:
    if not has_permission(actor.role, Permission.BILLING_SYNC):
        return
    off = None if status.enabled else "Set OMNI_STRIPE_API_KEY first."
    c1, c2, _ = st.columns([1, 1, 3])
    push = c1.button(
        "Push to Stripe", type="primary", disabled=not status.enabled, help=off, key="stripe_push"
    )
    pull = c2.button("Pull events", disabled=not status.enabled, help=off, key="stripe_pull")
    try:
        if push:
            with st.spinner("Pushing the ledger to Stripe..."):
                report = push_all(actor)
            widgets.flash(FLASH_KEY, report.describe())
            st.session_state[REPORT_KEY] = {"Skipped": report.skipped, "Warnings": report.warnings}
            st.rerun()
        if pull:
            with st.spinner("Reading Stripe's events..."):
                pulled = pull_events(actor)
            widgets.flash(FLASH_KEY, pulled.describe())
            st.rerun()
    except DomainError as exc:
        # A push or pull cut off half-way keeps what it did; the next one resumes after it.
        deps.show_error(exc)
    details: dict[str, list[str]] = st.session_state.pop(REPORT_KEY, None) or {}
    for title, lines in details.items():
        if lines:
            with st.expander(f"{title} ({len(lines)})", expanded=title == "Warnings"):
                st.markdown("\n".join(f"- {line}" for line in lines))


def _counts(status: SyncStatus) -> None:
    st.subheader("Ledger objects in Stripe")
    frame = pd.DataFrame(
        [
            {"Kind": KIND_LABELS.get(c.kind, c.kind), "In Stripe": c.synced, "Pending": c.pending}
            for c in status.counts
        ],
        columns=["Kind", "In Stripe", "Pending"],
    )
    if not frame.empty and int(frame[["In Stripe", "Pending"]].to_numpy().sum()):
        long = frame.melt(id_vars="Kind", var_name="State", value_name="Objects")
        widgets.chart(
            px.bar(
                long,
                x="Objects",
                y="Kind",
                color="State",
                orientation="h",
                color_discrete_map={"In Stripe": "#2e7d32", "Pending": "#9e9e9e"},
            ),
            height=260,
        )
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(
        "Pending: created by the next push. Only live subscriptions and finalised invoices are "
        "mirrored; drafts can still change and ended subscriptions have nothing to collect."
    )


def _summary(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{n} {k}(s)" for k, n in value.items() if n)
            parts.append(f"{key}: {inner or 'nothing'}")
        elif value not in (None, "", 0):
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


def _last_runs(status: SyncStatus) -> None:
    st.subheader("Last push and pull")
    cursor = status.events_cursor or ""
    if cursor and status.events_cursor_created:
        cursor += f" (event of {deps.local_time(status.events_cursor_created)})"
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Operation": "Push",
                    "When": deps.local_time(status.last_push_at) or "never",
                    "Result": _summary(status.last_push),
                },
                {
                    "Operation": "Pull",
                    "When": deps.local_time(status.last_pull_at) or "never",
                    "Result": _summary(
                        {k: v for k, v in status.last_pull.items() if k != "cursor"}
                    ),
                },
                {"Operation": "Events cursor", "When": "", "Result": cursor or "(none yet)"},
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _events(actor: Actor, status: SyncStatus) -> None:
    st.subheader("Stripe events applied")
    if not status.events_by_via:
        st.info("No Stripe event has been applied yet.")
        return
    c1, c2 = st.columns([1, 2])
    with c1:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Arrived by": VIA_LABELS.get(via, via), "Events": n}
                    for via, n in sorted(status.events_by_via.items())
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    with c2:
        outcomes = pd.DataFrame(
            [{"Outcome": text, "Events": n} for text, n in status.events_by_outcome.items()]
        )
        st.dataframe(outcomes, hide_index=True, width="stretch")
        widgets.csv_download(
            outcomes, "Download CSV", "stripe-event-outcomes.csv", key="events_csv"
        )
    st.caption(
        "Each event is applied once, whichever way it arrives. Outcomes starting with "
        '"needs review" are changes the ledger refused (for example Stripe voided an invoice '
        "the ledger has as paid): look at them in the Stripe dashboard."
    )
    _recent(actor)


def _recent(actor: Actor) -> None:
    st.subheader("Recent events")
    events = recent_events(actor, limit=RECENT_LIMIT)
    frame = pd.DataFrame(
        [
            {
                "Event": e.id,
                "Type": e.type,
                "Arrived by": VIA_LABELS.get(e.via, e.via),
                "Outcome": e.outcome,
                "Stripe time": deps.local_time(e.created),
                "Received": deps.local_time(e.received_at),
            }
            for e in events
        ],
        columns=["Event", "Type", "Arrived by", "Outcome", "Stripe time", "Received"],
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    more = f" (the latest {RECENT_LIMIT})" if len(events) == RECENT_LIMIT else ""
    st.caption(
        f"{len(events):,} event(s){more}, newest first. Stripe time: when Stripe created the "
        "event; received: when the console applied it."
    )
    widgets.csv_download(frame, "Download CSV", "stripe-events.csv", key="recent_events_csv")


def _how_to_run() -> None:
    with st.expander("How to run the sync", icon=":material/terminal:"):
        st.markdown(
            """
**Connect.** Set `OMNI_STRIPE_API_KEY` to a secret key (`sk_test_...` to try it, `sk_live_...`
for real). A push is safe to repeat: every request carries an idempotency key, so a push cut
off half-way resumes where it stopped (within Stripe's 24-hour idempotency window).

**Webhooks (the fast path).** In the Stripe dashboard (Developers > Webhooks) add an endpoint
`https://<console host>/stripe/webhook`, set `OMNI_STRIPE_WEBHOOK_SECRET` to its signing secret
(`whsec_...`), and run the receiver behind the TLS proxy Stripe posts to:

```
omni webhooks serve --host 0.0.0.0 --port 8502
```

`GET /healthz` on the same port answers whether webhooks are on.

**Events API pull (the safety net).** Stripe keeps events for 30 days; pulling from the stored
cursor applies any delivery the webhook missed (and is the only path where Stripe cannot reach
the console). From cron, for example every 15 minutes, with a push after each invoice run:

```
*/15 * * * *  omni billing stripe pull
0 * * * *     omni billing stripe push
```

`omni billing stripe status` prints what this page shows.
"""
        )


if __name__ == "__main__":
    render()
