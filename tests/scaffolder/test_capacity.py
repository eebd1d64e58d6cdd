"""One capacity reading for the pre-merge check, the merge-time check and the preview."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from gitops.forges.local import LocalForge
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.settings import Settings
from scaffolder import capacity
from scaffolder.changeset import prepare
from scaffolder.models import ScaffoldRequest
from scaffolder.registry import Registry

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
ALICE = Principal(user_id=1, username="alice", team_roles={"payments": Role.developer})
QUOTA = b"""apiVersion: v1
kind: ResourceQuota
metadata: {name: q}
spec: {hard: {requests.cpu: "%s", requests.memory: 1Gi}}
"""
INFRA = {"tier": "dev", "capacity": {"cpu": "4", "memory": "8Gi"}}


def test_usage_before_after_remaining_and_over(settings: Settings, engine: Engine,
                                               gitops: Path) -> None:
    forge = LocalForge(settings, engine)
    main = forge.head()
    on_main = capacity.quotas_at(forge, main, "dev")
    used = sum(amounts[0] for _, amounts in on_main)
    add = {"tenants/x/x-a/envs/dev/quota.yaml": QUOTA % b"1"}
    grown = capacity.usage(forge, main, "dev", infra=INFRA, overlay=add)
    assert grown.before["cpu"] == used and grown.after["cpu"] == used + 1000
    assert grown.remaining("cpu") == 4000 - used - 1000
    assert grown.remaining("storage") is None  # no storage capacity declared
    huge = capacity.usage(forge, main, "dev", infra=INFRA,
                          overlay={"tenants/x/x-a/envs/dev/quota.yaml": QUOTA % b"64"})
    assert huge.over("cpu") and not huge.over("memory")
    result = capacity.capacity_result([huge], context=" with current main")
    assert result.state == "failure" and result.summary == "over capacity with current main"
    assert any(line.endswith("(over capacity)") for line in result.details)
    # Removing a quota never fails, even over capacity (the capacity was lowered).
    tight = {"tier": "dev", "capacity": {"cpu": "1m"}}
    removed = {path: None for path, _ in on_main}
    assert capacity.capacity_result(
        [capacity.usage(forge, main, "dev", infra=tight, overlay=removed)]).state == "success"
    bad = capacity.usage(forge, main, "dev", infra={"capacity": {"cpu": "lots"}}, overlay={})
    assert bad.problems and capacity.capacity_result([bad]).state == "failure"


def test_preview_of_a_tenant_prices_its_own_quota(settings: Settings, engine: Engine,
                                                  gitops: Path) -> None:
    forge = LocalForge(settings, engine)
    request = ScaffoldRequest(template="tenant", answers={
        "team": "payments", "name": "web", "cost_center": "cc", "environments": ["dev"],
        "environment_quotas": {"dev": {"cpu": "1500m", "memory": "3Gi"}}})
    prepared = prepare(forge, Registry(settings), ALICE, request)
    [dev] = capacity.previews(forge, prepared)
    assert dev.env == "dev" and dev.requests_quota
    assert dev.requested["cpu"] == 1500 and dev.requested["memory"] == 3 * 2**30
    assert dev.used["cpu"] == sum(a[0] for _, a in capacity.quotas_at(
        forge, prepared.base_sha, "dev")) + 1500
    assert dev.remaining["cpu"] == dev.capacity["cpu"] - dev.used["cpu"]
    assert capacity.capacity_result(capacity.unit_usages(forge, prepared)).state == "success"
