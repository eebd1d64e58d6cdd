"""An entity page's actions and open changes.

- ``entity_actions(forge, principal, entity, team_changes=())``: "Change" (every unit),
  "Remove" (team, namespace, application) and "Uninstall" (an installed environment: its
  Change form with ``installed: false``), each judged by the scaffolder's own rules —
  ``changeset.change_decision`` (what ``prepare`` authorizes for an update),
  ``decommission.refusal`` (what ``prepare_decommission`` raises: permission, dependants, a
  team's open changes) and ``uninstall.uninstall_refusal`` (what ``prepare`` raises for
  ``installed: false``) — so a button the viewer cannot use
  is shown disabled with the very reason the POST would give;
- ``promote_refusal(principal, entity)``: why "Promote" (on an application's promotion card) is
  disabled, by ``promotion.promote_decision``;
- ``open_change_links(session, entity)``: its open pull requests, each linking to its change
  page (``scaffolder.review.open_changes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlmodel import Session

from gitops.forges.base import Forge
from portal.auth.principal import Principal
from portal.errors import CaasError
from scaffolder import changeset, decommission, promotion, uninstall
from scaffolder import review as scaffolder_review
from scaffolder.models import ChangePublic


@dataclass(frozen=True)
class EntityAction:
    name: str  # change | remove | uninstall
    label: str
    allowed: bool
    reason: str  # why not, in words ("" when allowed)
    href: str = ""  # a link (GET), or
    post: str = ""  # a form posting ``unit`` here
    help: str = ""


def _remove(forge: Forge, principal: Principal, unit: str, kind: str,
            team_changes: Sequence[ChangePublic]) -> EntityAction:
    try:
        refused = decommission.refusal(forge, principal, unit=unit, open_changes=team_changes)
    except CaasError as exc:  # the repository cannot be read now: say so, offer nothing
        refused = exc
    reason = refused.message.removeprefix("unit: ") if refused is not None else ""
    return EntityAction("remove", "Remove", refused is None, reason, post="/decommission",
                        help=f"Remove opens a pull request that deletes this {kind}'s files; "
                        "after its merge the reconciler removes it from the clusters.")


def entity_actions(forge: Forge, principal: Principal, entity: dict[str, Any],
                   team_changes: Sequence[ChangePublic] = ()) -> list[EntityAction]:
    """The actions of an entity on main (none for one only requested or decommissioned);
    ``team_changes``: a team's open changes (``scaffolder.review.open_changes(team=…)``),
    which hold its "Remove" disabled."""
    unit, kind = str(entity.get("path") or ""), str(entity.get("kind") or "")
    if not unit or not entity.get("on_main"):
        return []
    may_change = changeset.change_decision(principal, unit=unit)
    actions = [EntityAction("change", "Change", may_change.allowed,
                            "" if may_change else may_change.reason,
                            href=f"/change?unit={quote(unit, safe='/')}")]
    if kind in decommission.KINDS:
        actions.append(_remove(forge, principal, unit, kind, team_changes))
    elif kind == "environment" and (entity.get("spec") or {}).get("installed", True):
        reason = "" if may_change else may_change.reason
        if not reason:
            refused: CaasError | None
            try:
                refused = uninstall.uninstall_refusal(forge, env=unit.split("/")[-1],
                                                      ref=forge.head())
            except CaasError as exc:  # the repository cannot be read now: say so
                refused = exc
            reason = refused.message.removeprefix("installed: ") if refused else ""
        actions.append(EntityAction(
            "uninstall", "Uninstall", not reason, reason,
            href=f"/change?unit={quote(unit, safe='/')}&installed=false",
            help="Uninstall opens the Change form with `installed: false`: after its merge the "
                 "environment's Terraform units are destroyed in reverse order."))
    return actions


def promote_refusal(principal: Principal, entity: dict[str, Any]) -> str:
    """Why ``principal`` may not promote this application or namespace ("" when allowed, or
    neither): ``scaffolder.promotion.promote_decision``, the rule both plans apply."""
    if entity.get("kind") not in ("application", "namespace"):
        return ""
    decision = promotion.promote_decision(principal, team=str(entity.get("owner") or ""))
    return "" if decision else decision.reason


def open_change_links(session: Session, entity: str) -> list[dict[str, Any]]:
    """``[{"url", "label", "title", "author", "checks_green"}]`` of the entity's open PRs."""
    return [{"url": f"/changes/{c.id}", "label": f"#{c.number}" if c.number else "draft",
             "title": c.title, "author": c.author, "checks_green": c.checks_green}
            for c in scaffolder_review.open_changes(session, entity=entity)]
