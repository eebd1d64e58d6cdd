"""A removed entity stays in the catalog as ``decommissioned`` (issue 15): its timeline, its
quotas (the cost it ran at) and since when; lists hide it unless asked; the same name re-created
later revives the row. Real git, both databases."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog import detail, query, service
from catalog.cost import DEFAULT_PRICE_SHEET, load_price_sheet
from catalog.models import Entity, Kind, Placement, Relation, TimelineEvent
from gitops.gitreader import GitReader
from tests.catalog import gitops

INDEX = "namespace:search/search-index"
PRICES = load_price_sheet(DEFAULT_PRICE_SHEET)


def _merge(engine: Engine, repo: gitops.Repo, files: dict[str, str | None]) -> str:
    old = repo.head
    new = repo.commit(files)
    with Session(engine) as s:
        service.index_commit(s, forge=GitReader(repo.git_dir), commit=new,
                             changed=repo.changed(old, new))
    return new


def _remove_index(engine: Engine, repo: gitops.Repo) -> str:
    return _merge(engine, repo, {p: None for p in list(repo.files)
                                 if p.startswith("tenants/search/search-index/")})


def _names(engine: Engine, **filters: str) -> list[str]:
    with Session(engine) as s:
        page = query.list_entities(s, kind=Kind.namespace, prices=PRICES, **filters)
    return [i.key for i in page.items]


def test_a_removed_namespace_is_kept_decommissioned_with_timeline_and_cost(
        engine: Engine, indexed: gitops.Repo) -> None:
    with Session(engine) as s:
        service.record_timeline(s, entity=INDEX, event="pr.merged", actor="rui",
                                detail={"change": 7}, commit=True)
        cost_before = detail.entity_detail(s, key=INDEX, prices=PRICES)["cost"]
    commit = _remove_index(engine, indexed)
    with Session(engine) as s:
        row = s.exec(select(Entity).where(Entity.key == INDEX)).one()
        assert (row.status, row.previous_status, row.on_main) == ("decommissioned", "merged",
                                                                  False)
        assert row.decommissioned_at is not None and row.commit == commit
        assert row.spec["environments"]  # the quotas it ran with
        assert not s.exec(select(Placement).where(Placement.namespace == INDEX)).all()
        assert not s.exec(select(Relation).where(Relation.source == INDEX)).all()
        events = [e.event for e in s.exec(select(TimelineEvent).where(
            TimelineEvent.entity == INDEX).order_by(col(TimelineEvent.id))).all()]
        assert events == ["pr.merged", "catalog.removed"]
        page = detail.entity_detail(s, key=INDEX, prices=PRICES)
        assert page["status"] == "decommissioned" and page["decommissioned_at"]
        assert page["cost"] == cost_before  # what it cost while it ran
        # the team's roll-up counts only what is on main
        team = detail.entity_detail(s, key="team:search", prices=PRICES)
        assert "stage" not in team["cost"]["environments"]
    assert INDEX not in _names(engine)
    assert _names(engine, status="decommissioned") == [INDEX]
    assert INDEX not in _names(engine, q="search-index")


def test_removal_jobs_and_late_statuses_leave_decommissioned_alone(
        engine: Engine, indexed: gitops.Repo) -> None:
    _remove_index(engine, indexed)
    with Session(engine) as s:
        for status in ("merged", "applying", "applied", "failed", "committed", "synced"):
            service.set_status(s, entity=INDEX, status=status)
        s.commit()
        assert s.exec(select(Entity.status).where(Entity.key == INDEX)).one() == "decommissioned"
        # a PR re-creating the name, then closed unmerged: back to decommissioned, row kept
        service.set_status(s, entity=INDEX, status="requested", commit=True)
        assert s.exec(select(Entity.status).where(Entity.key == INDEX)).one() == "requested"
        service.set_status(s, entity=INDEX, status="closed", commit=True)
        assert s.exec(select(Entity.status).where(Entity.key == INDEX)).one() == "decommissioned"


def test_nobody_sets_decommissioned_by_hand(engine: Engine, indexed: gitops.Repo) -> None:
    import pytest

    from portal.errors import ValidationFailed

    with Session(engine) as s, pytest.raises(ValidationFailed) as err:
        service.set_status(s, entity="team:search", status="decommissioned")
    assert err.value.field == "status"


def test_the_same_name_re_created_revives_the_row(engine: Engine, indexed: gitops.Repo) -> None:
    _remove_index(engine, indexed)
    with Session(engine) as s:
        first = s.exec(select(Entity).where(Entity.key == INDEX)).one()
        first_id, first_created = first.id, first.created_at
    _merge(engine, indexed, gitops.tenant("search", "search-index", {"dev": None}))
    with Session(engine) as s:
        row = s.exec(select(Entity).where(Entity.key == INDEX)).one()
        assert (row.status, row.on_main, row.decommissioned_at) == ("merged", True, None)
        assert row.created_at >= first_created and first_id is not None
        assert s.exec(select(Placement.environment).where(
            Placement.namespace == INDEX)).all() == ["dev"]
        events = [e.event for e in s.exec(select(TimelineEvent).where(
            TimelineEvent.entity == INDEX).order_by(col(TimelineEvent.id))).all()]
        assert events == ["catalog.removed", "catalog.revived"]
    assert INDEX in _names(engine)


def test_a_full_reindex_decommissions_too_and_keeps_what_it_decommissioned(
        engine: Engine, indexed: gitops.Repo) -> None:
    indexed.commit({p: None for p in list(indexed.files)
                    if p.startswith("applications/search/indexer/")})
    with Session(engine) as s:
        result = service.reindex(s, forge=GitReader(indexed.git_dir))
        assert result.removed == ["application:search/indexer"]
        service.reindex(s, forge=GitReader(indexed.git_dir))  # again: still there, once
        row = s.exec(select(Entity).where(Entity.key == "application:search/indexer")).one()
        assert row.status == "decommissioned"
        events = s.exec(select(TimelineEvent.event).where(
            TimelineEvent.entity == "application:search/indexer")).all()
        assert events == ["catalog.removed"]
