"""Promotion on GitHub (the fake at the HTTP layer, signed webhooks): a review given on GitHub
reaches the portal as a ``pull_request_review`` delivery, the promotion's gates are evaluated
again, and the approval gate turns green — only for a reviewer the tier's rule accepts — and
back to pending when that review is dismissed. The gates are written back as commit statuses
on the pull request's head."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from gitops.forges.github_webhook import sign
from portal.app import create_app
from portal.settings import ForgeKind, Settings
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import Registry
from scaffolder.render import render
from tests.conftest import UserFactory
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo, served
from tests.scaffolder.test_promotion import APP, TENANT, _checks, _people, _promote

Headers = Callable[[str], dict[str, str]]
SECRET = "promotion-webhook-secret"
REPO = "acme/gitops"
_ids = itertools.count(1)


def _files(settings: Settings, folder: Path) -> dict[str, bytes]:
    """The skeleton with a staging environment, the tenant and the application rendered."""
    shutil.copytree(settings.skeleton_dir, folder)
    registry = Registry(settings)
    context = ParameterContext(teams=frozenset({"payments"}),
                               environments=frozenset({"dev", "staging"}))
    units: list[tuple[str, dict[str, Any]]] = [
        ("environment", {"environment": "staging", "provider": "local", "region": "local",
                         "tier": "staging"}),
        ("tenant", {**TENANT, "environments": ["dev", "staging"]}),
        ("application", APP)]
    for name, answers in units:
        template = registry.get(name)
        clean = validate_answers(template.parameters, answers, context=context)
        target = template.fill(template.target_path, clean)
        for path, content in render(template, clean, target=target).items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def github(settings: Settings, tmp_path: Path) -> Iterator[tuple[FakeGitHub, FakeRepo]]:
    with served(REPO, _files(settings, tmp_path / "seed")) as pair:
        yield pair


def _deliver(client: TestClient, event: str, payload: dict[str, Any],
             secret: str = SECRET) -> Any:
    body = json.dumps(payload).encode()
    return client.post("/api/webhooks/github", content=body, headers={
        "content-type": "application/json", "x-github-event": event,
        "x-github-delivery": f"promo-{next(_ids)}", "x-hub-signature-256": sign(secret, body)})


def _review_event(pr: dict[str, Any], head: str, login: str, state: str,
                  action: str = "submitted") -> dict[str, Any]:
    side = {"repo": {"full_name": REPO}}
    return {"action": action, "sender": {"login": login},
            "review": {"id": next(_ids), "user": {"login": login}, "state": state.lower(),
                       "commit_id": head},
            "pull_request": {"number": pr["number"], "state": "open", "merged": False,
                             "head": {"ref": pr["head"], "sha": head, **side},
                             "base": {"ref": "main", "sha": "0" * 40, **side}},
            "repository": {"full_name": REPO}}


def test_a_review_on_github_turns_the_approval_gate_green(
        settings: Settings, engine: Engine, make_user: UserFactory, auth_headers: Headers,
        github: tuple[FakeGitHub, FakeRepo]) -> None:
    fake, repo = github
    configured = settings.model_copy(update={
        "github_webhook_secret": SecretStr(SECRET), "github_repo": REPO,
        "forge": ForgeKind.github, "github_url": fake.base_url + PREFIX,
        "github_token": SecretStr("ghs_promotion"), "github_write_interval_s": 0.0})
    _people(make_user)
    with TestClient(create_app(configured, engine=engine)) as client:
        alice = auth_headers("alice")
        task = _promote(client, alice, "dev", "staging").json()
        assert task["status"] == "succeeded", task
        cid = task["change_id"]
        change = client.get(f"/api/changes/{cid}", headers=alice).json()
        number = change["number"]
        pr = repo.pulls[number]
        head = repo.refs[f"heads/{pr['head']}"]

        def gate(name: str = "approval") -> tuple[str, str]:
            checks = _checks(client.get(f"/api/changes/{cid}", headers=alice).json())
            return checks[name]["state"], checks[name]["summary"]

        def on_github(context: str) -> str:
            return next(s["state"] for s in repo.statuses[head] if s["context"] == context)

        assert gate()[0] == "pending" and on_github("caas/approval") == "pending"
        reviews = repo.reviews.setdefault(number, [])

        # Reviews by someone outside the team, and by the author, do not count.
        for login in ("eve", "alice"):
            reviews.append({"id": next(_ids), "user": {"login": login}, "state": "APPROVED",
                            "commit_id": head})
            got = _deliver(client, "pull_request_review",
                           _review_event(pr, head, login, "APPROVED"))
            assert got.status_code == 202, got.text
            assert "promotion gates evaluated" in got.json()["status"]
            assert "approval pending" in got.json()["status"]
            assert gate()[0] == "pending" and on_github("caas/approval") == "pending"

        # bob reviews payments' staging changes: green in the portal and on GitHub.
        reviews.append({"id": next(_ids), "user": {"login": "bob"}, "state": "APPROVED",
                        "commit_id": head})
        unsigned = _deliver(client, "pull_request_review",
                            _review_event(pr, head, "bob", "APPROVED"), secret="wrong")
        assert unsigned.status_code == 401
        assert gate()[0] == "pending"  # a forged delivery evaluates nothing
        got = _deliver(client, "pull_request_review", _review_event(pr, head, "bob", "APPROVED"))
        assert got.status_code == 202 and "approval success" in got.json()["status"]
        assert gate() == ("success", "approved by bob")
        assert on_github("caas/approval") == "success"
        assert on_github("caas/source-health") == "pending"  # no cluster: unknown, blocks

        # bob's review dismissed on GitHub: pending again.
        reviews.append({"id": next(_ids), "user": {"login": "bob"}, "state": "DISMISSED",
                        "commit_id": head})
        got = _deliver(client, "pull_request_review",
                       _review_event(pr, head, "bob", "DISMISSED", action="dismissed"))
        assert got.status_code == 202 and "approval pending" in got.json()["status"]
        assert gate()[0] == "pending" and on_github("caas/approval") == "pending"

        # A review of a pull request that is no promotion evaluates nothing.
        other = {**pr, "number": number + 100}
        got = _deliver(client, "pull_request_review", _review_event(other, head, "bob",
                                                                    "APPROVED"))
        assert got.status_code == 202 and got.json()["status"] == "ignored"
