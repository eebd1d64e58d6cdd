"""The group rule: derived team groups never collide, platform groups stay apart, names that
reach URLs are plain labels."""

from __future__ import annotations

import contextlib
import itertools

import pytest

from portal.groups import (
    GroupRuleError,
    TeamRole,
    check_group_path,
    check_team_group,
    check_team_name,
    normalise_platform_group,
    parse_claim_group,
    team_groups,
    team_of_group,
)
from portal.settings import Settings


def _teams() -> list[str]:
    """Every valid team name over an alphabet that can spell the reserved suffixes' tails, up
    to 4 characters, plus names built from the suffix words themselves."""
    names = {"".join(p) for n in range(1, 5) for p in itertools.product("a-s", repeat=n)}
    words = ["pay", "pay-admins", "pay-viewers", "admins", "viewers", "pay-admin", "a-re",
             "x-re-viewers", "team", "team-pay", "pay-admins-x"]
    out = []
    for name in sorted(names | set(words)):
        with contextlib.suppress(GroupRuleError):
            out.append(check_team_name(name))
    return out


def test_derived_groups_never_collide_across_teams() -> None:
    seen: dict[str, tuple[str, str]] = {}
    teams = _teams()
    assert "pay" in teams and "pay-admins" not in teams and "admins" in teams
    for team in teams:
        groups = team_groups(team)
        for role in TeamRole:
            name = getattr(groups, role.value)
            assert name not in seen, (name, seen.get(name), (team, role))
            seen[name] = (team, role.value)
            # ...and every name reads back as exactly its (team, role).
            assert team_of_group(name) == parse_claim_group(name) == parse_claim_group(
                "/" + name)
            parsed = team_of_group(name)
            assert parsed is not None and (parsed.team, parsed.role) == (team, role)
    assert len(seen) == 3 * len(teams)


@pytest.mark.parametrize("name", ["pay-admins", "pay-viewers", "Pay", "pay_x", "-pay", "pay-",
                                  "", "x" * 31, "team-x#2", "team-%41", "team-x?y", "a/b"])
def test_team_names_outside_the_rule_are_refused(name: str) -> None:
    with pytest.raises(GroupRuleError) as refused:
        check_team_name(name)
    assert refused.value.field == "team" and refused.value.rule == "team-name"


@pytest.mark.parametrize("name", ["team-x#2", "team-%41", "team-x?y", "team x", "Team-x",
                                  "/team-x", "team-x/", "a//b", "", "é"])
def test_group_paths_outside_the_rule_are_refused(name: str) -> None:
    with pytest.raises(GroupRuleError) as refused:
        check_group_path(name, field="group")
    assert refused.value.rule == "group-name"
    assert check_group_path("ops/admins", field="group") == "ops/admins"


def test_platform_group_setting_is_normalised_once() -> None:
    assert normalise_platform_group(" /platform-admins/ ") == "platform-admins"
    assert Settings(oidc_admin_group="/platform-admins").oidc_admin_group == "platform-admins"
    assert Settings(oidc_admin_group="/ops/admins/").oidc_admin_group == "ops/admins"
    for bad in ("team-pay-admins", "/team-x", "platform admins", "ops//admins", "/"):
        with pytest.raises(ValueError, match="oidc_admin_group"):
            Settings(oidc_admin_group=bad)


def test_a_team_file_may_name_only_its_own_derived_group() -> None:
    assert check_team_group("team-pay-admins", team="pay", role=TeamRole.reviewers,
                            field="f") == "team-pay-admins"
    cases = {"platform-admins": "is a platform group",
             "/platform-admins": "is a platform group",
             "team-web": "is team 'web''s developers group",
             "team-pay": "is team 'pay''s developers group",
             "team-x#2": "is not 'pay''s reviewers group"}
    for value, why in cases.items():
        with pytest.raises(GroupRuleError) as refused:
            check_team_group(value, team="pay", role=TeamRole.reviewers, field="spec.groups.admin",
                             platform_groups=["platform-admins"])
        assert why in refused.value.message
        assert "team-pay-admins" in refused.value.message
        assert refused.value.rule == "team-group" and refused.value.field == "spec.groups.admin"
