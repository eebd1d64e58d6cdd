"""Promotion of a tenant's overlay: carry one environment's quota to the next.

What a tenant holds per environment (``templates/tenant``): ``tenants/<team>/<namespace>/envs/
<env>/kustomization.yaml`` (the base, labelled with the environment — nothing to carry) and
``envs/<env>/quota.yaml``, the ResourceQuota whose CPU and memory come from the tenant's
``environment_quotas[<env>]`` (else the tenant-wide ``cpu_quota``/``memory_quota``); storage,
pods, limits, network rules and the rest are the same in every environment. So a tenant
promotion carries the source's CPU and memory quota (``requests.cpu``, ``requests.memory`` of
the source's ``quota.yaml`` on main, what runs) to the target: the answers'
``environment_quotas[<target>]`` are set to them and the tenant is re-rendered through the
scaffolder's own change machinery (``scaffolder.changeset.prepare``: quota bounds, authorization,
derived lists), so the pull request changes the target's ``quota.yaml`` and the stored answers
(``.caas-answers.yaml``, which keep git and the answers in step for drift) — nothing else.

The gates are the application's (``scaffolder.promotion_gates``), on the tenant:
``source-health`` judges the namespace's Applications in the source environment (the tenant's
own ``tenant.<namespace>.<env>`` and every application overlay of the team whose destination is
that namespace there; *unknown* without a cluster), ``approval`` the target tier's rule,
``target-policies`` has no image to judge (the PR's own ``policies`` and ``capacity`` checks
judge the rendered quota), ``source-statuses`` the tier's required statuses on the pull request
that last changed the tenant.

Refused with nothing written, like an application's promotion: no such tenant (404), a caller
outside the team (403), the same environment twice, an unknown environment, a source or target
the tenant does not run in, a target whose quota already matches (409/422 naming the field).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from gitops import app_overlays, layout, object_names
from gitops.environment import read_manifest
from gitops.forges.base import Forge
from gitops.names import is_dns_label
from portal.auth import policy
from portal.auth.principal import Principal
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.settings import Settings
from scaffolder import changeset, promotion, promotion_gates
from scaffolder.changeset import load_yaml, stored_answers
from scaffolder.models import ScaffoldRequest, TaskPublic
from scaffolder.registry import Registry
from scaffolder.render import ANSWERS_FILE

TEMPLATE = "tenant"
KIND = promotion_gates.TENANT


def unit_folder(team: str, namespace: str) -> str:
    return f"tenants/{team}/{namespace}"


def _quota(forge: Forge, unit: str, env: str, field: str, sha: str) -> dict[str, str]:
    """``{"cpu", "memory"}`` of ``env``'s ``quota.yaml``; 409 when the tenant is not there."""
    raw = forge.read_file(f"{unit}/envs/{env}/quota.yaml", sha)
    if raw is None:
        raise Conflict(f"{field}: the tenant does not run in {env!r} (no {unit}/envs/{env}/); "
                       "add the environment to the tenant first", field=field,
                       rule="tenant-in-environment")
    hard = ((load_yaml(raw).get("spec") or {}).get("hard") or {})
    cpu, memory = hard.get("requests.cpu"), hard.get("requests.memory")
    if not isinstance(cpu, str | int) or not isinstance(memory, str | int):
        raise Conflict(f"{field}: {unit}/envs/{env}/quota.yaml names no requests.cpu and "
                       "requests.memory", field=field, rule="overlay-shape")
    return {"cpu": str(cpu), "memory": str(memory)}


def _health_names(forge: Forge, team: str, namespace: str, env: str, sha: str) -> list[str]:
    """The namespace's Applications in ``env``: the tenant's own and the team's applications
    whose overlay for ``env`` deploys into ``namespace``."""
    names = [object_names.tenant_application(namespace, env)]
    for path in forge.list_files(f"applications/{team}/", sha):
        parsed = app_overlays.parse_overlay_path(path)
        if parsed is None or parsed[2] != env:
            continue
        doc = load_yaml(forge.read_file(path, sha))
        if ((doc.get("spec") or {}).get("destination") or {}).get("namespace") == namespace:
            names.append(object_names.team_application(team, parsed[1], env))
    return names


def plan(forge: Forge, registry: Registry, principal: Principal, *, team: str,
         namespace: str, source: str, target: str,
         source_pr: int | None = None) -> promotion.Plan:
    """Validate, authorize and build the change set (see the module doc); nothing is written."""
    for field, value in (("team", team), ("namespace", namespace)):
        if not is_dns_label(value):
            raise ValidationFailed(f"{field}: {value!r} is not a DNS-1123 label", field=field,
                                   rule="dns-label")
    sha = forge.head()
    unit = unit_folder(team, namespace)
    answers = stored_answers(forge, unit)
    if answers is None:
        raise NotFound(f"namespace: no tenant {team}/{namespace} on main", field="namespace",
                       rule="unit-exists")
    decision = promotion.promote_decision(principal, team=team)
    if not decision:
        raise Forbidden(decision.reason, field="team", rule="can-request")
    if source == target:
        raise ValidationFailed("to: the target environment must differ from the source",
                               field="to", rule="different-environments")
    promotion.env_doc(forge, source, "from", sha)
    target_env = promotion.env_doc(forge, target, "to", sha)
    carried = _quota(forge, unit, source, "from", sha)
    if _quota(forge, unit, target, "to", sha) == carried:
        raise Conflict(f"to: {target} already has {source}'s quota: nothing to promote",
                       field="to", rule="no-change")
    quotas = dict(answers.get("environment_quotas") or {})
    quotas[target] = carried
    request = ScaffoldRequest(template=TEMPLATE, update=True, answers={
        "team": team, "name": answers.get("name"), "environment_quotas": quotas})
    prepared = changeset.prepare(forge, registry, principal, request)
    expected = {f"{unit}/envs/{target}/quota.yaml", f"{unit}/{ANSWERS_FILE}"}
    extra = sorted({c.path for c in prepared.changes} - expected)
    if extra:
        raise Conflict(f"namespace: re-rendering the tenant would also change {', '.join(extra)}"
                       " (it is behind its template or edited by hand); upgrade or fix it "
                       "first so that the promotion changes only the target's quota",
                       field="namespace", rule="template-current")
    tier = policy.strictest_tier([read_manifest(target_env).tier])
    record: dict[str, Any] = {
        "kind": KIND, "team": team, "app": namespace, "from": source, "to": target,
        "revision": f"cpu {carried['cpu']}, memory {carried['memory']}",
        "legacy_source": False, "source_commit": sha, "source_pr": source_pr,
        "health_names": _health_names(forge, team, namespace, source, sha)}
    title = (f"Promote tenant {namespace} quota (cpu {carried['cpu']}, memory "
             f"{carried['memory']}) from {source} to {target}")
    prepared.answers = {"promotion": record, "overrides": {}}
    prepared.action, prepared.envs, prepared.tier = promotion.ACTION, [target], tier
    prepared.entity = layout.key_for_unit(unit)
    prepared.routing = policy.describe_routing(tier=tier, touches_envs=False, team=team)
    prepared.branch = f"caas/promote-{team}-{namespace}-{source}-to-{target}"[:200]
    prepared.title = title[:300]
    prepared.body = (f"{title}.\n\nSets `environment_quotas[{target}]` of the tenant to the CPU "
                     f"and memory quota of `{unit}/envs/{source}/quota.yaml`; the rest of the "
                     "tenant is unchanged.")
    prepared.env_docs = {target: target_env}
    subject = promotion_gates.tenant_subject(record, tier=tier, author=principal.username)
    return promotion.Plan(prepared=prepared, subject=subject, record=record)


def promote(session: Session, *, registry: Registry, forge: Forge, settings: Settings,
            principal: Principal, team: str, namespace: str, source: str, target: str,
            ip: str = "") -> TaskPublic:
    """Open the tenant's promotion pull request (see the module doc)."""
    return promotion.open_promotion(
        session, forge=forge, settings=settings, principal=principal,
        unit=unit_folder(team, namespace), source=source, target=target, ip=ip,
        planner=lambda source_pr: plan(forge, registry, principal, team=team,
                                       namespace=namespace, source=source, target=target,
                                       source_pr=source_pr))
