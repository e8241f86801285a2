"""Consent: the review queue with previewed bulk actions, one subject's consent state, history
and receipt, and the processing purposes."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.errors import DomainError
from core.privacy import consent, consent_review, purposes, subjects

PREVIEW_KEY = "consent_preview"
SUBJECT_KEY = "consent_subject"
RECEIPT_KEY = "consent_receipt"
FLASH_KEY = "consent_flash"


def render() -> None:
    actor = deps.page_actor(Permission.PRIVACY_READ)
    st.title("Consent")
    st.caption(
        "Consent per data subject and purpose, derived from an append-only event history. "
        "The review queue lists what needs a person."
    )
    widgets.show_flash(FLASH_KEY)
    queue_tab, subject_tab, purpose_tab = st.tabs(["Review queue", "Subject", "Purposes"])
    for tab, section in (
        (queue_tab, _review_queue),
        (subject_tab, _subject),
        (purpose_tab, _purposes),
    ):
        with tab:
            try:  # one tab's error (e.g. a changed queue) leaves the others usable
                section(actor)
            except DomainError as exc:
                deps.show_error(exc)


def _review_queue(actor: Actor) -> None:
    c1, c2 = st.columns(2)
    reasons = c1.multiselect(
        "Reasons", list(consent_review.REASONS), format_func=consent_review.REASONS.get
    )
    keys = [p.key for p in purposes.list_purposes(actor) if p.needs_consent]
    chosen = c2.multiselect("Purposes", keys)
    items = consent_review.review_queue(actor, reasons=reasons, purposes=chosen)
    st.write(f"**{len(items):,}** consents need review")
    if not items:
        st.success("Nothing to review.")
        return
    frame = pd.DataFrame(
        [
            {
                "Select": False,
                "Subject": i.subject,
                "Subject id": i.subject_id,
                "Country": i.country,
                "Purpose": i.purpose,
                "Reasons": ", ".join(i.reasons),
                "Details": "; ".join(i.details),
                "Given": deps.local_time(i.since, "%Y-%m-%d"),
                "Notice": i.notice_version,
                "Proof": i.proof_ref or "",
            }
            for i in items
        ]
    )
    counts = frame.assign(Reason=frame["Reasons"].str.split(", ")).explode("Reason")
    figure = px.histogram(counts, x="Purpose", color="Reason", barmode="stack")
    widgets.chart(figure, height=220)
    if not has_permission(actor.role, Permission.CONSENT_MANAGE):
        st.dataframe(frame.drop(columns="Select"), hide_index=True, width="stretch")
        return
    select_all = st.checkbox("Select every listed consent", key="consent_select_all")
    frame["Select"] = select_all
    edited = st.data_editor(
        frame,
        hide_index=True,
        width="stretch",
        disabled=[c for c in frame.columns if c != "Select"],
        key="consent_queue_editor",
    )
    selected = [
        (int(row["Subject id"]), str(row["Purpose"]))
        for _, row in edited.iterrows()
        if bool(row["Select"])
    ]
    _bulk(actor, selected)


def _bulk(actor: Actor, selected: list[tuple[int, str]]) -> None:
    c1, c2 = st.columns([2, 2])
    action = c1.selectbox(
        "Bulk action",
        list(consent_review.BULK_ACTIONS),
        format_func=consent_review.BULK_ACTIONS.get,
    )
    proof = c2.text_input("Proof reference (for renewals)", max_chars=200, key="consent_proof")
    if st.button(f"Preview for {len(selected)} selected", disabled=not selected):
        st.session_state[PREVIEW_KEY] = (
            consent_review.preview_bulk(actor, action, selected),
            selected,
        )
    stored = st.session_state.get(PREVIEW_KEY)
    if not stored or stored[0].action != action:
        return
    preview, keys = stored
    st.info(
        f"Preview: {len(preview.changes)} consent(s) would be {action}d; "
        f"{len(preview.skipped)} skipped."
    )
    if preview.changes:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Subject id": c.subject_id,
                        "Purpose": c.purpose,
                        "From": c.before,
                        "To": c.after,
                    }
                    for c in preview.changes
                ]
            ),
            hide_index=True,
        )
    if preview.skipped:
        st.dataframe(
            pd.DataFrame(
                [
                    {"Subject id": k[0], "Purpose": k[1], "Why skipped": why}
                    for k, why in preview.skipped
                ]
            ),
            hide_index=True,
        )
    if st.button("Apply", type="primary", disabled=not preview.changes):
        written = consent_review.apply_bulk(actor, action, keys, preview.token, proof_ref=proof)
        st.session_state.pop(PREVIEW_KEY, None)
        widgets.flash(FLASH_KEY, f"Recorded {written} consent event(s).")
        st.rerun()


def _subject(actor: Actor) -> None:
    term = st.text_input("Find a data subject (e-mail, name or reference)", key="consent_search")
    found = subjects.search_subjects(actor, term, limit=50) if term else []
    if term and not found:
        st.info("No data subject matches.")
    if found:
        chosen = st.selectbox(
            "Subject", found, format_func=lambda s: f"#{s.id} · {s.label}", key=SUBJECT_KEY
        )
        _subject_detail(actor, chosen)
    if has_permission(actor.role, Permission.CONSENT_MANAGE):
        _register_form(actor)


def _subject_detail(actor: Actor, subject: subjects.SubjectInfo) -> None:
    born = subject.birth_date.isoformat() if subject.birth_date else "unknown"
    st.caption(
        f"Reference {subject.external_ref} · country {subject.country} · born {born} · "
        f"registered {deps.local_time(subject.created_at, '%Y-%m-%d')}"
    )
    states = consent.consent_state(actor, subject.id)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Purpose": s.purpose.name,
                    "Lawful basis": s.purpose.basis_label,
                    "Status": s.status if s.purpose.needs_consent else "not consent-based",
                    "Since": deps.local_time(s.since, "%Y-%m-%d"),
                    "Channel": s.channel,
                    "Notice": s.notice_version,
                    "Proof": s.proof_ref or "",
                }
                for s in states
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    history = consent.consent_history(actor, subject.id)
    if history:
        events = pd.DataFrame(
            [
                {"When": e.ts, "Purpose": e.purpose, "Event": e.kind, "Channel": e.channel}
                for e in history
            ]
        )
        figure = px.scatter(events, x="When", y="Purpose", color="Event", symbol="Event")
        widgets.chart(figure, height=200)
    if st.button("Prepare consent receipt", key="consent_receipt_button"):
        receipt = consent.consent_receipt(actor, subject.id)  # audited: issue it on request only
        st.session_state[RECEIPT_KEY] = (
            subject.id,
            json.dumps(receipt, indent=2, ensure_ascii=False),
        )
    prepared = st.session_state.get(RECEIPT_KEY)
    if prepared and prepared[0] == subject.id:
        st.download_button(
            "Download consent receipt (JSON)",
            prepared[1],
            f"consent-receipt-{subject.id}.json",
            "application/json",
            icon=":material/file_download:",
        )
    if has_permission(actor.role, Permission.CONSENT_MANAGE):
        _record_form(actor, subject, [s.purpose for s in states if s.purpose.needs_consent])


def _record_form(
    actor: Actor, subject: subjects.SubjectInfo, consent_purposes: list[purposes.PurposeInfo]
) -> None:
    with st.form("consent_record"):
        st.write("**Record a consent event**")
        c1, c2, c3 = st.columns(3)
        purpose = c1.selectbox("Purpose", [p.key for p in consent_purposes])
        kind = c2.selectbox("Event", consent.EVENT_KINDS)
        channel = c3.selectbox("Channel", consent.CHANNELS)
        proof = st.text_input("Proof reference", max_chars=200)
        note = st.text_input("Note", max_chars=500)
        if st.form_submit_button("Record") and purpose:
            consent.record_consent(
                actor, subject.id, purpose, kind, channel=channel, proof_ref=proof, note=note
            )
            st.session_state.pop(RECEIPT_KEY, None)  # a prepared receipt is now out of date
            widgets.flash(FLASH_KEY, f"Recorded: {purpose} {kind}.")
            st.rerun()  # the tables above show the change


def _register_form(actor: Actor) -> None:
    with st.expander("Register a data subject"), st.form("consent_register"):
        c1, c2 = st.columns(2)
        email = c1.text_input("E-mail", max_chars=254)
        name = c2.text_input("Full name", max_chars=200)
        c3, c4 = st.columns(2)
        country = c3.text_input("Country (ISO code)", max_chars=2)
        born = c4.date_input(
            "Birth date", value=None, min_value=date(1900, 1, 1), max_value=deps.today()
        )
        if st.form_submit_button("Register"):
            created = subjects.register_subject(
                actor, email=email, full_name=name, country=country, birth_date=born
            )
            widgets.flash(FLASH_KEY, f"Registered subject #{created.id}.")
            st.rerun()  # the tables above show the change


def _purposes(actor: Actor) -> None:
    listed = purposes.list_purposes(actor)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "Key": p.key,
                    "Purpose": p.name,
                    "Lawful basis": p.basis_label,
                    "Notice version": p.notice_version,
                    "Re-consent after (days)": p.reconsent_days,
                    "Description": p.description,
                }
                for p in listed
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if not has_permission(actor.role, Permission.CONSENT_MANAGE):
        return
    with st.form("consent_purpose"):
        st.write(
            "**Add or change a purpose** (a new notice version sends older consents to review)"
        )
        c1, c2 = st.columns(2)
        key = c1.text_input("Key", max_chars=64, placeholder="newsletter")
        name = c2.text_input("Name", max_chars=120)
        c3, c4, c5 = st.columns(3)
        basis = c3.selectbox(
            "Lawful basis", list(purposes.LAWFUL_BASES), format_func=purposes.LAWFUL_BASES.get
        )
        version = c4.text_input("Notice version", max_chars=32, value="v1")
        days = c5.number_input("Re-consent after (days)", 30, 3650, 730)
        description = st.text_input("Description", max_chars=500)
        if st.form_submit_button("Save purpose"):
            exists = any(p.key == key for p in listed)
            purposes.save_purpose(
                actor,
                key,
                name=name,
                lawful_basis=basis,
                notice_version=version,
                reconsent_days=int(days),
                description=description,
                create=not exists,
            )
            widgets.flash(FLASH_KEY, f"Saved purpose {key}.")
            st.rerun()  # the tables above show the change


if __name__ == "__main__":
    render()
