"""Entrypoint (`streamlit run console/app.py`): sign-in, then navigation built from the role."""

from __future__ import annotations

import streamlit as st

from console import deps
from console.navigation import PAGES, PAGES_DIR, sections_for

st.set_page_config(page_title="Omni Ops Console", page_icon=":material/hub:", layout="wide")

actor = deps.current_actor()
if actor is None:
    # Every page's address leads to the sign-in form, so a deep link (or a reload after the
    # session expired) lands on the page it named once the user is signed in.
    sign_in = PAGES_DIR / "sign_in.py"
    page = st.navigation(
        [st.Page(sign_in, title="Sign in", default=True)]
        + [st.Page(sign_in, title="Sign in", url_path=p.key) for p in PAGES if p.key != "home"],
        position="hidden",
    )
elif st.session_state.get(deps.MUST_CHANGE_KEY):
    # A generated or reset password must be replaced before anything else opens.
    page = st.navigation(
        [st.Page(PAGES_DIR / "account.py", title="My account", default=True)], position="hidden"
    )
else:
    sections = {
        section: [
            st.Page(
                spec.script,
                title=spec.title,
                icon=spec.icon,
                url_path=spec.key,
                default=spec.key == "home",
            )
            for spec in specs
        ]
        for section, specs in sections_for(actor.role).items()
    }
    page = st.navigation(sections)

if actor is not None:
    with st.sidebar:
        st.markdown(f"**{actor.username}**  \n{actor.role.label}")
        if st.button("Sign out", icon=":material/logout:", key="sign_out"):
            deps.end_session()
            st.rerun()

deps.sync_session_cookie()
page.run()
