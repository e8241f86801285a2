from __future__ import annotations

import pytest

from core.auth.roles import Role
from core.auth.service import sign_in
from tests.helpers import PASSWORD, make_user
from tests.ui.conftest import open_page, roles_allowed, signed_in_app


def test_every_role_has_an_account_page() -> None:
    assert roles_allowed("account") == list(Role)


@pytest.mark.parametrize("role", list(Role))
def test_renders_for_each_role(role: Role) -> None:
    at = open_page(signed_in_app(role), "account")
    assert not at.exception and at.title[0].value == "My account"


def test_change_password_checks_current_and_repeat() -> None:
    make_user("ui-account", Role.FINANCE)
    at = open_page(signed_in_app(Role.FINANCE, "ui-account"), "account")

    def submit(current: str, new: str, repeat: str) -> None:
        at.text_input[0].input(current)
        at.text_input[1].input(new)
        at.text_input[2].input(repeat)
        at.button[0].click().run()

    submit(PASSWORD, "another passphrase", "different passphrase")
    assert at.error[0].value == "The two new passwords differ."
    submit("wrong current one", "another passphrase", "another passphrase")
    assert at.error[0].value == "The current password is wrong."
    submit(PASSWORD, "short", "short")
    assert "at least 12" in at.error[0].value
    submit(PASSWORD, "another passphrase", "another passphrase")
    assert at.success[0].value == "Password changed."
    assert sign_in("ui-account", "another passphrase")
