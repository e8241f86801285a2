"""Data-subject requests: the queue by due date with overdue alerts, opening a request, and
working one: verify identity, assign, extend, export and download, erase with per-source
progress and resume, the completion certificate, and the timeline from the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time

import pandas as pd
import plotly.express as px
import streamlit as st

from console import deps, widgets
from console.erasure_panel import certificate_panel, erasure_panel
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.clock import utcnow
from core.errors import DomainError
from core.privacy import deadlines, export, subjects
from core.privacy import requests as rq
from core.privacy.rectification import rectify_subject

SELECT_KEY = "dsr_selected"
NEXT_KEY = "dsr_next"  # a reference to select on the next run (set before the selectbox exists)
FLASH_KEY = "dsr_flash"
DOWNLOAD_KEY = "dsr_download"  # (reference, file name, bytes) of a prepared export
DUE_SOON_DAYS = 7


def _flash(message: str, kind: str = "success") -> None:
    widgets.flash(FLASH_KEY, message, kind)


def _day(value: datetime | None) -> str:
    return deps.local_time(value, "%Y-%m-%d")


def _due(value: datetime) -> str:
    """Deadlines are whole UTC days (they end at 23:59:59 UTC): shown as that date, not
    converted, or a viewer east of UTC would see the day after."""
    return value.astimezone(UTC).strftime("%Y-%m-%d")


def _alerts(actor: Actor) -> None:
    overdue = rq.overdue_requests(actor)
    soon = rq.due_soon(actor, DUE_SOON_DAYS)
    if overdue:
        refs = ", ".join(f"{r.reference} ({-r.days_left} d)" for r in overdue[:10])
        st.error(
            f"**{len(overdue)} overdue request(s)**: {refs}. Answer them now and record why "
            "they are late.",
            icon=":material/alarm:",
        )
    if soon:
        refs = ", ".join(f"{r.reference} ({r.days_left} d)" for r in soon[:10])
        st.warning(
            f"**{len(soon)} request(s) due within {DUE_SOON_DAYS} days**: {refs}.",
            icon=":material/schedule:",
        )


# --- queue -------------------------------------------------------------------------------------


def queue_frame(rows: list[rq.RequestInfo]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Reference": r.reference,
                "Subject": r.subject_label,
                "Kind": r.kind_label,
                "Regime": r.regime,
                "Status": r.status + (" (partly erased)" if r.partially_erased else ""),
                "Received": _day(r.received_at),
                "Due (UTC)": _due(r.due_at),
                "Days left": r.days_left,
                "Overdue": r.overdue,
                "Extended": r.extended,
                "Assignee": r.assignee or "",
            }
            for r in rows
        ],
        columns=[
            "Reference",
            "Subject",
            "Kind",
            "Regime",
            "Status",
            "Received",
            "Due (UTC)",
            "Days left",
            "Overdue",
            "Extended",
            "Assignee",
        ],
    )


def _queue_filter(actor: Actor) -> rq.QueueFilter:
    c1, c2, c3 = st.columns(3)
    statuses = c1.multiselect("Status", rq.STATUSES, default=rq.OPEN_STATUSES, key="dsr_status")
    kinds = c2.multiselect(
        "Kind",
        list(deadlines.KINDS),
        format_func=lambda k: deadlines.KINDS[k].label,
        key="dsr_kinds",
    )
    regimes = c3.multiselect("Regime", deadlines.REGIMES, key="dsr_regimes")
    c4, c5 = st.columns(2)
    people = ["(anyone)", "(unassigned)", *rq.assignable_users(actor)]
    who = c4.selectbox("Assigned to", people, key="dsr_assignee_filter")
    text = c5.text_input("Reference, e-mail or name contains", max_chars=100, key="dsr_search")
    assignee = None if who == "(anyone)" else "" if who == "(unassigned)" else who
    return rq.QueueFilter(
        statuses=tuple(statuses),
        kinds=tuple(kinds),
        regimes=tuple(regimes),
        assignee=assignee,
        text=text,
    )


def _queue(actor: Actor) -> None:
    rows = rq.list_requests(actor, _queue_filter(actor))
    st.write(f"**{len(rows):,}** requests, soonest deadline first")
    if not rows:
        st.info("No request matches these filters.")
        return
    frame = queue_frame(rows)

    def highlight(row: pd.Series) -> list[str]:
        style = "background-color: rgba(198, 40, 40, 0.15)" if row["Overdue"] else ""
        return [style] * len(row)

    st.dataframe(frame.style.apply(highlight, axis=1), hide_index=True, width="stretch")
    open_rows = frame[~frame["Status"].str.startswith(rq.CLOSED_STATUSES)]
    if not open_rows.empty:
        figure = px.histogram(open_rows, x="Days left", color="Kind", nbins=20)
        figure.add_vline(x=0, line_dash="dash", line_color="#c62828")
        widgets.chart(figure, height=200)


# --- new request -------------------------------------------------------------------------------


def _kind_options(subject: subjects.SubjectInfo) -> list[str]:
    regime = deadlines.regime_for_country(subject.country)
    return [k.key for k in (deadlines.kinds_for(regime) if regime else deadlines.KINDS.values())]


def _new_request(actor: Actor) -> None:
    if not has_permission(actor.role, Permission.DSR_MANAGE):
        st.info("Your role can read requests but not open them.")
        return
    term = st.text_input("Find the data subject (e-mail, name or reference)", key="dsr_find")
    found = [s for s in subjects.search_subjects(actor, term, limit=50) if s.erased_at is None]
    if not found:
        st.info("No data subject matches: register the person on the Consent page first.")
        return
    subject = st.selectbox(
        "Subject", found, format_func=lambda s: f"#{s.id} · {s.label}", key="dsr_subject"
    )
    regime = deadlines.regime_for_country(subject.country)
    st.caption(
        f"Country {subject.country}: "
        + (f"covered by the {regime}." if regime else "choose the regime by the kind of request.")
    )
    with st.form("dsr_new"):
        c1, c2, c3 = st.columns(3)
        kind = c1.selectbox(
            "Kind",
            _kind_options(subject),
            format_func=lambda k: f"{deadlines.KINDS[k].label} ({deadlines.KINDS[k].legal_basis})",
            key="dsr_new_kind",
        )
        today = deps.today()
        received = c2.date_input(
            "Received on", value=today, max_value=today, key="dsr_new_received"
        )
        channel = c3.selectbox("Channel", rq.CHANNELS, key="dsr_new_channel")
        people = ["(unassigned)", *rq.assignable_users(actor)]
        assignee = st.selectbox("Assign to", people, key="dsr_new_assignee")
        details = st.text_area("What the person asked for", max_chars=5000, key="dsr_new_details")
        submitted = st.form_submit_button("Open request", type="primary")
    if submitted:
        _open(actor, subject, kind, received, channel, assignee, details)


def _received_at(day: date) -> datetime:
    """Today's date means now; an earlier date means that day's start in the viewer's zone."""
    if day >= deps.today():
        return utcnow()
    return datetime.combine(day, time.min, tzinfo=deps.viewer_zone()).astimezone(UTC)


def _open(
    actor: Actor,
    subject: subjects.SubjectInfo,
    kind: str,
    received: date,
    channel: str,
    assignee: str,
    details: str,
) -> None:
    try:
        info = rq.open_request(
            actor,
            subject_id=subject.id,
            kind=kind,
            received_at=_received_at(received),
            channel=channel,
            details=details,
            assignee=None if assignee == "(unassigned)" else assignee,
        )
    except DomainError as exc:
        deps.show_error(exc)
        return
    if info.overdue:
        _flash(
            f"Opened {info.reference}: it was already due on {_due(info.due_at)} and is "
            "overdue. Answer it first.",
            "warning",
        )
    else:
        _flash(f"Opened {info.reference}; due {_due(info.due_at)}.")
    st.session_state[NEXT_KEY] = info.reference
    st.rerun()


# --- one request -------------------------------------------------------------------------------


def _select(actor: Actor) -> rq.RequestInfo | None:
    rows = rq.list_requests(actor, rq.QueueFilter(statuses=rq.STATUSES, limit=1000))
    by_ref = {r.reference: r for r in rows}
    if NEXT_KEY in st.session_state:
        st.session_state[SELECT_KEY] = st.session_state.pop(NEXT_KEY)
    if st.session_state.get(SELECT_KEY) not in by_ref:
        st.session_state.pop(SELECT_KEY, None)
    if not by_ref:
        st.info("No requests yet: open one in the New request tab.")
        return None
    ref = st.selectbox(
        "Request",
        list(by_ref),
        format_func=lambda r: (
            f"{r} · {by_ref[r].kind_label} · {by_ref[r].subject_label} · {by_ref[r].status}"
        ),
        key=SELECT_KEY,
    )
    return rq.get_request(actor, ref)


def _summary(info: rq.RequestInfo) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Status", info.status)
    c2.metric("Due (end of day, UTC)", _due(info.due_at), "extended" if info.extended else None)
    c3.metric("Days left", info.days_left if info.is_open else "-")
    c4.metric("Assignee", info.assignee or "nobody")
    kind = deadlines.KINDS.get(info.kind)
    basis = kind.legal_basis if kind else ""
    st.caption(
        f"{info.kind_label} ({basis}) · {info.regime} · subject {info.subject_label} · received "
        f"{_day(info.received_at)} by {info.channel} · opened by {info.created_by}"
    )
    if info.overdue:
        st.error(f"Overdue by {-info.days_left} day(s).", icon=":material/alarm:")
    if info.closed_late:
        st.warning("Closed after its deadline.")
    with st.expander("Case notes, verification, resolution"):
        verified = (
            f"{_day(info.verified_at)} by {info.verified_by} ({info.verification_method})"
            if info.verified_at
            else "not yet"
        )
        st.markdown(f"**Identity verified:** {verified}")
        # free text people typed: shown as plain text, never rendered as Markdown
        if info.extended:
            st.text(f"Extension reason: {info.extension_reason}")
        if info.resolution:
            st.text(f"Resolution: {info.resolution}")
        st.text(info.details or "(no notes)")


def _verify(actor: Actor, info: rq.RequestInfo) -> None:
    with st.form(f"dsr_verify_{info.reference}"):
        st.markdown("**Verify the requester's identity**")
        method = st.selectbox(
            "Method",
            list(rq.VERIFICATION_METHODS),
            format_func=rq.VERIFICATION_METHODS.get,
            key=f"dsr_verify_method_{info.reference}",
        )
        note = st.text_input(
            "Note (what was checked)", max_chars=1000, key=f"dsr_verify_note_{info.reference}"
        )
        if st.form_submit_button("Record verification", type="primary"):
            _act(
                lambda: rq.verify_identity(actor, info.reference, method=method, note=note),
                f"Identity verified for {info.reference}.",
            )


def _rectify(actor: Actor, info: rq.RequestInfo) -> None:
    with st.form(f"dsr_rectify_{info.reference}"):
        st.markdown("**Correct the subject's data** (leave a field empty to keep it)")
        c1, c2 = st.columns(2)
        email = c1.text_input("E-mail", max_chars=254, key=f"dsr_rectify_email_{info.reference}")
        name = c2.text_input("Full name", max_chars=200, key=f"dsr_rectify_name_{info.reference}")
        c3, c4 = st.columns(2)
        country = c3.text_input(
            "Country (ISO code)", max_chars=2, key=f"dsr_rectify_country_{info.reference}"
        )
        born = c4.date_input(
            "Birth date",
            value=None,
            min_value=date(1900, 1, 1),
            max_value=deps.today(),
            key=f"dsr_rectify_born_{info.reference}",
        )
        if st.form_submit_button("Apply corrections"):
            _act(
                lambda: rectify_subject(
                    actor,
                    info.reference,
                    email=email,
                    full_name=name,
                    country=country,
                    birth_date=born,
                ),
                f"Corrections applied for {info.reference}.",
            )


def _act(call: Callable[[], object], message: str) -> None:
    """Run a service call; flash and rerun on success, show the error otherwise."""
    try:
        call()
    except DomainError as exc:
        deps.show_error(exc)
        return
    _flash(message)
    st.rerun()


def _assign_and_extend(actor: Actor, info: rq.RequestInfo) -> None:
    left, right = st.columns(2)
    with left, st.container(border=True):
        st.markdown("**Assign**")
        people = ["(unassigned)", *rq.assignable_users(actor)]
        current = people.index(info.assignee) if info.assignee in people else 0
        who = st.selectbox("Assignee", people, index=current, key=f"dsr_assign_{info.reference}")
        if st.button("Assign", key="dsr_assign_button"):
            target = None if who == "(unassigned)" else who
            _act(lambda: rq.assign_request(actor, info.reference, target), f"Assigned to {who}.")
    kind = deadlines.get_kind(info.kind)
    with right, st.container(border=True):
        st.markdown("**Extend the deadline**")
        st.caption(deadlines.extension_rule(kind))
        if info.extended or not kind.extendable:
            st.caption("Already extended." if info.extended else "This kind cannot be extended.")
            return
        reason = st.text_area(
            "Reason (told to the subject)",
            max_chars=500,
            height=68,
            key=f"dsr_extend_reason_{info.reference}",
        )
        if st.button("Extend deadline", key="dsr_extend_button"):
            _act(
                lambda: rq.extend_deadline(actor, info.reference, reason),
                f"Extended {info.reference}.",
            )


def _export(actor: Actor, info: rq.RequestInfo) -> None:
    with st.container(border=True):
        st.markdown("**Export everything held (zip: JSON and CSV per data source)**")
        if st.button(
            "Build export",
            icon=":material/archive:",
            disabled=info.verified_at is None or not info.is_open,
            key="dsr_export_button",
        ):
            try:
                built = export.export_request(actor, info.reference)
                name, blob = export.read_export(actor, info.reference)
            except DomainError as exc:
                deps.show_error(exc)
                return
            st.session_state[DOWNLOAD_KEY] = (info.reference, name, blob)
            counts = ", ".join(f"{k}: {v}" for k, v in built.counts.items() if v)
            _flash(f"Built the export of {info.reference} ({counts}).")
            st.rerun()
        if info.verified_at is None:
            st.caption("Verify the requester's identity first.")
        prepared = st.session_state.get(DOWNLOAD_KEY)
        if prepared and prepared[0] == info.reference:
            st.download_button(
                f"Download {prepared[1]} ({len(prepared[2]):,} bytes)",
                prepared[2],
                prepared[1],
                "application/zip",
                icon=":material/file_download:",
                key="dsr_download_button",
            )
        if info.export_sha256:
            st.caption(f"Last export sha256 {info.export_sha256}")


def _close_or_reject(actor: Actor, info: rq.RequestInfo) -> None:
    kind = deadlines.get_kind(info.kind)
    left, right = st.columns(2)
    if not kind.erases:
        with left, st.container(border=True):
            st.markdown("**Close as answered**")
            resolution = st.text_area(
                "Resolution",
                max_chars=1000,
                height=68,
                key=f"dsr_close_resolution_{info.reference}",
            )
            if st.button("Close request", disabled=info.verified_at is None, key="dsr_close"):
                _act(
                    lambda: rq.close_request(actor, info.reference, resolution),
                    f"Closed {info.reference}.",
                )
    with right, st.container(border=True):
        st.markdown("**Reject**")
        reason = st.text_area(
            "Reason (told to the subject)",
            max_chars=1000,
            height=68,
            key=f"dsr_reject_reason_{info.reference}",
        )
        if st.button("Reject request", key="dsr_reject"):
            _act(
                lambda: rq.reject_request(actor, info.reference, reason),
                f"Rejected {info.reference}.",
            )


def _timeline(actor: Actor, info: rq.RequestInfo) -> None:
    entries = rq.timeline(actor, info.reference)
    st.markdown("**Timeline** (from the audit log)")
    frame = pd.DataFrame(
        [
            {
                "Time": deps.local_time(e.ts),
                "Actor": e.actor,
                "Action": e.action.removeprefix("privacy.request."),
                "Outcome": e.outcome,
                "Details": json.dumps(e.summary, ensure_ascii=False, sort_keys=True),
            }
            for e in entries
        ],
        columns=["Time", "Actor", "Action", "Outcome", "Details"],
    )
    st.dataframe(frame, hide_index=True, width="stretch")


def _request(actor: Actor) -> None:
    info = _select(actor)
    if info is None:
        return
    _summary(info)
    manage = has_permission(actor.role, Permission.DSR_MANAGE) and info.is_open
    kind = deadlines.get_kind(info.kind)
    if manage and info.verified_at is None:
        _verify(actor, info)
    if manage:
        _assign_and_extend(actor, info)
    if manage and kind.key == "rectification" and info.verified_at is not None:
        _rectify(actor, info)
    if kind.exports and has_permission(actor.role, Permission.DSR_MANAGE):
        _export(actor, info)
    if kind.erases:
        erasure_panel(actor, info, _flash)
    if info.has_certificate:
        certificate_panel(actor, info)
    if manage:
        _close_or_reject(actor, info)
    _timeline(actor, info)


def render() -> None:
    actor = deps.page_actor(Permission.PRIVACY_READ)
    st.title("Data-subject requests")
    st.caption(
        "Access, erasure and the other GDPR and CCPA rights, worked to their deadlines. Every "
        "step is written to the audit log."
    )
    widgets.show_flash(FLASH_KEY)
    try:
        _alerts(actor)
        queue_tab, new_tab, request_tab = st.tabs(["Queue", "New request", "Request"])
        with queue_tab:
            _queue(actor)
        with new_tab:
            _new_request(actor)
        with request_tab:
            _request(actor)
    except DomainError as exc:
        deps.show_error(exc)


if __name__ == "__main__":
    render()
