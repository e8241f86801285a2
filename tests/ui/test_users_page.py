from __future__ import annotations

import pytest

from core.auth.roles import Role
from core.auth.service import sign_in
from tests.ui.conftest import (
    open_page,
    roles_allowed,
    signed_in_app,
)


@pytest.mark.parametrize("role", roles_allowed("users"))
def test_lists_accounts(role: Role) -> None:
    at = open_page(signed_in_app(role), "users")
    assert not at.exception
    assert {"demo-admin", "ui-finance"} <= set(at.dataframe[0].value["Username"])


def test_admin_creates_an_account_and_sees_its_password_once() -> None:
    at = open_page(signed_in_app(Role.ADMIN), "users")
    form_inputs = [
        t
        for t in at.text_input
        if t.label in ("Username", "Full name", "E-mail (for single sign-on)")
    ]
    form_inputs[0].input("ui-created")
    form_inputs[1].input("Created Person")
    next(b for b in at.button if b.label == "Create account").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Created ui-created")
    password = at.code[0].value
    assert sign_in("ui-created", password).must_change_password


def test_bad_input_gets_a_clear_error() -> None:
    at = open_page(signed_in_app(Role.ADMIN), "users")
    next(t for t in at.text_input if t.label == "Username").input("Robert'); DROP TABLE users;--")
    next(b for b in at.button if b.label == "Create account").click().run()
    assert "Invalid username" in at.error[0].value
    at.text_input(key="user_search").input("' OR 1=1 --").run()
    assert not at.exception and at.info[0].value == "No account matches."
