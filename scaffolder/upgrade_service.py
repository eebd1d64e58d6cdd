"""Upgrade runs: the units behind their template, what changed between versions, and the
upgrade pull requests (``caas upgrade``, ``POST /api/upgrades``, the Upgrades page).

``run_upgrades`` groups the units behind (one PR per unit, or per team and template with
``per="team"``) and for each group:

- no open change holds its key → merge from ``main`` (``scaffolder.upgrade.plan_unit``) and open
  the PR through the scaffolder's task machinery (``service.upgrade_task``): ``opened``;
- an open upgrade PR holds it and its head is already at the current version → ``open``,
  nothing new (its ``conflicts`` check is evaluated again on the head);
- an open upgrade PR holds it but the template moved again → the merge is redone with the PR's
  head as *ours* and the version on the head as base, and committed on the PR's branch
  (resolutions made there survive): ``updated``;
- another open change (create/update/decommission) holds the unit → ``held``;
- the unit cannot be merged (old version in no store, answers invalid) → ``refused`` with the
  reason; the other groups go on.

``dry_run`` merges and reports (``would-open``/``would-update``) and writes nothing; it lists
each unit's merged files (the lists derived from them — AppProject, CODEOWNERS — are computed
when the PR is opened), so its cost per unit is two renders and a merge, never a walk of the
repository.
Authorization: ``upgrade_changeset.may_upgrade`` per unit; a team filter the caller may not
upgrade is a 403, otherwise units beyond the caller's reach are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from gitops import layout
from gitops.forges.base import Check, CheckState, Forge
from portal.auth import audit
from portal.auth.principal import Principal
from portal.db import utcnow
from portal.errors import CaasError, Forbidden
from portal.redact import redact
from scaffolder import pr_text, service
from scaffolder.changeset import unified
from scaffolder.checks_runner import run_checks
from scaffolder.models import (
    BehindUnit,
    Change,
    CheckResult,
    RenderedFile,
    UpgradeOutcome,
    UpgradeRequest,
)
from scaffolder.registry import Registry
from scaffolder.review import OPEN
from scaffolder.upgrade import (
    Behind,
    Run,
    UnitPlan,
    behind_at,
    check_conflicts,
    plan_unit,
    units_behind,
)
from scaffolder.upgrade_changeset import group_key, may_upgrade, prepare_upgrade


def list_behind(*, forge: Forge, registry: Registry, principal: Principal,
                template: str | None = None, team: str | None = None) -> list[BehindUnit]:
    """The units behind their template that ``principal`` may upgrade."""
    _authorize_team(principal, team)
    if template is not None:
        registry.get(template, field_name="template")  # 404 naming an unknown one
    return [BehindUnit(unit=b.unit, entity=layout.key_for_unit(b.unit), template=b.template,
                       version=b.version, current=b.current, team=b.team)
            for b in units_behind(forge, registry, template=template, team=team)
            if may_upgrade(principal, b.team)]


def unit_behind(*, forge: Forge, registry: Registry, unit: str) -> BehindUnit | None:
    """The unit at ``unit`` on main when it is behind its template (the catalog's badge)."""
    found = behind_at(forge, registry, unit.strip("/"), "main") if unit else None
    if found is None:
        return None
    return BehindUnit(unit=found.unit, entity=layout.key_for_unit(found.unit),
                      template=found.template, version=found.version, current=found.current,
                      team=found.team)


def what_changed(*, registry: Registry, template: str, version: str) -> str:
    """The diff of ``template`` from ``version`` to its current version ("what changed");
    ``TemplateVersionMissing`` (409) when the old version is in no store."""
    current = registry.get(template, field_name="template")
    return registry.store.diff(current.name, version, current.version)


def _authorize_team(principal: Principal, team: str | None) -> None:
    if team is not None and not may_upgrade(principal, team):
        raise Forbidden(f"team: only a reviewer of team `{team}` or a platform-admin upgrades "
                        "its units", field="team", rule="can-upgrade")
    if team is None and not principal.is_platform_admin and not any(
            may_upgrade(principal, t) for t in principal.team_roles):
        raise Forbidden("only a team reviewer or a platform-admin upgrades units",
                        rule="can-upgrade")


def run_upgrades(session: Session, *, forge: Forge, registry: Registry, principal: Principal,
                 request: UpgradeRequest, ip: str = "") -> list[UpgradeOutcome]:
    """Open, update or preview the upgrade PRs (module doc); one outcome per group."""
    _authorize_team(principal, request.team)
    if request.template is not None:
        registry.get(request.template, field_name="template")  # 404 naming an unknown one
    found = [b for b in units_behind(forge, registry, template=request.template,
                                     team=request.team) if may_upgrade(principal, b.team)]
    # An open upgrade PR of the other grouping (per team vs per unit) covers its units too.
    covering = _open_upgrades_by_unit(session)
    groups: dict[str, list[Behind]] = {}
    outcomes: list[UpgradeOutcome] = []
    for behind in found:
        key = group_key(behind, request.per)
        other = covering.get(behind.unit)
        if other is not None and other.unit_key != key:
            outcomes.append(_outcome(other.unit_key, [behind], "open", change=other,
                                     message=f"change #{other.id} upgrades {behind.unit}"))
            continue
        groups.setdefault(key, []).append(behind)
    with Run(forge, registry) as run:
        for key, members in groups.items():
            outcomes += _group(session, run, principal=principal, key=key, members=members,
                               dry_run=request.dry_run, ip=ip)
    return outcomes


def _open_upgrades_by_unit(session: Session) -> dict[str, Change]:
    """Unit folder -> the open upgrade change whose files touch it."""
    rows = session.exec(select(Change).where(Change.action == "upgrade",
                                             col(Change.status).in_(OPEN))).all()
    return {layout.unit_dir(key): change for change in rows
            for key in layout.keys_for_paths(str(f.get("path", "")) for f in change.files)}


def _group(session: Session, run: Run, *, principal: Principal, key: str,
           members: Sequence[Behind], dry_run: bool, ip: str) -> list[UpgradeOutcome]:
    held = session.exec(select(Change).where(Change.unit_key == key,
                                             col(Change.status).in_(OPEN))).first()
    if held is not None and held.action != "upgrade":
        return [_outcome(key, members, "held", message=f"change #{held.id} "
                         f"({held.action}) is open for {key}", change=held)]
    if held is not None:
        return [_moved_again(session, run, principal=principal, change=held, members=members,
                             dry_run=dry_run, ip=ip)]
    return _open(session, run, principal=principal, key=key, members=members, dry_run=dry_run,
                 ip=ip)


def _plans(run: Run, members: Sequence[Behind], ref: str
           ) -> tuple[list[UnitPlan], list[UpgradeOutcome]]:
    """Merge each unit; a unit that cannot be merged is a ``refused`` outcome of its own."""
    plans: list[UnitPlan] = []
    refused: list[UpgradeOutcome] = []
    for behind in members:
        try:
            plans.append(plan_unit(run, behind, ref=ref))
        except CaasError as exc:  # UpgradeRefused, or a render/validation error of this unit
            refused.append(_outcome(behind.unit, [behind], "refused", message=exc.message))
    return plans, refused


def _open(session: Session, run: Run, *, principal: Principal, key: str,
          members: Sequence[Behind], dry_run: bool, ip: str) -> list[UpgradeOutcome]:
    forge, registry = run.forge, run.registry
    base_sha = forge.head()
    plans, refused = _plans(run, members, base_sha)
    plans = [p for p in plans if p.changes]
    if not plans:
        return refused
    if dry_run:  # the unit's own merged files; the lists derived from them come with the PR
        return [*refused, _outcome(key, [p.behind for p in plans], "would-open", plans=plans)]
    try:
        prepared = prepare_upgrade(forge, registry, key=key, plans=plans, base_sha=base_sha)
    except CaasError as exc:
        return [*refused, _outcome(key, [p.behind for p in plans], "refused",
                                   message=exc.message)]
    outcome = _outcome(key, [p.behind for p in plans], "opened", plans=plans,
                       files=prepared.files)
    task = service.upgrade_task(session, forge=forge, principal=principal, prepared=prepared,
                                units=[p.behind.unit for p in plans], ip=ip)
    outcome.change_id, outcome.number, outcome.url = (task.change_id, task.change_number,
                                                      task.change_url or "")
    outcome.state = "opened" if task.status == "succeeded" else "refused"
    outcome.message = task.error
    return [*refused, outcome]


def _moved_again(session: Session, run: Run, *, principal: Principal, change: Change,
                 members: Sequence[Behind], dry_run: bool, ip: str) -> UpgradeOutcome:
    """An upgrade PR is open for the key: nothing new, or the merge redone on its head."""
    forge, registry = run.forge, run.registry
    head = change.head_sha or forge.head(change.branch)
    units = [m.unit for m in members]
    at_head = [b for u in units if (b := behind_at(forge, registry, u, head)) is not None]
    if not at_head:
        if not dry_run and change.number is not None:  # resolved on the branch? say so
            overlay = {p: forge.read_file(p, head) for p in forge.changed_paths(
                change.base_sha, head)}
            check = check_conflicts(overlay)
            forge.set_check(change.number, Check(name="caas/conflicts",
                                                 state=CheckState(check.state),
                                                 description=check.summary[:140]))
        return _outcome(change.unit_key, list(members), "open", change=change,
                        message=f"change #{change.id} already upgrades to this version")
    plans, refused = _plans(run, at_head, head)
    if refused:
        return refused[0]
    plans = [p for p in plans if p.changes]
    outcome = _outcome(change.unit_key, [p.behind for p in plans] or list(members),
                       "would-update" if dry_run else "updated", plans=plans, change=change)
    if dry_run or not plans or change.number is None:
        return outcome
    prepared = prepare_upgrade(forge, registry, key=change.unit_key, plans=plans,
                               base_sha=head)
    session.commit()  # the forge writes through its own connection
    info = forge.update_change(change.number, prepared.changes,
                               f"Upgrade again to template {prepared.template.name} "
                               f"{prepared.template.version[:12]}")
    checks = run_checks(forge, prepared, open_units=[])
    change.template_version, change.head_sha = prepared.template.version, info.head_sha
    change.checks = [c.model_dump() for c in checks if c.name != "collisions"] + [
        c for c in change.checks if c.get("name") == "collisions"]
    change.checks_green = all(c.get("state") == "success" for c in change.checks)
    change.diff = "".join(unified(p, forge.read_file(p, change.base_sha),
                                  forge.read_file(p, info.head_sha))
                          for p in forge.changed_paths(change.base_sha, info.head_sha))
    change.updated_at = utcnow()
    session.add(change)
    audit.record(session, actor=principal.username, action="scaffolder.upgrade",
                 target=change.unit_key, ip=ip,
                 detail={"change": change.id, "updated_to": prepared.template.version})
    session.commit()
    # Statuses are per commit: the new head reports every check, the kept collisions result
    # included (a required context missing on the head blocks the PR on GitHub for good).
    forge.set_checks(change.number, [CheckResult.model_validate(c).as_status()
                                     for c in change.checks])
    forge.comment(change.number, redact(pr_text.preview(prepared, checks)))
    return outcome


def _outcome(key: str, members: Sequence[Behind], state: str, *, message: str = "",
             plans: Sequence[UnitPlan] = (), change: Change | None = None,
             files: Sequence[RenderedFile] = ()) -> UpgradeOutcome:
    first = members[0]
    rendered = list(files) or [RenderedFile(path=c.path, status=p.statuses[c.path])
                               for p in plans for c in p.changes]
    return UpgradeOutcome(
        key=key, units=[m.unit for m in members], template=first.template,
        from_versions=sorted({m.version for m in members}), to_version=first.current,
        state=state, change_id=change.id if change else None,
        number=change.number if change else None, url=change.url if change else "",
        files=[RenderedFile(path=f.path, status=f.status) for f in rendered],
        conflicts=[c for p in plans for c in p.conflicts],
        added={k: v for p in plans for k, v in p.added.items()},
        dropped=sorted({d for p in plans for d in p.dropped}), message=message)
