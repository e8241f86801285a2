from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from console.deps import TOKEN_KEY
from core.auth.models import AuthSession
from core.auth.roles import Role
from core.clock import utcnow
from core.db import unit_of_work
from tests.helpers import PASSWORD, make_user
from tests.ui.conftest import APP, TIMEOUT, open_page


def _sign_in(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    return at.button[0].click().run()


def test_signed_out_visitor_sees_only_the_sign_in_form() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Omni Ops Console"]
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert TOKEN_KEY not in at.session_state


def test_wrong_password_then_right_one() -> None:
    make_user("ui-signin", Role.FINANCE)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _sign_in(at, "ui-signin", "not the password")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    assert TOKEN_KEY not in at.session_state
    _sign_in(at, "ui-signin", PASSWORD)
    assert not at.exception
    assert [t.value for t in at.title] == ["Home"]
    assert "Signed in as ui-signin" in at.caption[0].value


def test_unknown_user_and_empty_fields() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _sign_in(at, "' OR 1=1 --", "whatever-it-is-long")
    assert [e.value for e in at.error] == ["Wrong username or password."]
    _sign_in(at, "", "")
    assert [e.value for e in at.error] == ["Enter your username and password."]


def test_lockout_message() -> None:
    make_user("ui-locked", Role.FINANCE)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for _ in range(5):
        _sign_in(at, "ui-locked", "wrong wrong wrong")
    assert "locked until" in at.error[0].value
    _sign_in(at, "ui-locked", PASSWORD)
    assert "locked until" in at.error[0].value


def test_expired_session_returns_to_sign_in_with_a_reason() -> None:
    make_user("ui-expiry", Role.FINANCE)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _sign_in(at, "ui-expiry", PASSWORD)
    assert [t.value for t in at.title] == ["Home"]
    with unit_of_work() as session:
        session.execute(update(AuthSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    at.run()
    assert [t.value for t in at.title] == ["Omni Ops Console"]
    assert "expired" in at.info[0].value


def test_sign_out() -> None:
    make_user("ui-signout", Role.FINANCE)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _sign_in(at, "ui-signout", PASSWORD)
    at.sidebar.button(key="sign_out").click().run()
    assert [t.value for t in at.title] == ["Omni Ops Console"]
    assert TOKEN_KEY not in at.session_state


def test_generated_password_must_be_changed_first() -> None:
    from core.auth.service import reset_password
    from tests.helpers import ADMIN

    make_user("ui-newbie", Role.FINANCE)
    temporary = reset_password(ADMIN, "ui-newbie")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    _sign_in(at, "ui-newbie", temporary)
    assert [t.value for t in at.title] == ["My account"]
    assert "choose your own" in at.warning[0].value
    at.text_input[0].input(temporary)
    at.text_input[1].input("my chosen passphrase")
    at.text_input[2].input("my chosen passphrase")
    at.button[0].click().run()
    assert at.success[0].value == "Password changed."
    # The full navigation is back: other pages open again.
    at.run()
    assert [t.value for t in open_page(at, "home").title] == ["Home"]


OIDC_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "test-cookie-secret",
    "client_id": "omni-console",
    "client_secret": "test-client-secret",
    "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
}


def _oidc_app(email: str | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = OIDC_SECRETS
    at.user = {"is_logged_in": email is not None, "email": email or "", "sub": "idp|123"}
    return at.run()


def test_sso_button_appears_when_oidc_is_configured() -> None:
    at = _oidc_app(None)
    assert [b.label for b in at.button][-1] == "Sign in with single sign-on"
    assert "Sign in with single sign-on" not in [
        b.label for b in AppTest.from_file(APP, default_timeout=TIMEOUT).run().button
    ]


def test_oidc_identity_maps_to_the_local_account_and_its_role() -> None:
    make_user("ui-sso", Role.COMPLIANCE_OFFICER, email="sso.person@omni.example")
    at = _oidc_app("SSO.Person@omni.example")
    assert not at.exception
    assert [t.value for t in at.title] == ["Home"]
    assert at.sidebar.markdown[0].value.endswith(Role.COMPLIANCE_OFFICER.label)


def test_oidc_identity_without_an_account_is_refused() -> None:
    at = _oidc_app("stranger@elsewhere.example")
    assert [t.value for t in at.title] == ["Omni Ops Console"]
    assert "No active console account has the e-mail" in at.info[0].value
    assert TOKEN_KEY not in at.session_state
    at.run()  # a rerun does not try (and audit) the refused identity again
    from core.audit.service import AuditFilter, search
    from tests.helpers import ADMIN

    refusals = search(ADMIN, AuditFilter(text="stranger@elsewhere.example"))
    assert len(refusals) == 1 and refusals[0].outcome == "failed"
    assert at.button[-1].label == "Use another single sign-on account"
