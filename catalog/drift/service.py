"""Drift, as the API, the pages, the CLI and the worker call it.

- ``run(session, settings=, forge=, registry=, sides=None, wait=True) -> DriftReport``: read
  main once, check each side (git, catalog always; cluster when a kubeconfig is set; Keycloak
  when configured), store the findings (``store``), return the stored report. Idempotent.
  Single-flight (``runs``): when a run is going it joins it instead (waits, or not).
- ``request_run(...) -> RunPublic``: "Check now" — the same run on a thread of this process,
  returned at once; ``get_run(session, id)``; ``execute(engine, run, …)``: one run's work.
- ``report(session, kind=, side=, team=, entity=) -> DriftReport``: what the last runs found.
- ``entity_badges(session, keys) -> {entity: {side: count}}``: for entity pages and lists.
- ``counts(session) -> {(kind, side): count}``: the Prometheus gauge's values.
- ``fix(session, ..., finding_id=) -> FixResult``: the fix a finding offers — a re-render PR
  (the scaffolder's update request), an ArgoCD sync, a Keycloak sync or a reindex of the
  entity — authorized, audited, noted on the finding.

Errors: ``ValidationFailed`` for a bad filter (naming it), ``NotFound`` for an unknown finding,
``Conflict`` for a finding without a fix, ``Forbidden`` when the principal may not apply it,
and the adapters' own errors (not configured, unreachable) as they are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.drift import catalog_side, cluster_side, git_side, identity_side, runs, store
from catalog.drift.models import (
    FIX_LABELS,
    DriftFinding,
    DriftReport,
    DriftRun,
    DriftSideState,
    FindingPublic,
    Fix,
    FixResult,
    RunPublic,
    Side,
    SidePublic,
    SideResult,
    State,
    UnitCache,
)
from catalog.drift.snapshot import Snapshot, read_main
from catalog.models import Kind
from gitops.forges.base import Forge
from gitops.layout import unit_dir
from gitops.names import is_dns_label
from portal.auth import audit, policy
from portal.auth.principal import Principal
from portal.db import aware, utcnow
from portal.errors import Conflict, NotFound, ValidationFailed
from portal.settings import Settings
from reconciler import service as reconciler_service
from scaffolder import service as scaffolder_service
from scaffolder.registry import Registry

log = logging.getLogger("caas.drift")

MAX_FINDINGS = 5000  # rows one report returns; the counts cover all


def _sides(sides: Iterable[str] | None) -> list[Side]:
    if sides is None:
        return list(Side)
    chosen = []
    for value in sides:
        if value not in Side.__members__.values():
            raise ValidationFailed(f"side {value!r} must be one of "
                                   f"{', '.join(s.value for s in Side)}", field="side",
                                   rule="enum")
        chosen.append(Side(value))
    return chosen


def _cluster(settings: Settings, snapshot: Snapshot) -> SideResult:
    if settings.kubeconfig is None:
        return SideResult(side=Side.cluster, status="not connected")
    from catalog.live import LiveStatus  # the kubernetes client, only with a kubeconfig

    return cluster_side.check(snapshot, live=LiveStatus.from_settings(settings))


@dataclass
class _Checked:
    """What one run found, before anything is written."""

    commit: str
    results: list[SideResult]
    cache: tuple[dict[str, UnitCache], dict[str, UnitCache]] | None  # (old, new) of the git side


def _check(session: Session, *, settings: Settings, forge: Forge, registry: Registry,
           chosen: Sequence[Side]) -> _Checked:
    """Every chosen side against the head of main; writes nothing."""
    snapshot = read_main(forge, ref=settings.main_branch)
    checked = _Checked(commit=snapshot.commit, results=[], cache=None)
    for side in chosen:
        if side == Side.git:
            cache = store.load_cache(session)
            result, new_cache = git_side.check(snapshot, registry=registry, cache=cache)
            checked.cache = (cache, new_cache)
        elif side == Side.catalog:
            result = catalog_side.check(session, snapshot)
        elif side == Side.cluster:
            result = _cluster(settings, snapshot)
        else:
            teams = sum(1 for k in snapshot.units if k.startswith("team:"))
            result = identity_side.check(settings, forge, teams=teams)
        checked.results.append(result)
    session.rollback()  # end the read transaction before the long write wait, if any
    return checked


def execute(engine: Engine, run: DriftRun, *, settings: Settings, forge: Forge,
            registry: Registry) -> DriftRun:
    """Run ``run`` (holding the lease: ``runs.start``): check its sides, then write every
    side's findings and the git side's cache in one transaction fenced by the lease, so a
    reader sees the previous run's findings or this one's, never half of each. Records how it
    ended (a failure's message on the run) and frees the lease; returns the ended run."""
    assert run.id is not None
    lease_s = settings.drift_lease_s
    try:
        with runs.Heartbeat(engine, run, lease_s) as beat, Session(engine) as session:
            checked = _check(session, settings=settings, forge=forge, registry=registry,
                             chosen=_sides(run.sides or None))
            if beat.lost.is_set():
                raise Conflict(f"drift run {run.id} lost its lease to another run",
                               field="run", rule="lease-lost")
            runs.fence(session, run, lease_s)
            if checked.cache is not None:
                store.save_cache(session, *checked.cache, commit=False)
            now = utcnow()
            for result in checked.results:
                store.apply(session, result, commit=checked.commit, now=now)
            session.commit()
            drifted = sum(counts(session).values())
            rendered = sum(r.rendered for r in checked.results)
            summary = ", ".join(f"{r.side.value} {r.status} ({r.checked} checked, "
                                f"{r.seconds:.1f} s)" for r in checked.results)
            runs.finish(session, run.id, state="succeeded", commit=checked.commit,
                        findings=drifted, rendered=rendered,
                        message=f"{drifted} finding(s) in state drift; {summary}")
    except Exception as exc:
        log.warning("drift run %s failed", run.id, exc_info=True)
        with Session(engine) as session:
            runs.finish(session, run.id, state="failed",
                        message=str(getattr(exc, "message", "") or exc) or type(exc).__name__)
        raise
    with Session(engine, expire_on_commit=False) as session:
        return runs.get(session, run.id)


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def run(session: Session, *, settings: Settings, forge: Forge, registry: Registry | None = None,
        sides: Iterable[str] | None = None, requested_by: str = "cli",
        wait: bool = True) -> DriftReport:
    """Check ``sides`` (all by default) against the head of main and store what they find
    (``registry``: the templates; the settings' own when None), in this thread. When another
    run holds the lease this one joins it: waits for it to end (``wait``) or returns at once.
    Raises what a failed run raised (``Conflict`` when it lost its lease)."""
    chosen = _sides(sides)
    run_row, started = runs.start(session, requested_by=requested_by,
                                  sides=[s.value for s in chosen],
                                  lease_s=settings.drift_lease_s)
    engine = _engine(session)
    if started:
        execute(engine, run_row, settings=settings, forge=forge,
                registry=registry or Registry(settings))
    elif wait:
        runs.wait(engine, run_row.id or 0, timeout_s=settings.drift_wait_s)
    session.expire_all()
    return report(session)


def request_run(session: Session, *, settings: Settings, forge: Forge, registry: Registry,
                requested_by: str, sides: Iterable[str] | None = None) -> RunPublic:
    """"Check now": start a run on a thread of this process and return at once (``joined``:
    a run was already going; that one is returned). ``ValidationFailed`` for a bad side,
    before anything is written."""
    chosen = _sides(sides)
    run_row, started = runs.start(session, requested_by=requested_by,
                                  sides=[s.value for s in chosen],
                                  lease_s=settings.drift_lease_s)
    if started:
        engine = _engine(session)

        def background() -> None:
            try:
                execute(engine, run_row, settings=settings, forge=forge, registry=registry)
            except Exception:  # recorded on the run by ``execute``
                return

        threading.Thread(target=background, name=f"caas-drift-run-{run_row.id}",
                         daemon=True).start()
    return runs.public(run_row, joined=not started)


def get_run(session: Session, run_id: int) -> RunPublic:
    return runs.shown(session, runs.get(session, run_id))


def _check_filters(kind: str | None, side: str | None, team: str | None) -> None:
    if kind is not None and kind not in {k.value for k in Kind}:
        raise ValidationFailed(f"kind {kind[:40]!r} must be one of "
                               f"{', '.join(k.value for k in Kind)}", field="kind", rule="enum")
    if side is not None:
        _sides([side])
    if team is not None and not is_dns_label(team):
        raise ValidationFailed(f"team {team[:80]!r} must be a DNS-1123 label", field="team",
                               rule="dns-label")


def public(row: DriftFinding) -> FindingPublic:
    return FindingPublic(
        id=row.id or 0, entity=row.entity, kind=row.kind, team=row.team, side=row.side,
        subject=row.subject, state=row.state, what=row.what, detail=row.detail, fix=row.fix,
        fix_label=FIX_LABELS.get(Fix(row.fix), "") if row.fix in Fix.__members__.values()
        else "", fix_target=row.fix_target, fix_note=row.fix_note,
        first_seen=aware(row.first_seen), last_seen=aware(row.last_seen))


def report(session: Session, *, kind: str | None = None, side: str | None = None,
           team: str | None = None, entity: str | None = None) -> DriftReport:
    """The stored findings, filtered (each filter optional), and every side's last check."""
    _check_filters(kind, side, team)
    query = select(DriftFinding)
    if kind is not None:
        query = query.where(DriftFinding.kind == kind)
    if side is not None:
        query = query.where(DriftFinding.side == side)
    if team is not None:
        query = query.where(DriftFinding.team == team)
    if entity is not None:
        catalog_service.validate_key(entity)
        query = query.where(DriftFinding.entity == entity)
    query = query.order_by(col(DriftFinding.entity), col(DriftFinding.side),
                           col(DriftFinding.subject)).limit(MAX_FINDINGS)
    rows = session.exec(query).all()
    sides = [SidePublic(side=s.side, status=s.status, commit=s.commit, checked=s.checked,
                        seconds=round(s.seconds, 3), checked_at=aware(s.checked_at))
             for s in session.exec(select(DriftSideState)).all()]
    totals = {f"{k}/{s}": n for (k, s), n in counts(session).items()}
    last = runs.latest(session)
    return DriftReport(findings=[public(r) for r in rows], sides=sides, counts=totals,
                       run=runs.shown(session, last) if last is not None else None)


def counts(session: Session) -> dict[tuple[str, str], int]:
    """Findings in state ``drift`` per (kind, side)."""
    rows = session.execute(
        select(col(DriftFinding.kind), col(DriftFinding.side), func.count())
        .where(DriftFinding.state == State.drift.value)
        .group_by(col(DriftFinding.kind), col(DriftFinding.side))).all()
    return {(str(k), str(s)): int(n) for k, s, n in rows}


def entity_badges(session: Session, keys: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{entity: {side: findings in state drift}}`` for ``keys`` (entities without drift are
    absent)."""
    badges: dict[str, dict[str, int]] = {}
    for i in range(0, len(keys), 500):
        part = list(keys[i:i + 500])
        rows = session.execute(
            select(col(DriftFinding.entity), col(DriftFinding.side), func.count())
            .where(col(DriftFinding.entity).in_(part), DriftFinding.state == State.drift.value)
            .group_by(col(DriftFinding.entity), col(DriftFinding.side))).all()
        for entity, side, n in rows:
            badges.setdefault(str(entity), {})[str(side)] = int(n)
    return badges


def _may_fix(principal: Principal, row: DriftFinding) -> None:
    """Syncs and reindexes re-run what the reconciler runs after a merge: a reviewer of the
    owning team or a platform-admin (``policy.can_retry_job``); environments: admins only."""
    team = row.team or None
    policy.require(policy.can_retry_job(principal, team=team, touches_envs=team is None))


def fix(session: Session, *, settings: Settings, forge: Forge, registry: Registry,
        principal: Principal, finding_id: int, ip: str = "") -> FixResult:
    """Apply the fix finding ``finding_id`` offers (see the module docstring)."""
    row = session.get(DriftFinding, finding_id)
    if row is None:
        raise NotFound(f"finding: no drift finding {finding_id}", field="finding_id")
    if row.fix not in Fix.__members__.values() or row.fix == Fix.none:
        raise Conflict(f"finding {finding_id} offers no fix the portal can apply: {row.what}",
                       field="finding_id", rule="no-fix")
    kind, target, entity, side = Fix(row.fix), row.fix_target, row.entity, row.side
    change_id: int | None = None
    if kind == Fix.rerender:
        task = scaffolder_service.rerender_task(session, registry=registry, forge=forge,
                                                principal=principal, unit=target, ip=ip)
        change_id = task.change_id
        message = (f"re-render PR #{task.change_number} opened" if task.status == "succeeded"
                   else f"re-render task {task.id} {task.status}: {task.error}")
    else:
        _may_fix(principal, row)
        if kind == Fix.argocd_sync:
            if not target:
                raise Conflict("finding: the Application to sync is not known",
                               field="finding_id", rule="no-fix")
            done = reconciler_service.argocd_sync(settings, application=target,
                                                  actor=principal.username)
            message = (f"ArgoCD sync of {target} requested" if done
                       else f"Application {target} does not exist: nothing to sync")
        elif kind == Fix.keycloak_sync:
            sync = reconciler_service.keycloak_sync_teams(settings, forge, [target])
            message = f"Keycloak sync of team {target}: {sync.summary()}"
            store.save(session, identity_side.check(settings, forge, teams=1),
                       commit=forge.head(settings.main_branch), entities=[f"team:{target}"])
        else:
            head = forge.head(settings.main_branch)
            result = catalog_service.index_commit(session, forge=forge, commit=head,
                                                  changed=[f"{unit_dir(target)}/_"])
            message = (f"reindexed {target} at {head[:12]}: {len(result.added)} added, "
                       f"{len(result.changed)} updated, {len(result.removed)} removed")
            snapshot = Snapshot(commit=head, units={})
            files = forge.read_tree([unit_dir(target)], head)
            if files:
                snapshot.units[target] = files
            store.save(session, catalog_side.check(session, snapshot, keys=[target]),
                       commit=head, entities=[target])
    audit.record(session, actor=principal.username, action="drift.fix",
                 target=f"{entity} {side}"[:300], ip=ip,
                 detail={"finding": finding_id, "fix": kind.value, "target": target,
                         "result": message})
    fresh = session.get(DriftFinding, finding_id)
    if fresh is not None:
        fresh.fix_note = message[:300]
        session.add(fresh)
    session.commit()
    return FixResult(finding=finding_id, fix=kind.value, message=message, change_id=change_id)
