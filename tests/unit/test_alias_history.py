"""How an alias's history is read for a rollback: a stack of the versions it held."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.mlops.aliases import check_alias, held_versions
from core.mlops.models import AliasEvent


def _events(*moves: tuple[str, str | None]) -> list[AliasEvent]:
    return [AliasEvent(action=action, version=version) for action, version in moves]


def test_promotions_push_and_rollbacks_walk_back_instead_of_flipping() -> None:
    history = [("promote", "1"), ("promote", "2"), ("promote", "3")]
    assert held_versions(_events(*history)) == ["1", "2", "3"]
    assert held_versions(_events(*history, ("rollback", "2"))) == ["1", "2"]
    # a second rollback goes on to v1: it does not flip back to v3
    assert held_versions(_events(*history, ("rollback", "2"), ("rollback", "1"))) == ["1"]


def test_promoting_an_older_version_is_a_move_forward_in_history() -> None:
    moves = _events(("promote", "2"), ("promote", "1"))
    assert held_versions(moves) == ["2", "1"]  # rolling back returns to v2


def test_a_removal_clears_the_history_and_unknown_pasts_are_kept_honest() -> None:
    assert held_versions(_events(("promote", "1"), ("remove", None), ("promote", "2"))) == ["2"]
    # a rollback to a version the stack does not know (history from before the console)
    assert held_versions(_events(("promote", "3"), ("rollback", "2"))) == ["2"]


@pytest.mark.parametrize("alias", ["latest", "v3", "Champion!", "", "x" * 70])
def test_unusable_aliases_are_refused(alias: str) -> None:
    with pytest.raises(ValidationError):
        check_alias(alias)


def test_alias_names_are_normalised() -> None:
    assert check_alias("  Champion ") == "champion"
