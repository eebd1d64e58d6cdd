"""Promotion: carry an application's version and values from one environment to the next.

``promote(…, team, app, source, target)`` opens a pull request that writes exactly one file,
the target overlay ``applications/<team>/<app>/envs/<target>/application.yaml``
(``gitops.app_overlays.carry``: the source's ``spec.source`` — repository, chart or path,
revision, Helm parameters — into the target's file, whose destination and sync policy stay).
It goes through the scaffolder's own machinery (``scaffolder.service.open_prepared``): the unit
``applications/<team>/<app>`` is reserved like any change of it (one open change per unit), the
usual checks run on the file, and the promotion's gates (``scaffolder.promotion_gates``) join
them as ``caas/<gate>`` checks. The change's tier — hence its approval routing — is the target
environment's.

Refused with nothing written: an unknown application (404), a caller outside the team (403),
the same environment twice, an environment without ``envs/<env>/infra.yaml``, a target that is
uninstalled (``installed: false``), a source without
an overlay, a tenant namespace that does not run in the target environment, a target that
already matches the source (409/422, naming the field and the rule).

A unit of the older single-file layout (``applications/<team>/<app>/application.yaml``) can be
promoted from the environment its file names; the PR then adds the target's per-environment
folder. Moving the older file itself is a template upgrade's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from gitops import app_overlays, layout
from gitops.environment import read_manifest
from gitops.forges.base import FileChange, Forge
from gitops.names import is_dns_label
from portal.auth import audit, policy
from portal.auth.principal import Principal
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.settings import Settings
from scaffolder import promotion_gates, promotion_matrix, service
from scaffolder.changeset import Prepared, load_yaml, stored_answers, unified
from scaffolder.models import RenderedFile, TaskPublic
from scaffolder.registry import Registry

ACTION = promotion_gates.ACTION
TEMPLATE = "application"


@dataclass(frozen=True)
class Plan:
    """A promotion worked out against main: the change set and what its gates judge."""

    prepared: Prepared
    subject: promotion_gates.Subject
    record: dict[str, Any]


def env_doc(forge: Forge, env: str, field: str, sha: str) -> dict[str, Any]:
    """``envs/<env>/infra.yaml`` on ``sha`` as a mapping; 422 naming ``field`` for a bad
    name, a missing environment, or (``field="to"``: the target) one with ``installed:
    false``."""
    if not is_dns_label(env):
        raise ValidationFailed(f"{field}: {env!r} is not an environment name (DNS-1123 label)",
                               field=field, rule="dns-label")
    raw = forge.read_file(layout.infra_path(env), sha)
    if raw is None:
        raise ValidationFailed(f"{field}: no environment {env!r} (no envs/{env}/infra.yaml)",
                               field=field, rule="environment-exists")
    doc = load_yaml(raw)
    if field == "to" and not read_manifest(doc).installed:
        raise ValidationFailed(f"to: environment {env!r} is uninstalled (installed: false in "
                               f"envs/{env}/infra.yaml): nothing runs there to promote to",
                               field="to", rule="environment-installed")
    return doc


def _source_file(forge: Forge, team: str, app: str, source: str,
                 sha: str) -> tuple[bytes, bool]:
    """The source overlay's content and whether it is the older single file."""
    content = forge.read_file(app_overlays.overlay_path(team, app, source), sha)
    if content is not None:
        return content, False
    legacy = forge.read_file(app_overlays.legacy_path(team, app), sha)
    if legacy is not None:
        doc = load_yaml(legacy)
        destination = ((doc.get("spec") or {}).get("destination") or {}).get("name")
        if destination == source:
            return legacy, True
    raise ValidationFailed(f"from: {team}/{app} has no overlay in {source!r} "
                           f"(no {app_overlays.overlay_path(team, app, source)})",
                           field="from", rule="overlay-exists")


def promote_decision(principal: Principal, *, team: str) -> policy.Decision:
    """May ``principal`` promote an application of ``team`` (a member of the team or a
    platform-admin; the page shows the reason beside a disabled "Promote")."""
    return policy.can_request(principal, team=team)


def plan(forge: Forge, registry: Registry, principal: Principal, *, team: str, app: str,
         source: str, target: str, source_pr: int | None = None) -> Plan:
    """Validate, authorize and build the change set; nothing is written. ``source_pr``: the
    pull request that put the source's version on main (``promotion_matrix.source_change``),
    whose commit statuses the ``source-statuses`` gate reads."""
    for field, value in (("team", team), ("app", app)):
        if not is_dns_label(value):
            raise ValidationFailed(f"{field}: {value!r} is not a DNS-1123 label", field=field,
                                   rule="dns-label")
    sha = forge.head()
    unit = app_overlays.unit_folder(team, app)
    answers = stored_answers(forge, unit)
    if answers is None:
        raise NotFound(f"app: no application {team}/{app} on main", field="app",
                       rule="unit-exists")
    decision = promote_decision(principal, team=team)
    if not decision:
        raise Forbidden(decision.reason, field="team", rule="can-request")
    if source == target:
        raise ValidationFailed("to: the target environment must differ from the source",
                               field="to", rule="different-environments")
    env_doc(forge, source, "from", sha)
    target_env = env_doc(forge, target, "to", sha)
    source_content, legacy = _source_file(forge, team, app, source, sha)
    path = app_overlays.overlay_path(team, app, target)
    old = forge.read_file(path, sha)
    try:
        new = app_overlays.carry(source_content, old, team=team, app=app, env=target)
    except app_overlays.OverlayError as exc:
        raise Conflict(f"from: {exc}", field="from", rule="overlay-shape") from None
    doc = app_overlays.read(new, "the promoted overlay")
    namespace = str(((doc.get("spec") or {}).get("destination") or {}).get("namespace") or "")
    if not forge.list_files(f"tenants/{team}/{namespace}/envs/{target}/", sha):
        raise Conflict(f"to: namespace {namespace!r} does not run in {target!r} (no "
                       f"tenants/{team}/{namespace}/envs/{target}/); add the environment to "
                       "the tenant first", field="to", rule="tenant-in-environment")
    if old is not None and app_overlays.source_of(app_overlays.read(old)) == \
            app_overlays.source_of(doc):
        raise Conflict(f"to: {target} already runs what {source} runs: nothing to promote",
                       field="to", rule="no-change")
    tier = policy.strictest_tier([read_manifest(target_env).tier])
    revision = str(app_overlays.source_of(doc).get("targetRevision") or "")
    record = {"team": team, "app": app, "from": source, "to": target, "revision": revision,
              "legacy_source": legacy, "source_commit": sha, "source_pr": source_pr}
    title = f"Promote {team}/{app} {revision} from {source} to {target}"
    source_path = (app_overlays.legacy_path(team, app) if legacy
                   else app_overlays.overlay_path(team, app, source))
    prepared = Prepared(
        template=registry.get(TEMPLATE), answers={"promotion": record, "overrides": {}},
        action=ACTION, target=unit, entity=layout.key_for_unit(unit), team=team,
        rendered={path: new}, changes=[FileChange(path, new)],
        files=[RenderedFile(path=path, status="added" if old is None else "modified",
                            content=new.decode())],
        diff=unified(path, old, new), envs=[target], tier=tier, touches_envs=False,
        routing=policy.describe_routing(tier=tier, touches_envs=False, team=team),
        base_sha=sha, branch=f"caas/promote-{team}-{app}-{source}-to-{target}"[:200],
        title=title[:300],
        body=(f"{title}.\n\nCarries `spec.source` (revision, chart or path, Helm parameters) of "
              f"`{source_path}` to `{path}`; destination and sync policy of `{target}` stay."),
        unit_exists=True, env_docs={target: target_env})
    subject = promotion_gates.Subject(team=team, app=app, source=source, target=target,
                                      tier=tier, source_legacy=legacy, target_doc=doc,
                                      author=principal.username, source_pr=source_pr)
    return Plan(prepared=prepared, subject=subject, record=record)


def promote(session: Session, *, registry: Registry, forge: Forge, settings: Settings,
            principal: Principal, team: str, app: str, source: str, target: str,
            ip: str = "") -> TaskPublic:
    """Open the promotion pull request (see the module doc); the task says how it went."""
    return open_promotion(
        session, forge=forge, settings=settings, principal=principal,
        unit=app_overlays.unit_folder(team, app), source=source, target=target, ip=ip,
        planner=lambda source_pr: plan(forge, registry, principal, team=team, app=app,
                                       source=source, target=target, source_pr=source_pr))


def open_promotion(session: Session, *, forge: Forge, settings: Settings,
                   principal: Principal, unit: str, source: str, target: str, ip: str,
                   planner: Callable[[int | None], Plan]) -> TaskPublic:
    """Plan a promotion of ``unit`` (``planner`` gets the number of the PR that last wrote the
    source environment, None when unknown) and open its pull request with the gates as checks;
    a refusal (``Forbidden``) is audited ``denied`` and raised."""
    try:
        writer = promotion_matrix.source_change(session, unit=unit, env=source)
        worked = planner(writer.number if writer else None)
    except Forbidden as exc:
        audit.record(session, actor=principal.username, action="scaffolder.promote",
                     target=unit[:300], outcome="denied", ip=ip,
                     detail={"reason": exc.message, "from": source, "to": target})
        raise

    def gates() -> list[Any]:
        return promotion_gates.evaluate(settings, forge, worked.subject,
                                        sha=worked.prepared.base_sha, approvals=[],
                                        overrides={})

    return service.open_prepared(
        session, prepared=worked.prepared, forge=forge, principal=principal,
        request_doc={"promotion": worked.record}, ip=ip, action="scaffolder.promote",
        gates=gates)
