"""Plans & prices: the catalogue of products and their prices in each currency, new products and
prices (the fields follow the pricing scheme; tiers are a small table), archiving, coupons, and
a calculator that prices a quantity the way invoices do (handy for checking tiers).

Amounts are typed and shown in major units (EUR 12.50) and stored in minor units; they are parsed
exactly with Decimal, never as floats. Usage prices may be fractions of a minor unit."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.billing import catalog, pricing
from core.billing.catalog import (
    BILLING_CURRENCIES,
    COUPON_DURATIONS,
    METERED,
    METRICS,
    SCHEMES,
    PriceRow,
    PriceSpec,
)
from core.billing.formatting import money
from core.billing.models import Coupon
from core.errors import DomainError, ValidationError

FLASH_KEY = "billing_plans_flash"
TIERS_KEY = "price_tiers"
SCHEME_LABELS = {
    "flat": "Flat: one amount per month",
    "per_seat": "Per seat: amount x seats per month",
    "per_unit": "Per unit: metered, amount per unit of usage",
    "package": "Package: metered, amount per package of units",
    "graduated": "Graduated tiers: each tier prices the units inside it",
    "volume": "Volume tiers: every unit at the tier the total falls in",
}
TIER_COLUMNS = ["Up to", "Unit amount", "Flat amount"]
EXAMPLE_TIERS = pd.DataFrame(
    [
        {"Up to": "1000", "Unit amount": "0.10", "Flat amount": "0"},
        {"Up to": "", "Unit amount": "0.05", "Flat amount": "0"},
    ],
    columns=TIER_COLUMNS,
)


def render() -> None:
    actor = deps.page_actor(Permission.BILLING_READ)
    st.title("Plans & prices")
    st.caption(
        "Prices never change once created (as in Stripe): to charge differently, add a new price "
        "and move subscriptions to it, so every past invoice keeps the price it was charged at. "
        "Amounts are in major units (EUR 12.50)."
    )
    widgets.show_flash(FLASH_KEY)
    manage = has_permission(actor.role, Permission.BILLING_MANAGE)
    try:
        prices = catalog.list_prices(actor)
        prices_tab, new_tab, coupons_tab, calc_tab = st.tabs(
            ["Prices", "New product or price", "Coupons", "Price calculator"]
        )
        with prices_tab:
            _prices(actor, prices, manage)
        with new_tab:
            if manage:
                _new_product(actor)
                _new_price(actor)
            else:
                st.info("Your role can read the catalogue but not change it.")
        with coupons_tab:
            _coupons(actor, manage)
        with calc_tab:
            _calculator(actor, prices)
    except DomainError as exc:
        deps.show_error(exc)


# --- amounts ------------------------------------------------------------------------------------


def major(minor: Decimal | int | str, currency: str) -> str:
    """Minor units (possibly fractional) as major units: "EUR 49.00", "EUR 0.0000005"."""
    amount = Decimal(minor)
    if amount == amount.to_integral_value():
        return money(int(amount), currency)
    value = amount.scaleb(-pricing.exponent(currency)).normalize()
    return f"{currency} {value:f}"


def parse_minor(text: str, currency: str, what: str, *, whole: bool) -> Decimal:
    """A major-unit amount typed by a person, as exact minor units. `whole`: no fractions of a
    cent (flat, seat and package amounts, flat tier fees)."""
    cleaned = (text or "").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationError(
            f"{what}: {cleaned[:30]!r} is not an amount; type it in {currency} with a dot for "
            "decimals, e.g. 12.50."
        ) from None
    if not value.is_finite() or value < 0:
        raise ValidationError(f"{what} must be a positive amount or 0.")
    minor = value.scaleb(pricing.exponent(currency))
    if whole:
        if minor != minor.to_integral_value():
            raise ValidationError(
                f"{what}: {currency} amounts have {pricing.exponent(currency)} decimals at most."
            )
        return Decimal(pricing.to_minor(value, currency))
    return minor


def _plain(minor: Decimal) -> str:
    """Decimal minor units as stored: plain digits, never exponent notation."""
    return f"{minor.normalize():f}" if minor else "0"


def _tiers(row: PriceRow) -> list[pricing.Tier]:
    return [
        pricing.Tier(t["up_to"], Decimal(t["unit_amount"]), int(t["flat_amount"]))
        for t in json.loads(row.tiers or "[]")
    ]


def describe_tiers(tiers: list[pricing.Tier], currency: str) -> str:
    """ "1-1,000: EUR 0.10 each + EUR 5.00; 1,001-10,000: EUR 0.08 each; above 10,000: ..." """
    parts, lower = [], 1
    for tier in tiers:
        span = f"above {lower - 1:,}" if tier.up_to is None else f"{lower:,}-{tier.up_to:,}"
        text = f"{span}: {major(tier.unit_amount, currency)} each"
        if tier.flat_amount:
            text += f" + {major(tier.flat_amount, currency)}"
        parts.append(text)
        lower = (tier.up_to or 0) + 1
    return "; ".join(parts)


def describe_amount(row: PriceRow) -> str:
    cur = row.currency
    if row.scheme == "flat":
        return f"{major(row.unit_amount, cur)} / month"
    if row.scheme == "per_seat":
        return f"{major(row.unit_amount, cur)} per seat / month"
    if row.scheme == "per_unit":
        return f"{major(row.unit_amount, cur)} per unit"
    if row.scheme == "package":
        # Round-up: a started package is charged in full; otherwise only complete ones.
        which = "started" if row.package_round_up else "complete"
        size = f"{row.package_size or 1:,} {row.unit_label or 'units'}"
        return f"{major(row.unit_amount, cur)} per {which} package of {size}"
    return describe_tiers(_tiers(row), cur)


# --- prices -------------------------------------------------------------------------------------


def _prices(actor: Actor, prices: list[PriceRow], manage: bool) -> None:
    c1, c2, c3 = st.columns(3)
    currencies = c1.multiselect("Currency", BILLING_CURRENCIES, key="plans_currency")
    schemes = c2.multiselect("Scheme", SCHEMES, key="plans_scheme")
    archived = c3.toggle("Show archived prices", value=True, key="plans_archived")
    shown = [
        p
        for p in prices
        if (not currencies or p.currency in currencies)
        and (not schemes or p.scheme in schemes)
        and (archived or p.active)
    ]
    frame = pd.DataFrame(
        [
            {
                "Product": p.product,
                "Price key": p.lookup_key,
                "Nickname": p.nickname,
                "Currency": p.currency,
                "Scheme": p.scheme,
                "Amount": describe_amount(p),
                "Metric": METRICS.get(p.metric or "", p.metric or ""),
                "Unit": _unit(p),
                "Active": p.active,
                "Stripe id": p.stripe_id or "",
            }
            for p in shown
        ],
        columns=[
            "Product",
            "Price key",
            "Nickname",
            "Currency",
            "Scheme",
            "Amount",
            "Metric",
            "Unit",
            "Active",
            "Stripe id",
        ],
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    st.caption(f"{len(shown):,} of {len(prices):,} prices.")
    widgets.csv_download(frame, "Download CSV", "prices.csv", key="plans_csv")
    if manage and prices:
        _archive(actor, prices)


def _archive(actor: Actor, prices: list[PriceRow]) -> None:
    st.write("**Archive or bring back a price**")
    st.caption("An archived price takes no new subscriptions; existing ones keep it.")
    by_key = {p.lookup_key: p for p in prices}
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    key = c1.selectbox(
        "Price",
        list(by_key),
        format_func=lambda k: f"{k} ({'active' if by_key[k].active else 'archived'})",
        key="plans_archive_key",
    )
    active = by_key[key].active
    if c2.button("Archive" if active else "Bring back", key="plans_archive_button"):
        try:
            catalog.set_price_active(actor, key, not active)
        except DomainError as exc:
            deps.show_error(exc)
            return
        widgets.flash(FLASH_KEY, f"Price {key} {'archived' if active else 'is active again'}.")
        st.rerun()


# --- new product and price ----------------------------------------------------------------------


def _new_product(actor: Actor) -> None:
    with st.form("new_product"):
        st.write("**Add a product**")
        c1, c2 = st.columns(2)
        key = c1.text_input(
            "Product key", max_chars=64, placeholder="e.g. support-plus", key="product_key"
        )
        name = c2.text_input("Name", max_chars=120, key="product_name")
        description = st.text_input("Description", max_chars=500, key="product_description")
        if st.form_submit_button("Add product"):
            try:
                catalog.create_product(actor, key, name, description)
            except DomainError as exc:
                deps.show_error(exc)  # the fields keep what was typed
            else:
                _clear("product_key", "product_name", "product_description")
                widgets.flash(
                    FLASH_KEY, f"Product {key.strip().lower()} added; now give it a price."
                )
                st.rerun()


def _clear(*keys: str) -> None:
    """Empty a form after it succeeded (not before: a refused form keeps what was typed)."""
    for key in keys:
        st.session_state.pop(key, None)


def _new_price(actor: Actor) -> None:
    st.write("**Add a price**")
    products = {key: name for key, name, active in catalog.list_products(actor) if active}
    if not products:
        st.info("There is no active product yet: add one above first.")
        return
    scheme = st.selectbox(
        "Pricing scheme", SCHEMES, format_func=lambda s: SCHEME_LABELS[s], key="price_scheme"
    )
    with st.form("new_price"):
        c1, c2, c3 = st.columns(3)
        product = c1.selectbox(
            "Product",
            list(products),
            format_func=lambda k: f"{products[k]} ({k})",
            key="price_product",
        )
        lookup_key = c2.text_input(
            "Price key", max_chars=64, placeholder="e.g. pro-eur-2027", key="price_key"
        )
        currency = c3.selectbox("Currency", BILLING_CURRENCIES, key="price_currency")
        nickname = st.text_input("Nickname", max_chars=120, key="price_nickname")
        fields = _scheme_fields(scheme)
        if st.form_submit_button("Add price", type="primary"):
            try:
                spec = _spec(scheme, product or "", lookup_key, currency, nickname, fields)
                catalog.create_price(actor, spec)
            except DomainError as exc:
                deps.show_error(exc)
            else:
                _clear(TIERS_KEY, "price_key", "price_nickname", "price_amount")
                widgets.flash(FLASH_KEY, f"Price {spec.lookup_key} added.")
                st.rerun()


def _scheme_fields(scheme: str) -> dict[str, object]:
    """The inputs a scheme needs, as typed (parsed on submit, when the currency is known)."""
    fields: dict[str, object] = {}
    if scheme in METERED:
        c1, c2 = st.columns(2)
        fields["metric"] = c1.selectbox(
            "Usage metric", list(METRICS), format_func=METRICS.__getitem__, key="price_metric"
        )
        fields["unit_label"] = c2.text_input(
            "Unit label", max_chars=32, placeholder="e.g. API calls", key="price_unit_label"
        )
    if scheme == "flat":
        fields["amount"] = st.text_input("Amount per month", key="price_amount")
    elif scheme == "per_seat":
        fields["amount"] = st.text_input("Amount per seat per month", key="price_amount")
    elif scheme == "per_unit":
        fields["amount"] = st.text_input(
            "Amount per unit",
            help="May be a fraction of a cent, e.g. 0.0000015 per token.",
            key="price_amount",
        )
    elif scheme == "package":
        c1, c2, c3 = st.columns(3, vertical_alignment="bottom")
        fields["amount"] = c1.text_input("Amount per package", key="price_amount")
        fields["package_size"] = c2.number_input(
            "Units per package", min_value=1, value=10, step=1, key="price_package_size"
        )
        fields["round_up"] = c3.checkbox(
            "Charge a started package in full", value=True, key="price_round_up"
        )
    else:
        st.caption(
            "Tiers, lowest first. **Up to**: the last unit of the tier (leave the last one blank "
            "for everything above). **Unit amount** per unit (may be a fraction of a cent), "
            "**flat amount** once when any unit falls in the tier."
        )
        fields["tiers"] = st.data_editor(
            EXAMPLE_TIERS,
            num_rows="dynamic",
            hide_index=True,
            column_config={c: st.column_config.TextColumn(c) for c in TIER_COLUMNS},
            key=TIERS_KEY,
        )
    return fields


def _spec(
    scheme: str,
    product: str,
    lookup_key: str,
    currency: str,
    nickname: str,
    fields: dict[str, object],
) -> PriceSpec:
    whole = scheme in ("flat", "per_seat", "package")
    amount = (
        parse_minor(str(fields["amount"]), currency, "Amount", whole=whole)
        if "amount" in fields
        else Decimal(0)
    )
    tiers = fields.get("tiers")
    size = fields.get("package_size")
    return PriceSpec(
        product_key=product,
        lookup_key=lookup_key,
        currency=currency,
        scheme=scheme,
        unit_amount=_plain(amount),
        nickname=nickname,
        metric=str(fields["metric"]) if "metric" in fields else None,
        unit_label=str(fields.get("unit_label") or ""),
        package_size=int(size) if isinstance(size, int | float) else None,
        package_round_up=bool(fields.get("round_up", True)),
        tiers=parse_tiers(tiers, currency) if isinstance(tiers, pd.DataFrame) else [],
    )


def _cell(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def parse_tiers(table: pd.DataFrame, currency: str) -> list[pricing.Tier]:
    """The tier editor's rows as tiers; rows left entirely blank are dropped."""
    tiers = []
    for number, row in enumerate(table.to_dict("records"), start=1):
        up_to, unit, flat = (_cell(row.get(c)).strip() for c in TIER_COLUMNS)
        if not (up_to or unit or flat):
            continue
        bound: int | None = None
        if up_to and up_to.lower() not in ("inf", "infinity", "∞"):
            digits = up_to.replace(",", "").replace("_", "")
            if not digits.isdigit():
                raise ValidationError(
                    f"Tier {number}: 'Up to' is {up_to[:20]!r}; it takes a whole number of units "
                    "(blank for the last, open-ended tier)."
                )
            bound = int(digits)
        tiers.append(
            pricing.Tier(
                bound,
                parse_minor(unit or "0", currency, f"Tier {number} unit amount", whole=False),
                int(parse_minor(flat or "0", currency, f"Tier {number} flat amount", whole=True)),
            )
        )
    return tiers


# --- coupons ------------------------------------------------------------------------------------


def describe_off(coupon: Coupon) -> str:
    if coupon.percent_off_bp is not None:
        return f"{Decimal(coupon.percent_off_bp).scaleb(-2).normalize():f} %"
    return money(coupon.amount_off or 0, coupon.currency or "EUR")


def describe_duration(coupon: Coupon) -> str:
    if coupon.duration == "repeating":
        return f"{coupon.duration_months} months"
    return coupon.duration


def _coupons(actor: Actor, manage: bool) -> None:
    coupons = catalog.list_coupons(actor)
    frame = pd.DataFrame(
        [
            {
                "Code": c.code,
                "Name": c.name,
                "Off": describe_off(c),
                "Duration": describe_duration(c),
                "Stripe id": c.stripe_id or "",
                "Created": deps.local_time(c.created_at, "%Y-%m-%d"),
            }
            for c in coupons
        ],
        columns=["Code", "Name", "Off", "Duration", "Stripe id", "Created"],
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    widgets.csv_download(frame, "Download CSV", "coupons.csv", key="coupons_csv")
    if not manage:
        return
    with st.form("new_coupon"):
        st.write("**Add a coupon**")
        c1, c2 = st.columns([1, 2])
        code = c1.text_input("Code", max_chars=32, placeholder="e.g. SPRING10", key="coupon_code")
        name = c2.text_input("Name", max_chars=120, key="coupon_name")
        c1, c2, c3 = st.columns(3)
        kind = c1.radio("Discount", ["Percent off", "Amount off"], key="coupon_kind")
        percent = c2.text_input("Percent off", placeholder="e.g. 20", key="coupon_percent")
        amount = c3.text_input("Amount off", placeholder="e.g. 10.00", key="coupon_amount")
        c1, c2, c3 = st.columns(3)
        currency = c1.selectbox("Currency (amount off)", BILLING_CURRENCIES, key="coupon_currency")
        duration = c2.selectbox("Duration", COUPON_DURATIONS, key="coupon_duration")
        months = c3.number_input(
            "Months (repeating)", min_value=1, max_value=36, value=3, key="coupon_months"
        )
        if st.form_submit_button("Add coupon"):
            try:
                terms = _coupon_terms(kind, percent, amount, currency)
                catalog.create_coupon(
                    actor,
                    code,
                    name,
                    **terms,
                    duration=duration,
                    duration_months=int(months) if duration == "repeating" else None,
                )
            except DomainError as exc:
                deps.show_error(exc)
            else:
                _clear("coupon_code", "coupon_name", "coupon_percent", "coupon_amount")
                widgets.flash(FLASH_KEY, f"Coupon {code.strip().upper()} added.")
                st.rerun()


def _coupon_terms(kind: str, percent: str, amount: str, currency: str) -> dict[str, object]:
    if kind == "Percent off":
        try:
            value = Decimal((percent or "").strip().rstrip("%").strip())
        except InvalidOperation:
            raise ValidationError(
                f"Percent off: {percent[:20]!r} is not a number (e.g. 20 or 12.5)."
            ) from None
        basis_points = value.scaleb(2) if value.is_finite() else Decimal(-1)
        if basis_points != basis_points.to_integral_value():
            raise ValidationError("Percent off has at most two decimals (e.g. 12.25).")
        return {"percent_off_bp": int(basis_points)}
    minor = parse_minor(amount, currency, "Amount off", whole=True)
    return {"amount_off": int(minor), "currency": currency}


# --- calculator ---------------------------------------------------------------------------------


def _unit(row: PriceRow) -> str:
    """What a quantity of this price counts."""
    if row.scheme == "flat":
        return "month"
    if row.scheme == "per_seat":
        return "seats"
    return row.unit_label or "units"


def _calculator(actor: Actor, prices: list[PriceRow]) -> None:
    if not prices:
        st.info("The catalogue has no prices yet.")
        return
    st.caption(
        "What a quantity costs for one month under a price, computed as the invoice run does: "
        "seats for a per-seat price, units of usage for a metered one."
    )
    by_key = {p.lookup_key: p for p in prices}
    c1, c2 = st.columns([2, 1])
    key = c1.selectbox(
        "Price",
        list(by_key),
        format_func=lambda k: f"{k} ({by_key[k].scheme}, {by_key[k].currency})",
        key="calc_price",
    )
    row = by_key[key]
    quantity = int(
        c2.number_input(
            "Quantity",
            min_value=0,
            max_value=10**12,
            value=1000,
            step=1,
            help="A flat price costs the same whatever the quantity.",
            key="calc_quantity",
        )
    )
    cost = catalog.quote(actor, key, quantity)
    what = key if row.scheme == "flat" else f"{quantity:,} {_unit(row)} on {key}"
    st.metric(what, money(cost, row.currency), border=True)
    st.caption(describe_amount(row))
    if row.scheme in ("flat", "per_seat"):
        return
    # The cost curve around the quantity shows where tiers and packages change the slope.
    top = max(quantity, *(t.up_to or 0 for t in _tiers(row)), (row.package_size or 0) * 5, 10)
    top = int(top * 1.5)
    points = sorted({top * i // 60 for i in range(61)} | {quantity})
    curve = pd.DataFrame(
        {
            f"Quantity ({_unit(row)})": points,
            # major units as floats for the picture only; the figure above is exact
            row.currency: [
                float(Decimal(catalog.quote(actor, key, q)).scaleb(-pricing.exponent(row.currency)))
                for q in points
            ],
        }
    )
    figure = px.line(curve, x=f"Quantity ({_unit(row)})", y=row.currency)
    figure.add_vline(x=quantity, line_dash="dot")
    widgets.chart(figure, height=220)


if __name__ == "__main__":
    render()
