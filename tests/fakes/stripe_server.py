"""A local server that speaks the subset of Stripe's REST API the billing sync uses, for driving
the real `stripe` SDK (`StripeClient(base_addresses={"api": fake.url})`) without a network.

In memory: products, billing meters, prices, customers, coupons, subscriptions, invoices with
invoice items (finalize, pay out of band, void, mark uncollectible, delete a draft), and the
Events API (`GET /v1/events` with limit / starting_after / ending_before / has_more, newest first).
Like Stripe: form-encoded bodies in bracket notation (`items[0][price]`), Bearer auth (a wrong key
answers 401), 400 `invalid_request_error` with `message` and `param`, and idempotency keys (the
same key and body replay the stored answer with `Idempotent-Replayed: true`; the same key with a
different body is a 400 `idempotency_error`).

Tests script it with `fail(...)` (a `Fault`: status, path, skip the first N, fail M times, or
"after commit": do the work, then lose the answer) and drive Stripe's side of the story with
`emit(...)`, `pay_invoice`, `fail_invoice_payment`, `dispute`, `cancel_subscription`; `count(kind)`
says how many objects were created. Events are only created by those calls, never implicitly.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from core.clock import epoch_seconds  # the world of the tests runs on the console's (pinned) clock
from tests.fakes.server import FakeProvider

API_VERSION = "2026-10-28.endive"
PREFIX = {
    "product": "prod",
    "meter": "mtr",
    "price": "price",
    "customer": "cus",
    "coupon": "cpn",
    "subscription": "sub",
    "invoice": "in",
    "invoiceitem": "ii",
    "event": "evt",
    "dispute": "dp",
    "charge": "ch",
    "payment_intent": "pi",
    "subscription_item": "si",
}
INTS = {
    "amount",
    "amount_off",
    "unit_amount",
    "flat_amount",
    "quantity",
    "days_until_due",
    "duration_in_months",
    "trial_end",
    "divide_by",
    "start",
    "end",
    "limit",
    "up_to",  # "inf" stays a string
}
BOOLS = {"active", "auto_advance", "paid_out_of_band"}


class ApiError(Exception):
    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.param, self.code = (
            status,
            type,
            message,
            param,
            code,
        )

    def response(self) -> JSONResponse:
        error = {"type": self.type, "message": self.message, "param": self.param, "code": self.code}
        return JSONResponse({"error": error}, status_code=self.status)


@dataclass
class Fault:
    """Fail matching requests: let `skip` through, then fail `times`. With `after_commit` the first
    failing request is carried out (and stored under its idempotency key) before the error is
    returned, as when Stripe did the work and the answer was lost on the way back."""

    status: int = 500
    path: str = ""  # a substring of the request path; "" matches every path
    method: str = ""  # "" matches every method
    skip: int = 0
    times: int = 1
    after_commit: bool = False
    should_retry: bool | None = None  # sent as the Stripe-Should-Retry header when set
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (not self.method or self.method == method) and self.path in path

    def error(self) -> ApiError:
        kind = "rate_limit_error" if self.status == 429 else "api_error"
        return ApiError("Scripted failure.", status=self.status, type=kind)


def _convert(key: str, value: str) -> Any:
    if key in INTS and re.fullmatch(r"-?\d+", value):
        return int(value)
    if key in BOOLS and value in ("true", "false"):
        return value == "true"
    return value


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def decode_form(raw: str) -> dict[str, Any]:
    """Stripe's bracket notation (`a[b][0][c]=v`) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _convert(parts[-1], value)
    result: dict[str, Any] = _listify(root)
    return result


class FakeStripe(FakeProvider):
    """`with FakeStripe() as fake: StripeClient(fake.api_key, base_addresses={"api": fake.url})`."""

    def __init__(self, api_key: str = "sk_test_fake_stripe_key") -> None:
        super().__init__(api_key)
        self._mutex = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("POST", re.compile(r"/v1/products"), self._product),
            ("POST", re.compile(r"/v1/billing/meters"), self._meter),
            ("POST", re.compile(r"/v1/prices"), self._price),
            ("POST", re.compile(r"/v1/customers"), self._customer),
            ("POST", re.compile(r"/v1/coupons"), self._coupon),
            ("POST", re.compile(r"/v1/subscriptions"), self._subscription),
            ("POST", re.compile(r"/v1/subscriptions/(sub_\w+)"), self._subscription_update),
            ("POST", re.compile(r"/v1/invoices"), self._invoice),
            ("POST", re.compile(r"/v1/invoiceitems"), self._invoice_item),
            ("POST", re.compile(r"/v1/invoices/(in_\w+)/(\w+)"), self._invoice_action),
            ("DELETE", re.compile(r"/v1/invoices/(in_\w+)"), self._invoice_delete),
            ("GET", re.compile(r"/v1/events"), self._events),
            ("GET", re.compile(r"/v1/[\w/]+/(\w+)"), self._retrieve),
        ]
        self._clear()

    def _clear(self) -> None:
        with self._mutex:
            self.store: dict[str, dict[str, Any]] = {}
            self.created: dict[str, list[str]] = {}
            self.events: list[dict[str, Any]] = []  # oldest first
            self.faults: list[Fault] = []
            self.replays = 0
            self.calls: list[tuple[str, str, str | None]] = []  # method, path, idempotency key
            self._idempotency: dict[str, tuple[tuple[str, str, str], int, Any]] = {}
            self._ids = itertools.count(1)

    def reset(self) -> None:
        super().reset()
        self._clear()

    def app(self) -> ASGIApp:
        return Starlette(
            routes=[Route("/v1/{rest:path}", self._handle, methods=["GET", "POST", "DELETE"])]
        )

    # -- test side ---------------------------------------------------------------------------

    def fail(self, status: int = 500, **options: Any) -> Fault:
        fault = Fault(status=status, **options)
        with self._mutex:
            self.faults.append(fault)
        return fault

    def count(self, kind: str) -> int:
        with self._mutex:
            return len(self.created.get(kind, []))

    def objects(self, kind: str) -> list[dict[str, Any]]:
        with self._mutex:
            ids = self.created.get(kind, [])
            return [copy.deepcopy(self.store[i]) for i in ids if i in self.store]  # not deleted

    def get(self, stripe_id: str) -> dict[str, Any]:
        with self._mutex:
            return copy.deepcopy(self.store[stripe_id])

    def emit(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Add an event (as Stripe would after a change) and return it."""
        with self._mutex:
            event = {
                "id": self._new_id("event"),
                "object": "event",
                "api_version": API_VERSION,
                "created": int(epoch_seconds()),
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": event_type,
            }
            self.events.append(event)
            return copy.deepcopy(event)

    def pay_invoice(self, invoice_id: str, amount: int | None = None) -> list[dict[str, Any]]:
        """The customer pays (all that is due by default): invoice.payment_succeeded, and
        invoice.paid once nothing is left."""
        with self._mutex:
            inv = self.store[invoice_id]
            paid = inv["amount_remaining"] if amount is None else amount
            intent = self._new_id("payment_intent")
            inv["amount_paid"] += paid
            inv["amount_remaining"] -= paid
            inv["payments"]["data"].append(
                {
                    "object": "invoice_payment",
                    "amount_paid": paid,
                    "payment": {"type": "payment_intent", "payment_intent": intent},
                }
            )
            events = [self.emit("invoice.payment_succeeded", inv)]
            if inv["amount_remaining"] == 0:
                inv["status"] = "paid"
                inv["status_transitions"]["paid_at"] = int(epoch_seconds())
                events.append(self.emit("invoice.paid", inv))
            return events

    def fail_invoice_payment(self, invoice_id: str) -> dict[str, Any]:
        with self._mutex:
            inv = self.store[invoice_id]
            inv["attempt_count"] = inv.get("attempt_count", 0) + 1
            return self.emit("invoice.payment_failed", inv)

    def dispute(
        self,
        invoice_id: str,
        *,
        status: str = "needs_response",
        event_type: str = "charge.dispute.created",
        dispute_id: str | None = None,
        reason: str = "fraudulent",
        expand_charge: bool = True,
    ) -> dict[str, Any]:
        """A dispute on the invoice's (last) payment; pass `dispute_id` to update or close it."""
        with self._mutex:
            inv = self.store[invoice_id]
            payments = inv["payments"]["data"]
            intent = payments[-1]["payment"]["payment_intent"] if payments else None
            charge_id = f"ch_for_{intent or invoice_id}"
            charge: Any = (
                {
                    "id": charge_id,
                    "object": "charge",
                    "invoice": invoice_id,
                    "payment_intent": intent,
                }
                if expand_charge
                else charge_id
            )
            obj = {
                "id": dispute_id or self._new_id("dispute"),
                "object": "dispute",
                "amount": inv["amount_paid"] or inv["total"],
                "currency": inv["currency"],
                "charge": charge,
                "payment_intent": intent,
                "reason": reason,
                "status": status,
                "created": int(epoch_seconds()),
            }
            self.store[obj["id"]] = obj
            return self.emit(event_type, obj)

    def cancel_subscription(self, sub_id: str) -> dict[str, Any]:
        with self._mutex:
            sub = self.store[sub_id]
            now = int(epoch_seconds())
            sub.update(status="canceled", canceled_at=now, ended_at=now)
            return self.emit("customer.subscription.deleted", sub)

    def set_subscription_status(self, sub_id: str, status: str) -> dict[str, Any]:
        with self._mutex:
            self.store[sub_id]["status"] = status
            return self.emit("customer.subscription.updated", self.store[sub_id])

    # -- request handling --------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        raw = (await request.body()).decode()
        method, path = request.method, request.url.path
        body = decode_form(raw if method == "POST" else request.url.query)
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.record(path, headers, body)
        with self._mutex:
            self.calls.append((method, path, headers.get("idempotency-key")))
        given = headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.api_key:
            return ApiError(f"Invalid API Key provided: {given}", status=401).response()
        with self._mutex:
            fault = self._take_fault(method, path)
            if fault is not None and not (fault.after_commit and fault.fired == 1):
                return self._fault_response(fault)
            key = headers.get("idempotency-key") if method == "POST" else None
            fingerprint = (method, path, raw)
            if key and key in self._idempotency:
                stored, status, payload = self._idempotency[key]
                if stored != fingerprint:
                    return ApiError(
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than '{key}' if you "
                        "meant to execute a different request.",
                        type="idempotency_error",
                    ).response()
                self.replays += 1
                return JSONResponse(payload, status, headers={"Idempotent-Replayed": "true"})
            try:
                payload = self._route(method, path, body)
            except ApiError as exc:
                return exc.response()
            if key:
                self._idempotency[key] = (fingerprint, 200, payload)
            if fault is not None:
                return self._fault_response(fault)
            return JSONResponse(payload)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if not fault.matches(method, path) or fault.times <= 0:
                continue
            if fault.skip > 0:
                fault.skip -= 1
                return None
            fault.times -= 1
            fault.fired += 1
            return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        response = fault.error().response()
        if fault.should_retry is not None:
            response.headers["Stripe-Should-Retry"] = str(fault.should_retry).lower()
        return response

    def _route(self, method: str, path: str, body: dict[str, Any]) -> Any:
        for verb, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if verb == method and match:
                return copy.deepcopy(handler(body, *match.groups()))
        raise ApiError(f"Unrecognized request URL ({method}: {path}).", status=404)

    # -- objects -----------------------------------------------------------------------------

    def _new_id(self, kind: str) -> str:
        return f"{PREFIX[kind]}_fake{next(self._ids):06d}"

    def _add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = {"id": self._new_id(kind), "livemode": False, "created": int(epoch_seconds()), **obj}
        self.store[obj["id"]] = obj
        self.created.setdefault(kind, []).append(obj["id"])
        return obj

    def _find(self, stripe_id: Any, kind: str, param: str) -> dict[str, Any]:
        obj = self.store.get(str(stripe_id or ""))
        if obj is None or not str(stripe_id).startswith(PREFIX[kind] + "_"):
            raise ApiError(f"No such {kind}: '{stripe_id}'", param, code="resource_missing")
        return obj

    def _product(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("name"):
            raise ApiError("Missing required param: name.", "name")
        if body.get("description") == "":
            raise ApiError("You passed an empty string for 'description'.", "description")
        return self._add("product", {"object": "product", "active": True, **body})

    def _meter(self, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("display_name", "event_name"):
            if not body.get(name):
                raise ApiError(f"Missing required param: {name}.", name)
        if (body.get("default_aggregation") or {}).get("formula") not in ("sum", "count", "last"):
            raise ApiError("Invalid default_aggregation[formula].", "default_aggregation[formula]")
        if any(m.get("event_name") == body["event_name"] for m in self.objects("meter")):
            raise ApiError("A meter with this event_name already exists.", "event_name")
        return self._add("meter", {"object": "billing.meter", "status": "active", **body})

    def _price(self, body: dict[str, Any]) -> dict[str, Any]:
        self._find(body.get("product"), "product", "product")
        if not re.fullmatch(r"[a-z]{3}", str(body.get("currency", ""))):
            raise ApiError("Invalid currency: must be a lower-case ISO code.", "currency")
        recurring = body.get("recurring") or {}
        if recurring.get("interval") not in ("day", "week", "month", "year"):
            raise ApiError("Invalid recurring[interval].", "recurring[interval]")
        if recurring.get("usage_type") == "metered":
            if not recurring.get("meter"):
                raise ApiError(
                    "Metered prices must be backed by a meter: pass recurring[meter].",
                    "recurring[meter]",
                )
            self._find(recurring["meter"], "meter", "recurring[meter]")
        if body.get("billing_scheme") == "tiered":
            tiers = body.get("tiers") or []
            if body.get("tiers_mode") not in ("graduated", "volume"):
                raise ApiError("Invalid tiers_mode.", "tiers_mode")
            if not tiers or tiers[-1].get("up_to") != "inf":
                raise ApiError("The last tier must have up_to=inf.", "tiers")
            if "unit_amount" in body or "unit_amount_decimal" in body:
                raise ApiError("Tiered prices take no unit_amount.", "unit_amount")
        else:
            given = [k for k in ("unit_amount", "unit_amount_decimal") if k in body]
            if len(given) != 1:
                raise ApiError(
                    "Pass exactly one of unit_amount or unit_amount_decimal.", "unit_amount"
                )
            self._check_amount(body, given[0])
        if "transform_quantity" in body:
            transform = body["transform_quantity"]
            if transform.get("round") not in ("up", "down") or int(transform["divide_by"]) < 1:
                raise ApiError("Invalid transform_quantity.", "transform_quantity")
        return self._add("price", {"object": "price", "type": "recurring", "active": True, **body})

    def _check_amount(self, body: dict[str, Any], field: str) -> None:
        value = body[field]
        if field == "unit_amount":
            if not isinstance(value, int) or value < 0:
                raise ApiError("Invalid integer: unit_amount.", field)
            return
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ApiError(f"Invalid decimal: {value}.", field) from None
        exponent = amount.as_tuple().exponent
        if amount < 0 or (isinstance(exponent, int) and -exponent > 12):
            raise ApiError("unit_amount_decimal takes at most 12 decimal places.", field)

    def _customer(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("email") and "@" not in body["email"]:
            raise ApiError(f"Invalid email address: {body['email']}", "email")
        return self._add("customer", {"object": "customer", "metadata": {}, **body})

    def _coupon(self, body: dict[str, Any]) -> dict[str, Any]:
        if ("percent_off" in body) == ("amount_off" in body):
            raise ApiError("Pass exactly one of percent_off or amount_off.", "percent_off")
        if "amount_off" in body and not body.get("currency"):
            raise ApiError("An amount_off coupon needs a currency.", "currency")
        if body.get("duration") not in ("once", "repeating", "forever"):
            raise ApiError("Invalid duration.", "duration")
        if body["duration"] == "repeating" and not body.get("duration_in_months"):
            raise ApiError("A repeating coupon needs duration_in_months.", "duration_in_months")
        return self._add("coupon", {"object": "coupon", "valid": True, **body})

    def _subscription(self, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._find(body.get("customer"), "customer", "customer")
        items = body.get("items") or []
        if not items:
            raise ApiError("Missing required param: items.", "items")
        if body.get("collection_method") == "send_invoice" and "days_until_due" not in body:
            raise ApiError("days_until_due is required with send_invoice.", "days_until_due")
        for discount in body.get("discounts") or []:
            self._find(discount.get("coupon"), "coupon", "discounts[0][coupon]")
        lines, amount = [], 0
        for i, item in enumerate(items):
            price = self._find(item.get("price"), "price", f"items[{i}][price]")
            if price["recurring"].get("usage_type") == "metered" and "quantity" in item:
                raise ApiError(
                    "Quantity should not be specified where usage_type is `metered`. "
                    f"Remove quantity from `items[{i}]`.",
                    f"items[{i}][quantity]",
                )
            quantity = item.get("quantity", 1)
            if price["recurring"].get("usage_type") != "metered":
                amount += int(price.get("unit_amount") or 0) * quantity
            lines.append({"id": self._new_id("subscription_item"), "price": price, **item})
        expand = body.pop("expand", [])
        trialing = int(body.get("trial_end") or 0) > epoch_seconds()
        sub = self._add(
            "subscription",
            {
                "object": "subscription",
                "status": "trialing" if trialing else "active",
                "pause_collection": None,
                **body,
                "items": {"object": "list", "data": lines},
            },
        )
        # Like Stripe, the first period's invoice comes with the subscription.
        first = self._new_invoice(customer["id"], price["currency"], sub["id"])
        first["amount_due"] = first["amount_remaining"] = first["total"] = 0 if trialing else amount
        if trialing:
            first["status"] = "paid"
        sub["latest_invoice"] = first["id"]
        if "latest_invoice" in expand:
            return {**sub, "latest_invoice": first}
        return sub

    def _subscription_update(self, body: dict[str, Any], sub_id: str) -> dict[str, Any]:
        sub = self._find(sub_id, "subscription", "id")
        if "pause_collection" in body:
            pause = body["pause_collection"] or None
            behaviors = ("keep_as_draft", "mark_uncollectible", "void")
            if pause is not None and pause.get("behavior") not in behaviors:
                raise ApiError("Invalid pause_collection[behavior].", "pause_collection[behavior]")
            sub["pause_collection"] = pause
        sub.update({k: v for k, v in body.items() if k not in ("pause_collection", "expand")})
        return sub

    def _new_invoice(
        self, customer: str, currency: str, subscription: str | None
    ) -> dict[str, Any]:
        return self._add(
            "invoice",
            {
                "object": "invoice",
                "customer": customer,
                "currency": currency,
                "subscription": subscription,
                "status": "draft",
                "number": None,
                "lines": {"object": "list", "data": []},
                "subtotal": 0,
                "total": 0,
                "amount_due": 0,
                "amount_paid": 0,
                "amount_remaining": 0,
                "paid_out_of_band": False,
                "payments": {"object": "list", "data": []},
                "status_transitions": {"finalized_at": None, "paid_at": None, "voided_at": None},
                "metadata": {},
            },
        )

    def _invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        customer = self._find(body.get("customer"), "customer", "customer")
        if body.get("collection_method") == "send_invoice" and "days_until_due" not in body:
            raise ApiError("days_until_due is required with send_invoice.", "days_until_due")
        if body.get("pending_invoice_items_behavior") not in (None, "exclude", "include"):
            raise ApiError(
                "Invalid pending_invoice_items_behavior.", "pending_invoice_items_behavior"
            )
        number = body.get("number")
        if number and any(i.get("number") == number for i in self.objects("invoice")):
            raise ApiError(f"Invoice number {number} already exists.", "number")
        invoice = self._new_invoice(customer["id"], body.get("currency", "usd"), None)
        invoice.update({k: v for k, v in body.items() if k != "pending_invoice_items_behavior"})
        return invoice

    def _invoice_item(self, body: dict[str, Any]) -> dict[str, Any]:
        self._find(body.get("customer"), "customer", "customer")
        if not isinstance(body.get("amount"), int):
            raise ApiError("Missing required param: amount.", "amount")
        if not body.get("currency"):
            raise ApiError("Missing required param: currency.", "currency")
        invoice = self._find(body["invoice"], "invoice", "invoice") if body.get("invoice") else None
        if invoice is not None:
            if invoice["status"] != "draft":
                raise ApiError("You can only add invoice items to draft invoices.", "invoice")
            if invoice["customer"] != body["customer"]:
                raise ApiError("The invoice belongs to another customer.", "invoice")
            if invoice["currency"] != body["currency"]:
                raise ApiError("The currency differs from the invoice's currency.", "currency")
        item = self._add("invoiceitem", {"object": "invoiceitem", **body})
        if invoice is not None:
            invoice["lines"]["data"].append(item)
            total = sum(line["amount"] for line in invoice["lines"]["data"])
            invoice.update(subtotal=total, total=total, amount_due=total, amount_remaining=total)
        return item

    def _invoice_action(self, body: dict[str, Any], invoice_id: str, action: str) -> Any:
        inv = self._find(invoice_id, "invoice", "invoice")
        now = int(epoch_seconds())
        allowed = {
            "finalize": ("draft",),
            "pay": ("open", "uncollectible"),
            "void": ("open", "uncollectible"),
            "mark_uncollectible": ("open",),
        }
        if action not in allowed:
            raise ApiError(f"Unrecognized request URL (POST: {invoice_id}/{action}).", status=404)
        if inv["status"] not in allowed[action]:
            raise ApiError(f"This invoice is {inv['status']}: it cannot be {action}ed.")
        if action == "finalize":
            inv["status"] = "open" if inv["total"] else "paid"
            inv["number"] = inv["number"] or f"FAKE-{next(self._ids):04d}"
            inv["status_transitions"]["finalized_at"] = now
            inv["auto_advance"] = body.get("auto_advance", inv.get("auto_advance"))
        elif action == "pay":
            if not body.get("paid_out_of_band"):
                raise ApiError("The customer has no payment method.", status=402, type="card_error")
            inv.update(status="paid", paid_out_of_band=True, amount_remaining=0)
            inv["amount_paid"] = inv["amount_due"]
            inv["status_transitions"]["paid_at"] = now
        elif action == "void":
            inv["status"] = "void"
            inv["status_transitions"]["voided_at"] = now
        else:
            inv["status"] = "uncollectible"
        return inv

    def _invoice_delete(self, body: dict[str, Any], invoice_id: str) -> dict[str, Any]:
        inv = self._find(invoice_id, "invoice", "id")
        if inv["status"] != "draft":
            raise ApiError("You can only delete draft invoices.")
        del self.store[invoice_id]
        return {"id": invoice_id, "object": "invoice", "deleted": True}

    def _events(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = max(1, min(int(body.get("limit", 10)), 100))
        newest_first = [e for e in reversed(self.events) if body.get("type") in (None, e["type"])]
        ids = [e["id"] for e in newest_first]
        for param in ("starting_after", "ending_before"):
            if param in body and body[param] not in ids:
                raise ApiError(f"No such event: '{body[param]}'", param, code="resource_missing")
        if "starting_after" in body:
            window = newest_first[ids.index(body["starting_after"]) + 1 :]
            page = window[:limit]
        elif "ending_before" in body:
            window = newest_first[: ids.index(body["ending_before"])]
            page = window[-limit:]
        else:
            window, page = newest_first, newest_first[:limit]
        return {
            "object": "list",
            "url": "/v1/events",
            "has_more": len(window) > limit,
            "data": page,
        }

    def _retrieve(self, body: dict[str, Any], stripe_id: str) -> dict[str, Any]:
        obj = self.store.get(stripe_id) or next(
            (e for e in self.events if e["id"] == stripe_id), None
        )
        if obj is None:
            raise ApiError(
                f"No such object: '{stripe_id}'", "id", status=404, code="resource_missing"
            )
        return obj


def dumps(obj: Any) -> str:
    """Compact JSON, as Stripe sends webhook bodies."""
    return json.dumps(obj, separators=(",", ":"))
