"""A task that fails at ANY step after reserving its unit releases the reservation (both
databases): the name is free at once for a new request, and the author's retry takes it back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from gitops import git
from gitops.forges.local import LocalForge
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.errors import Conflict, Unavailable
from portal.settings import Settings
from scaffolder import service, tasks
from scaffolder.models import Change, ScaffoldRequest, Task
from scaffolder.registry import Registry
from tests.conftest import UserFactory

REQUEST = ScaffoldRequest(template="tenant", answers={
    "team": "payments", "name": "web", "cost_center": "cc", "environments": ["dev"]})


def _boom(*_args: Any, **_kwargs: Any) -> Any:
    raise Unavailable("injected failure")


def _fail_last_step(real: Callable[..., None]) -> Callable[..., None]:
    def log_step(session: Session, task: Any, step: str, status: str, *args: Any,
                 **kwargs: Any) -> None:
        if step == "done" and status == "done":
            raise RuntimeError("injected failure")
        real(session, task, step, status, *args, **kwargs)

    return log_step


# (step the task fails at, how the failure is injected)
STEPS: list[tuple[str, Callable[[pytest.MonkeyPatch, LocalForge], None]]] = [
    ("request", lambda mp, _f: mp.setattr(service.audit, "record", _boom)),
    ("checks", lambda mp, _f: mp.setattr(service, "immediate_checks", _boom)),
    ("pull-request", lambda _mp, f: setattr(f, "open_change", _boom)),
    ("statuses", lambda _mp, f: setattr(f, "set_checks", _boom)),
    ("statuses", lambda _mp, f: setattr(f, "comment", _boom)),
    ("catalog", lambda mp, _f: mp.setattr(service.catalog_service, "record_timeline", _boom)),
    ("plan-preview", lambda mp, _f: mp.setattr(service.reconciler_service,
                                               "request_plan_preview", _boom)),
    ("done", lambda mp, _f: mp.setattr(service.tasks, "log_step",
                                       _fail_last_step(tasks.log_step))),
]


def _principal(engine: Engine, username: str) -> Principal:
    with Session(engine) as s:
        return auth_service.principal_for(s, auth_service.get_user(s, username=username),
                                          via="token")


def _holders(engine: Engine) -> list[tuple[str, str | None]]:
    with Session(engine) as s:
        return [(c.status, c.open_unit_key) for c in
                s.exec(select(Change).order_by(col(Change.id))).all()]


@pytest.fixture
def alice(make_user: UserFactory, engine: Engine, gitops: Path) -> Principal:
    make_user("alice", teams={"payments": Role.developer})
    return _principal(engine, "alice")


@pytest.mark.checks_after_pr  # the request's own steps; the deferred checks are a job's
@pytest.mark.parametrize(("step", "inject"), STEPS,
                         ids=[f"{s}-{i}" for i, (s, _) in enumerate(STEPS)])
def test_failure_at_any_step_releases_the_reservation(
        step: str, inject: Callable[[pytest.MonkeyPatch, LocalForge], None],
        settings: Settings, engine: Engine, alice: Principal,
        monkeypatch: pytest.MonkeyPatch) -> None:
    forge, registry = LocalForge(settings, engine), Registry(settings)
    if step == "plan-preview":  # only requests that touch envs/ queue a plan preview
        real = service.prepare
        monkeypatch.setattr(service, "prepare", lambda *a, **k: dataclasses.replace(
            real(*a, **k), touches_envs=True))
    with monkeypatch.context() as mp:
        inject(mp, forge)
        with Session(engine, expire_on_commit=False) as s:
            failed = service.create_task(s, registry=registry, forge=forge, principal=alice,
                                         request=REQUEST)
    assert failed.status == "failed" and "injected failure" in failed.error
    assert (failed.events[-1].step, failed.events[-1].status) == (step, "failed")
    assert "reservation" in failed.events[-1].message
    assert _holders(engine) == [("failed", None)]
    # The name is not blocked: the author's retry takes the reservation back and finishes.
    forge = LocalForge(settings, engine)
    with Session(engine, expire_on_commit=False) as s:
        retried = service.retry_task(s, registry=registry, forge=forge, principal=alice,
                                     task_id=failed.id)
    assert retried.status == "succeeded", retried.error
    [(status, holder)] = _holders(engine)
    assert status == "open" and holder is not None


def test_released_name_goes_to_the_next_request_and_the_old_retry_gets_409(
        settings: Settings, engine: Engine, alice: Principal,
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(settings)
    broken = LocalForge(settings, engine)
    broken.open_change = _boom  # type: ignore[method-assign]
    with Session(engine, expire_on_commit=False) as s:
        failed = service.create_task(s, registry=registry, forge=broken, principal=alice,
                                     request=REQUEST)
    assert failed.status == "failed"
    forge = LocalForge(settings, engine)
    with Session(engine, expire_on_commit=False) as s:
        again = service.create_task(s, registry=registry, forge=forge, principal=alice,
                                    request=REQUEST)
    assert again.status == "succeeded", again.error
    with Session(engine, expire_on_commit=False) as s, pytest.raises(Conflict) as err:
        service.retry_task(s, registry=registry, forge=forge, principal=alice,
                           task_id=failed.id)
    assert err.value.rule == "unit-open"
    assert [status for status, _ in _holders(engine)] == ["failed", "open"]


def test_units_whose_branch_names_collide_get_their_own_pull_requests(
        settings: Settings, engine: Engine, make_user: UserFactory, tmp_path: Path,
        auth_headers: Callable[[str], dict[str, str]]) -> None:
    """``caas/application-<team>-<name>`` is the same branch for payments/x-shop and
    payments-x/shop: the second request used to be handed the first one's open PR (so team
    payments-x's reviewer could approve and merge team payments' change). Each change gets its
    own PR, which holds only its own unit. (Tenants cannot meet this way any more: their
    namespaces, ``<team>-<name>``, would be the same, and the second is refused as taken.)"""
    from fastapi.testclient import TestClient

    from portal.app import create_app
    from tests.scaffolder.conftest import seed

    seed(settings, tmp_path, teams=("payments", "payments-x"))
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments-x": Role.developer})
    make_user("root", admin=True)
    forge = LocalForge(settings, engine)
    numbers: list[int] = []
    with TestClient(create_app(settings, engine=engine)) as client:
        for user, team in (("alice", "payments"), ("bob", "payments-x")):
            opened = client.post("/api/scaffolder/tasks", headers=auth_headers(user), json={
                "template": "tenant", "answers": {"team": team, "name": "web",
                                                  "cost_center": "cc", "cpu_quota": "1",
                                                  "memory_quota": "1Gi",
                                                  "environments": ["dev"]}}).json()
            assert opened["status"] == "succeeded", opened
            cid = opened["change_id"]
            for step in ("approve", "merge"):
                done = client.post(f"/api/changes/{cid}/{step}", headers=auth_headers("root"))
                assert done.status_code == 200, done.text
        for user, team, name in (("alice", "payments", "x-shop"), ("bob", "payments-x", "shop")):
            done = client.post("/api/scaffolder/tasks", headers=auth_headers(user), json={
                "template": "application", "answers": {
                    "team": team, "name": name, "tenant": "web", "environment": "dev",
                    "repo_url": "https://charts.example.com", "revision": "1.2.3",
                    "chart": "shop"}}).json()
            assert done["status"] == "succeeded", done
            assert done["change_number"] is not None
            numbers.append(done["change_number"])
            pr = forge.get_change(done["change_number"])
            paths = forge.changed_paths(pr.base_sha, pr.head_sha)
            assert any(p.startswith(f"applications/{team}/") for p in paths), paths
            assert pr.author == user
    assert numbers[0] != numbers[1]


@pytest.mark.parametrize("db_backend", ["sqlite", "postgres"], indirect=True)
def test_a_name_another_unit_generates_is_refused_before_anything_is_written(
        settings: Settings, engine: Engine, make_user: UserFactory, tmp_path: Path) -> None:
    """A tenant's Namespace is ``<team>-<name>``: team ``payments``' tenant ``x-web`` and team
    ``payments-x``' tenant ``web`` are both ``payments-x-web``. The second is refused with 409
    ``name-taken`` naming both units, and nothing is written: no change, task or branch."""
    from tests.scaffolder.conftest import seed

    seed(settings, tmp_path, teams=("payments", "payments-x"))
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments-x": Role.developer})
    forge, registry = LocalForge(settings, engine), Registry(settings)
    first = ScaffoldRequest(template="tenant", answers={
        "team": "payments", "name": "x-web", "cost_center": "cc", "environments": ["dev"]})
    with Session(engine, expire_on_commit=False) as s:
        opened = service.create_task(s, registry=registry, forge=forge,
                                     principal=_principal(engine, "alice"), request=first)
    assert opened.status == "succeeded", opened.error
    repo = settings.resolved_gitops_repo
    branches = git.out(repo, "for-each-ref", "--format=%(refname)", "refs/heads/").split()
    clash = ScaffoldRequest(template="tenant", answers={
        "team": "payments-x", "name": "web", "cost_center": "cc", "environments": ["dev"]})
    with Session(engine, expire_on_commit=False) as s, pytest.raises(Conflict) as err:
        service.create_task(s, registry=registry, forge=forge,
                            principal=_principal(engine, "bob"), request=clash)
    assert (err.value.field, err.value.rule) == ("answers", "name-taken")
    assert ("Namespace payments-x-web of tenants/payments-x/payments-x-web is already "
            "generated by tenants/payments/payments-x-web (in an open change)"
            ) in err.value.message
    with Session(engine) as s:
        assert [c.unit_key for c in s.exec(select(Change)).all()] == [
            "tenants/payments/payments-x-web"]
        assert len(s.exec(select(Task)).all()) == 1
    assert git.out(repo, "for-each-ref", "--format=%(refname)", "refs/heads/").split() \
        == branches


@pytest.mark.parametrize("db_backend", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("first_to_run", ["earlier", "later"])
def test_two_requests_racing_for_one_name_end_with_exactly_one_winner(
        first_to_run: str, settings: Settings, engine: Engine, make_user: UserFactory,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both requests pass the request's name check at the same moment (neither change was
    reserved yet) and each reserves its own unit. Whichever runs first, the earlier
    reservation opens its PR with ``collisions`` green and the later one fails ``name-taken``
    with its reservation released — not two PRs each red on the other."""
    from tests.scaffolder.conftest import seed

    seed(settings, tmp_path, teams=("payments", "payments-x"))
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments-x": Role.developer})
    forge, registry = LocalForge(settings, engine), Registry(settings)
    monkeypatch.setattr(service, "_refuse_taken_names", lambda *_a, **_k: None)  # the race
    reservations = []
    for user, team, name in (("alice", "payments", "x-web"), ("bob", "payments-x", "web")):
        request = ScaffoldRequest(template="tenant", answers={
            "team": team, "name": name, "cost_center": "cc", "environments": ["dev"]})
        session = Session(engine, expire_on_commit=False)
        reservations.append((session, service.reserve_task(
            session, registry=registry, forge=forge, principal=_principal(engine, user),
            request=request)))
    order = reservations if first_to_run == "earlier" else reservations[::-1]
    done = {}
    for session, reservation in order:
        with session:
            done[reservation.task_id] = service.run_task(session, reservation=reservation,
                                                         forge=forge)
    earlier, later = (done[r.task_id] for _s, r in reservations)
    assert earlier.status == "succeeded", earlier.error
    assert later.status == "failed" and "is already generated by tenants/payments/" \
        "payments-x-web (in an open change)" in later.error
    with Session(engine) as s:
        rows = s.exec(select(Change).order_by(col(Change.id))).all()
        assert [(c.status, c.open_unit_key is not None) for c in rows] == [
            ("open", True), ("failed", False)]
        collisions = next(c for c in rows[0].checks if c["name"] == "collisions")
        assert collisions["state"] == "success"
