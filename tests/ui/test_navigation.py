"""Each role's navigation registers exactly its pages; every page renders for them, and refuses
every other role.

Every (page, role) cell is checked for both ways in:

- through the navigation: `test_role_sees_exactly_its_pages` opens each of a role's pages in the
  real app and finds every other page missing from the role's navigation;
- by running a page's script directly (a deep link, a stale session): each page's script is run
  by AppTest for one role that may not see it (`test_other_roles_cannot_open_the_page`, the
  refused roles taken in turn). That run stands for the page's other refused roles because
  every page stops at the same guard before drawing anything:
  `test_every_page_calls_the_guard_first` checks each script for it, with the page's own
  permission, and `test_the_guard_admits_exactly_the_pages_roles` checks the guard for every
  (page, role) cell, the refusal message included.
"""

from __future__ import annotations

import ast

import pytest

from console import deps
from console.navigation import PAGES, PageSpec
from core.auth.actor import Actor
from core.auth.roles import Role
from tests.ui.conftest import (
    assert_page_refused,
    open_page,
    refusal_message,
    signed_in_app,
    ui_user,
)
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


CELLS = [(spec, role) for spec in PAGES for role in Role]
DENIED = [(spec.key, role) for spec, role in CELLS if spec.key not in EXPECTED[role]]


def _one_refused_role_per_page() -> list[tuple[str, Role]]:
    """For each page with refused roles, the one refused least often so far: every role that
    is refused somewhere gets its own refusal run."""
    runs: list[tuple[str, Role]] = []
    for key in dict.fromkeys(k for k, _ in DENIED):
        refused = [r for k, r in DENIED if k == key]
        runs.append((key, min(refused, key=lambda r: sum(run[1] == r for run in runs))))
    return runs


REFUSED = _one_refused_role_per_page()


@pytest.mark.parametrize(("key", "role"), REFUSED, ids=[f"{k}-{r.value}" for k, r in REFUSED])
def test_other_roles_cannot_open_the_page(key: str, role: Role) -> None:
    """The page's script, run directly for a role that may not see it, draws only the refusal."""
    assert_page_refused(role, key)


def test_every_refused_page_is_run_for_a_refused_role() -> None:
    assert {k for k, _ in REFUSED} == {k for k, _ in DENIED}
    assert set(REFUSED) <= set(DENIED)
    assert {r for _, r in REFUSED} == {r for _, r in DENIED}


class _Stopped(Exception):
    pass


class _RecordingStreamlit:
    """What `page_actor` draws, and `st.stop()` as an exception, as in a script run."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, body: str, **_: object) -> None:
        self.errors.append(body)

    def warning(self, body: str, **_: object) -> None:
        self.warnings.append(body)

    def stop(self) -> None:
        raise _Stopped


@pytest.mark.parametrize(
    ("spec", "role"), CELLS, ids=[f"{spec.key}-{role.value}" for spec, role in CELLS]
)
def test_the_guard_admits_exactly_the_pages_roles(
    spec: PageSpec, role: Role, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`deps.page_actor(<the page's permission>)` lets exactly the page's roles through."""
    drawn = _RecordingStreamlit()
    actor = Actor(ui_user(role), role)
    monkeypatch.setattr(deps, "st", drawn)
    monkeypatch.setattr(deps, "current_actor", lambda: actor)
    if spec.key in EXPECTED[role]:
        assert deps.page_actor(spec.permission) == actor
        assert drawn.errors == []
    else:
        with pytest.raises(_Stopped):
            deps.page_actor(spec.permission)
        assert drawn.errors == [refusal_message(role)]
    assert drawn.warnings == []


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


def _calls_into_the_page(node: ast.AST) -> list[str]:
    """Calls that could draw: into streamlit (bar column configs), deps or widgets."""
    found = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            name = ast.unparse(call.func)
            if name.split(".")[0] in {"st", "deps", "widgets"} and not name.startswith(
                "st.column_config."
            ):
                found.append(name)
    return found


@pytest.mark.parametrize("spec", PAGES, ids=[spec.key for spec in PAGES])
def test_every_page_calls_the_guard_first(spec: PageSpec) -> None:
    """The script only defines things, then runs `render()`, whose first statement is
    `actor = deps.page_actor(<the page's permission>)`: nothing is drawn before the guard."""
    tree = ast.parse(spec.script.read_text(encoding="utf-8"))
    *body, main = tree.body
    assert ast.unparse(main) == "if __name__ == '__main__':\n    render()", spec.key
    imports = {ast.unparse(n) for n in body if isinstance(n, ast.ImportFrom)}
    assert any(i.startswith("from console import") and " deps" in i for i in imports), spec.key
    for node in body:
        assert _is_docstring(node) or isinstance(
            node,
            ast.Import
            | ast.ImportFrom
            | ast.FunctionDef
            | ast.ClassDef
            | ast.Assign
            | ast.AnnAssign,
        ), (spec.key, ast.unparse(node)[:80])
        if not isinstance(node, ast.FunctionDef | ast.ClassDef):
            assert not _calls_into_the_page(node), (spec.key, ast.unparse(node)[:80])
    [render] = [n for n in body if isinstance(n, ast.FunctionDef) and n.name == "render"]
    assert not render.decorator_list, spec.key
    first = next(n for n in render.body if not _is_docstring(n))
    permission = "" if spec.permission is None else f"Permission.{spec.permission.name}"
    assert ast.unparse(first) == f"actor = deps.page_actor({permission})", spec.key
    if spec.permission is not None:
        assert any(
            i.startswith("from core.auth.roles import") and "Permission" in i for i in imports
        ), spec.key
