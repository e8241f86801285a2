"""My account: who I am, and changing my password."""

import streamlit as st

from console import deps
from core.auth import service as auth
from core.errors import DomainError


def render() -> None:
    actor = deps.page_actor()
    st.title("My account")
    st.write(f"**{actor.username}** · {actor.role.label}")
    if st.session_state.get(deps.MUST_CHANGE_KEY):
        st.warning("Your password was set by an admin or generated: choose your own to continue.")
    with st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password", max_chars=256)
        new = st.text_input(
            "New password",
            type="password",
            max_chars=256,
            help=f"At least {deps.settings().password_min_length} characters.",
        )
        repeat = st.text_input("Repeat the new password", type="password", max_chars=256)
        submitted = st.form_submit_button("Change password", type="primary")
    if submitted:
        if new != repeat:
            st.error("The two new passwords differ.")
            return
        try:
            auth.change_own_password(actor, current, new)
        except DomainError as exc:
            deps.show_error(exc)
            return
        st.session_state[deps.MUST_CHANGE_KEY] = False
        st.success("Password changed.")


if __name__ == "__main__":
    render()
