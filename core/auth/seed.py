"""Demo accounts: one per role, each with a random password printed once at seeding."""

from __future__ import annotations

from core.auth import passwords
from core.auth.models import User
from core.auth.roles import Role
from core.clock import utcnow
from core.demo.registry import SeedContext, seeder

DEMO_USERS = {
    Role.ADMIN: ("demo-admin", "Ada Admin"),
    Role.COMPLIANCE_OFFICER: ("demo-compliance", "Carla Compliance"),
    Role.ML_ENGINEER: ("demo-ml", "Milan Engineer"),
    Role.FINANCE: ("demo-finance", "Fiona Finance"),
}


@seeder("users", order=10)
def seed_users(ctx: SeedContext) -> str:
    for role, (username, full_name) in DEMO_USERS.items():
        # Random even when the tenant seed is fixed: a password in a deterministic stream would be
        # derivable from the repository.
        password = passwords.generate_password()
        ctx.session.add(
            User(
                username=username,
                role=role.value,
                full_name=full_name,
                email=f"{username}@omni.example",
                password_changed_at=utcnow(),
                password_hash=passwords.hash_password(password),
            )
        )
        ctx.credentials[username] = password
    return f"{len(DEMO_USERS)} accounts (one per role)"
