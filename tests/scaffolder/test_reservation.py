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

from gitops.forges.local import LocalForge
from portal.auth import service as auth_service
from portal.auth.models import Role
from portal.auth.principal import Principal
from portal.errors import Conflict, Unavailable
from portal.settings import Settings
from scaffolder import service, tasks
from scaffolder.models import Change, ScaffoldRequest
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
        settings: Settings, engine: Engine, make_user: UserFactory, tmp_path: Path) -> None:
    """``caas/tenant-<team>-<name>`` is the same branch for payments/x-web and payments-x/web:
    the second request used to be handed the first one's open PR (so team payments-x's
    reviewer could approve and merge team payments' change). Each change gets its own PR,
    which holds only its own unit."""
    from tests.scaffolder.conftest import seed

    seed(settings, tmp_path, teams=("payments", "payments-x"))
    make_user("alice", teams={"payments": Role.developer})
    make_user("bob", teams={"payments-x": Role.developer})
    forge, registry = LocalForge(settings, engine), Registry(settings)
    numbers: list[int] = []
    for user, team, name in (("alice", "payments", "x-web"), ("bob", "payments-x", "web")):
        request = ScaffoldRequest(template="tenant", answers={
            "team": team, "name": name, "cost_center": "cc", "environments": ["dev"]})
        with Session(engine, expire_on_commit=False) as s:
            done = service.create_task(s, registry=registry, forge=forge,
                                       principal=_principal(engine, user), request=request)
        assert done.status == "succeeded", done.error
        assert done.change_number is not None
        numbers.append(done.change_number)
        pr = forge.get_change(done.change_number)
        paths = forge.changed_paths(pr.base_sha, pr.head_sha)
        assert any(p.startswith(f"tenants/{team}/") for p in paths), paths
        assert pr.author == user
    assert numbers[0] != numbers[1]
