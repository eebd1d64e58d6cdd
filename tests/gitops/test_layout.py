"""The repository layout: unit kind + names <-> paths, one mapping for every package."""

from __future__ import annotations

import pytest

from gitops import layout

UNITS = {"team:payments": "teams/payments", "namespace:payments/payments-api":
         "tenants/payments/payments-api", "environment:dev": "envs/dev",
         "application:payments/web": "applications/payments/web"}


@pytest.mark.parametrize(("key", "folder"), sorted(UNITS.items()))
def test_keys_and_folders_round_trip(key: str, folder: str) -> None:
    assert layout.unit_dir(key) == folder
    assert layout.key_for_unit(folder) == key
    assert layout.key_for_path(f"{folder}/deep/file.yaml") == key


def test_paths_outside_units() -> None:
    for path in ("CODEOWNERS", "teams/payments", "tenants/payments/x", "bootstrap/root.yaml",
                 "tenants//x/y.yaml", "apps/payments/web/app.yaml"):
        assert layout.key_for_path(path) is None, path
    assert layout.key_for_unit("platform/cilium") == ""
    assert layout.keys_for_paths(["teams/a/team.yaml", "teams/a/x.yaml", "README.md"]) == {
        "team:a"}


def test_environment_and_team_changes() -> None:
    paths = ["envs/dev/infra.yaml", "envs/dev/cluster.yaml", "envs/prod/infra.yaml",
             "teams/a/team.yaml", "teams/b", "tenants/a/n/envs/qa/infra.yaml"]
    assert layout.changed_environments(paths) == ["dev", "prod"]
    assert layout.changed_teams(paths) == ["a"]
    assert layout.infra_path("dev") == "envs/dev/infra.yaml"
