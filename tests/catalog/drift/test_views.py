"""The drift API: read with filters (bad ones are a 422 naming the field), run (admins), and
the fixes: a re-render PR on real git that restores the hand edit, a reindex that removes the
row left behind; each audited; who may do what."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git
from portal.auth.models import AuditEvent, Role
from tests.catalog.drift.conftest import QUOTA, Main, reindex, wait_run
from tests.conftest import UserFactory

Headers = Callable[[str], dict[str, str]]
SQLITE_ONLY = pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)


@pytest.fixture
def drifted(engine: Engine, main: Main) -> Main:
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "6"'))
    main.commit("hand edit")
    reindex(engine, main)
    main.write("teams/search", None)
    main.commit("search removed by hand")
    return main


def test_read_run_and_fix(app_client: TestClient, drifted: Main, make_user: UserFactory,
                          auth_headers: Headers, engine: Engine) -> None:
    make_user("admin", admin=True)
    make_user("dev", teams={"platform": Role.developer})
    admin, dev = auth_headers("admin"), auth_headers("dev")
    assert app_client.get("/api/drift").status_code == 401
    assert app_client.post("/api/drift/run", headers=dev, json={}).status_code == 403
    run = app_client.post("/api/drift/run", headers=admin, json={"sides": ["git", "catalog"]})
    assert run.status_code == 202, run.text
    assert run.json()["state"] == "running" and run.json()["requested_by"] == "admin"
    assert run.headers["location"] == f"/api/drift/runs/{run.json()['id']}"
    ended = wait_run(app_client, dev, run.json()["id"])
    assert ended["state"] == "succeeded", ended
    assert ended["findings"] == 2 and ended["sides"] == ["git", "catalog"]
    assert app_client.get("/api/drift/runs/999999", headers=dev).status_code == 404
    assert app_client.get(f"/api/drift/runs/{ended['id']}").status_code == 401
    reported = app_client.get("/api/drift", headers=dev).json()
    assert reported["run"]["id"] == ended["id"]
    findings = {f["side"]: f for f in reported["findings"]}
    assert set(findings) == {"git", "catalog"}
    gauge = app_client.get("/metrics").text
    assert 'caas_drift_findings{kind="namespace",side="git"} 1.0' in gauge
    assert 'caas_drift_findings{kind="team",side="catalog"} 1.0' in gauge
    assert 'caas_drift_findings{kind="team",side="keycloak"} 0.0' in gauge

    listed = app_client.get("/api/drift", headers=dev, params={"side": "git"}).json()
    assert [f["entity"] for f in listed["findings"]] == ["namespace:platform/platform-tools"]
    for params, field in (({"side": "disk"}, "side"), ({"kind": "pod"}, "kind"),
                          ({"team": "Bad_Team"}, "team"), ({"entity": "nope"}, "entity")):
        bad = app_client.get("/api/drift", headers=dev, params=params)
        assert bad.status_code == 422, (params, bad.text)
        assert field in bad.text

    # A developer may not reindex (a reviewer of the team or an admin re-runs the reconciler).
    left = findings["catalog"]["id"]
    assert app_client.post(f"/api/drift/findings/{left}/fix", headers=dev).status_code == 403
    fixed = app_client.post(f"/api/drift/findings/{left}/fix", headers=admin)
    assert fixed.status_code == 200, fixed.text
    assert "1 removed" in fixed.json()["message"]
    assert all(f["side"] != "catalog"
               for f in app_client.get("/api/drift", headers=dev).json()["findings"])
    assert 'caas_drift_findings{kind="team",side="catalog"} 0.0' in app_client.get(
        "/metrics").text
    # gone from main: kept as decommissioned (issue 15), hidden from the lists
    gone = app_client.get("/api/catalog/teams/search", headers=dev)
    assert gone.status_code == 200 and gone.json()["status"] == "decommissioned"
    assert "team:search" not in {t["key"] for t in app_client.get(
        "/api/catalog/teams", headers=dev).json()["items"]}

    # The re-render PR restores the hand-edited file on a real branch.
    edit = findings["git"]["id"]
    pr = app_client.post(f"/api/drift/findings/{edit}/fix", headers=dev)
    assert pr.status_code == 200, pr.text
    change = app_client.get(f"/api/changes/{pr.json()['change_id']}", headers=dev).json()
    assert change["action"] == "update" and change["author"] == "dev"
    patch = git.out(drifted.git_dir, "diff", change["base_sha"], change["head_sha"])
    assert '-    requests.cpu: "6"' in patch and '+    requests.cpu: "2"' in patch
    assert git.out(drifted.git_dir, "diff", "--name-only", change["base_sha"],
                   change["head_sha"]).split() == [QUOTA]
    note = app_client.get("/api/drift", headers=dev, params={"side": "git"}).json()
    assert note["findings"][0]["fix_note"].startswith("re-render PR #")
    with Session(engine) as session:
        audited = session.exec(select(AuditEvent).where(AuditEvent.action == "drift.fix")).all()
    assert sorted(e.actor for e in audited) == ["admin", "dev"]

    assert app_client.post("/api/drift/findings/999999/fix", headers=admin).status_code == 404
