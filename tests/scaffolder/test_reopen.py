"""A pull request reopened on GitHub (the fake at the HTTP layer, signed webhooks) reopens its
closed change as a new reservation (``scaffolder.reopen``): every ``caas/*`` status of its head
back to pending, the checks run again, and whatever was reserved while it was closed wins its
unit and names — on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from gitops import gittree
from gitops.forges.github import GitHubForge
from gitops.forges.github_webhook import sign
from portal.app import create_app
from portal.auth.models import AuditEvent, Role
from portal.settings import ForgeKind, Settings
from reconciler.models import Job, JobKind
from reconciler.worker import Worker
from scaffolder import merge_gate
from scaffolder.models import Change
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import Registry
from scaffolder.render import render
from tests.conftest import UserFactory
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo, served
from tests.reconciler.conftest import drain
from tests.scaffolder.conftest import seed

pytestmark = pytest.mark.checks_after_pr

Headers = Callable[[str], dict[str, str]]
SECRET = "reopen-webhook-secret"
REPO = "acme/gitops"
_ids = itertools.count(1)
SMALL = {"cost_center": "cc-1", "environments": ["dev"], "cpu_quota": "1",
         "memory_quota": "1Gi", "storage_quota": "1Gi"}
TENANT = {"team": "payments", "name": "web", **SMALL}
UNIT = "tenants/payments/payments-web"
X = {"team": "payments-web", "name": "x", **SMALL}


def _main_files(settings: Settings, tmp_path: Path) -> dict[str, bytes]:
    """The test skeleton (teams payments and payments-web) with tenant payments-web on it."""
    bare = seed(settings, tmp_path, teams=("payments", "payments-web"))
    files = {p: gittree.read_blob(bare, "main", p) or b"" for p in gittree.list_paths(bare, "main")}
    template = Registry(settings).get("tenant")
    clean = validate_answers(template.parameters, TENANT, context=ParameterContext(
        teams=frozenset({"payments"}), environments=frozenset({"dev"})))
    files.update(render(template, clean, target=template.fill(template.target_path, clean)))
    return files


@pytest.fixture
def github(settings: Settings, tmp_path: Path) -> Iterator[tuple[FakeGitHub, FakeRepo]]:
    with served(REPO, _main_files(settings, tmp_path)) as pair:
        yield pair


@pytest.fixture
def configured(settings: Settings, github: tuple[FakeGitHub, FakeRepo]) -> Settings:
    return settings.model_copy(update={
        "github_webhook_secret": SecretStr(SECRET), "github_repo": REPO,
        "forge": ForgeKind.github, "github_url": github[0].base_url + PREFIX,
        "github_token": SecretStr("ghs_reopen"), "github_write_interval_s": 0.0})


@pytest.fixture
def client(configured: Settings, engine: Engine, make_user: UserFactory) -> Iterator[TestClient]:
    make_user("alice", teams={"payments": Role.developer, "payments-web": Role.developer})
    with TestClient(create_app(configured, engine=engine)) as got:
        yield got


def _forge(configured: Settings) -> GitHubForge:
    assert configured.github_url is not None
    return GitHubForge(REPO, token="ghs_reopen", base_url=configured.github_url,
                       seconds_between_writes=None)


def _drain(configured: Settings, engine: Engine) -> None:
    drain(Worker(configured, engine, _forge(configured)))


def _request(client: TestClient, headers: dict[str, str], path: str,
             body: dict[str, Any]) -> dict[str, Any]:
    got = client.post(path, headers=headers, json=body)
    assert got.status_code == 201, got.text
    assert got.json()["status"] == "succeeded", got.json()
    change: dict[str, Any] = client.get(f"/api/changes/{got.json()['change_id']}",
                                        headers=headers).json()
    return change


def _payload(repo: FakeRepo, action: str, number: int, sender: str) -> dict[str, Any]:
    pr = repo.pulls[number]
    side = {"repo": {"full_name": REPO}}
    return {"action": action, "number": number, "sender": {"login": sender},
            "repository": {"full_name": REPO},
            "pull_request": {"number": number, "state": pr["state"], "merged": False,
                             "merge_commit_sha": None,
                             "head": {"ref": pr["head"], "sha": repo.refs[f"heads/{pr['head']}"],
                                      **side},
                             "base": {"ref": "main", "sha": repo.refs["heads/main"], **side}}}


def _deliver(client: TestClient, payload: dict[str, Any], *, secret: str | None = SECRET,
             delivery: str | None = None) -> Any:
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json", "x-github-event": "pull_request",
               "x-github-delivery": delivery or f"reopen-{next(_ids)}"}
    if secret is not None:
        headers["x-hub-signature-256"] = sign(secret, body)
    return client.post("/api/webhooks/github", content=body, headers=headers)


def _statuses(repo: FakeRepo, number: int) -> dict[str, str]:
    """The newest state of each ``caas/*`` status on the PR's current head."""
    pr = repo.pulls[number]
    newest: dict[str, str] = {}
    for status in repo.statuses.get(repo.refs[f"heads/{pr['head']}"], []):  # newest first
        if status["context"].startswith("caas/"):
            newest.setdefault(status["context"], status["state"])
    return newest


def _checks(change: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["state"] for c in change["checks"]}


def _close_on_github(client: TestClient, configured: Settings, repo: FakeRepo,
                     change: dict[str, Any], alice: dict[str, str]) -> None:
    _forge(configured).close_change(change["number"], by="carol")
    got = _deliver(client, _payload(repo, "closed", change["number"], "carol"))
    assert got.status_code == 202, got.text
    assert client.get(f"/api/changes/{change['id']}", headers=alice).json()["status"] == "closed"


def _reopen_on_github(repo: FakeRepo, number: int) -> None:
    repo.pulls[number]["state"] = "open"  # what "Reopen pull request" does on GitHub


def _requested_tenant(client: TestClient, configured: Settings, engine: Engine,
                      alice: dict[str, str]) -> dict[str, Any]:
    """Alice's tenant request, its PR opened and its checks run."""
    change = _request(client, alice, "/api/scaffolder/tasks",
                      {"template": "tenant", "answers": X})
    _drain(configured, engine)
    return change


def _audits(engine: Engine, action: str) -> list[AuditEvent]:
    with Session(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)
                           .order_by(col(AuditEvent.id))).all())


def test_a_reopened_pull_request_reopens_its_change_pending_then_green(
        client: TestClient, configured: Settings, engine: Engine, auth_headers: Headers,
        github: tuple[FakeGitHub, FakeRepo]) -> None:
    _fake, repo = github
    alice = auth_headers("alice")
    change = _requested_tenant(client, configured, engine, alice)
    cid, number = change["id"], change["number"]
    shown = client.get(f"/api/changes/{cid}", headers=alice).json()
    assert shown["checks_green"], shown["checks"]
    assert set(_statuses(repo, number).values()) == {"success"}
    _close_on_github(client, configured, repo, change, alice)

    _reopen_on_github(repo, number)
    got = _deliver(client, _payload(repo, "reopened", number, "carol"))
    assert got.status_code == 202 and "pr.reopened" in got.json()["status"], got.text
    shown = client.get(f"/api/changes/{cid}", headers=alice).json()
    assert shown["status"] == "open" and not shown["checks_green"], shown
    # The main-dependent checks ran with the delivery; the head's own wait for the job.
    checks = _checks(shown)
    assert checks["collisions"] == "success", shown["checks"]
    assert {checks[n] for n in ("manifests", "kustomize")} == {"pending"}
    on_github = _statuses(repo, number)
    assert on_github["caas/manifests"] == on_github["caas/kustomize"] == "pending"
    # Every stored check went pending on the head first, in one set of statuses.
    head = repo.refs[f"heads/{repo.pulls[number]['head']}"]
    states = [s["state"] for s in repo.statuses[head] if s["context"] == "caas/collisions"]
    assert states[:2] == ["success", "pending"], states  # newest first
    with Session(engine) as s:
        row = s.get(Change, cid)
        assert row is not None and row.open_unit_key == row.unit_key
        jobs = s.exec(select(Job).where(Job.kind == JobKind.pr_checks.value,
                                        Job.change_number == number)).all()
        assert [j.state for j in jobs] == ["queued"], [(j.state, j.commit) for j in jobs]
    [reopened] = _audits(engine, "scaffolder.reopened")
    assert reopened.actor == "carol" and reopened.detail["change"] == cid

    _drain(configured, engine)
    done = client.get(f"/api/changes/{cid}", headers=alice).json()
    assert done["checks_green"] and set(_checks(done).values()) == {"success"}, done["checks"]
    assert set(_statuses(repo, number).values()) == {"success"}
    page = client.get(f"/changes/{cid}", headers={**alice, "accept": "text/html"})
    assert page.status_code == 200 and '<span class="badge open">open</span>' in page.text
    assert "Review and merge on the forge" in page.text

    # Redelivered (a new delivery id: GitHub's "Redeliver", or a replay): nothing changes.
    before = len(repo.statuses[head])
    again = _deliver(client, _payload(repo, "reopened", number, "carol"))
    assert again.status_code == 202 and "pr.reopened" not in again.json()["status"], again.text
    assert client.get(f"/api/changes/{cid}", headers=alice).json() == done
    assert len(repo.statuses[head]) == before
    assert len(_audits(engine, "scaffolder.reopened")) == 1


def test_a_reopened_change_of_a_unit_another_change_holds_is_red_and_does_not_take_it(
        client: TestClient, configured: Settings, engine: Engine, auth_headers: Headers,
        github: tuple[FakeGitHub, FakeRepo]) -> None:
    """An update of tenant payments-web is closed; its decommission (another branch, the same
    unit) opens meanwhile and holds the unit. The reopened update is open again without the
    unit's reservation, red on collisions; the decommission stays green and keeps it."""
    _fake, repo = github
    alice = auth_headers("alice")
    update = _request(client, alice, "/api/scaffolder/tasks", {
        "template": "tenant", "update": True, "answers": {**TENANT, "cost_center": "cc-2"}})
    assert update["unit_key"] == UNIT
    _drain(configured, engine)
    _close_on_github(client, configured, repo, update, alice)
    removal = _request(client, alice, "/api/scaffolder/decommission", {"unit": UNIT})
    assert removal["unit_key"] == UNIT
    _drain(configured, engine)
    assert client.get(f"/api/changes/{removal['id']}", headers=alice).json()["checks_green"]

    _reopen_on_github(repo, update["number"])
    got = _deliver(client, _payload(repo, "reopened", update["number"], "carol"))
    assert got.status_code == 202 and "pr.reopened" in got.json()["status"], got.text
    _drain(configured, engine)
    reopened = client.get(f"/api/changes/{update['id']}", headers=alice).json()
    assert reopened["status"] == "open" and not reopened["checks_green"]
    collisions = next(c for c in reopened["checks"] if c["name"] == "collisions")
    assert collisions["state"] == "failure"
    assert f"{UNIT} is already requested by another open change" in collisions["details"]
    # The decommission was reserved first: re-checked now (as a move of main re-checks it),
    # the reopened change does not count against it.
    with Session(engine, expire_on_commit=False) as s:
        row = s.get(Change, removal["id"])
        assert row is not None
        assert merge_gate.open_units(s, before=row) == []
        fresh = merge_gate.recheck_change(s, forge=_forge(configured), change=row,
                                          code_owners=(None, ()))
    assert {c.name: c.state for c in fresh}["collisions"] == "success"
    kept = client.get(f"/api/changes/{removal['id']}", headers=alice).json()
    assert kept["checks_green"], kept["checks"]
    with Session(engine) as s:
        holder = s.exec(select(Change.id).where(Change.open_unit_key == UNIT)).one()
    assert holder == removal["id"]
    [audit] = _audits(engine, "scaffolder.reopened")
    assert audit.detail["holds_unit"] is False


@pytest.mark.parametrize("signature", ["missing", "wrong-secret"])
def test_an_unsigned_or_mis_signed_reopen_changes_nothing(
        signature: str, client: TestClient, configured: Settings, engine: Engine,
        auth_headers: Headers, github: tuple[FakeGitHub, FakeRepo]) -> None:
    _fake, repo = github
    alice = auth_headers("alice")
    change = _requested_tenant(client, configured, engine, alice)
    _close_on_github(client, configured, repo, change, alice)
    _reopen_on_github(repo, change["number"])
    head = repo.refs[f"heads/{repo.pulls[change['number']]['head']}"]
    before = (client.get(f"/api/changes/{change['id']}", headers=alice).json(),
              len(repo.statuses[head]))
    got = _deliver(client, _payload(repo, "reopened", change["number"], "mallory"),
                   secret=None if signature == "missing" else "not-the-secret")
    assert got.status_code == 401, got.text
    assert got.json()["error"]["field"] == "X-Hub-Signature-256"
    assert (client.get(f"/api/changes/{change['id']}", headers=alice).json(),
            len(repo.statuses[head])) == before
    assert _audits(engine, "scaffolder.reopened") == []


def test_a_reopen_the_forge_does_not_confirm_changes_nothing(
        client: TestClient, configured: Settings, engine: Engine, auth_headers: Headers,
        github: tuple[FakeGitHub, FakeRepo]) -> None:
    """A late ``reopened`` delivery of a PR closed again since: GitHub says closed."""
    _fake, repo = github
    alice = auth_headers("alice")
    change = _requested_tenant(client, configured, engine, alice)
    _close_on_github(client, configured, repo, change, alice)
    got = _deliver(client, _payload(repo, "reopened", change["number"], "carol"))
    assert got.status_code == 202 and "pr.reopened" not in got.json()["status"], got.text
    assert client.get(f"/api/changes/{change['id']}", headers=alice).json()["status"] == "closed"
    assert _audits(engine, "scaffolder.reopened") == []
