"""The optional ``source-statuses`` gate (issue 16): the commit statuses a tier requires
(``CAAS_PROMOTION_REQUIRED_STATUSES``) must be ``success`` on the source version's commit — the
head of the pull request that put the source's version on main. Read through the forge: on
GitHub (the fake at the HTTP layer) the combined status of that commit; on the local forge its
stored checks, through the whole promotion API on both databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from gitops.forges.base import ChangeSpec, Check, CheckState, FileChange
from gitops.forges.factory import make_forge
from gitops.forges.github import GitHubForge
from portal.app import create_app
from portal.auth import policy
from scaffolder import promotion_gates
from tests.conftest import UserFactory, make_settings
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo, served
from tests.scaffolder.test_promotion import _checks, _people, _promote, _seed, _setup

Headers = Callable[[str], dict[str, str]]
REQUIRED = "staging=ci/tests|ci/lint,prod=ci/tests"


def test_the_setting_names_contexts_per_tier(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://", promotion_required_statuses=REQUIRED)
    assert promotion_gates.required_statuses(settings, "staging") == ["ci/tests", "ci/lint"]
    assert promotion_gates.required_statuses(settings, "prod") == ["ci/tests"]
    assert promotion_gates.required_statuses(settings, "dev") == []  # optional per tier
    for bad in ("staging", "staging=", "staging=a,,prod=b", "Prod=x", "staging=a||b"):
        with pytest.raises(ValidationError, match="promotion_required_statuses"):
            make_settings(tmp_path, "sqlite://", promotion_required_statuses=bad)


def test_local_forge_stored_checks_of_the_source_pr(
        engine: Engine, tmp_path: Path, database_url: str, make_user: UserFactory,
        auth_headers: Headers) -> None:
    settings = make_settings(tmp_path, database_url, promotion_required_statuses=REQUIRED)
    _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
        alice = auth_headers("alice")
        dev = {r["environment"]: r for r in client.get(
            "/api/applications/payments/shop/promotions", headers=alice).json()["rows"]}["dev"]
        source_pr = dev["change_number"]
        assert source_pr is not None
        opened = _promote(client, alice, "dev", "staging").json()
        cid = opened["change_id"]

        def gate() -> dict[str, Any]:
            got = client.post(f"/api/promotions/{cid}/gates", headers=alice)
            assert got.status_code == 200, got.text
            return dict(_checks(got.json())["source-statuses"])

        first = _checks(client.get(f"/api/changes/{cid}", headers=alice).json())
        assert first["source-statuses"]["state"] == "pending"  # absent: blocks
        assert "waiting for ci/tests, ci/lint" in first["source-statuses"]["summary"]
        assert f"#{source_pr}" in first["source-statuses"]["summary"]
        forge = make_forge(settings, engine)
        forge.set_check(source_pr, Check("ci/tests", CheckState.success))
        forge.set_check(source_pr, Check("ci/lint", CheckState.pending))
        waiting = gate()
        assert waiting["state"] == "pending" and waiting["summary"].startswith(
            "waiting for ci/lint ")
        forge.set_check(source_pr, Check("ci/lint", CheckState.failure))
        red = gate()
        assert red["state"] == "failure" and red["summary"].startswith("ci/lint failed on ")
        assert red["details"] == ["ci/tests: success", "ci/lint: failure"]
        # A merge is refused on it, even once approved and with source-health overridden.
        assert client.post(f"/api/changes/{cid}/approve",
                           headers=auth_headers("bob")).status_code == 200
        assert client.post(f"/api/promotions/{cid}/override", headers=auth_headers("root"),
                           json={"gate": "source-health",
                                 "reason": "no cluster in this test"}).status_code == 200
        refused = client.post(f"/api/changes/{cid}/merge", headers=auth_headers("bob"))
        assert refused.status_code == 409 and "source-statuses" in refused.text
        forge.set_check(source_pr, Check("ci/lint", CheckState.success))
        assert gate()["state"] == "success"
        merged = client.post(f"/api/changes/{cid}/merge", headers=auth_headers("bob"))
        assert merged.status_code == 200, merged.text


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, FakeRepo, GitHubForge]]:
    with served("acme/gitops", {"README.md": b"# gitops\n"}) as (fake, repo):
        forge = GitHubForge("acme/gitops", token="ghs_test", base_url=fake.base_url + PREFIX,
                            seconds_between_writes=None)
        yield fake, repo, forge


def _subject(tier: str, source_pr: int | None) -> promotion_gates.Subject:
    return promotion_gates.Subject(team="payments", app="shop", source="staging", target=tier,
                                   tier=policy.Tier(tier), source_legacy=False, target_doc={},
                                   author="alice", source_pr=source_pr)


def test_github_combined_status_of_the_source_pr_head(
        tmp_path: Path, github: tuple[FakeGitHub, FakeRepo, GitHubForge]) -> None:
    fake, _repo, forge = github
    settings = make_settings(tmp_path, "sqlite://", promotion_required_statuses=REQUIRED)
    opened = forge.open_change(ChangeSpec(
        branch="caas/shop-staging", title="shop 1.2.3 to staging", body="", author="alice",
        files=[FileChange("applications/payments/shop/envs/staging/application.yaml",
                          b"kind: Application\n")]))
    head = opened.head_sha
    fake.merge("acme/gitops", opened.number, "bob")
    prod = _subject("prod", opened.number)

    def state() -> tuple[str, str]:
        result = promotion_gates.source_statuses(settings, forge, prod)
        return result.state, result.summary

    assert state()[0] == "pending" and "waiting for ci/tests" in state()[1]  # absent
    fake.reset_log()
    forge.set_check(opened.number, Check("ci/tests", CheckState.pending))  # CI started
    assert ("POST", f"/repos/acme/gitops/statuses/{head}") in fake.writes()
    assert state()[0] == "pending"
    forge.set_check(opened.number, Check("ci/tests", CheckState.error, "runner lost"))
    assert state()[0] == "failure" and state()[1].startswith(f"ci/tests failed on {head[:12]}")
    forge.set_check(opened.number, Check("ci/tests", CheckState.success))  # newest wins
    fake.reset_log()
    assert state() == ("success", f"ci/tests succeeded on {head[:12]} (#{opened.number}, "
                                  "staging's version)")
    # Read through the HTTP API: the pull request, then its head commit's combined status.
    paths = [path for method, path in fake.requests if method == "GET"]
    assert f"{PREFIX}/repos/acme/gitops/pulls/{opened.number}" in paths
    assert f"{PREFIX}/repos/acme/gitops/commits/{head}/status" in paths
    # A tier that requires nothing passes; a version without a known PR, or a PR GitHub
    # cannot find, blocks as pending.
    assert promotion_gates.source_statuses(settings, forge, _subject("dev", None)
                                           ).state == "success"
    unknown = promotion_gates.source_statuses(settings, forge, _subject("prod", None))
    assert unknown.state == "pending" and "outside the portal" in unknown.summary
    missing = promotion_gates.source_statuses(settings, forge, _subject("prod", 999))
    assert missing.state == "pending" and "cannot be read now" in missing.summary
