"""Demo privacy data: purposes, end users of the customer organisations with two years of consent
history (notice changes, withdrawals, missing proof, a few minors), their LLM usage linked by
end-user id, and suggested retention policies.

The history is generated to exercise the review queue the way real data does: most consents are
fine, some were given under an older notice, some lack proof, a handful were given by children
below their country's digital age of consent.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import insert, select, update

from core.demo.registry import SeedContext, seeder
from core.llm.models import LLMUsage
from core.orgs.models import Organisation
from core.privacy.models import (
    ConsentEvent,
    ConsentPurpose,
    DataRequest,
    DataSubject,
    RetentionPolicy,
)
from core.privacy.retention_categories import categories

SUBJECT_ORGS = 500  # organisations with end users in the subject registry
NOTICES = (("v1", 1000), ("v2", 520), ("v3", 120))  # version, introduced this many days ago

# key, name, lawful basis, notice version that introduced it, notice version whose terms for it
# are current (consent under an older one goes to review), re-consent days, share who consent
PURPOSES = (
    ("service_delivery", "Providing the service", "contract", "v1", "v1", 730, 0.0),
    (
        "fraud_prevention",
        "Fraud and abuse prevention",
        "legitimate_interests",
        "v1",
        "v1",
        730,
        0.0,
    ),
    ("product_analytics", "Product analytics", "consent", "v1", "v1", 730, 0.7),
    ("marketing_email", "Marketing e-mails", "consent", "v1", "v2", 730, 0.45),
    ("personalisation", "Product personalisation", "consent", "v2", "v2", 730, 0.55),
    ("model_training", "Model training on conversations", "consent", "v2", "v3", 365, 0.3),
)
_DESCRIPTIONS = {
    "service_delivery": "Accounts, the product itself, support.",
    "fraud_prevention": "Detecting abuse of the API and payment fraud.",
    "product_analytics": "Usage statistics to improve the product.",
    "marketing_email": "Newsletters and offers by e-mail.",
    "personalisation": "Recommendations based on past use.",
    "model_training": "Using conversations to fine-tune models.",
}

_NAMES = {
    "SI": (("Ana", "Luka", "Maja", "Nik", "Eva", "Jan"), ("Novak", "Horvat", "Krajnc", "Zupan")),
    "DE": (("Anna", "Lukas", "Lea", "Felix", "Marie"), ("Müller", "Schmidt", "Weber", "Wagner")),
    "FR": (("Léa", "Hugo", "Chloé", "Louis"), ("Martin", "Bernard", "Dubois", "Moreau")),
    "IT": (("Giulia", "Marco", "Sofia", "Luca"), ("Rossi", "Russo", "Ferrari", "Esposito")),
    "ES": (("Lucía", "Pablo", "Martina", "Hugo"), ("García", "López", "Martínez", "Sánchez")),
    "US": (("Emma", "Liam", "Olivia", "Noah", "Ava"), ("Smith", "Johnson", "Brown", "Davis")),
}
_FALLBACK = (("Alex", "Sam", "Kim", "Robin", "Mila", "Theo"), ("Berg", "Klein", "Lind", "Novak"))


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _notice_at(days_ago: float) -> str:
    current = NOTICES[0][0]
    for version, introduced in NOTICES:
        if days_ago <= introduced:
            current = version
    return current


def _seed_purposes(ctx: SeedContext) -> list[ConsentPurpose]:
    purposes = [
        ConsentPurpose(
            key=key,
            name=name,
            description=_DESCRIPTIONS[key],
            lawful_basis=basis,
            notice_version=current,
            reconsent_days=days,
            created_at=ctx.anchor - timedelta(days=NOTICES[0][1]),
        )
        for key, name, basis, _, current, days, _ in PURPOSES
    ]
    ctx.session.add_all(purposes)
    return purposes


def _birth_date(ctx: SeedContext) -> date | None:
    roll = ctx.rng.random()
    if roll < 0.15:
        return None  # not every customer tells us
    years = ctx.rng.uniform(13.2, 17.8) if roll < 0.19 else ctx.rng.uniform(19, 70)
    return (ctx.anchor - timedelta(days=years * 365.25)).date()


def _seed_subjects(ctx: SeedContext) -> list[tuple[DataSubject, datetime]]:
    rng = ctx.rng
    orgs = list(
        ctx.session.execute(
            select(
                Organisation.id,
                Organisation.country,
                Organisation.domain,
                Organisation.signed_up_at,
            )
            .where(Organisation.plan != "free")
            .order_by(Organisation.id)
        )
    )
    chosen = sorted(rng.sample(orgs, min(SUBJECT_ORGS, len(orgs))), key=lambda o: o.id)
    subjects: list[tuple[DataSubject, datetime]] = []
    for org in chosen:
        firsts, lasts = _NAMES.get(org.country, _FALLBACK)
        used: set[str] = set()
        for n in range(rng.randint(1, 5)):
            first, last = rng.choice(firsts), rng.choice(lasts)
            local = f"{_ascii(first)}.{_ascii(last)}"
            if local in used:
                continue
            used.add(local)
            span = max(1, (ctx.anchor - org.signed_up_at).days)
            joined = org.signed_up_at + timedelta(days=rng.uniform(0, span * 0.6))
            subject = DataSubject(
                organisation_id=org.id,
                external_ref=f"u-{org.id}-{n + 1:03d}",
                email=f"{local}@{org.domain}",
                full_name=f"{first} {last}",
                country=org.country,
                birth_date=_birth_date(ctx),
                created_at=joined,
            )
            subjects.append((subject, joined))
    ctx.session.add_all([s for s, _ in subjects])
    ctx.session.flush()
    return subjects


def _history(
    ctx: SeedContext, subject: DataSubject, purpose: ConsentPurpose, share: float, joined: datetime
) -> list[dict[str, object]]:
    """One subject's events for one purpose: maybe given at sign-up, maybe withdrawn later,
    maybe renewed when a new notice came out."""
    rng, anchor = ctx.rng, ctx.anchor
    first_version = next(p[3] for p in PURPOSES if p[0] == purpose.key)
    first_day = next(days for v, days in NOTICES if v == first_version)
    start = max(joined, anchor - timedelta(days=first_day))
    if rng.random() >= share or start >= anchor:
        return []
    events: list[dict[str, object]] = []

    def add(kind: str, ts: datetime, channel: str, proof: bool) -> None:
        events.append(
            {
                "subject_id": subject.id,
                "purpose_id": purpose.id,
                "kind": kind,
                "ts": ts,
                "channel": channel,
                "notice_version": _notice_at((anchor - ts).days),
                "proof_ref": f"{channel}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
                if proof
                else None,
                "recorded_by": "system:signup" if kind == "given" else "system:preferences",
                "note": "",
            }
        )

    channel = rng.choice(("web_form", "web_form", "mobile_app", "email"))
    add("given", start, channel, rng.random() > 0.08)
    remaining = (anchor - start).days
    if remaining > 30 and rng.random() < 0.15:
        withdrawn = start + timedelta(days=rng.uniform(20, remaining))
        add("withdrawn", withdrawn, rng.choice(("web_form", "email", "mobile_app")), True)
        if rng.random() < 0.3 and (anchor - withdrawn).days > 10:
            again = withdrawn + timedelta(days=rng.uniform(5, (anchor - withdrawn).days))
            add("given", again, "web_form", True)
    elif rng.random() < 0.35:  # renewed when a newer notice came out
        newer = [days for _, days in NOTICES if anchor - timedelta(days=days) > start]
        if newer:
            moment = anchor - timedelta(days=newer[0] - rng.uniform(1, 60))
            if moment < anchor:
                add("given", moment, rng.choice(("web_form", "mobile_app")), True)
    return events


def _link_usage(ctx: SeedContext, subjects: list[tuple[DataSubject, datetime]]) -> int:
    """Give the customers' ledger rows an end-user id, spread over their registered users."""
    by_org: dict[int, list[DataSubject]] = defaultdict(list)
    for subject, _ in subjects:
        assert subject.organisation_id is not None
        by_org[subject.organisation_id].append(subject)
    rows = ctx.session.execute(
        select(LLMUsage.id, LLMUsage.customer_id).where(LLMUsage.customer_id.in_(list(by_org)))
    ).all()
    buckets: dict[str, list[int]] = defaultdict(list)
    for row_id, customer in rows:
        if (
            customer is not None and ctx.rng.random() < 0.85
        ):  # the rest are server-side calls with no end user
            buckets[ctx.rng.choice(by_org[customer]).external_ref].append(row_id)
    for ref, ids in buckets.items():
        for start in range(0, len(ids), 900):
            ctx.session.execute(
                update(LLMUsage)
                .where(LLMUsage.id.in_(ids[start : start + 900]))
                .values(end_user=ref)
                .execution_options(synchronize_session=False)
            )
    return sum(len(ids) for ids in buckets.values())


@seeder("privacy", order=50)
def seed_privacy(ctx: SeedContext) -> str:
    purposes = _seed_purposes(ctx)
    ctx.session.flush()
    subjects = _seed_subjects(ctx)
    shares = {p[0]: p[6] for p in PURPOSES}
    events: list[dict[str, object]] = []
    for subject, joined in subjects:
        for purpose in purposes:
            if shares[purpose.key]:
                events.extend(_history(ctx, subject, purpose, shares[purpose.key], joined))
    for start in range(0, len(events), 5000):
        ctx.session.execute(insert(ConsentEvent), events[start : start + 5000])
    linked = _link_usage(ctx, subjects)
    requests = _seed_requests(ctx, subjects)
    for key, cat in categories().items():
        ctx.session.add(
            RetentionPolicy(
                category=key,
                duration_days=cat.suggested_days,
                action=cat.suggested_action,
                legal_basis=cat.suggested_basis,
                enabled=True,
                updated_by="system:demo",
                updated_at=ctx.anchor,
            )
        )
    return (
        f"{len(subjects)} data subjects, {len(events)} consent events for {len(purposes)} "
        f"purposes, {linked:,} ledger rows linked to end users, {requests} data-subject requests"
    )


# kind, received days ago, status, verified?, assignee?, extension reason, resolution, channel
_REQUESTS = (
    ("access", 3, "received", False, None, "", "", "email"),
    ("access", 20, "verified", True, "demo-compliance", "", "", "web_form"),
    ("erasure", 9, "verified", True, "demo-compliance", "", "", "web_form"),
    ("portability", 40, "verified", True, "demo-compliance", "", "", "email"),
    (
        "access",
        45,
        "in_progress",
        True,
        "demo-compliance",
        "Complex request: the subject's data spans three customer workspaces and two years "
        "of LLM usage that must be reviewed for third-party data.",
        "",
        "post",
    ),
    ("rectification", 6, "received", False, None, "", "", "email"),
    (
        "objection",
        70,
        "completed",
        True,
        "demo-compliance",
        "",
        "Objection to personalisation upheld; processing stopped.",
        "web_form",
    ),
    (
        "restriction",
        50,
        "rejected",
        False,
        None,
        "",
        "Identity could not be verified after two reminders.",
        "email",
    ),
)
_US_REQUESTS = (
    ("ccpa_know", 12, "verified", True, "demo-compliance", "", "", "authorised_agent"),
    ("ccpa_opt_out", 4, "received", False, None, "", "", "web_form"),
)


def _seed_requests(ctx: SeedContext, subjects: list[tuple[DataSubject, datetime]]) -> int:
    """A realistic queue: new, verified, overdue, extended, answered and rejected requests. Only
    adult subjects, and never two open requests of one kind for one subject."""
    from core.privacy import deadlines

    adults = [s for s, _ in subjects if s.birth_date is None or s.birth_date.year < 2000]
    eu = [s for s in adults if deadlines.regime_for_country(s.country) == "GDPR"]
    us = [s for s in adults if s.country == "US"]
    picks = list(zip(_REQUESTS, ctx.rng.sample(eu, len(_REQUESTS)), strict=True))
    picks += list(zip(_US_REQUESTS, ctx.rng.sample(us, len(_US_REQUESTS)), strict=True))
    for number, (spec, subject) in enumerate(picks, start=1):
        kind_key, days, status, verified, assignee, extension, resolution, channel = spec
        kind = deadlines.get_kind(kind_key)
        received = ctx.anchor - timedelta(days=days, hours=ctx.rng.uniform(1, 20))
        due = deadlines.due_date(kind, received)
        ctx.session.add(
            DataRequest(
                reference=f"DSR-{received.year}-{number:05d}",
                subject_id=subject.id,
                kind=kind.key,
                regime=kind.regime,
                status=status,
                channel=channel,
                received_at=received,
                due_at=deadlines.extended_due(kind, due) if extension else due,
                extended=bool(extension),
                extension_reason=extension,
                verified_at=received + timedelta(days=2) if verified else None,
                verified_by="demo-compliance" if verified else None,
                verification_method="email_link" if verified else "",
                assignee=assignee,
                closed_at=received + timedelta(days=10) if resolution else None,
                resolution=resolution,
                created_by="system:demo",
                updated_at=received,
            )
        )
    return len(picks)
