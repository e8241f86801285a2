"""The Stripe integration of the billing domain. The console's ledger is the one source of truth
and its invoice run is the one billing engine; Stripe mirrors the ledger and collects payments.

    client   the only module that calls the `stripe` SDK (`StripeGateway`); vendor errors leave
             it as `core.errors` classes
    mapping  ledger rows -> Stripe request parameters and idempotency keys (pure functions)
    state    the small key/value bookkeeping of the sync (`SyncState`: cursor, last push, errors)
    push     `push_all`: create in Stripe every ledger object that has no `stripe_id` yet
    events   `apply_event`: one Stripe event applied to the ledger, idempotently (webhook + poll)
    pull     `pull_events`: read Stripe's Events API from the stored cursor
    webhook  the Starlette app behind `omni webhooks serve` (POST /stripe/webhook)
    status   `sync_status`: what a page shows about all of the above
    cli      `omni billing stripe push|pull|status`, `omni webhooks serve`

Without `OMNI_STRIPE_API_KEY` the sync is off: push and pull say so, the ledger works as before.
"""
