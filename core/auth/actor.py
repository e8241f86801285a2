"""Who is acting. Every service call takes one; core checks its permissions and audits it."""

from __future__ import annotations

from dataclasses import dataclass

from core.auth.roles import Role


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    role: Role
    user_id: int | None = None

    @classmethod
    def system(cls, name: str) -> Actor:
        """An operator at the command line or a scheduled job, acting with admin rights."""
        return cls(username=f"system:{name}", role=Role.ADMIN)

    def __str__(self) -> str:
        return f"{self.username} ({self.role.value})"
