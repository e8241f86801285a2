"""The consent review queue (what needs a person) and bulk actions with a preview.

A consent is queued when it is active and any of these hold:
- `stale`: given longer ago than the purpose's re-consent period;
- `missing_proof`: no proof reference (Art. 7(1): the controller must be able to demonstrate it);
- `notice_changed`: given under an older privacy-notice version than the purpose's current one
  (a purpose's version moves only when the notice changed what it says about that purpose);
- `below_digital_age`: the subject was younger than their country's digital age of consent
  (Art. 8) when they gave it.

Bulk actions are previewed first; the preview carries a token over exactly what it showed, and
applying refuses when the queue changed in between, so nobody applies something they did not see.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, ValidationError
from core.privacy.consent import age_on, append_event, check_free_text, latest_events
from core.privacy.models import ConsentPurpose, DataSubject
from core.privacy.purposes import digital_age_for, version_key
from core.text import clean_text

REASONS = {
    "stale": "Older than the re-consent period",
    "missing_proof": "No proof of consent",
    "notice_changed": "Given under an older privacy notice",
    "below_digital_age": "Below the digital age of consent",
}
BULK_ACTIONS = {
    "expire": "Mark expired (stop relying on it until the subject consents again)",
    "reconfirm": "Record renewed consent under the current notice (needs a proof reference)",
}

ItemKey = tuple[int, str]  # (subject id, purpose key)


@dataclass(frozen=True)
class ReviewItem:
    subject_id: int
    subject: str
    country: str
    purpose: str
    purpose_name: str
    reasons: tuple[str, ...]
    details: tuple[str, ...]
    since: datetime
    notice_version: str
    proof_ref: str | None

    @property
    def key(self) -> ItemKey:
        return (self.subject_id, self.purpose)


@dataclass(frozen=True)
class BulkChange:
    subject_id: int
    purpose: str
    before: str
    after: str


@dataclass(frozen=True)
class BulkPreview:
    action: str
    changes: tuple[BulkChange, ...]
    skipped: tuple[tuple[ItemKey, str], ...]
    token: str


def _reasons(
    subject: DataSubject,
    purpose: ConsentPurpose,
    since: datetime,
    version: str,
    proof: str | None,
    now: datetime,
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if since + timedelta(days=purpose.reconsent_days) < now:
        found.append(
            ("stale", f"given {since:%Y-%m-%d}, re-consent due after {purpose.reconsent_days} days")
        )
    if not proof:
        found.append(("missing_proof", "no proof reference recorded"))
    if version_key(version) < version_key(purpose.notice_version):
        found.append(
            ("notice_changed", f"given under notice {version}; {purpose.notice_version} is current")
        )
    rule = digital_age_for(subject.country)
    if subject.birth_date is not None and rule is not None:
        age = age_on(subject.birth_date, since.date())
        if age < rule.age:
            found.append(
                (
                    "below_digital_age",
                    f"was {age} when consenting; {subject.country}: {rule.age} ({rule.law})",
                )
            )
    return found


def queue_in(session: Session, now: datetime) -> list[ReviewItem]:
    """The whole queue, within the caller's session (no permission check: callers do it)."""
    purposes = {p.id: p for p in session.scalars(select(ConsentPurpose))}
    latest = latest_events(session)
    subject_ids = {sid for sid, _ in latest}
    subjects = {
        s.id: s for s in session.scalars(select(DataSubject).where(DataSubject.id.in_(subject_ids)))
    }
    items: list[ReviewItem] = []
    for (subject_id, purpose_id), event in latest.items():
        subject, purpose = subjects[subject_id], purposes[purpose_id]
        if event.kind != "given" or subject.erased_at is not None:
            continue
        found = _reasons(subject, purpose, event.ts, event.notice_version, event.proof_ref, now)
        if found:
            items.append(
                ReviewItem(
                    subject_id,
                    f"{subject.full_name} <{subject.email}>",
                    subject.country,
                    purpose.key,
                    purpose.name,
                    tuple(r for r, _ in found),
                    tuple(d for _, d in found),
                    event.ts,
                    event.notice_version,
                    event.proof_ref,
                )
            )
    return sorted(items, key=lambda i: (i.since, i.subject_id, i.purpose))


def review_queue(
    actor: Actor,
    *,
    reasons: Iterable[str] | None = None,
    purposes: Iterable[str] | None = None,
    now: datetime | None = None,
) -> list[ReviewItem]:
    """Active consents that need a person, oldest first, optionally narrowed down."""
    require(actor, Permission.PRIVACY_READ, action="privacy.consent.review")
    wanted = set(reasons or ())
    unknown = wanted - set(REASONS)
    if unknown:
        raise ValidationError(
            f"Unknown review reason(s) {sorted(unknown)}: use {', '.join(REASONS)}."
        )
    keys = set(purposes or ())
    with unit_of_work() as session:
        items = queue_in(session, now or utcnow())
    return [
        i
        for i in items
        if (not wanted or wanted & set(i.reasons)) and (not keys or i.purpose in keys)
    ]


def _plan(session: Session, action: str, keys: Sequence[ItemKey], now: datetime) -> BulkPreview:
    if action not in BULK_ACTIONS:
        raise ValidationError(
            f"Unknown bulk action {action!r}: use one of {', '.join(BULK_ACTIONS)}."
        )
    if not keys:
        raise ValidationError("Select at least one consent from the review queue.")
    queued = {i.key: i for i in queue_in(session, now)}
    changes: list[BulkChange] = []
    skipped: list[tuple[ItemKey, str]] = []
    for key in dict.fromkeys(keys):  # keep order, drop repeats
        item = queued.get(key)
        if item is None:
            skipped.append((key, "no longer in the review queue"))
        elif action == "reconfirm" and "below_digital_age" in item.reasons:
            skipped.append((key, "below the digital age of consent: renewal needs a parent"))
        else:
            changes.append(
                BulkChange(key[0], key[1], "active", "expired" if action == "expire" else "active")
            )
    digest = hashlib.sha256(
        repr((action, [(c.subject_id, c.purpose) for c in changes])).encode("utf-8")
    ).hexdigest()
    return BulkPreview(action, tuple(changes), tuple(skipped), digest[:20])


def preview_bulk(
    actor: Actor, action: str, keys: Sequence[ItemKey], *, now: datetime | None = None
) -> BulkPreview:
    """What `apply_bulk` would do to the selected queue items; writes nothing."""
    require(actor, Permission.CONSENT_MANAGE, action="privacy.consent.bulk_preview")
    with unit_of_work() as session:
        return _plan(session, action, keys, now or utcnow())


def apply_bulk(
    actor: Actor,
    action: str,
    keys: Sequence[ItemKey],
    token: str,
    *,
    proof_ref: str = "",
    now: datetime | None = None,
) -> int:
    """Apply a previewed bulk action in one transaction; returns the number of events written."""
    require(actor, Permission.CONSENT_MANAGE, action="privacy.consent.bulk")
    proof = clean_text(proof_ref, 200)
    if action == "reconfirm" and not proof:
        raise ValidationError(
            "Renewed consent needs a proof reference (e.g. the re-consent campaign's batch id)."
        )
    check_free_text(proof_reference=proof)
    when = now or utcnow()
    with unit_of_work() as session:
        plan = _plan(session, action, keys, when)
        if plan.token != token:
            raise Conflict("The review queue changed since the preview: preview again, then apply.")
        purposes = {p.key: p for p in session.scalars(select(ConsentPurpose))}
        subject_ids = [c.subject_id for c in plan.changes]
        subjects = {
            s.id: s
            for s in session.scalars(select(DataSubject).where(DataSubject.id.in_(subject_ids)))
        }
        for change in plan.changes:
            append_event(
                session,
                actor,
                subjects[change.subject_id],
                purposes[change.purpose],
                "expired" if action == "expire" else "given",
                channel="review",
                ts=when,
                proof_ref=proof or None,
                note=f"bulk {action} from the review queue",
            )
        record(
            session,
            actor,
            f"privacy.consent.bulk_{action}",
            "consent-review",
            {
                "events": len(plan.changes),
                "skipped": len(plan.skipped),
                "subjects": sorted(set(subject_ids)),
                "purposes": sorted({c.purpose for c in plan.changes}),
            },
        )
        return len(plan.changes)
