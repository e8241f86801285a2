"""The only module that wraps core in Streamlit caches and session state.

Pages call `page_actor()` first: it resolves the signed-in user from the session token (or OIDC),
and stops the page with a clear message when the role lacks the page's permission. Core checks the
permission again on every call; this only keeps people from pages that would refuse them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

from core import clock
from core.auth import service as auth
from core.auth.actor import Actor
from core.auth.roles import Permission, has_permission
from core.config import Settings, get_settings
from core.errors import DomainError, SessionExpired
from core.platform import health, home

TOKEN_KEY = "omni_token"  # noqa: S105 (a session-state key, not a secret)
FLASH_KEY = "omni_flash"
MUST_CHANGE_KEY = "omni_must_change_password"
OIDC_REFUSED_KEY = "omni_oidc_refused"
SESSION_COOKIE = "omni_session"
COOKIE_SEEN_KEY = "omni_cookie_seen"
SET_COOKIE_KEY = "omni_set_cookie"
CLEAR_COOKIE_KEY = "omni_clear_cookie"


@st.cache_resource
def settings() -> Settings:
    return get_settings()


def oidc_configured() -> bool:
    """True when `[auth]` secrets are present, so `st.login` can reach an identity provider."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def oidc_identity() -> str:
    """The e-mail the identity provider vouched for, or "" when no one signed in through it."""
    if oidc_configured() and getattr(st.user, "is_logged_in", False):
        return str(st.user.get("email", ""))
    return ""


def _adopt_cookie_session() -> str | None:
    """A new browser session (a reload, a new tab) carries the token in a cookie; adopt it once."""
    token = st.context.cookies.get(SESSION_COOKIE)
    if not isinstance(token, str) or not token or st.session_state.get(COOKIE_SEEN_KEY) == token:
        return None
    st.session_state[COOKIE_SEEN_KEY] = token
    try:
        _, must_change = auth.session_status(token)
    except SessionExpired as exc:
        st.session_state[CLEAR_COOKIE_KEY] = True
        st.session_state[FLASH_KEY] = exc.message
        return None
    st.session_state[TOKEN_KEY] = token
    st.session_state[MUST_CHANGE_KEY] = must_change
    return token


def current_actor() -> Actor | None:
    token = st.session_state.get(TOKEN_KEY) or _adopt_cookie_session()
    if not token and oidc_identity() and st.session_state.get(OIDC_REFUSED_KEY) != oidc_identity():
        try:
            grant = auth.sign_in_oidc(oidc_identity(), str(st.user.get("sub", "")))
        except DomainError as exc:
            # Remember the refusal so reruns do not retry (and audit) it again and again.
            st.session_state[OIDC_REFUSED_KEY] = oidc_identity()
            st.session_state[FLASH_KEY] = exc.message
            return None
        st.session_state[TOKEN_KEY] = token = grant.token
    if not token:
        return None
    try:
        return auth.resolve_session(token)
    except SessionExpired as exc:
        st.session_state.pop(TOKEN_KEY, None)
        st.session_state[FLASH_KEY] = exc.message
        return None


def start_session(grant: auth.SessionGrant) -> None:
    st.session_state[TOKEN_KEY] = grant.token
    st.session_state[MUST_CHANGE_KEY] = grant.must_change_password
    st.session_state[SET_COOKIE_KEY] = True
    st.session_state.pop(FLASH_KEY, None)


def end_session() -> None:
    token = st.session_state.pop(TOKEN_KEY, None)
    if token:
        auth.sign_out(token)
        st.session_state[COOKIE_SEEN_KEY] = token  # this tab must not adopt it again
    st.session_state[CLEAR_COOKIE_KEY] = True
    st.session_state.pop(MUST_CHANGE_KEY, None)
    st.cache_data.clear()
    if oidc_configured() and getattr(st.user, "is_logged_in", False):
        st.logout()


def sync_session_cookie() -> None:
    """Write or clear the browser's session cookie after sign-in or sign-out.

    The token is the same revocable, expiring server-side session; the cookie only lets a reload
    or a new tab find it. SameSite=Strict keeps other sites from sending it.
    """
    if st.session_state.pop(SET_COOKIE_KEY, False) and st.session_state.get(TOKEN_KEY):
        max_age = settings().session_ttl_minutes * 60
        value = f"{st.session_state[TOKEN_KEY]}; Max-Age={max_age}"
    elif st.session_state.pop(CLEAR_COOKIE_KEY, False):
        value = "; Max-Age=0"
    else:
        return
    secure = "(location.protocol === 'https:' ? '; Secure' : '')"
    st.html(
        f"<script>document.cookie = '{SESSION_COOKIE}={value}; Path=/; SameSite=Strict' "
        f"+ {secure};</script>",
        unsafe_allow_javascript=True,
    )


def page_actor(permission: Permission | None = None) -> Actor:
    """The signed-in actor, or stop the page with the reason it cannot be shown."""
    actor = current_actor()
    if actor is None:
        st.warning("Please sign in.")
        st.stop()
        raise AssertionError("unreachable")  # st.stop() raises; this keeps type checkers honest
    if permission is not None and not has_permission(actor.role, permission):
        st.error(
            f"Your role ({actor.role.label}) cannot open this page. Ask an admin if you need it."
        )
        st.stop()
    return actor


def show_error(exc: DomainError) -> None:
    st.error(exc.message, icon=":material/error:")


@st.cache_data(ttl=30, show_spinner=False)
def home_metrics(actor: Actor) -> list[tuple[str, list[home.Metric]]]:
    return home.home_metrics(actor)


@st.cache_data(ttl=15, show_spinner="Checking backends...")
def platform_status(actor: Actor) -> list[health.BackendStatus]:
    return health.platform_status(actor)


def viewer_zone() -> ZoneInfo:
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def today() -> date:
    """Today in the viewer's time zone, from the console's clock (core/clock.py)."""
    return clock.today(viewer_zone())


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """UTC from core, shown in the viewer's browser time zone."""
    return value.astimezone(viewer_zone()).strftime(fmt) if value else ""


def page_header(title: str, caption: str = "", **_: Any) -> None:
    st.title(title)
    if caption:
        st.caption(caption)


def mlflow_tracking() -> Any:
    """The configured MLflow store (`core.mlops.tracking.Tracking`), checked once per process and
    URI: each check opens a connection, which every page run would otherwise repeat."""
    from core.mlops.tracking import tracking_uri

    return _mlflow_tracking(tracking_uri())


@st.cache_resource(show_spinner="Connecting to MLflow...")
def _mlflow_tracking(uri: str) -> Any:
    from core.mlops.tracking import configure_mlflow

    return configure_mlflow()
