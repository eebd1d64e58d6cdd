"""Checks that still hold at merge, through the HTTP API on SQLite and PostgreSQL.

Environment ``dev`` of the skeleton has capacity 8 CPU with 2 in use (platform-tools). Changes
opened from the same main each fit alone; merging re-evaluates capacity on current main under
a per-environment lock, so the ones that no longer fit are refused naming ``capacity`` and
``dev`` and never reach main.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from gitops import gittree
from gitops.forges.github_webhook import sign
from gitops.forges.local import LocalForge
from portal.app import create_app
from portal.auth.models import Role
from portal.settings import Settings
from scaffolder import service
from tests.conftest import UserFactory
from tests.scaffolder.conftest import seed

Headers = Callable[[str], dict[str, str]]


def _tenant(name: str, cpu: str) -> dict[str, Any]:
    return {"template": "tenant", "answers": {
        "team": "payments", "name": name, "cost_center": "cc-1", "environments": ["dev"],
        "cpu_quota": cpu, "memory_quota": "1Gi", "storage_quota": "1Gi"}}


def _open(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    task = client.post("/api/scaffolder/tasks", headers=headers, json=body)
    assert task.status_code == 201, task.text
    assert task.json()["status"] == "succeeded", task.json()
    change: dict[str, Any] = client.get(f"/api/changes/{task.json()['change_id']}",
                                        headers=headers).json()
    assert change["checks_green"], change["checks"]
    return change


def _check(change: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in change["checks"] if c["name"] == name)
    return found


def _people(make_user: UserFactory, auth_headers: Headers) -> tuple[dict[str, str], ...]:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.developer})
    return auth_headers("alice"), auth_headers("bob")


def test_second_merge_of_the_last_capacity_is_refused(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    alice, bob = _people(make_user, auth_headers)
    first = _open(app_client, alice, _tenant("web", "4"))
    second = _open(app_client, alice, _tenant("api", "4"))
    # Both were checked against the same main: each fits alone (2 + 4 of 8).
    assert "dev: cpu 6 of 8" in _check(second, "capacity")["details"]
    for change in (first, second):
        assert app_client.post(f"/api/changes/{change['id']}/approve",
                               headers=bob).status_code == 200
    assert app_client.post(f"/api/changes/{first['id']}/merge", headers=bob).status_code == 200
    main = gittree.resolve(gitops, "main")

    # main moved: the open change touching dev was re-checked and shows the failure.
    shown = app_client.get(f"/api/changes/{second['id']}", headers=alice).json()
    assert not shown["checks_green"]
    assert _check(shown, "capacity")["state"] == "failure"
    refused = app_client.post(f"/api/changes/{second['id']}/merge", headers=bob)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert "capacity" in error["message"] and "dev" in error["message"]
    assert "dev: cpu 10 of 8 with current main (over capacity)" in error["message"]
    assert error["field"] == "checks"
    assert gittree.resolve(gitops, "main") == main  # nothing landed
    # The change page says so before anyone clicks: Merge disabled, the failing check named.
    page = app_client.get(f"/changes/{second['id']}", headers={**bob, "accept": "text/html"})
    assert re.search(r'<button type="submit" class="primary" disabled[^>]*>Merge</button>',
                     page.text), page.text[:3000]
    assert 'id="why-merge" class="why muted">checks failing: capacity<' in page.text
    # The failing check is on the change's pull request too (the forge's check of its head).
    app: Any = app_client.app
    forge = LocalForge(app.state.settings, app.state.engine)
    checks = {c.name: c.state.value for c in forge.get_change(second["number"]).checks}
    assert checks["caas/capacity"] == "failure"


def test_ten_concurrent_merges_land_exactly_as_many_as_fit(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    alice, bob = _people(make_user, auth_headers)
    changes = [_open(app_client, alice, _tenant(f"svc{i}", "1")) for i in range(10)]
    for change in changes:
        assert app_client.post(f"/api/changes/{change['id']}/approve",
                               headers=bob).status_code == 200
    barrier = threading.Barrier(len(changes))
    outcomes: dict[int, tuple[int, str]] = {}

    def merge(change: dict[str, Any]) -> None:
        barrier.wait()
        got = app_client.post(f"/api/changes/{change['id']}/merge", headers=bob)
        outcomes[change["id"]] = (got.status_code, got.text)

    threads = [threading.Thread(target=merge, args=(c,)) for c in changes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    merged = [i for i, (status, _) in outcomes.items() if status == 200]
    refused = [text for status, text in outcomes.values() if status == 409]
    # 8 CPU of capacity, 2 in use: six 1-CPU tenants fit, four do not.
    assert len(merged) == 6, outcomes
    assert len(refused) == 4 and all("capacity" in t and "dev" in t for t in refused), refused
    quotas = [p for p in gittree.list_paths(gitops, "main", "tenants/payments")
              if p.endswith("/envs/dev/quota.yaml")]
    assert len(quotas) == 6


def test_a_merge_on_the_forge_rechecks_open_changes_through_the_webhook_hook(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """GitHub merges on its side: the webhook's ``after_merge`` (wired by the app) records the
    merged change and re-checks the open ones on the new main, as commit statuses."""
    alice, bob = _people(make_user, auth_headers)
    first = _open(app_client, alice, _tenant("web", "4"))
    second = _open(app_client, alice, _tenant("api", "4"))
    app: Any = app_client.app
    forge = LocalForge(app.state.settings, app.state.engine)
    forge.approve(first["number"], by="bob")
    event = forge.merge(first["number"], by="bob")  # as if merged on the forge's own site
    with Session(app.state.engine) as session:
        rechecked = app.state.after_merge(session, forge, event)
    assert rechecked == [second["id"]]
    merged = app_client.get(f"/api/changes/{first['id']}", headers=alice).json()
    assert merged["status"] == "merged"
    shown = app_client.get(f"/api/changes/{second['id']}", headers=alice).json()
    assert _check(shown, "capacity")["state"] == "failure"
    checks = {c.name: c.state.value for c in forge.get_change(second["number"]).checks}
    assert checks["caas/capacity"] == "failure" and checks["caas/collisions"] == "success"
    assert app_client.post(f"/api/changes/{second['id']}/approve",
                           headers=bob).status_code == 200
    refused = app_client.post(f"/api/changes/{second['id']}/merge", headers=bob)
    assert refused.status_code == 409 and "capacity" in refused.json()["error"]["message"]


def test_a_signed_merged_pull_request_delivery_rechecks_open_changes(
        settings: Settings, engine: Engine, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """End to end: GitHub reports a merged PR by webhook; the open change on the same
    environment gets its capacity status turned red before anyone tries to merge it."""
    configured = settings.model_copy(update={"github_webhook_secret": SecretStr("s3cret"),
                                             "github_repo": "acme/gitops"})
    with TestClient(create_app(configured, engine=engine)) as client:
        alice, _bob = _people(make_user, auth_headers)
        first = _open(client, alice, _tenant("web", "4"))
        second = _open(client, alice, _tenant("api", "4"))
        forge = LocalForge(configured, engine)
        forge.approve(first["number"], by="bob")
        event = forge.merge(first["number"], by="bob")  # merged on the forge's own site
        repo = {"full_name": "acme/gitops", "name": "gitops"}
        body = json.dumps({
            "action": "closed", "number": first["number"], "repository": repo,
            "sender": {"login": "bob"}, "pull_request": {
                "number": first["number"], "merged": True, "merge_commit_sha": event.commit,
                "merged_by": {"login": "bob"}, "base": {"ref": "main", "sha": event.before,
                                                        "repo": repo},
                "head": {"ref": first["unit_key"], "sha": first["head_sha"], "repo": repo}},
        }).encode()
        got = client.post("/api/webhooks/github", content=body, headers={
            "content-type": "application/json", "x-github-event": "pull_request",
            "x-github-delivery": "d-merged-1", "x-hub-signature-256": sign("s3cret", body)})
        assert got.status_code == 202 and got.json()["status"] == "merge recorded", got.text
        assert client.get(f"/api/changes/{first['id']}",
                          headers=alice).json()["status"] == "merged"
        shown = client.get(f"/api/changes/{second['id']}", headers=alice).json()
        assert _check(shown, "capacity")["state"] == "failure"
        statuses = {c.name: c.state.value for c in forge.get_change(second["number"]).checks}
        assert statuses["caas/capacity"] == "failure"


# Two teams' tenants with one namespace, payments-web-x (payments + web-x, payments-web + x).
RACING_BODIES = [{"template": "tenant", "answers": {
    "team": team, "name": name, "cost_center": "cc-1", "environments": ["dev"],
    "cpu_quota": "1", "memory_quota": "1Gi", "storage_quota": "1Gi"}}
    for team, name in (("payments", "web-x"), ("payments-web", "x"))]


def test_closing_a_change_frees_its_name_for_the_request_that_lost_the_race(
        settings: Settings, tmp_path: Path, app_client: TestClient, make_user: UserFactory,
        auth_headers: Headers, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two teams' requests generate one namespace (payments + web-x, payments-web + x). Racing,
    both pass the request's name check (service._refuse_taken_names) and reserve; the earlier
    reservation opens green, the later fails ``name-taken`` (not two PRs each red on the
    other). Closing the first frees the name: the second's retry opens green."""
    seed(settings, tmp_path, teams=("payments", "payments-web"))
    # The race, made certain: the second request passes the name check as if the first had
    # not reserved yet.
    monkeypatch.setattr(service, "_refuse_taken_names", lambda *_a, **_k: None)
    make_user("alice", teams={"payments": Role.developer, "payments-web": Role.developer})
    alice = auth_headers("alice")
    bodies = RACING_BODIES
    tasks = [app_client.post("/api/scaffolder/tasks", headers=alice, json=b).json()
             for b in bodies]
    assert [t["status"] for t in tasks] == ["succeeded", "failed"], tasks
    assert "payments-web-x" in tasks[1]["error"] and "in an open change" in tasks[1]["error"]
    first = app_client.get(f"/api/changes/{tasks[0]['change_id']}", headers=alice).json()
    assert _check(first, "collisions")["state"] == "success"
    retried = app_client.post(f"/api/scaffolder/tasks/{tasks[1]['id']}/retry", headers=alice)
    assert retried.json()["status"] == "failed", retried.text  # the first still holds it

    # The change page's Close button (the API's close is the same review.close_change).
    closed = app_client.post(f"/changes/{first['id']}/close", follow_redirects=False,
                             headers={**alice, "accept": "text/html"})
    assert closed.status_code == 303, closed.text
    retried = app_client.post(f"/api/scaffolder/tasks/{tasks[1]['id']}/retry", headers=alice)
    assert retried.json()["status"] == "succeeded", retried.text
    second = app_client.get(f"/api/changes/{retried.json()['change_id']}", headers=alice).json()
    assert _check(second, "collisions")["state"] == "success", _check(second, "collisions")
    forge = LocalForge(settings, app_client.app.state.engine)  # type: ignore[attr-defined]
    statuses = {c.name: c.state.value for c in forge.get_change(second["number"]).checks}
    assert statuses["caas/collisions"] == "success"


def test_a_pull_request_closed_on_the_forge_closes_its_change_and_rechecks_the_rest(
        settings: Settings, tmp_path: Path, engine: Engine, make_user: UserFactory,
        auth_headers: Headers, monkeypatch: pytest.MonkeyPatch) -> None:
    """GitHub reports a portal PR closed without merging (a signed delivery): the change is
    closed and its unit and names free — the request that lost the race for its namespace
    opens on retry. It stayed open in the portal, its unit reserved ('an open change already
    requests …')."""
    seed(settings, tmp_path, teams=("payments", "payments-web"))
    monkeypatch.setattr(service, "_refuse_taken_names", lambda *_a, **_k: None)  # the race
    configured = settings.model_copy(update={"github_webhook_secret": SecretStr("s3cret"),
                                             "github_repo": "acme/gitops"})
    make_user("alice", teams={"payments": Role.developer, "payments-web": Role.developer})
    alice = auth_headers("alice")
    bodies = RACING_BODIES
    with TestClient(create_app(configured, engine=engine)) as client:
        tasks = [client.post("/api/scaffolder/tasks", headers=alice, json=b).json()
                 for b in bodies]
        assert [t["status"] for t in tasks] == ["succeeded", "failed"], tasks
        first = client.get(f"/api/changes/{tasks[0]['change_id']}", headers=alice).json()
        forge = LocalForge(configured, engine)
        forge.close_change(first["number"], by="bob")  # closed on the forge's own site
        repo = {"full_name": "acme/gitops", "name": "gitops"}
        body = json.dumps({
            "action": "closed", "number": first["number"], "repository": repo,
            "sender": {"login": "bob"}, "pull_request": {
                "number": first["number"], "merged": False, "merge_commit_sha": None,
                "base": {"ref": "main", "sha": first["base_sha"], "repo": repo},
                "head": {"ref": forge.get_change(first["number"]).branch,
                         "sha": first["head_sha"], "repo": repo}},
        }).encode()
        got = client.post("/api/webhooks/github", content=body, headers={
            "content-type": "application/json", "x-github-event": "pull_request",
            "x-github-delivery": "d-closed-1", "x-hub-signature-256": sign("s3cret", body)})
        assert got.status_code in (200, 202), got.text
        assert client.get(f"/api/changes/{first['id']}",
                          headers=alice).json()["status"] == "closed"
        retried = client.post(f"/api/scaffolder/tasks/{tasks[1]['id']}/retry", headers=alice)
        assert retried.json()["status"] == "succeeded", retried.text
        shown = client.get(f"/api/changes/{retried.json()['change_id']}", headers=alice).json()
        assert _check(shown, "collisions")["state"] == "success", _check(shown, "collisions")
        monkeypatch.undo()  # no race now: the unit is free, its name the other change's
        again = client.post("/api/scaffolder/tasks", headers=alice, json=bodies[0])
        assert again.status_code == 409 and again.json()["error"]["rule"] == "name-taken", \
            again.text


WEB_TEAM = {"team": "web", "display_name": "Web", "cost_center": "cc-1", "owners": ["alice"],
            "members": ["bob"]}


def _team_and_changes(client: TestClient, make_user: UserFactory, auth_headers: Headers
                      ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Team ``web`` merged; then web's decommission requested and approved (the team has no
    open change yet: ``decommission`` refuses it otherwise), and open after it: a tenant of
    web and a tenant of payments."""
    make_user("root", admin=True)
    make_user("alice", teams={"web": Role.developer, "payments": Role.developer})
    make_user("bob", teams={"web": Role.developer, "payments": Role.developer})
    root, alice, bob = auth_headers("root"), auth_headers("alice"), auth_headers("bob")
    team = _open(client, alice, {"template": "team", "answers": WEB_TEAM})
    assert client.post(f"/api/changes/{team['id']}/approve", headers=root).status_code == 200
    assert client.post(f"/api/changes/{team['id']}/merge", headers=alice).status_code == 200
    task = client.post("/api/scaffolder/decommission", headers=alice, json={"unit": "teams/web"})
    assert task.status_code == 201 and task.json()["status"] == "succeeded", task.text
    removal = client.get(f"/api/changes/{task.json()['change_id']}", headers=alice).json()
    assert removal["checks_green"], removal["checks"]
    assert client.post(f"/api/changes/{removal['id']}/approve", headers=bob).status_code == 200
    web = _open(client, alice, {"template": "tenant", "answers": {
        **_tenant("api", "1")["answers"], "team": "web"}})
    payments = _open(client, alice, _tenant("shop", "1"))
    return web, payments, removal


def _red_on_team(client: TestClient, headers: dict[str, str], change: dict[str, Any],
                 forge: LocalForge) -> None:
    shown = client.get(f"/api/changes/{change['id']}", headers=headers).json()
    assert not shown["checks_green"]
    team = _check(shown, "team")
    assert team["state"] == "failure" and "team web no longer exists on main" in \
        team["summary"], team
    assert any("teams/web/" in d and "decommissioned" in d for d in team["details"]), team
    statuses = {c.name: c.state.value for c in forge.get_change(change["number"]).checks}
    assert statuses["caas/team"] == "failure"


def test_a_merged_team_decommission_turns_the_teams_open_changes_red(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """The team's tenant change, green until then, can never merge once teams/web/ is gone:
    it is re-checked with the decommission's merge and red on ``team``, naming web; the merge
    is refused naming it. Another team's change is not re-checked."""
    web, payments, removal = _team_and_changes(app_client, make_user, auth_headers)
    alice, bob = auth_headers("alice"), auth_headers("bob")
    merged = app_client.post(f"/api/changes/{removal['id']}/merge", headers=bob)
    assert merged.status_code == 200, merged.text
    assert gittree.list_paths(gitops, "main", "teams/web") == []
    app: Any = app_client.app
    forge = LocalForge(app.state.settings, app.state.engine)
    _red_on_team(app_client, alice, web, forge)
    assert app_client.post(f"/api/changes/{web['id']}/approve", headers=bob).status_code == 200
    refused = app_client.post(f"/api/changes/{web['id']}/merge", headers=bob)
    assert refused.status_code == 409, refused.text
    assert "team: team web no longer exists on main" in refused.json()["error"]["message"]
    assert gittree.list_paths(gitops, "main", "teams/web") == []
    # payments' change: untouched (not re-checked: no "team" check, the same updated_at).
    kept = app_client.get(f"/api/changes/{payments['id']}", headers=alice).json()
    assert kept["checks_green"] and kept["updated_at"] == payments["updated_at"]
    assert "team" not in {c["name"] for c in kept["checks"]}


def test_a_team_decommission_merged_on_the_forge_turns_the_teams_open_changes_red(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """The same when the forge reports the merge (GitHub's webhook, ``after_merge``)."""
    web, payments, removal = _team_and_changes(app_client, make_user, auth_headers)
    app: Any = app_client.app
    forge = LocalForge(app.state.settings, app.state.engine)
    event = forge.merge(removal["number"], by="bob")  # as if merged on the forge's own site
    with Session(app.state.engine) as session:
        rechecked = app.state.after_merge(session, forge, event)
    assert web["id"] in rechecked and payments["id"] not in rechecked
    _red_on_team(app_client, auth_headers("alice"), web, forge)
