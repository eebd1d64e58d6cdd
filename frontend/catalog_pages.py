"""Catalog pages: lists with search, filters and cursor paging; entity pages with owner,
relations, quota, monthly cost, status badges, live status and the timeline."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from catalog import detail as catalog_detail
from catalog import query as catalog_query
from catalog import search as catalog_search
from catalog.cost import load_price_sheet
from catalog.drift import service as drift_service
from catalog.live_status import live_block
from catalog.models import Kind
from frontend.entity_actions import entity_actions, open_change_links, promote_refusal
from frontend.pages import render
from frontend.promotion_pages import promotion_context
from frontend.services import ForgeDep, RegistryDep
from gitops.forges.base import Forge
from gitops.paths import is_safe
from portal.auth.principal import Principal
from portal.deps import PrincipalDep, SessionDep, SettingsDep
from portal.errors import NotFound
from portal.settings import Settings
from scaffolder import review as scaffolder_review
from scaffolder import upgrade_service
from scaffolder.models import BehindUnit

router = APIRouter(include_in_schema=False)

KINDS = {"namespaces": Kind.namespace, "teams": Kind.team, "environments": Kind.environment,
         "applications": Kind.application}
STATUS_FILTERS = ("requested", "merged", "applying", "applied", "committed", "failed", "synced",
                  "out-of-sync", "flagged", "orphaned", "decommissioned")
EVENTS = {
    "pr.opened": "Pull request opened", "checks.finished": "Checks finished",
    "pr.approved": "Approved", "pr.merged": "Merged", "pr.closed": "Closed without merging",
    "job.started": "Job started", "job.finished": "Job finished", "job.failed": "Job failed",
    "job.succeeded": "Job succeeded", "job.skipped": "Job skipped (not connected)",
    "applied": "Applied", "indexed": "Indexed from main", "sync": "Sync changed",
    "catalog.added": "Indexed from main", "catalog.changed": "Changed on main",
    "catalog.removed": "Decommissioned: its files left main",
    "catalog.revived": "Re-created after its decommissioning",
    "removed.application": "ArgoCD Application deleted", "removed.namespace": "Namespace deleted",
    "removed.keycloak": "Keycloak groups removed",
}


def entity_url(key: str) -> str:
    """``namespace:payments/api`` → ``/catalog/namespaces/payments/api``."""
    return catalog_search.page_path(key)


def _event_text(event: str) -> str:
    return EVENTS.get(event, event.replace(".", " ").replace("_", " ").capitalize())


def _detail_text(detail: dict[str, Any]) -> str:
    """A one-line, plain-text summary of an event's detail (escaped by the template)."""
    parts = []
    for key in ("commit", "unit", "state", "green", "failing", "message", "reason"):
        value = detail.get(key)
        if value in (None, "", []):
            continue
        if key == "commit" and isinstance(value, str):
            value = value[:10]
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        if isinstance(value, bool):  # "checks green: yes", never "green: True"
            value = "yes" if value else "no"
        parts.append(f"{key}: {value}")
    return " · ".join(parts)[:300]


def _change_ids(events: list[dict[str, Any]]) -> list[int]:
    return [c for e in events if isinstance(c := (e.get("detail") or {}).get("change"), int)]


def _change_link(detail: dict[str, Any], numbers: dict[int, int | None]) -> dict[str, str]:
    """The change an event belongs to, as a link to its page labelled by its PR number."""
    change = detail.get("change")
    if not isinstance(change, int):
        return {}
    number = numbers.get(change, detail.get("number"))
    return {"change_url": f"/changes/{change}",
            "change_label": f"PR #{number}" if number else f"change {change}"}


def timeline_view(events: list[dict[str, Any]],
                  numbers: dict[int, int | None] | None = None) -> list[dict[str, Any]]:
    """Events for a page; ``numbers`` (change id → PR number) labels their change links."""
    return [{"text": _event_text(str(e.get("event", ""))), "event": e.get("event", ""),
             "actor": e.get("actor", ""), "at": e.get("at", ""),
             "detail": _detail_text(e.get("detail") or {}),
             **_change_link(e.get("detail") or {}, numbers or {})} for e in events]


def not_deployed_reason(status: str, events: list[dict[str, Any]]) -> str:
    """Why an entity in git is not deployed (status ``committed``: a job that would apply it was
    skipped); "" otherwise. ArgoCD skipped means no cluster is connected."""
    if status != "committed":
        return ""
    skipped = [str((e.get("detail") or {}).get("message", "")) for e in events
               if e.get("event") == "job.skipped"]
    if any("ArgoCD" in m for m in skipped):
        return "no cluster connected"
    return "; ".join(sorted({m.removeprefix("skipped: ") for m in skipped if m})) or \
        "an integration is not connected"


def entity_context(session: Session, settings: Settings, key: str, *, forge: Forge,
                   principal: Principal) -> dict[str, Any]:
    """Everything an entity page shows (NotFound when the catalog has no such entity): with
    the viewer's actions (disabled with the reason when refused) and the open changes."""
    detail = catalog_detail.entity_detail(session, key=key,
                                          prices=load_price_sheet(settings.price_sheet))
    numbers = scaffolder_review.change_numbers(session, ids=_change_ids(detail["timeline"]))
    open_changes = open_change_links(session, key)
    team_changes = scaffolder_review.open_changes(session, team=detail["name"]) \
        if detail["kind"] == "team" else []
    session.commit()  # end the read before a possibly slow cluster call
    detail["live"] = live_block(settings, kind=detail["kind"], name=detail["name"],
                                spec=detail["spec"])
    relations = [{"type": r["type"], "target": r["target"], "url": entity_url(r["target"])}
                 for r in detail["relations"]["items"]]
    return {"entity": detail, "relations": relations,
            "timeline": timeline_view(detail["timeline"], numbers),
            "actions": entity_actions(forge, principal, detail, team_changes),
            "open_changes": open_changes,
            "promote_refused": promote_refusal(principal, detail),
            "not_deployed": not_deployed_reason(detail["status"], detail["timeline"]),
            "owner_url": entity_url(f"team:{detail['owner']}") if detail["owner"] else None,
            "drift": drift_service.entity_badges(session, [key]).get(key, {})}


@router.get("/catalog")
def catalog_list(
    request: Request, principal: PrincipalDep, session: SessionDep, settings: SettingsDep,
    kind: Annotated[str, Query(pattern="^(namespaces|teams|environments|applications)$")]
    = "namespaces",
    q: Annotated[str, Query(max_length=200)] = "",
    owner: Annotated[str, Query(max_length=100)] = "",
    env: Annotated[str, Query(max_length=100)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=600)] = "",
) -> Response:
    prices = load_price_sheet(settings.price_sheet)
    page = catalog_query.list_entities(
        session, kind=KINDS[kind], prices=prices,
        q=q or None, owner=owner or None, env=env or None, status=status or None, limit=50,
        cursor=cursor or None)
    filters = {k: v for k, v in (("q", q), ("owner", owner), ("env", env), ("status", status))
               if v}
    next_url = ("/catalog?" + urlencode({"kind": kind, **filters, "cursor": page.next_cursor})
                if page.next_cursor else None)
    teams = catalog_query.list_entities(session, kind=Kind.team, prices=prices,
                                        limit=200).items
    envs = catalog_query.list_entities(session, kind=Kind.environment, prices=prices,
                                       limit=200).items
    return render(request, "catalog.html", title="Catalog", kind=kind, kinds=list(KINDS),
                  items=[(item, entity_url(item.key)) for item in page.items],
                  filters=filters, next_url=next_url, statuses=STATUS_FILTERS,
                  team_names=[t.name for t in teams], env_names=[e.name for e in envs],
                  first_page=not cursor)


@router.get("/catalog/teams/{team}")
def team_page(request: Request, team: str, principal: PrincipalDep, session: SessionDep,
              settings: SettingsDep, registry: RegistryDep, forge: ForgeDep) -> Response:
    return render(request, "entity.html", title=f"Team {team}",
                  **entity_context(session, settings, f"team:{team}", forge=forge,
                                   principal=principal),
                  behind=_behind(forge, registry, f"teams/{team}"))


@router.get("/catalog/namespaces/{team}/{name}")
def namespace_page(request: Request, team: str, name: str, principal: PrincipalDep,
                   session: SessionDep, settings: SettingsDep, registry: RegistryDep,
                   forge: ForgeDep) -> Response:
    return render(request, "entity.html", title=f"Namespace {team}/{name}",
                  **entity_context(session, settings, f"namespace:{team}/{name}", forge=forge,
                                   principal=principal),
                  behind=_behind(forge, registry, f"tenants/{team}/{name}"))


@router.get("/catalog/applications/{team}/{name}")
def application_page(request: Request, team: str, name: str, principal: PrincipalDep,
                     session: SessionDep, settings: SettingsDep, registry: RegistryDep,
                     forge: ForgeDep) -> Response:
    return render(request, "entity.html", title=f"Application {team}/{name}",
                  **entity_context(session, settings, f"application:{team}/{name}", forge=forge,
                                   principal=principal),
                  behind=_behind(forge, registry, f"applications/{team}/{name}"),
                  **promotion_context(session, settings, forge, team, name))


def _behind(forge: ForgeDep, registry: RegistryDep, unit: str) -> BehindUnit | None:
    """The unit's "behind template" badge (None when current, or not a safe folder)."""
    if not is_safe(unit):
        return None
    return upgrade_service.unit_behind(forge=forge, registry=registry, unit=unit)


def environment_entity(session: Session, settings: Settings, name: str, *, forge: Forge,
                       principal: Principal) -> dict[str, Any]:
    """The catalog part of the environment page; empty when the catalog has not indexed it."""
    try:
        return entity_context(session, settings, f"environment:{name}", forge=forge,
                              principal=principal)
    except NotFound:
        return {}
