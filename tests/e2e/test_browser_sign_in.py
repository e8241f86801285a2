"""Browser smoke test: the real console, served by `streamlit run`, signs an admin in.

Needs Debian's chromium (`make e2e-deps`); skips with that reason when it is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

if TYPE_CHECKING:  # fixtures come from conftest.py; import it for types only
    from .conftest import Console, OmniInstance

pytestmark = pytest.mark.e2e

FIRST_PAINT_MS = 30_000  # first script run imports core, SQLAlchemy and friends
STEP_MS = 15_000


def _sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_in_wrong_then_right_password_opens_home(
    browser_page: Page, console: Console, omni_instance: OmniInstance, tmp_path: Path
) -> None:
    page = browser_page
    try:
        page.goto(console.url, wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Omni Ops Console")).to_be_visible(
            timeout=FIRST_PAINT_MS
        )
        expect(page.get_by_label("Username", exact=True)).to_be_editable(timeout=STEP_MS)

        _sign_in(page, omni_instance.username, omni_instance.password + "-wrong")
        expect(page.get_by_text("Wrong username or password.")).to_be_visible(timeout=STEP_MS)
        page.screenshot(path=tmp_path / "wrong-password.png", full_page=True)

        _sign_in(page, omni_instance.username, omni_instance.password)
        expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible(timeout=STEP_MS)
        expect(page.get_by_text(f"Signed in as {omni_instance.username}")).to_be_visible(
            timeout=STEP_MS
        )
        expect(page.get_by_text("Wrong username or password.")).to_have_count(0)
        page.screenshot(path=tmp_path / "home.png", full_page=True)

        # A reload starts a new Streamlit session: the session cookie keeps the user signed in.
        page.reload(wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible(
            timeout=FIRST_PAINT_MS
        )

        # Signing out ends the server-side session and clears the cookie: a reload stays out.
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Omni Ops Console")).to_be_visible(timeout=STEP_MS)
        page.reload(wait_until="domcontentloaded")
        expect(page.get_by_label("Username", exact=True)).to_be_editable(timeout=FIRST_PAINT_MS)

        # A deep link survives the sign-in form and opens the page it named.
        page.goto(f"{console.url}/audit", wait_until="domcontentloaded")
        expect(page.get_by_label("Username", exact=True)).to_be_editable(timeout=FIRST_PAINT_MS)
        _sign_in(page, omni_instance.username, omni_instance.password)
        expect(page.get_by_role("heading", name="Audit log", level=1)).to_be_visible(
            timeout=STEP_MS
        )
        page.screenshot(path=tmp_path / "audit.png", full_page=True)
    except BaseException:
        page.screenshot(path=tmp_path / "failure.png", full_page=True)
        print(
            f"Screenshot: {tmp_path / 'failure.png'}\nConsole log:\n"
            f"{console.log.read_text(encoding='utf-8', errors='replace')[-4000:]}"
        )
        raise
