"""The groups claim → teams and roles mapping (pure), and portal names from usernames."""

from __future__ import annotations

import pytest

from portal.auth.models import Role
from portal.auth.oidc import SignInRefused
from portal.auth.oidc_users import groups_from, map_groups, username_from


@pytest.mark.parametrize("full_path", [True, False])
def test_derived_groups_map_to_team_roles_with_full_path_on_and_off(full_path: bool) -> None:
    slash = "/" if full_path else ""
    mapping = map_groups(
        [f"{slash}team-payments", f"{slash}team-payments-admins", f"{slash}team-search",
         f"{slash}team-infra-admins", f"{slash}team-docs-viewers", "offline_access",
         "default-roles-caas", f"{slash}platform-admins"],
        admin_group="platform-admins")
    assert mapping.team_roles == {"payments": Role.reviewer, "search": Role.developer,
                                  "infra": Role.reviewer}
    assert mapping.is_platform_admin
    assert mapping.creates_teams == {"payments", "search", "infra"}


def test_retired_and_foreign_forms_grant_nothing() -> None:
    # The flat and /teams/ forms of the old mapping, names the rule cannot produce, a second
    # slash, and a reviewers group of a team whose name the rule refuses.
    mapping = map_groups(
        ["payments", "payments-reviewers", "payments-admins", "/teams/payments",
         "/teams/payments/reviewers", "reviewers", "developers", "//team-x", "/a/team-x",
         "team-Bad_Name", "team-", "team-pay-admins-admins", "team-x#2", "team-%41",
         "/platform-admins/x", "platform-admins-2"],
        admin_group="platform-admins")
    assert mapping.team_roles == {} and not mapping.is_platform_admin


def test_no_groups_means_no_rights() -> None:
    mapping = map_groups([], admin_group="platform-admins")
    assert mapping.team_roles == {} and not mapping.is_platform_admin


def test_nested_admin_group_needs_full_group_path() -> None:
    assert map_groups(["/ops/root"], admin_group="ops/root").is_platform_admin
    assert not map_groups(["ops/root", "platform-admins"],
                          admin_group="ops/root").is_platform_admin
    with pytest.raises(SignInRefused) as refused:
        map_groups(["root", "team-a"], admin_group="ops/root")
    assert refused.value.rule == "full-group-path"
    assert "Full group path" in refused.value.message


def test_groups_claim_shapes() -> None:
    assert groups_from({"groups": "one"}, "groups") == ["one"]
    assert groups_from({"groups": ["a", 3, "b"]}, "groups") == ["a", "b"]
    assert groups_from({"roles": ["a"]}, "groups") == []


def test_usernames() -> None:
    assert username_from({"preferred_username": "Olga.K"}) == "olga.k"
    assert username_from({"email": "sam@example.com"}) == "sam_at_example.com"
    # Keycloak's "Email as username": the username *is* the address.
    assert username_from({"preferred_username": "Olga@Example.org"}) == "olga_at_example.org"
    assert username_from({"preferred_username": "o+k@example.org"}) == "o-k_at_example.org"
    with pytest.raises(SignInRefused) as err:
        username_from({"preferred_username": "bad name!"})
    assert err.value.field == "preferred_username"
    with pytest.raises(SignInRefused):
        username_from({"preferred_username": "x" * 60 + "@example.org"})
