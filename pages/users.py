"""Users & roles: accounts, roles, lockouts and password resets (admins)."""

import pandas as pd
import streamlit as st

from console import deps
from core.auth import service as auth
from core.auth.roles import Permission, Role, has_permission
from core.errors import DomainError


def _create_form(actor) -> None:  # type: ignore[no-untyped-def]
    with st.form("create_user", clear_on_submit=True):
        st.subheader("New account")
        c1, c2 = st.columns(2)
        username = c1.text_input("Username", max_chars=64)
        role = c2.selectbox("Role", list(Role), format_func=lambda r: r.label)
        full_name = c1.text_input("Full name", max_chars=200)
        email = c2.text_input("E-mail (for single sign-on)", max_chars=254)
        submitted = st.form_submit_button("Create account", type="primary")
    if submitted:
        try:
            user, password = auth.create_user(
                actor, username, role, email=email or None, full_name=full_name
            )
        except DomainError as exc:
            deps.show_error(exc)
            return
        st.success(f"Created {user.username} ({user.role.label}).")
        if password:
            st.code(password, language=None)
            st.caption(
                "Give this password to the user now: it is not shown again, and they must "
                "change it at first sign-in."
            )


def _manage(actor, users: list[auth.UserView]) -> None:  # type: ignore[no-untyped-def]
    st.subheader("Change an account")
    names = [u.username for u in users]
    if not names:
        return
    name = st.selectbox("Account", names, key="manage_user")
    user = next(u for u in users if u.username == name)
    c1, c2, c3, c4 = st.columns(4)
    try:
        if user.is_active and c1.button("Disable", icon=":material/block:"):
            auth.set_active(actor, name, False)
            st.rerun()
        if not user.is_active and c1.button("Enable", icon=":material/check_circle:"):
            auth.set_active(actor, name, True)
            st.rerun()
        if user.is_locked and c2.button("Unlock", icon=":material/lock_open:"):
            auth.unlock(actor, name)
            st.rerun()
        if c3.button("Reset password", icon=":material/key:"):
            st.code(auth.reset_password(actor, name), language=None)
            st.caption("New password, shown once; the user must change it at next sign-in.")
        new_role = c4.selectbox(
            "Role",
            list(Role),
            index=list(Role).index(user.role),
            format_func=lambda r: r.label,
            key="manage_role",
        )
        if new_role != user.role and c4.button("Apply role"):
            auth.set_role(actor, name, new_role)
            st.rerun()
    except DomainError as exc:
        deps.show_error(exc)


def render() -> None:
    actor = deps.page_actor(Permission.USERS_READ)
    st.title("Users & roles")
    search = st.text_input("Search username, name or e-mail", max_chars=100, key="user_search")
    try:
        users = auth.list_users(actor, search)
    except DomainError as exc:
        deps.show_error(exc)
        return
    frame = pd.DataFrame(
        [
            {
                "Username": u.username,
                "Name": u.full_name,
                "Role": u.role.label,
                "E-mail": u.email,
                "State": "disabled" if not u.is_active else ("locked" if u.is_locked else "active"),
                "Last sign-in": deps.local_time(u.last_login_at, "%Y-%m-%d %H:%M") or "never",
                "Created": deps.local_time(u.created_at, "%Y-%m-%d"),
            }
            for u in users
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    if not users and search:
        st.info("No account matches.")
    if has_permission(actor.role, Permission.USERS_MANAGE):
        _manage(actor, users)
        _create_form(actor)


if __name__ == "__main__":
    render()
