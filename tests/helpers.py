"""Small helpers shared by the test suites."""

from __future__ import annotations

from core.auth.actor import Actor
from core.auth.roles import Role
from core.auth.service import create_user

ADMIN = Actor.system("tests")
PASSWORD = "correct-horse-battery-staple"


def make_user(
    username: str, role: Role, password: str = PASSWORD, email: str | None = None
) -> Actor:
    view, _ = create_user(ADMIN, username, role, password=password, email=email)
    return Actor(view.username, view.role)
