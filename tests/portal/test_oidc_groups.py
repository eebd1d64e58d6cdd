"""The groups claim → teams and roles mapping (pure)."""

from __future__ import annotations

import pytest

from portal.auth.models import Role
from portal.auth.oidc import SignInRefused
from portal.auth.oidc_users import groups_from, map_groups, username_from


def test_group_paths_and_names_map_to_team_roles() -> None:
    mapping = map_groups(
        ["/teams/payments", "/teams/payments/reviewers", "/teams/search/developers",
         "team-billing", "team-infra-admins", "team-docs-viewers", "/teams/ops-reviewers",
         "known", "known-reviewers", "unknown", "offline_access", "default-roles-caas",
         "/teams/Bad_Name", "/platform-admins"],
        admin_group="platform-admins", known_teams=["known"])
    assert mapping.team_roles == {
        "payments": Role.reviewer, "search": Role.developer, "billing": Role.developer,
        "infra": Role.reviewer, "ops": Role.reviewer, "known": Role.reviewer}
    assert mapping.is_platform_admin
    assert mapping.creates_teams == {"payments", "search", "billing", "infra", "ops"}


def test_no_groups_means_no_rights() -> None:
    mapping = map_groups([], admin_group="platform-admins")
    assert mapping.team_roles == {} and not mapping.is_platform_admin


def test_custom_admin_group() -> None:
    assert map_groups(["/ops/root"], admin_group="/ops/root").is_platform_admin
    assert not map_groups(["platform-admins"], admin_group="/ops/root").is_platform_admin


def test_groups_claim_shapes() -> None:
    assert groups_from({"groups": "one"}, "groups") == ["one"]
    assert groups_from({"groups": ["a", 3, "b"]}, "groups") == ["a", "b"]
    assert groups_from({"roles": ["a"]}, "groups") == []


def test_usernames() -> None:
    assert username_from({"preferred_username": "Olga.K"}) == "olga.k"
    assert username_from({"email": "sam@example.com"}) == "sam"
    with pytest.raises(SignInRefused) as err:
        username_from({"preferred_username": "bad name!"})
    assert err.value.field == "preferred_username"
