"""Drift, as the API, the pages, the CLI and the worker call it.

- ``run(session, settings=, forge=, registry=, sides=None) -> DriftReport``: read main once,
  check each side (git, catalog always; cluster when a kubeconfig is set; Keycloak when
  configured), store the findings (``store``), return the stored report. Idempotent.
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

from collections.abc import Iterable, Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from catalog import service as catalog_service
from catalog.drift import catalog_side, cluster_side, git_side, identity_side, store
from catalog.drift.models import (
    FIX_LABELS,
    DriftFinding,
    DriftReport,
    DriftSideState,
    FindingPublic,
    Fix,
    FixResult,
    Side,
    SidePublic,
    SideResult,
    State,
)
from catalog.drift.snapshot import Snapshot, read_main
from catalog.models import Kind
from gitops.forges.base import Forge
from gitops.layout import unit_dir
from gitops.names import is_dns_label
from portal.auth import audit, policy
from portal.auth.principal import Principal
from portal.db import aware
from portal.errors import Conflict, NotFound, ValidationFailed
from portal.settings import Settings
from reconciler import service as reconciler_service
from scaffolder import service as scaffolder_service
from scaffolder.registry import Registry

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


def run(session: Session, *, settings: Settings, forge: Forge, registry: Registry | None = None,
        sides: Iterable[str] | None = None) -> DriftReport:
    """Check ``sides`` (all by default) against the head of main and store what they find
    (``registry``: the templates; the settings' own when None)."""
    chosen = _sides(sides)
    registry = registry or Registry(settings)
    snapshot = read_main(forge, ref=settings.main_branch)
    for side in chosen:
        if side == Side.git:
            cache = store.load_cache(session)
            result, new_cache = git_side.check(snapshot, registry=registry, cache=cache)
            store.save_cache(session, cache, new_cache)
        elif side == Side.catalog:
            result = catalog_side.check(session, snapshot)
        elif side == Side.cluster:
            result = _cluster(settings, snapshot)
        else:
            teams = sum(1 for k in snapshot.units if k.startswith("team:"))
            result = identity_side.check(settings, forge, teams=teams)
        store.save(session, result, commit=snapshot.commit)
    return report(session)


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
    return DriftReport(findings=[public(r) for r in rows], sides=sides, counts=totals)


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
