"""Promotion (issue 16) on real git through the API: the PR changes exactly the target overlay;
gates are checks on it (source health from ArgoCD via kmock, the tier's approval rule, the
target's Gatekeeper policies with regopy); a platform-admin override is audited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from devtools.kubernetes import write_kubeconfig
from gitops import app_overlays, git, gittree, yaml
from gitops.git import seed_repository
from portal.app import create_app
from portal.auth.models import AuditEvent, Role
from portal.settings import Settings
from scaffolder.models import Change
from tests.conftest import UserFactory, make_settings, make_user_for
from tests.scaffolder.conftest import write_skeleton

Headers = Callable[[str], dict[str, str]]
TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1",
          "environments": ["dev", "staging", "prod"]}
APP = {"team": "payments", "name": "shop", "tenant": "web", "environment": "dev",
       "repo_url": "https://charts.example.com", "revision": "1.2.3", "chart": "shop",
       "helm_parameters": [{"name": "image.repository", "value": "ghcr.io/example-org/shop"},
                           {"name": "image.tag", "value": "1.2.3"}]}
OVERLAY = "applications/payments/shop/envs/{}/application.yaml"


def _seed(settings: Settings, tmp_path: Path) -> Path:
    root = write_skeleton(tmp_path / "skeleton")
    dev = (root / "envs" / "dev" / "infra.yaml").read_text()
    (root / "envs" / "staging").mkdir()
    (root / "envs" / "staging" / "infra.yaml").write_text(
        dev.replace("name: dev", "name: staging").replace("tier: dev", "tier: staging"))
    seed_repository(settings.resolved_gitops_repo, root)
    return settings.resolved_gitops_repo


def _people(make_user: UserFactory) -> None:
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments": Role.reviewer})
    make_user("eve", teams={"search": Role.developer})
    make_user("root", admin=True)


def _merged(client: TestClient, response: Any, approver: dict[str, str]) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["status"] == "succeeded", task
    cid = task["change_id"]
    assert client.post(f"/api/changes/{cid}/approve", headers=approver).status_code == 200
    merged = client.post(f"/api/changes/{cid}/merge", headers=approver)
    assert merged.status_code == 200, merged.text
    return dict(merged.json())


def _setup(client: TestClient, headers: Headers, app: dict[str, Any] = APP) -> None:
    alice, root = headers("alice"), headers("root")
    _merged(client, client.post("/api/scaffolder/tasks", headers=alice,
                                json={"template": "tenant", "answers": TENANT}), root)
    _merged(client, client.post("/api/scaffolder/tasks", headers=alice,
                                json={"template": "application", "answers": app}), root)


def _promote(client: TestClient, who: dict[str, str], source: str, target: str,
             app: str = "shop") -> Any:
    return client.post(f"/api/applications/payments/{app}/promotions", headers=who,
                       json={"from": source, "to": target})


def _checks(change: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in change["checks"]}


def test_dev_to_staging_changes_exactly_the_target_overlay(
        settings: Settings, engine: Engine, tmp_path: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    gitops = _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
        base = gittree.resolve(gitops, "main")
        got = _promote(client, auth_headers("alice"), "dev", "staging")
        assert got.status_code == 201, got.text
        task = got.json()
        assert task["status"] == "succeeded", task
        change = client.get(f"/api/changes/{task['change_id']}",
                            headers=auth_headers("alice")).json()
        # Exactly the target overlay, in the PR and in the change set; main is untouched.
        target = OVERLAY.format("staging")
        assert [f["path"] for f in change["files"]] == [target]
        assert gittree.changed_paths(gitops, base, change["head_sha"]) == [target]
        assert gittree.resolve(gitops, "main") == base
        assert change["action"] == "promote" and change["tier"] == "staging"
        source = yaml.load(gittree.read_blob(gitops, "main", OVERLAY.format("dev")) or b"")
        promoted = yaml.load(gittree.read_blob(gitops, change["head_sha"], target) or b"")
        assert promoted["spec"]["source"] == source["spec"]["source"]
        assert promoted["spec"]["destination"] == {"name": "staging",
                                                   "namespace": "payments-web"}
        assert promoted["metadata"]["name"] == "app.payments.shop.staging"
        assert promoted["metadata"]["labels"]["caas.io/environment"] == "staging"
        checks = _checks(change)
        assert checks["source-health"]["state"] == "pending"
        assert checks["source-health"]["summary"].startswith("unknown: no cluster connected")
        assert checks["approval"]["state"] == "pending"
        assert "reviewer of team `payments`" in checks["approval"]["summary"]
        assert checks["target-policies"]["state"] == "success", checks["target-policies"]
        assert checks["manifests"]["state"] == "success"
        # Without a cluster the gate blocks the merge even once approved.
        cid = change["id"]
        approved = client.post(f"/api/changes/{cid}/approve", headers=auth_headers("bob"))
        assert approved.status_code == 200
        assert _checks(approved.json())["approval"]["state"] == "success"
        assert "approved by bob" in _checks(approved.json())["approval"]["summary"]
        refused = client.post(f"/api/changes/{cid}/merge", headers=auth_headers("bob"))
        assert refused.status_code == 409 and "source-health" in refused.text
        # A platform-admin overrides with a reason: audited, then the merge goes through.
        reason = "smoke-tested by hand on dev, cluster link down"
        over = client.post(f"/api/promotions/{cid}/override", headers=auth_headers("root"),
                           json={"gate": "source-health", "reason": reason})
        assert over.status_code == 200, over.text
        assert _checks(over.json())["source-health"]["state"] == "success"
        merged = client.post(f"/api/changes/{cid}/merge", headers=auth_headers("bob"))
        assert merged.status_code == 200, merged.text
        assert gittree.read_blob(gitops, "main", target) == gittree.read_blob(
            gitops, change["head_sha"], target)
        matrix = client.get("/api/applications/payments/shop/promotions",
                            headers=auth_headers("eve")).json()
        rows = {r["environment"]: r for r in matrix["rows"]}
        assert list(rows) == ["dev", "staging"]
        assert rows["staging"]["revision"] == "1.2.3"
        assert rows["staging"]["change_id"] == cid and rows["staging"]["since"]
        assert rows["staging"]["change_action"] == "promote"
        assert rows["dev"]["change_action"] == "create"
        assert rows["staging"]["images"] == ["ghcr.io/example-org/shop:1.2.3"]
        assert rows["staging"]["sync_policy"] == "automated (prune, self-heal)"
    with Session(engine) as s:
        events = s.exec(select(AuditEvent).where(
            AuditEvent.action == "scaffolder.promote.override")).all()
        assert [(e.actor, e.outcome, e.detail["reason"]) for e in events] == [
            ("root", "success", reason)]
        # Nothing to promote once staging runs what dev runs.
    with TestClient(create_app(settings, engine=engine)) as client:
        again = _promote(client, auth_headers("alice"), "dev", "staging")
        assert again.status_code == 409 and again.json()["error"]["rule"] == "no-change"


def test_refusals_write_nothing_and_authz(settings: Settings, engine: Engine, tmp_path: Path,
                                          make_user: UserFactory, auth_headers: Headers) -> None:
    gitops = _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
        refs = git.out(gitops, "for-each-ref", "--format=%(refname)")
        with Session(engine) as s:
            before = len(s.exec(select(Change)).all())
        alice, eve, root = auth_headers("alice"), auth_headers("eve"), auth_headers("root")
        assert client.post("/api/applications/payments/shop/promotions",
                           json={"from": "dev", "to": "staging"}).status_code == 401
        denied = _promote(client, eve, "dev", "staging")
        assert denied.status_code == 403
        for body, field in (({"from": "dev", "to": "dev"}, "to"),
                            ({"from": "dev", "to": "qa"}, "to"),
                            ({"from": "staging", "to": "prod"}, "from")):
            bad = client.post("/api/applications/payments/shop/promotions", headers=alice,
                              json=body)
            assert bad.status_code == 422, (body, bad.text)
            assert bad.json()["error"]["field"] == field, bad.text
        schema = client.post("/api/applications/payments/shop/promotions", headers=alice,
                             json={"from": "Dev!", "to": "prod"})
        assert schema.status_code == 422
        assert _promote(client, alice, "dev", "staging", app="nope").status_code == 404
        # Only a platform-admin overrides; the denied attempt is audited too.
        opened = _promote(client, alice, "dev", "staging").json()
        cid = opened["change_id"]
        for who in (alice, auth_headers("bob")):
            assert client.post(f"/api/promotions/{cid}/override", headers=who, json={
                "gate": "source-health", "reason": "trust me, it works"}).status_code == 403
        assert client.post(f"/api/promotions/{cid}/override", headers=root, json={
            "gate": "approval", "reason": "no approval needed"}).status_code == 422
        assert client.post(f"/api/promotions/{cid}/override", headers=root, json={
            "gate": "source-health", "reason": "short"}).status_code == 422
        # One open change per application: a second promotion waits for the first.
        assert _promote(client, alice, "dev", "prod").status_code == 409
    with Session(engine) as s:
        assert len(s.exec(select(Change)).all()) == before + 1
        denied_events = s.exec(select(AuditEvent).where(
            AuditEvent.outcome == "denied",
            AuditEvent.action.startswith("scaffolder.promote"))).all()  # type: ignore[attr-defined]
        assert {e.actor for e in denied_events} >= {"eve", "alice", "bob"}
    refs_after = set(git.out(gitops, "for-each-ref", "--format=%(refname)").split())
    assert len(refs_after - set(refs.split())) == 1  # the one promotion that opened


def _application(name: str, *, sync: str, health: str, since: datetime) -> dict[str, Any]:
    stamp = since.isoformat().replace("+00:00", "Z")
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "status": {"sync": {"status": sync, "revision": "1.2.3"},
                       "health": {"status": health, "lastTransitionTime": stamp},
                       "operationState": {"finishedAt": stamp}}}


async def test_prod_promotion_gates_with_argocd_status(
        kmock: kmock.KubernetesEmulator, tmp_path: Path, database_url: str) -> None:
    """Into prod: refused while the source is Degraded (kmock serving the Application), with
    a `:latest` image (the image-tag constraint), and without a platform-admin's approval."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", str(kmock.url))
    settings = make_settings(tmp_path, database_url, kubeconfig=kubeconfig,
                             promotion_soak_minutes="dev=0,staging=0,prod=30")
    apps = "argoproj.io/v1alpha1/applications"
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    kmock.objects[apps, "argocd", "app.payments.shop.dev"] = _application(
        "app.payments.shop.dev", sync="Synced", health="Degraded", since=long_ago)
    kmock.objects[apps, "argocd", "app.payments.latest.dev"] = _application(
        "app.payments.latest.dev", sync="Synced", health="Healthy", since=long_ago)

    def scenario() -> None:
        from portal import db

        engine = db.make_engine(settings)
        _seed(settings, tmp_path)
        _people(make_user_for(engine))
        with TestClient(create_app(settings, engine=engine)) as client:
            headers = lambda user: _bearer(engine, user)  # noqa: E731
            _setup(client, headers)
            latest = {**APP, "name": "latest", "helm_parameters": [
                {"name": "image.repository", "value": "ghcr.io/example-org/shop"},
                {"name": "image.tag", "value": "latest"}]}
            _merged(client, client.post("/api/scaffolder/tasks", headers=headers("alice"),
                                        json={"template": "application", "answers": latest}),
                    headers("root"))
            alice, bob, root = headers("alice"), headers("bob"), headers("root")

            degraded = _promote(client, alice, "dev", "prod").json()
            cid = degraded["change_id"]
            checks = _checks(client.get(f"/api/changes/{cid}", headers=alice).json())
            assert checks["source-health"]["state"] == "failure"
            assert "Degraded" in checks["source-health"]["summary"]
            assert checks["target-policies"]["state"] == "success"
            assert "platform-admin" in checks["approval"]["summary"]
            # A team reviewer cannot approve prod; a merge without it is refused.
            assert client.post(f"/api/changes/{cid}/approve", headers=bob).status_code == 403
            refused = client.post(f"/api/changes/{cid}/merge", headers=alice)
            assert refused.status_code == 409
            assert "approval" in refused.text and "source-health" in refused.text
            # Approved by a platform-admin: still refused while the source is Degraded.
            assert client.post(f"/api/changes/{cid}/approve", headers=root).status_code == 200
            still = client.post(f"/api/changes/{cid}/merge", headers=root)
            assert still.status_code == 409 and "Degraded" in still.text
            # The source recovers, but only just: prod's 30 minutes of soak are not over.
            kmock.objects[apps, "argocd", "app.payments.shop.dev"] = _application(
                "app.payments.shop.dev", sync="Synced", health="Healthy",
                since=datetime.now(UTC) - timedelta(minutes=5))
            soon = client.post(f"/api/promotions/{cid}/gates", headers=alice).json()
            assert _checks(soon)["source-health"]["state"] == "failure"
            assert "needs 0:30:00" in _checks(soon)["source-health"]["summary"]
            kmock.objects[apps, "argocd", "app.payments.shop.dev"] = _application(
                "app.payments.shop.dev", sync="Synced", health="Healthy", since=long_ago)
            merged = client.post(f"/api/changes/{cid}/merge", headers=root)
            assert merged.status_code == 200, merged.text

            tagged = _promote(client, alice, "dev", "prod", app="latest").json()
            lid = tagged["change_id"]
            checks = _checks(client.get(f"/api/changes/{lid}", headers=alice).json())
            assert checks["source-health"]["state"] == "success", checks["source-health"]
            assert checks["target-policies"]["state"] == "failure"
            assert ":latest" in " ".join(checks["target-policies"]["details"])
            assert client.post(f"/api/changes/{lid}/approve", headers=root).status_code == 200
            refused = client.post(f"/api/changes/{lid}/merge", headers=root)
            assert refused.status_code == 409 and "target-policies" in refused.text
            assert gittree.read_blob(settings.resolved_gitops_repo, "main",
                                     OVERLAY.format("prod").replace("shop", "latest")) is None
        engine.dispose()

    await asyncio.to_thread(scenario)


def _bearer(engine: Engine, username: str) -> dict[str, str]:
    from tests.conftest import bearer

    return bearer(engine, username)


def test_overlay_paths_round_trip() -> None:
    path = app_overlays.overlay_path("pay", "web", "prod-eu")
    assert app_overlays.parse_overlay_path(path) == ("pay", "web", "prod-eu")
    assert app_overlays.parse_overlay_path("applications/pay/web/application.yaml") is None


def test_cli_promote_as_a_user(settings: Settings, engine: Engine, tmp_path: Path,
                               make_user: UserFactory, auth_headers: Headers) -> None:
    from tests.scaffolder.test_cli import caas

    gitops = _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
    refs = git.out(gitops, "for-each-ref", "--format=%(refname)")
    denied = caas(settings, "promote", "payments/shop", "--from", "dev", "--to", "staging",
                  "--user", "eve")
    assert denied.returncode != 0 and "payments" in denied.stdout + denied.stderr
    assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs
    done = caas(settings, "promote", "payments/shop", "--from", "dev", "--to", "staging",
                "--user", "alice")
    assert done.returncode == 0, done.stderr
    assert "change #" in done.stdout
    branch = gittree.resolve(gitops, "caas/promote-payments-shop-dev-to-staging")
    assert branch is not None
    assert gittree.changed_paths(gitops, gittree.resolve(gitops, "main") or "", branch) == [
        OVERLAY.format("staging")]


def _old_application_template(root: Path) -> Path:
    """The application template as it was before per-environment folders: one
    ``application.yaml`` at the unit's root, named ``app.<team>.<name>``."""
    import shutil

    from portal.settings import REPO_ROOT

    folder = root / "application"
    shutil.copytree(REPO_ROOT / "templates" / "application", folder)
    project = folder / "{{cookiecutter.name}}"
    overlay = project / "envs" / "{{cookiecutter.environment}}" / "application.yaml"
    text = overlay.read_text()
    suffix = ".{{ cookiecutter.environment }}\n"
    assert suffix in text
    (project / "application.yaml").write_text(text.replace(suffix, "\n", 1))
    shutil.rmtree(project / "envs")
    return folder


def test_a_unit_of_the_older_layout_indexes_and_an_upgrade_moves_it(
        settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    """The choice for units rendered before per-environment folders: they keep indexing and
    deploying (appsets/applications-legacy.yaml) and a template upgrade PR moves them."""
    from catalog.parse import parse_entity
    from gitops.forges.factory import make_forge
    from scaffolder.changeset import parameter_context
    from scaffolder.models import UpgradeRequest
    from scaffolder.parameters import validate_answers
    from scaffolder.registry import Registry, load_template
    from scaffolder.render import render
    from scaffolder.upgrade_service import run_upgrades
    from tests.scaffolder.test_upgrade import admin, commit_on_main

    root = admin(engine, make_user)
    registry, forge = Registry(settings), make_forge(settings, engine)
    folder = _old_application_template(tmp_path / "old")
    old = load_template(folder, trusted=True)
    registry.store.remember("application", folder, old.version)
    answers = validate_answers(old.parameters, {**APP, "tenant": "web"},
                               context=parameter_context(forge, root, registry))
    unit = "applications/payments/shop"
    files = render(old, answers, target=unit)
    assert f"{unit}/application.yaml" in files
    commit_on_main(gitops, files, "application (old template)")
    parsed = parse_entity("application:payments/shop", files)
    assert parsed is not None and parsed.problems == []
    assert parsed.spec["layout"] == "single" and list(parsed.spec["environments"]) == ["dev"]
    assert ("deployedTo", "environment:dev") in parsed.relations
    with Session(engine) as session:
        [outcome] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                 request=UpgradeRequest(template="application"))
    assert outcome.state == "opened", outcome
    info = forge.get_change(outcome.number or 0)
    changed = set(forge.changed_paths(forge.head(), info.head_sha))
    assert {f"{unit}/application.yaml", OVERLAY.format("dev")} <= changed
    assert forge.read_file(f"{unit}/application.yaml", info.head_sha) is None
    moved = yaml.load(forge.read_file(OVERLAY.format("dev"), info.head_sha) or b"")
    assert moved["metadata"]["name"] == "app.payments.shop.dev"
    assert moved["spec"]["source"]["targetRevision"] == "1.2.3"


def test_promotion_into_an_uninstalled_environment_is_refused_and_writes_nothing(
        settings: Settings, engine: Engine, tmp_path: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    """``installed: false`` destroys the environment's cluster: a promotion into it would
    open a PR for an Application with nowhere to run."""
    from gitops.forges.base import FileChange

    gitops = _seed(settings, tmp_path)
    _people(make_user)
    with TestClient(create_app(settings, engine=engine)) as client:
        _setup(client, auth_headers)
        head = gittree.resolve(gitops, "main")
        infra = (gittree.read_blob(gitops, head, "envs/staging/infra.yaml") or b"").replace(
            b"installed: true", b"installed: false")
        moved = gittree.commit_files(gitops, parent=head, message="uninstall staging",
                                     files=[FileChange("envs/staging/infra.yaml", infra)],
                                     author="root")
        assert gittree.update_ref(gitops, "main", moved, head)
        refs = git.out(gitops, "for-each-ref", "--format=%(refname)")
        with Session(engine) as s:
            before = len(s.exec(select(Change)).all())
        refused = _promote(client, auth_headers("alice"), "dev", "staging")
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert (error["field"], error["rule"]) == ("to", "environment-installed")
        assert "installed: false" in error["message"]
    assert git.out(gitops, "for-each-ref", "--format=%(refname)") == refs
    with Session(engine) as s:
        assert len(s.exec(select(Change)).all()) == before
