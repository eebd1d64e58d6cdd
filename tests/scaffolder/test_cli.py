"""`caas scaffold` and `caas create-environment` as a user runs them (a real subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gitops import git, gittree
from portal.settings import Settings
from tests.conftest import UserFactory

pytestmark = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


def caas(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAAS_")}
    env.update(CAAS_DATA_DIR=str(settings.data_dir),
               CAAS_DATABASE_URL=settings.resolved_database_url, CAAS_LOG_FORMAT="text",
               CAAS_LOG_LEVEL="WARNING", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def test_scaffold_dry_run_then_request(settings: Settings, gitops: Path,
                                       make_user: UserFactory) -> None:
    make_user("admin", admin=True)
    args = ["scaffold", "tenant", "--set", "team=platform", "--set", "name=cli",
            "--set", "cost_center=cc-9", "--set", "environments=dev", "--set", "max_pods=20"]
    dry = caas(settings, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "tenants/platform/platform-cli/base/namespace.yaml" in dry.stdout
    assert "ok capacity" in dry.stdout
    assert git.out(gitops, "for-each-ref", "--format=%(refname)").split() == [
        "refs/heads/main"]
    done = caas(settings, *args)
    assert done.returncode == 0, done.stderr
    assert "change #1" in done.stdout and "pull-request" in done.stdout


def test_create_environment_opens_the_environment_pr(settings: Settings, gitops: Path,
                                                     make_user: UserFactory) -> None:
    make_user("admin", admin=True)
    got = caas(settings, "create-environment", "staging", "--provider", "local",
               "--region", "local", "--tier", "staging")
    assert got.returncode == 0, got.stderr
    branch = gittree.resolve(gitops, "caas/environment-staging")
    assert branch is not None
    assert gittree.read_blob(gitops, branch, "envs/staging/infra.yaml") is not None
    bad = caas(settings, "create-environment", "Bad_Name", "--tier", "staging")
    assert bad.returncode == 2 and "environment" in bad.stderr


def test_scaffold_update_changes_a_unit_from_its_stored_answers(
        settings: Settings, gitops: Path, make_user: UserFactory) -> None:
    make_user("admin", admin=True)
    got = caas(settings, "scaffold", "tenant", "--update", "--dry-run", "--set", "team=platform",
               "--set", "name=tools", "--set", "storage_quota=30Gi")
    assert got.returncode == 0, got.stderr
    listed = {line.split()[1] for line in got.stdout.splitlines()
              if "tenants/platform/platform-tools/" in line}
    assert listed == {f"tenants/platform/platform-tools/{p}" for p in (
        ".caas-answers.yaml", "base/resourcequota.yaml", "envs/dev/quota.yaml")}


def test_decommission_names_the_dependants_it_waits_for(
        settings: Settings, gitops: Path, make_user: UserFactory) -> None:
    make_user("admin", admin=True)
    got = caas(settings, "decommission", "teams/platform")
    assert got.returncode != 0
    assert "namespace:platform/platform-tools" in got.stdout + got.stderr
    assert git.out(gitops, "for-each-ref", "--format=%(refname)").split() == [
        "refs/heads/main"]
