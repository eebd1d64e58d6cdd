"""The catalog names a team's Keycloak group by the group rule, never by what team.yaml says;
a team.yaml that names another group is listed as a problem of the team."""

from __future__ import annotations

from catalog.parse import parse_entity
from tests.catalog.gitops import team


def _parsed(files: dict[str, str]) -> tuple[str, list[str]]:
    parsed = parse_entity("team:pay", {p: c.encode() for p, c in files.items()})
    assert parsed is not None
    return str(parsed.spec["keycloak_group"]), parsed.problems


def test_the_group_is_derived_from_the_team_name() -> None:
    assert _parsed(team("pay")) == ("team-pay", [])


def test_a_team_file_naming_the_admin_group_is_a_problem_not_the_group() -> None:
    files = team("pay")
    files["teams/pay/team.yaml"] = files["teams/pay/team.yaml"].replace(
        "keycloakGroup: team-pay", "keycloakGroup: platform-admins")
    group, problems = _parsed(files)
    assert group == ""
    assert problems == ["teams/pay/team.yaml: spec.keycloakGroup: 'platform-admins' is not "
                        "'pay''s developers group; a team's groups are derived from its name: "
                        "developers of 'pay' is 'team-pay' (team-group)"]
