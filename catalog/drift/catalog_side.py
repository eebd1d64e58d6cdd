"""The catalog side: indexed rows against main, read through the indexer's own parser.

Three kinds of difference, each one finding on the entity with the fix "reindex":

- a row the catalog shows as on main whose unit is no longer on main (left behind);
- a unit on main with no row (never indexed, or indexed before it was added);
- a row whose fields (owner, title, description, problems, spec) differ from what main says,
  naming the fields.

Rows only on their way (``on_main`` false: an open PR's placeholder) are not compared.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from catalog.drift.models import Finding, Fix, Side, SideResult
from catalog.drift.snapshot import Snapshot
from catalog.models import Entity

_FIELDS = ("owner", "title", "description")


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _team(key: str, owner: str) -> str:
    kind, _, name = key.partition(":")
    return name if kind == "team" else owner


def differences(row: Any, parsed: Any) -> list[str]:
    """The fields of ``row`` (an ``Entity`` row) that differ from ``parsed`` (``Parsed``)."""
    fields = [f for f in _FIELDS if getattr(row, f) != getattr(parsed, f)]
    if list(row.parse_problems) != list(parsed.problems):
        fields.append("problems")
    spec_row, spec_main = _plain(row.spec), _plain(parsed.spec)
    for name in sorted(set(spec_row) | set(spec_main)):
        if spec_row.get(name) != spec_main.get(name):
            fields.append(f"spec.{name}")
    return fields


def check(session: Session, snapshot: Snapshot, *, keys: Iterable[str] | None = None
          ) -> SideResult:
    """Compare every row on main (or only ``keys``) with ``snapshot``."""
    started = time.perf_counter()
    result = SideResult(side=Side.catalog)
    query = select(Entity).where(col(Entity.on_main))
    wanted = set(keys) if keys is not None else None
    rows = {r.key: r for r in session.execute(query).scalars()
            if wanted is None or r.key in wanted}
    on_main = {k for k in snapshot.units if snapshot.parsed(k) is not None}
    if wanted is not None:
        on_main &= wanted
    for key in sorted(set(rows) | on_main):
        row, parsed = rows.get(key), snapshot.parsed(key) if key in on_main else None
        result.checked += 1
        if parsed is None and row is not None:
            result.findings.append(Finding(
                entity=key, side=Side.catalog, subject=key, fix=Fix.reindex, fix_target=key,
                what=f"catalog row left behind: {row.path or key} is not on main "
                     f"(indexed from {row.commit[:12] or 'an unknown commit'})",
                team=_team(key, row.owner)))
        elif row is None and parsed is not None:
            result.findings.append(Finding(
                entity=key, side=Side.catalog, subject=key, fix=Fix.reindex, fix_target=key,
                what=f"not in the catalog: {parsed.path} is on main at "
                     f"{snapshot.commit[:12]} but has no row", team=_team(key, parsed.owner)))
        elif row is not None and parsed is not None:
            fields = differences(row, parsed)
            if fields:
                detail = "\n".join(
                    f"{f}: catalog {_shown(row, f)!s} / main {_shown(parsed, f)!s}"
                    for f in fields)
                result.findings.append(Finding(
                    entity=key, side=Side.catalog, subject=key, fix=Fix.reindex,
                    fix_target=key, what="catalog differs from main: " + ", ".join(fields),
                    detail=detail[:20_000], team=_team(key, row.owner)))
    result.seconds = time.perf_counter() - started
    return result


def _shown(obj: Any, field: str) -> str:
    if field.startswith("spec."):
        value = (obj.spec or {}).get(field[5:])
    elif field == "problems":
        value = obj.parse_problems if isinstance(obj, Entity) else obj.problems
    else:
        value = getattr(obj, field)
    return json.dumps(_plain(value), sort_keys=True)[:500]
