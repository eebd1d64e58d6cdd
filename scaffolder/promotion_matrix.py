"""The promotion matrix of an application: per environment, what runs (from main), since when
and by which pull request (the newest merged change that wrote that environment's overlay),
and what ArgoCD reports (``catalog.live_status``; "not connected" without a cluster)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from catalog import live_status
from gitops import app_overlays, object_names
from gitops.environment import read_manifest
from gitops.forges.base import Forge
from portal.auth import policy
from portal.db import aware
from portal.errors import NotFound
from portal.settings import Settings
from scaffolder.changeset import environments_on_main, load_yaml, stored_answers
from scaffolder.models import Change
from scaffolder.promotion_gates import ACTION
from scaffolder.promotion_models import MatrixRow, PromotionMatrix

_TIER_RANK = {policy.Tier.dev: 0, policy.Tier.staging: 1, policy.Tier.prod: 2}


def _env_of(change: Change) -> str:
    """The environment whose overlay a merged change of the application wrote."""
    if change.action == ACTION:
        record = change.answers.get("promotion") or {}
        return str(record.get("to") or "") if isinstance(record, dict) else ""
    return str(change.answers.get("environment") or "")


def _writes(change: Change, env: str) -> bool:
    """Did ``change`` write ``env``'s overlay: a promotion into it, a change naming it as its
    environment (an application's), or a change of a unit whose answers name no single
    environment (a tenant's re-render writes every overlay)."""
    if change.action == ACTION or "environment" in change.answers:
        return _env_of(change) == env
    return True


def last_merged(changes: Sequence[Change], env: str) -> Change | None:
    """The newest merged change (``changes`` newest first) that wrote ``env``'s overlay."""
    return next((c for c in changes if c.status == "merged" and _writes(c, env)), None)


def _unit_changes(session: Session, unit: str) -> Sequence[Change]:
    return session.exec(select(Change).where(Change.unit_key == unit)
                        .order_by(col(Change.id).desc())).all()


def source_change(session: Session, *, unit: str, env: str) -> Change | None:
    """The pull request that put ``env``'s current version of the unit at folder ``unit`` on
    main ("by which PR" of the matrix), or None when it reached main outside the portal."""
    return last_merged(_unit_changes(session, unit), env)


def _overlays(forge: Forge, team: str, app: str) -> tuple[str, dict[str, tuple[str, bytes]]]:
    unit = app_overlays.unit_folder(team, app)
    found: dict[str, tuple[str, bytes]] = {}
    for path in forge.list_files(f"{unit}/envs/"):
        parsed = app_overlays.parse_overlay_path(path)
        content = forge.read_file(path) if parsed else None
        if parsed and content is not None:
            found[parsed[2]] = (path, content)
    if found:
        return "envs", found
    legacy = forge.read_file(app_overlays.legacy_path(team, app))
    if legacy is not None:
        env = str(((load_yaml(legacy).get("spec") or {}).get("destination") or {}).get("name")
                  or "")
        return "single", {env: (app_overlays.legacy_path(team, app), legacy)}
    return "envs", {}


def _sync_policy(doc: dict[str, Any]) -> str:
    sync = (doc.get("spec") or {}).get("syncPolicy") or {}
    automated = sync.get("automated") if isinstance(sync, dict) else None
    if not isinstance(automated, dict):
        return "manual"
    flags = [f for f, on in (("prune", automated.get("prune")),
                             ("self-heal", automated.get("selfHeal"))) if on]
    return "automated" + (f" ({', '.join(flags)})" if flags else "")


def matrix(session: Session, *, forge: Forge, settings: Settings, team: str,
           app: str) -> PromotionMatrix:
    """The matrix (see the module doc); ``NotFound`` for an application not on main."""
    unit = app_overlays.unit_folder(team, app)
    if stored_answers(forge, unit) is None and not forge.list_files(f"{unit}/"):
        raise NotFound(f"app: no application {team}/{app} on main", field="app")
    layout_name, overlays = _overlays(forge, team, app)
    tiers = {e: policy.strictest_tier([read_manifest(load_yaml(
        forge.read_file(f"envs/{e}/infra.yaml"))).tier]) for e in environments_on_main(forge)}
    changes = _unit_changes(session, unit)
    rows: list[MatrixRow] = []
    for env, (path, content) in sorted(overlays.items(),
                                       key=lambda kv: (_TIER_RANK.get(tiers.get(kv[0],
                                                       policy.Tier.prod), 2), kv[0])):
        doc = load_yaml(content)
        source = app_overlays.source_of(doc)
        merged = last_merged(changes, env)
        waiting = next((c for c in changes if c.status in ("pending", "open")
                        and c.action == ACTION and _env_of(c) == env), None)
        name = object_names.team_application(team, app, env if layout_name == "envs" else None)
        live = _live(settings, name)
        rows.append(MatrixRow(
            environment=env, tier=str(tiers.get(env, "")), file=path,
            repo_url=str(source.get("repoURL") or ""), chart=str(source.get("chart") or ""),
            path=str(source.get("path") or ""), revision=str(source.get("targetRevision") or ""),
            images=app_overlays.images(doc), sync_policy=_sync_policy(doc),
            since=aware(merged.updated_at) if merged else None,
            change_id=merged.id if merged else None,
            change_number=merged.number if merged else None,
            change_url=merged.url if merged else "",
            change_action=merged.action if merged else "",
            live_sync=live.get("sync"), live_health=live.get("health"),
            live_reason=live.get("reason"),
            open_promotion=waiting.id if waiting else None))
    order = sorted(tiers, key=lambda e: (_TIER_RANK.get(tiers[e], 2), e))
    return PromotionMatrix(team=team, app=app, layout=layout_name, environments=order,
                           rows=rows)


def _live(settings: Settings, name: str) -> dict[str, Any]:
    if settings.kubeconfig is None:
        return {"reason": live_status.NOT_CONNECTED}
    from catalog.live import LiveStatus  # only with a kubeconfig (catalog.live_status's rule)

    found = LiveStatus.from_settings(settings).application(name)
    return {"sync": found.sync, "health": found.health, "reason": found.reason}
