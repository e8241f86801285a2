"""Each role's navigation registers exactly its pages; every page renders for them."""

from __future__ import annotations

import pytest

from console.navigation import PAGES
from core.auth.roles import Role
from tests.ui.conftest import assert_page_refused, open_page, signed_in_app
from tests.unit.test_navigation import EXPECTED


@pytest.mark.parametrize("role", list(Role))
def test_role_sees_exactly_its_pages(role: Role) -> None:
    at = signed_in_app(role)
    assert not at.exception
    assert [t.value for t in at.title] == ["Home"]  # the default page
    for spec in PAGES:
        if spec.key in EXPECTED[role]:
            open_page(at, spec.key)
            assert not at.exception, (role, spec.key)
            assert [t.value for t in at.title] == [spec.title], (role, spec.key)
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(f"../pages/{spec.key}.py")
    assert at.sidebar.markdown[0].value.endswith(role.label)


DENIED = [(spec.key, role) for spec in PAGES for role in Role if spec.key not in EXPECTED[role]]


@pytest.mark.parametrize(("key", "role"), DENIED, ids=[f"{k}-{r.value}" for k, r in DENIED])
def test_other_roles_cannot_open_the_page(key: str, role: Role) -> None:
    """Not in the role's navigation, and the page script refuses when run directly."""
    assert_page_refused(role, key)
