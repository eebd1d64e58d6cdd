"""Build the catalog from a commit of the GitOps repository: full, or only the changed entities.

Three phases: read the entities' files in one batch (``gitreader``), parse them (``parse``, pure),
then write rows in bulk and re-derive the cross-entity problems (orphaned owner, unknown
environment or namespace) for every entity a change can affect.

An entity whose files left main is **decommissioned**, not deleted (issue 15): its row keeps
its spec (the quotas it ran with, so its cost stays readable), its timeline and creation time,
and takes status ``decommissioned``, ``on_main`` false and ``decommissioned_at``; its relations
and placements go (roll-ups, capacity and cross-entity checks count only what is on main).
Re-creating the same name later **revives** that row: one key, one timeline that shows the
earlier life and its decommissioning; ``created_at`` restarts and ``decommissioned_at`` clears.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlmodel import Session, col

from catalog import search, substring
from catalog.models import Entity, IndexState, Kind, Placement, Relation, Status, TimelineEvent
from catalog.parse import Parsed, parse_entity
from gitops.gitreader import TreeSource
from gitops.layout import FOLDERS, key_for_path, unit_dir
from portal.db import utcnow

CHUNK = 500  # bound IN (...) lists: SQLite and psycopg both cap bound parameters


@dataclass
class IndexResult:
    commit: str
    full: bool
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Context:
    """What cross-entity checks look up: which teams, environments and namespaces exist."""

    teams: set[str]
    environments: set[str]
    namespaces: set[str]  # entity keys


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def derive(kind: str, owner: str, spec: dict[str, Any], parse_problems: list[str],
           ctx: Context) -> tuple[list[str], bool]:
    """All problems of an entity (its own parse problems plus broken references), and whether
    its owner team is gone."""
    problems = list(parse_problems)
    orphaned = False
    if kind in (Kind.namespace, Kind.application) and owner not in ctx.teams:
        orphaned = True
        problems.append(f"owner team {owner!r} does not exist (no teams/{owner}/)")
    if kind == Kind.namespace:
        for env in spec.get("environments", {}):
            if env not in ctx.environments:
                problems.append(f"runs in unknown environment {env!r} (no envs/{env}/infra.yaml)")
    if kind == Kind.application:
        for env in spec.get("environments") or ([spec["environment"]]
                                                 if spec.get("environment") else []):
            if env not in ctx.environments:
                problems.append(f"deployed to unknown environment {env!r}")
    target = _app_target(owner, spec) if kind == Kind.application else None
    if target is not None and target not in ctx.namespaces:
        problems.append(f"runs in unknown namespace {target.partition(':')[2]!r}")
    return problems, orphaned


def _search_text(p: Parsed) -> str:
    extra = [str(p.spec.get("namespace", "")), str(p.spec.get("tier", ""))]
    return " ".join([p.name, p.title, p.description, p.owner, *p.tags, *extra]).lower()


def _row(p: Parsed, commit: str, now: datetime, ctx: Context,
         kept: dict[str, Any] | None) -> dict[str, Any]:
    problems, orphaned = derive(p.kind, p.owner, p.spec, p.problems, ctx)
    status = kept["status"] if kept else Status.merged.value
    revived = kept is not None and not kept["on_main"] and kept["decommissioned_at"] is not None
    if status in ("", Status.requested.value, Status.decommissioned.value):
        status = Status.merged.value  # it is on main now
    return {
        "key": p.key, "kind": p.kind, "name": p.name, "owner": p.owner, "title": p.title,
        "description": p.description, "search": _search_text(p), "status": status,
        "previous_status": "", "sync": kept["sync"] if kept else "",
        "health": kept["health"] if kept else "", "on_main": True, "flagged": bool(problems),
        "orphaned": orphaned, "parse_problems": p.problems, "problems": problems,
        "spec": p.spec, "path": p.path, "commit": commit,
        "created_at": kept["created_at"] if kept and not revived else now, "updated_at": now,
        "decommissioned_at": None,
    }


def _group(files: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    grouped: dict[str, dict[str, bytes]] = defaultdict(dict)
    for path, content in files.items():
        key = key_for_path(path)
        if key is not None:
            grouped[key][path] = content
    return grouped


def _kept(session: Session, keys: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Status, sync, health and creation time of existing rows (they survive a re-index)."""
    columns = (col(Entity.key), col(Entity.status), col(Entity.sync), col(Entity.health),
               col(Entity.created_at), col(Entity.on_main), col(Entity.decommissioned_at))
    rows: list[Any] = []
    if keys is None:
        rows = list(session.execute(select(*columns)))
    else:
        for part in _chunks(keys):
            rows.extend(session.execute(select(*columns).where(col(Entity.key).in_(part))))
    return {r.key: {"status": r.status, "sync": r.sync, "health": r.health,
                    "created_at": r.created_at, "on_main": r.on_main,
                    "decommissioned_at": r.decommissioned_at} for r in rows}


def _delete_keys(session: Session, keys: Sequence[str]) -> None:
    for part in _chunks(keys):
        session.execute(delete(Relation).where(col(Relation.source).in_(part)))
        session.execute(delete(Placement).where(col(Placement.namespace).in_(part)))
        session.execute(delete(Entity).where(col(Entity.key).in_(part)))
    search.delete_terms(session, keys)


def _decommission(session: Session, keys: Sequence[str], commit: str, now: datetime) -> None:
    """Keep the rows of ``keys`` (their files left main) as ``decommissioned``: the status
    before it is kept in ``previous_status``; relations and placements go, so nothing on main
    counts them any more."""
    for part in _chunks(keys):
        session.execute(delete(Relation).where(col(Relation.source).in_(part)))
        session.execute(delete(Placement).where(col(Placement.namespace).in_(part)))
        session.execute(update(Entity).where(col(Entity.key).in_(part)).values(
            previous_status=col(Entity.status), status=Status.decommissioned.value,
            on_main=False, sync="", health="", flagged=False, orphaned=False, problems=[],
            commit=commit, updated_at=now, decommissioned_at=now))
    search.delete_terms(session, keys)  # search, like the lists, hides decommissioned rows


def _insert(session: Session, parsed: Sequence[Parsed], rows: list[dict[str, Any]]) -> None:
    # Core inserts (executemany): the ORM's bulk path costs more than the database here.
    conn = session.connection()
    if rows:
        conn.execute(insert(Entity.__table__), rows)  # type: ignore[attr-defined]
        search.write_terms(session, rows)
    relations = [{"source": p.key, "type": t, "target": target}
                 for p in parsed for t, target in p.relations]
    if relations:
        conn.execute(insert(Relation.__table__), relations)  # type: ignore[attr-defined]
    placements = [{"namespace": p.key, "environment": env, "owner": p.owner, **quota}
                  for p in parsed if p.kind == Kind.namespace
                  for env, quota in p.spec.get("environments", {}).items()]
    if placements:
        conn.execute(insert(Placement.__table__), placements)  # type: ignore[attr-defined]


def _save_state(session: Session, commit: str) -> None:
    state = session.get(IndexState, 1) or IndexState(id=1)
    state.commit = commit
    state.indexed_at = utcnow()
    session.add(state)


def full_index(session: Session, *, source: TreeSource, commit: str) -> IndexResult:
    """Rebuild every entity from ``commit``; rows only in open PRs (``on_main`` false) and
    decommissioned rows stay; entities gone from main are decommissioned."""
    started = time.perf_counter()
    grouped = _group(source.read_tree(sorted(FOLDERS.values()), commit))
    parsed = [p for key, files in sorted(grouped.items())
              if (p := parse_entity(key, files)) is not None]
    kept = _kept(session, None)
    ctx = Context(teams={p.name for p in parsed if p.kind == Kind.team},
                  environments={p.name for p in parsed if p.kind == Kind.environment},
                  namespaces={p.key for p in parsed if p.kind == Kind.namespace})
    now = utcnow()
    rows = [_row(p, commit, now, ctx, kept.get(p.key)) for p in parsed]
    new_keys = {p.key for p in parsed}
    removed = sorted(k for k, v in kept.items() if v["on_main"] and k not in new_keys)
    session.execute(delete(Relation))
    session.execute(delete(Placement))
    _decommission(session, removed, commit, now)
    _delete_keys(session, sorted(k for k in kept if k in new_keys))
    _insert(session, parsed, rows)
    for key in removed:
        session.add(TimelineEvent(entity=key, event="catalog.removed", actor="catalog",
                                  detail={"commit": commit}, at=now))
    _save_state(session, commit)
    session.commit()
    substring.after_bulk_write(session)
    return IndexResult(commit=commit, full=True,
                       added=sorted(new_keys - kept.keys()),
                       changed=sorted(new_keys & kept.keys()), removed=removed,
                       flagged=[r["key"] for r in rows if r["flagged"]],
                       seconds=time.perf_counter() - started)


def incremental_index(session: Session, *, source: TreeSource, commit: str,
                      keys: set[str]) -> IndexResult:
    """Re-read only ``keys`` at ``commit``, then re-derive what depends on them."""
    started = time.perf_counter()
    ordered = sorted(keys)
    grouped = _group(source.read_tree([unit_dir(k) for k in ordered], commit)) if keys else {}
    parsed = [p for k in ordered if (p := parse_entity(k, grouped.get(k, {}))) is not None]
    present = {p.key for p in parsed}
    kept = _kept(session, ordered)
    removed = sorted(k for k in ordered if k not in present and kept.get(k, {}).get("on_main"))
    now = utcnow()
    _decommission(session, removed, commit, now)
    _delete_keys(session, sorted(present & kept.keys()))
    session.flush()
    # Found after the delete, so only other entities that point at the changed ones.
    dependents = sorted(_dependents(session, sorted(present | set(removed))))
    ctx = _context_from_db(session, parsed, dependents)
    rows = [_row(p, commit, now, ctx, kept.get(p.key)) for p in parsed]
    _insert(session, parsed, rows)
    flagged = [r["key"] for r in rows if r["flagged"]] + _rederive(session, ctx, dependents)
    result = IndexResult(commit=commit, full=False,
                         added=sorted(k for k in present if not kept.get(k, {}).get("on_main")),
                         changed=sorted(k for k in present if kept.get(k, {}).get("on_main")),
                         removed=removed, flagged=sorted(flagged))
    for event, entity_keys in (("catalog.added", result.added),
                               ("catalog.changed", result.changed),
                               ("catalog.removed", result.removed)):
        for key in entity_keys:
            revived = event == "catalog.added" and kept.get(key, {}).get("decommissioned_at")
            # the same name again, after its decommissioning: the same row and timeline
            session.add(TimelineEvent(entity=key,
                                      event="catalog.revived" if revived else event,
                                      actor="catalog",
                                      detail={"commit": commit}, at=now))
    _save_state(session, commit)
    session.commit()
    result.seconds = time.perf_counter() - started
    return result


def _app_target(owner: str, spec: dict[str, Any]) -> str | None:
    tenant = spec.get("tenant")
    return f"namespace:{spec.get('team') or owner}/{tenant}" if tenant else None


def _context_from_db(session: Session, parsed: Sequence[Parsed],
                     dependents: Sequence[str]) -> Context:
    """Teams and environments are few and loaded whole; of the namespaces only those that
    the applications in play point at are looked up."""
    names = session.execute(
        select(col(Entity.kind), col(Entity.name)).where(
            col(Entity.on_main), col(Entity.kind).in_([Kind.team, Kind.environment]))).all()
    ctx = Context(teams={n for k, n in names if k == Kind.team},
                  environments={n for k, n in names if k == Kind.environment},
                  namespaces=set())
    for p in parsed:
        if p.kind == Kind.team:
            ctx.teams.add(p.name)
        elif p.kind == Kind.environment:
            ctx.environments.add(p.name)
        elif p.kind == Kind.namespace:
            ctx.namespaces.add(p.key)
    targets = {t for p in parsed if p.kind == Kind.application
               if (t := _app_target(p.owner, p.spec))}
    apps = [k for k in dependents if k.startswith("application:")]
    for part in _chunks(apps):
        targets |= set(session.execute(select(col(Relation.target)).where(
            col(Relation.source).in_(part), col(Relation.type) == "runsIn")).scalars())
    wanted = sorted(targets - ctx.namespaces)
    for part in _chunks(wanted):
        ctx.namespaces |= set(session.execute(select(col(Entity.key)).where(
            col(Entity.key).in_(part), col(Entity.on_main))).scalars())
    return ctx


def _dependents(session: Session, keys: Sequence[str]) -> set[str]:
    """Entities whose derived problems can change when ``keys`` change."""
    out: set[str] = set()
    teams = [k.partition(":")[2] for k in keys if k.startswith("team:")]
    envs = [k.partition(":")[2] for k in keys if k.startswith("environment:")]
    namespaces = [k for k in keys if k.startswith("namespace:")]
    for part in _chunks(teams):
        out |= set(session.execute(select(col(Entity.key)).where(
            col(Entity.owner).in_(part),
            col(Entity.kind).in_([Kind.namespace, Kind.application]))).scalars())
    for part in _chunks(envs):
        out |= set(session.execute(select(col(Placement.namespace)).where(
            col(Placement.environment).in_(part))).scalars())
    for part in _chunks(namespaces):
        out |= set(session.execute(select(col(Relation.source)).where(
            col(Relation.target).in_(part), col(Relation.type) == "runsIn")).scalars())
    return out


def _rederive(session: Session, ctx: Context, keys: Sequence[str]) -> list[str]:
    """Recompute the problems of ``keys`` (entities that were not re-read); flagged keys."""
    flagged: list[str] = []
    for part in _chunks(keys):
        for row in session.execute(select(Entity).where(col(Entity.key).in_(part))).scalars():
            if not row.on_main:
                continue
            problems, orphaned = derive(row.kind, row.owner, row.spec, row.parse_problems, ctx)
            if problems != row.problems or orphaned != row.orphaned:
                row.problems, row.orphaned, row.flagged = problems, orphaned, bool(problems)
                session.add(row)
            if row.flagged:
                flagged.append(row.key)
    return flagged
