"""AppTest fixtures: one seeded demo tenant for the UI suite, signed-in apps per role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from console.deps import TOKEN_KEY
from console.navigation import PAGES, PAGES_DIR, ROOT
from core.auth.roles import Role, has_permission
from core.auth.service import sign_in
from tests.conftest import SeededDemo, copy_seeded_demo, use_home
from tests.helpers import PASSWORD, make_user

APP = str(ROOT / "console" / "app.py")
TIMEOUT = 60  # generous: the first run of a page imports plotly/pandas on a 2-core machine


def ui_user(role: Role) -> str:
    return f"ui-{role.value.replace('_', '-')}"


@pytest.fixture(scope="session")
def ui_home(seeded_demo: SeededDemo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the run's demo tenant (tests/conftest.py: `seeded_demo`) plus a user per role."""
    home = tmp_path_factory.mktemp("ui-home")
    copy_seeded_demo(seeded_demo, home)
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, home)
        for role in Role:
            make_user(ui_user(role), role)
    return home


@pytest.fixture(autouse=True)
def _ui_settings(ui_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_home(monkeypatch, ui_home)


def signed_in_app(role: Role, username: str | None = None, password: str = PASSWORD) -> AppTest:
    """The real entrypoint, run once with a real session token for a user of `role`."""
    grant = sign_in(username or ui_user(role), password)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[TOKEN_KEY] = grant.token
    return at.run()


@pytest.fixture
def app_as() -> Callable[[Role], AppTest]:
    return signed_in_app


def open_page(at: AppTest, key: str) -> AppTest:
    at.switch_page(f"../pages/{key}.py")
    return at.run()


def roles_allowed(key: str) -> list[Role]:
    spec = next(p for p in PAGES if p.key == key)
    return [r for r in Role if spec.permission is None or has_permission(r, spec.permission)]


def refusal_message(role: Role) -> str:
    return f"Your role ({role.label}) cannot open this page. Ask an admin if you need it."


def assert_page_refused(role: Role, key: str) -> None:
    """Running the page's script directly (a deep link, a stale session) refuses the role.

    That the page is missing from the role's navigation is checked for every (page, role) in
    tests/ui/test_navigation.py::test_role_sees_exactly_its_pages."""
    direct = AppTest.from_file(str(PAGES_DIR / f"{key}.py"), default_timeout=TIMEOUT)
    direct.session_state[TOKEN_KEY] = sign_in(ui_user(role), PASSWORD).token
    direct.run()
    assert not direct.exception
    assert [e.value for e in direct.error] == [refusal_message(role)]
    assert not direct.title  # nothing of the page was drawn
