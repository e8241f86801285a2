"""`StripeGateway`: the only code that calls the `stripe` SDK.

It speaks plain dicts both ways, so nothing outside this module sees an SDK type, and every vendor
exception leaves it as a `core.errors` class whose message says what to do:

    AuthenticationError, PermissionError  -> ConfigurationError (the key is wrong or too narrow)
    InvalidRequestError, CardError        -> StripeRequestRejected (a ValidationError: Stripe's
                                             message and the parameter it names)
    IdempotencyError                      -> Conflict (same key, different request)
    APIConnectionError, RateLimitError,
    APIError (5xx), anything else         -> StripeUnavailable (try again; work done is kept)

The SDK retries connection errors, 409 and 5xx answers itself (`max_network_retries`); every
write carries an idempotency key, so such a retry can never create an object twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal
from urllib.parse import urlparse

import stripe

from core.clock import epoch_seconds
from core.config import get_settings
from core.errors import ConfigurationError, Conflict, DomainError, ValidationError

SYNC_OFF = "Stripe sync is off: set OMNI_STRIPE_API_KEY (test or live key)."
ObjectKind = Literal[
    "product", "meter", "price", "customer", "coupon", "subscription", "invoice", "invoiceitem"
]


class StripeUnavailable(DomainError):
    """Stripe cannot be reached, is rate limiting, or failed on its side: try again later."""


class StripeRequestRejected(ValidationError):
    """Stripe refused a request as invalid; `param` is the parameter it named, if any."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def sync_enabled() -> bool:
    """True when an API key is set: only then does the console talk to Stripe."""
    key = get_settings().stripe_api_key
    return bool(key and key.get_secret_value().strip())


WEBHOOKS_OFF = (
    "Stripe webhooks are off: set OMNI_STRIPE_WEBHOOK_SECRET to the endpoint's signing secret "
    "(whsec_..., shown in the Stripe dashboard under Developers > Webhooks)."
)


def webhook_secret() -> str | None:
    """The webhook signing secret, or None when webhooks are off."""
    secret = get_settings().stripe_webhook_secret
    value = secret.get_secret_value().strip() if secret else ""
    return value or None


def key_mode(api_key: str | None) -> Literal["test", "live", "unknown", "off"]:
    """Which Stripe mode a key belongs to, from its prefix (secret sk_ or restricted rk_)."""
    if not api_key:
        return "off"
    for prefix in ("sk_", "rk_"):
        if api_key.startswith(prefix + "test_"):
            return "test"
        if api_key.startswith(prefix + "live_"):
            return "live"
    return "unknown"


def _host(api_base: str | None) -> str:
    return urlparse(api_base).netloc if api_base else "api.stripe.com"


class StripeGateway:
    """A configured `stripe.StripeClient` with error translation. Build it with `from_settings`."""

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        *,
        max_network_retries: int = 2,
        timeout_s: float = 30.0,
    ) -> None:
        self._host = _host(api_base)
        self.mode = key_mode(api_key)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout_s),
        )

    @classmethod
    def from_settings(cls) -> StripeGateway:
        settings = get_settings()
        key = settings.stripe_api_key.get_secret_value().strip() if settings.stripe_api_key else ""
        if not key:
            raise ConfigurationError(SYNC_OFF)
        return cls(key, settings.stripe_api_base or None)

    # -- error translation -------------------------------------------------------------------

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except stripe.AuthenticationError:
            # Stripe's message quotes part of the key: never pass it on.
            raise ConfigurationError(
                f"Stripe refused the API key while trying to {action}: check that "
                "OMNI_STRIPE_API_KEY is a current secret key (sk_test_... or sk_live_...) of the "
                "intended Stripe account."
            ) from None
        except stripe.PermissionError:
            raise ConfigurationError(
                f"The Stripe key may not {action}: use a secret key, or a restricted key with "
                "write access to products, prices, customers, coupons, subscriptions, invoices, "
                "billing meters and read access to events."
            ) from None
        except stripe.IdempotencyError as exc:
            raise Conflict(
                f"Stripe already holds a different request under the same idempotency key "
                f"({action}): the ledger object changed after an earlier push failed half-way. "
                "Find the object in the Stripe dashboard by its omni_* metadata, or push again "
                f"after 24 hours, when Stripe forgets the key. Stripe said: {exc.user_message}"
            ) from None
        except (stripe.InvalidRequestError, stripe.CardError) as exc:
            param = getattr(exc, "param", None)
            named = f" (parameter {param})" if param else ""
            raise StripeRequestRejected(
                f"Stripe rejected the request to {action}{named}: {exc.user_message}",
                param=param,
                code=exc.code,
            ) from None
        except stripe.RateLimitError:
            raise StripeUnavailable(
                f"Stripe is rate limiting this account ({action}); try again in a minute. "
                "Work already done is kept and the next run resumes."
            ) from None
        except stripe.APIConnectionError:
            raise StripeUnavailable(
                f"Stripe is unreachable at {self._host} ({action}); check the network (and "
                "OMNI_STRIPE_API_BASE if set) and try again. Work already done is kept."
            ) from None
        except stripe.StripeError as exc:
            status = f"HTTP {exc.http_status}" if exc.http_status else type(exc).__name__
            raise StripeUnavailable(
                f"Stripe failed on its side ({status}) while trying to {action}; try again "
                "later. Work already done is kept and the next run resumes."
            ) from None

    # -- writes ------------------------------------------------------------------------------

    def create(self, kind: ObjectKind, params: Mapping[str, Any], key: str) -> dict[str, Any]:
        """Create one object; `key` is its idempotency key (a replay returns the first answer)."""
        v1 = self._client.v1
        services: dict[str, Callable[..., Any]] = {
            "product": v1.products.create,
            "meter": v1.billing.meters.create,
            "price": v1.prices.create,
            "customer": v1.customers.create,
            "coupon": v1.coupons.create,
            "subscription": v1.subscriptions.create,
            "invoice": v1.invoices.create,
            "invoiceitem": v1.invoice_items.create,
        }
        with self._translated(f"create a {kind}"):
            return _plain(services[kind](dict(params), {"idempotency_key": key}))

    def pause_subscription(self, stripe_id: str, key: str) -> dict[str, Any]:
        """Pause collection: Stripe voids every invoice the subscription would generate."""
        params: Any = {"pause_collection": {"behavior": "void"}}
        with self._translated("pause a subscription's collection"):
            return _plain(
                self._client.v1.subscriptions.update(stripe_id, params, {"idempotency_key": key})
            )

    def finalize_invoice(self, stripe_id: str, key: str) -> dict[str, Any]:
        with self._translated("finalize an invoice"):
            return _plain(
                self._client.v1.invoices.finalize_invoice(
                    stripe_id, {"auto_advance": False}, {"idempotency_key": key}
                )
            )

    def mark_paid_out_of_band(self, stripe_id: str, key: str) -> dict[str, Any]:
        with self._translated("mark an invoice paid"):
            return _plain(
                self._client.v1.invoices.pay(
                    stripe_id, {"paid_out_of_band": True}, {"idempotency_key": key}
                )
            )

    def mark_uncollectible(self, stripe_id: str, key: str) -> dict[str, Any]:
        with self._translated("mark an invoice uncollectible"):
            return _plain(
                self._client.v1.invoices.mark_uncollectible(
                    stripe_id, None, {"idempotency_key": key}
                )
            )

    def void_invoice(self, stripe_id: str, key: str) -> dict[str, Any]:
        with self._translated("void an invoice"):
            return _plain(
                self._client.v1.invoices.void_invoice(stripe_id, None, {"idempotency_key": key})
            )

    def delete_draft_invoice(self, stripe_id: str) -> None:
        """Delete a draft invoice; one already gone (a re-run) is fine."""
        try:
            with self._translated("delete a draft invoice"):
                self._client.v1.invoices.delete(stripe_id)
        except StripeRequestRejected as exc:
            if exc.code != "resource_missing":
                raise

    # -- reads -------------------------------------------------------------------------------

    def events_after(self, cursor: str | None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every event newer than `cursor` (an event id), oldest first; all of the last 30 days
        when there is no cursor, or when Stripe no longer has the cursor's event."""
        limit = max(1, min(page_size, 100))
        if cursor:
            try:
                with self._translated("read events"):
                    # `ending_before` pages towards newer events; the SDK's auto-pager yields each
                    # page reversed, so the whole walk runs oldest first.
                    first = self._client.v1.events.list({"limit": limit, "ending_before": cursor})
                    pages = iter(first.auto_paging_iter())
                    head = next(pages, None)
            except StripeRequestRejected as exc:
                if exc.param != "ending_before":
                    raise
            else:
                if head is not None:
                    yield _plain(head)
                    with self._translated("read events"):
                        for event in pages:
                            yield _plain(event)
                return
        with self._translated("read events"):
            newest_first = [
                _plain(e) for e in self._client.v1.events.list({"limit": limit}).auto_paging_iter()
            ]
        yield from reversed(newest_first)


def _plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as a plain dict (nested objects included)."""
    if isinstance(obj, stripe.StripeObject):
        plain: dict[str, Any] = obj.to_dict(recursive=True, for_json=True)
        return plain
    return dict(obj)


class InvalidSignature(DomainError):
    """A webhook request whose Stripe-Signature does not verify (or is missing, or too old)."""


def verify_webhook(
    payload: bytes, signature: str | None, secret: str, tolerance_s: int = 300
) -> dict[str, Any]:
    """The event in a webhook body, after the SDK checked its signature and we checked its
    timestamp against the console's clock (the SDK's own check reads the system clock)."""
    if not signature:
        raise InvalidSignature("Invalid Stripe signature: the Stripe-Signature header is missing.")
    try:
        # tolerance 0: the SDK checks the HMAC only (its age check would read the system clock)
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=0)
    except stripe.SignatureVerificationError:
        raise InvalidSignature("Invalid Stripe signature: it does not match the body.") from None
    except ValueError:  # the signature verified, but the body is not a JSON event
        raise InvalidSignature("The webhook body is not a Stripe event.") from None
    signed_at = _signature_timestamp(signature)
    if signed_at is None or signed_at < epoch_seconds() - tolerance_s:
        raise InvalidSignature(
            f"Invalid Stripe signature: the timestamp is more than {tolerance_s} s old "
            "(a replayed delivery, or this server's clock is off)."
        )
    return _plain(event)


def _signature_timestamp(header: str) -> int | None:
    """The `t=` of a Stripe-Signature header (the SDK verified the HMAC over it already)."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    return None
