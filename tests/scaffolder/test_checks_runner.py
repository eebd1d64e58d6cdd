"""The checks that do not need a whole request: collisions and policies on a real repository."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from gitops.forges.local import LocalForge
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.settings import Settings
from scaffolder import checks_runner
from scaffolder.changeset import Prepared, prepare
from scaffolder.models import ScaffoldRequest
from scaffolder.registry import Registry

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
ALICE = Principal(user_id=1, username="alice", team_roles={"payments": Role.developer})


@pytest.fixture
def prepared(settings: Settings, engine: Engine, gitops: Path) -> tuple[LocalForge, Prepared]:
    forge = LocalForge(settings, engine)
    request = ScaffoldRequest(template="tenant", answers={
        "team": "payments", "name": "web", "cost_center": "cc", "environments": ["dev"]})
    return forge, prepare(forge, Registry(settings), ALICE, request)


def test_namespace_names_collide_across_teams_on_main_and_in_open_changes(
        prepared: tuple[LocalForge, Prepared]) -> None:
    forge, change = prepared
    assert checks_runner.check_collisions(forge, change, []).state == "success"
    # Team `pay` with tenant `ments-web` would also be the namespace `payments-web`.
    clash = checks_runner.check_collisions(forge, change, ["tenants/pay/payments-web"])
    assert clash.state == "failure" and "open change" in clash.details[0]
    platform = replace(change, target="tenants/other/platform-tools")
    on_main = checks_runner.check_collisions(forge, platform, [])
    assert on_main.state == "failure"
    assert "exists on main at tenants/platform/platform-tools" in on_main.details[0]


def test_policies_deny_a_privileged_latest_pod(prepared: tuple[LocalForge, Prepared]) -> None:
    forge, change = prepared
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bad", "namespace": "payments-web"},
        "spec": {"containers": [{"name": "c", "image": "nginx:latest",
                                 "securityContext": {"privileged": True}}]}}
    result = checks_runner.check_policies(forge, change.base_sha, [pod])
    assert result.state == "failure"
    text = "\n".join(result.details)
    assert "privileged" in text.lower() and "latest" in text.lower()
    assert checks_runner.check_policies(forge, change.base_sha, []).state == "success"


def test_capacity_reports_every_resource(prepared: tuple[LocalForge, Prepared]) -> None:
    forge, change = prepared
    result = checks_runner.check_capacity(forge, change)
    assert result.state == "success"
    assert result.details == ["dev: cpu 6 of 8", "dev: memory 12Gi of 16Gi",
                              "dev: storage 70Gi of 200Gi"]
    no_capacity = replace(change, env_docs={"dev": {"tier": "dev"}})
    assert "no capacity declared" in checks_runner.check_capacity(forge, no_capacity).details[0]
