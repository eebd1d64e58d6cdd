"""The gate a merge passes: main-dependent checks re-evaluated under per-scope merge locks, and
the open changes that a moved ``main`` affects re-checked, their statuses updated on the forge.

- ``scopes(change)`` — the lock scopes of a change: ``env:<env>`` for each environment it
  touches, ``name:<scope>:<name>`` for each shared-scope name its unit generates;
- ``recheck_change(session, *, forge, change, code_owners)`` — ``merge_checks.recheck`` stored
  on the change (checks, checks_green) and reported to the forge as ``caas/<check>`` statuses
  (LocalForge check rows; commit statuses on GitHub). Returns the fresh results;
- ``recheck_open_changes(session, *, forge, code_owners, envs, units, teams=())`` — after
  ``main`` moved: every open change that touches one of ``envs``, generates a name of
  ``units`` or belongs to one of ``teams`` is re-checked. On GitHub, branch protection with
  "Require branches to be up to date before merging" plus these statuses as required checks
  gives the same guarantee (README);
- ``gone_teams(forge, units) -> list[str]`` — the teams among ``units`` (``teams/<team>``)
  that main no longer has: a team decommission merged, and its team's open changes are
  re-checked (red on ``team``, ``scaffolder.merge_checks``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from gitops import object_names
from gitops.forges.base import Forge
from portal.db import utcnow
from portal.errors import CaasError
from scaffolder import merge_checks
from scaffolder.changeset import teams_on_main
from scaffolder.models import Change, CheckResult

log = logging.getLogger(__name__)
OPEN = ("pending", "open")


def scopes(change: Change) -> list[str]:
    names = object_names.generated_names(change.unit_key)
    return [f"env:{e}" for e in change.envs] + [f"name:{s}:{n}" for s, n in names]


def reservation_order(changes: Any = Change) -> Any:
    """The SQL expression that orders reservations: a change's ``reservation`` when it
    reserved anew (reopened on the forge, ``scaffolder.reopen``), else its id. ``changes``:
    ``Change`` or an alias of it."""
    return func.coalesce(changes.reservation, changes.id)


def open_units(session: Session, *, before: Change | None = None) -> list[str]:
    """The units of the open changes; with ``before``, only those reserved earlier (an earlier
    place in ``reservation_order``, the change id breaking a tie) — what the ``collisions`` of
    change ``before`` count against.

    Of two changes whose units generate one name, the earlier reservation wins: the later one
    is red on it (and refused outright when it would create the unit, ``scaffolder.service``),
    the earlier is not red on the later. Two requests racing past the request's name check
    therefore end with exactly one that can merge, not two red ones. A change reopened on the
    forge is a new reservation: whatever was reserved while it was closed comes first."""
    stmt = select(Change.unit_key).where(col(Change.status).in_(OPEN))
    if before is not None:
        place = before.reservation or before.id or 0
        order = reservation_order()
        stmt = stmt.where(col(Change.id) != before.id,
                          or_(order < place, and_(order == place, col(Change.id) < before.id)))
    return list(session.exec(stmt).all())


def recheck_change(session: Session, *, forge: Forge, change: Change,
                   code_owners: tuple[str | None, Sequence[str]]) -> list[CheckResult]:
    fresh = merge_checks.recheck(forge, change, open_units=open_units(session, before=change),
                                 code_owners=code_owners)
    return store_checks(session, forge=forge, change=change, fresh=fresh)


def store_checks(session: Session, *, forge: Forge, change: Change,
                 fresh: list[CheckResult]) -> list[CheckResult]:
    """Merge ``fresh`` results into the change's checks (by name), recompute ``checks_green``,
    commit, then publish each fresh result as the forge check ``caas/<name>``; ``fresh``."""
    change.checks = merge_checks.merged_into(change.checks, fresh)
    results = [CheckResult.model_validate(c) for c in change.checks]
    change.checks_green = bool(results) and all(c.state == "success" for c in results)
    change.updated_at = utcnow()
    session.add(change)
    session.commit()  # the forge writes through its own connection
    if change.number is not None:
        forge.set_checks(change.number, [c.as_status() for c in fresh])
    return fresh


def gone_teams(forge: Forge, units: Iterable[str]) -> list[str]:
    named = {u.split("/")[1] for u in units if u.startswith("teams/") and u.count("/") == 1}
    return sorted(named - teams_on_main(forge)) if named else []


def recheck_open_changes(session: Session, *, forge: Forge,
                         code_owners: tuple[str | None, Sequence[str]], envs: Iterable[str],
                         units: Iterable[str], teams: Iterable[str] = ()) -> list[int]:
    """Re-check the open changes affected by what just landed; returns their ids."""
    envs, teams = set(envs), set(teams)
    names = {n for u in units for n in object_names.generated_names(u)}
    rows = session.exec(select(Change).where(Change.status == "open",
                                             col(Change.number).is_not(None))
                        .order_by(col(Change.id))).all()
    done: list[int] = []
    for other in rows:
        if not (set(other.envs) & envs or set(object_names.generated_names(other.unit_key))
                & names or other.team in teams):
            continue
        try:
            recheck_change(session, forge=forge, change=other, code_owners=code_owners)
        except CaasError as exc:  # one change that cannot be re-checked does not stop the rest
            session.rollback()
            log.warning("re-check of change %s failed: %s", other.id, exc.message)
            continue
        done.append(other.id or 0)
    return done
