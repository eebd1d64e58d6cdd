"""The permission matrix: every role x action x (own team / other team) x tier, each asserted.

The expected outcomes are written out as tables (the specification, readable on its own), not
recomputed from the rules. Columns: a change whose strictest tier is dev / staging / prod, and
a change under ``envs/``. ``Y`` allowed, ``-`` refused. The principal is never the author here
(the author's own cases are asserted separately below).
"""

from __future__ import annotations

import pytest

from portal.auth.models import Role
from portal.auth.policy import Action, Tier, check
from portal.auth.principal import Principal

ROWS = ["developer own", "developer other", "reviewer own", "reviewer other",
        "platform-admin own", "platform-admin other"]
COLUMNS = [(Tier.dev, False), (Tier.staging, False), (Tier.prod, False), (Tier.prod, True)]

MATRIX: dict[Action, str] = {
    Action.view: """
        developer own           Y Y Y Y
        developer other         Y Y Y Y
        reviewer own            Y Y Y Y
        reviewer other          Y Y Y Y
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    Action.request: """
        developer own           Y Y Y -
        developer other         - - - -
        reviewer own            Y Y Y -
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    Action.approve: """
        developer own           Y - - -
        developer other         - - - -
        reviewer own            Y Y - -
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    Action.merge: """
        developer own           Y Y Y Y
        developer other         - - - -
        reviewer own            Y Y Y Y
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    Action.close: """
        developer own           - - - -
        developer other         - - - -
        reviewer own            Y Y Y Y
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    Action.retry_job: """
        developer own           - - - -
        developer other         - - - -
        reviewer own            Y Y Y -
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    Action.manage_team: """
        developer own           - - - -
        developer other         - - - -
        reviewer own            Y Y Y Y
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y""",
    **dict.fromkeys((Action.manage_environments, Action.manage_settings, Action.manage_users,
                     Action.read_audit), """
        developer own           - - - -
        developer other         - - - -
        reviewer own            - - - -
        reviewer other          - - - -
        platform-admin own      Y Y Y Y
        platform-admin other    Y Y Y Y"""),
}


def principal(row: str) -> Principal:
    role, scope = row.rsplit(" ", 1)
    teams: dict[str, Role] = {}
    if role != "platform-admin":
        teams = {"payments" if scope == "own" else "search": Role(role)}
    elif scope == "own":
        teams = {"payments": Role.developer}
    return Principal(user_id=1, username="pat", team_roles=teams,
                     is_platform_admin=role == "platform-admin")


def cases() -> list[tuple[Action, str, Tier, bool, bool]]:
    out = []
    for action, table in MATRIX.items():
        lines = [line.split() for line in table.strip().splitlines()]
        assert [" ".join(cells[:2]) for cells in lines] == ROWS, action
        for cells in lines:
            for (tier, envs), mark in zip(COLUMNS, cells[2:], strict=True):
                out.append((action, " ".join(cells[:2]), tier, envs, mark == "Y"))
    return out


def test_the_matrix_covers_every_action() -> None:
    assert set(MATRIX) == set(Action)
    assert len(cases()) == len(Action) * len(ROWS) * len(COLUMNS)


@pytest.mark.parametrize(("action", "row", "tier", "envs", "allowed"), cases(),
                         ids=lambda v: str(v.value if isinstance(v, Action | Tier) else v))
def test_matrix(action: Action, row: str, tier: Tier, envs: bool, allowed: bool) -> None:
    decision = check(principal(row), action, team="payments", tier=tier, author="alice",
                     touches_envs=envs, approved_by=["someone"], checks_green=True)
    assert decision.allowed is allowed, decision.reason
    assert decision.reason  # a refusal always says why


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize(("tier", "envs"), COLUMNS)
def test_nobody_approves_their_own_change(row: str, tier: Tier, envs: bool) -> None:
    decision = check(principal(row), Action.approve, team="payments", tier=tier, author="pat",
                     touches_envs=envs)
    assert not decision.allowed and "own change" in decision.reason


@pytest.mark.parametrize("row", ROWS)
def test_author_merges_and_closes_own_change(row: str) -> None:
    p = principal(row)
    assert check(p, Action.merge, team="payments", author="pat", approved_by=["other"])
    assert check(p, Action.close, team="payments", author="pat")


@pytest.mark.parametrize("row", ROWS)
def test_merge_needs_green_checks_and_another_persons_approval(row: str) -> None:
    p = principal(row)
    assert not check(p, Action.merge, team="payments", author="alice", approved_by=["bob"],
                     checks_green=False)
    assert not check(p, Action.merge, team="payments", author="alice", approved_by=["alice"])
    assert not check(p, Action.merge, team="payments", author="alice", approved_by=[])


@pytest.mark.parametrize("row", ROWS)
def test_changes_without_a_team_need_a_platform_admin(row: str) -> None:
    p = principal(row)
    admin = p.is_platform_admin
    assert check(p, Action.request, team=None).allowed is admin
    assert check(p, Action.approve, team=None, author="alice").allowed is admin
    assert check(p, Action.retry_job, team=None).allowed is admin
