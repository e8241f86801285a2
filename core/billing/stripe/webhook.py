"""The Stripe webhook receiver, a small Starlette app (`omni webhooks serve`, behind the TLS proxy
that Stripe posts to):

    POST /stripe/webhook   verify the Stripe-Signature header with the SDK's own check (HMAC over
                           the raw body, timestamp within 5 minutes), then apply the event in one
                           transaction: 200 {"received": true, "duplicate": bool}
    GET  /healthz          200 {"ok": true, "webhooks": "on"|"off"}

A bad, missing or expired signature answers 400 and applies nothing; without
OMNI_STRIPE_WEBHOOK_SECRET every delivery answers 503, so Stripe keeps retrying until the secret is
set (and `omni billing stripe pull` catches up on anything older). A database failure answers 503
as well: Stripe redelivers, and the event id makes a redelivery harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.auth.actor import Actor
from core.billing.stripe.client import (
    WEBHOOKS_OFF,
    InvalidSignature,
    verify_webhook,
    webhook_secret,
)
from core.billing.stripe.events import Applied, apply_event
from core.db import unit_of_work
from core.errors import DomainError

log = logging.getLogger(__name__)
PATH = "/stripe/webhook"
TOLERANCE_S = 300
MAX_BODY_BYTES = 1 << 20  # Stripe's event payloads are far below this


def _apply(event: dict[str, Any]) -> Applied:
    actor = Actor.system("stripe-webhook")
    try:
        with unit_of_work() as session:
            return apply_event(session, event, "webhook", actor)
    except IntegrityError:  # the same event, delivered twice at once, was stored by the other
        return Applied(str(event.get("id")), str(event.get("type")), "duplicate", "race")


async def receive(request: Request) -> JSONResponse:
    secret = webhook_secret()
    if secret is None:
        return JSONResponse({"error": WEBHOOKS_OFF}, status_code=503)
    payload = await request.body()
    if len(payload) > MAX_BODY_BYTES:
        return JSONResponse({"error": "The body is too large for a Stripe event."}, 413)
    try:
        event = verify_webhook(
            payload, request.headers.get("stripe-signature"), secret, TOLERANCE_S
        )
    except InvalidSignature as exc:
        log.warning("Stripe webhook refused: %s", exc.message)
        return JSONResponse({"error": exc.message}, status_code=400)
    try:
        applied = await run_in_threadpool(_apply, event)
    except DomainError as exc:
        log.error("Stripe webhook %s not applied: %s", event.get("id"), exc.message)
        return JSONResponse({"error": exc.message}, status_code=503)
    return JSONResponse({"received": True, "duplicate": applied.duplicate})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "webhooks": "on" if webhook_secret() else "off"})


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route(PATH, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
