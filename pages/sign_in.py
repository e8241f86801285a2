"""Sign-in: local account, or single sign-on when OIDC is configured."""

import streamlit as st

from console import deps
from core.auth import service as auth
from core.errors import DomainError


def render() -> None:
    _, middle, _ = st.columns([1, 1.2, 1])
    with middle:
        st.title("Omni Ops Console")
        st.caption("Compliance, ML and finance operations in one place.")
        flash = st.session_state.pop(deps.FLASH_KEY, None)
        if flash:
            st.info(flash)
        with st.form("sign_in", border=True):
            username = st.text_input("Username", max_chars=64, autocomplete="username")
            password = st.text_input(
                "Password", type="password", max_chars=256, autocomplete="current-password"
            )
            submitted = st.form_submit_button("Sign in", type="primary", width="stretch")
        if submitted:
            if not username or not password:
                st.error("Enter your username and password.")
            else:
                try:
                    deps.start_session(auth.sign_in(username, password))
                except DomainError as exc:
                    deps.show_error(exc)
                else:
                    st.rerun()
        if deps.oidc_identity():
            st.divider()
            st.caption(f"Signed in to single sign-on as {deps.oidc_identity()}.")
            if st.button("Use another single sign-on account", width="stretch"):
                st.session_state.pop(deps.OIDC_REFUSED_KEY, None)
                st.logout()
        elif deps.oidc_configured():
            st.divider()
            if st.button("Sign in with single sign-on", icon=":material/key:", width="stretch"):
                st.login()


if __name__ == "__main__":
    render()
