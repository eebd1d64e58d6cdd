"""Indexing a real repository: entities, relations, incremental merges, malformed files."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog import service
from catalog.models import Entity, Placement, Relation, TimelineEvent
from gitops.gitreader import GitReader
from tests.catalog import gitops


def _entities(engine: Engine) -> dict[str, Entity]:
    with Session(engine) as s:
        return {e.key: e for e in s.exec(select(Entity)).all()}


def _relations(engine: Engine) -> set[tuple[str, str, str]]:
    with Session(engine) as s:
        return {(r.source, r.type, r.target) for r in s.exec(select(Relation)).all()}


def _placements(engine: Engine) -> dict[tuple[str, str], tuple[int, int, int]]:
    with Session(engine) as s:
        return {(p.namespace, p.environment): (p.cpu_milli, p.memory_bytes, p.storage_bytes)
                for p in s.exec(select(Placement)).all()}


GI = 2 ** 30
API, BATCH, JOBS, EDGE = (f"namespace:payments/payments-{n}" for n in ("api", "batch", "jobs",
                                                                      "edge"))
INDEX, QUERY = "namespace:search/search-index", "namespace:search/search-query"


def test_full_index_entities_and_relations(engine: Engine, repo: gitops.Repo) -> None:
    with Session(engine) as s:
        result = service.reindex(s, forge=GitReader(repo.git_dir))
    assert result.full and result.commit == repo.head and result.removed == []
    assert result.flagged == []
    entities = _entities(engine)
    assert set(entities) == {
        "team:payments", "team:search", "environment:dev", "environment:stage",
        "environment:prod", API, BATCH,
        INDEX, "application:payments/checkout", "application:search/indexer",
    }
    api = entities[API]
    assert (api.kind, api.owner, api.status, api.on_main) == ("namespace", "payments", "merged",
                                                             True)
    assert api.spec["namespace"] == "payments-api"
    assert entities["application:search/indexer"].owner == "search"  # no Component: the folder
    team = entities["team:payments"]
    assert team.title == "Team Payments"
    assert team.spec["owners"] == ["alice"] and team.spec["cost_center"] == "CC-payments"
    assert entities["environment:prod"].spec["tier"] == "prod"
    assert entities["environment:prod"].spec["capacity"]["cpu_milli"] == 64000
    assert _relations(engine) == {
        (API, "ownedBy", "team:payments"),
        (API, "runsIn", "environment:dev"),
        (API, "runsIn", "environment:prod"),
        (BATCH, "ownedBy", "team:payments"),
        (BATCH, "runsIn", "environment:dev"),
        (BATCH, "runsIn", "environment:stage"),
        (INDEX, "ownedBy", "team:search"),
        (INDEX, "runsIn", "environment:stage"),
        (INDEX, "runsIn", "environment:prod"),
        ("application:payments/checkout", "ownedBy", "team:payments"),
        ("application:payments/checkout", "runsIn", API),
        ("application:payments/checkout", "deployedTo", "environment:prod"),
        ("application:search/indexer", "ownedBy", "team:search"),
        ("application:search/indexer", "runsIn", INDEX),
        ("application:search/indexer", "deployedTo", "environment:prod"),
    }
    assert _placements(engine) == {
        (API, "dev"): (1000, 2 * GI, 10 * GI),
        (API, "prod"): (4000, 8 * GI, 50 * GI),
        (BATCH, "dev"): (500, 1 * GI, 5 * GI),
        (BATCH, "stage"): (500, 1 * GI, 5 * GI),
        (INDEX, "stage"): (2000, 4 * GI, 100 * GI),
        (INDEX, "prod"): (8000, 16 * GI, 200 * GI),
    }


def test_merges_update_exactly_the_changed_entities(engine: Engine, repo: gitops.Repo) -> None:
    reader = GitReader(repo.git_dir)
    with Session(engine) as s:
        service.reindex(s, forge=reader)
    before = {k: e.updated_at for k, e in _entities(engine).items()}

    def merge(files: dict[str, str | None]) -> service.IndexResult:
        old = repo.head
        new = repo.commit(files)
        with Session(engine) as s:
            return service.index_commit(s, forge=reader, commit=new,
                                        changed=repo.changed(old, new))

    # add a tenant
    added = merge(gitops.tenant("search", "search-query", {"dev": None}))
    assert (added.added, added.changed, added.removed) == ([QUERY], [], [])
    # change a tenant's prod quota
    prod_quota = "tenants/payments/payments-api/envs/prod/quota.yaml"
    changed = merge({prod_quota: gitops.quota("6", "8Gi", "50Gi")})
    assert (changed.added, changed.changed, changed.removed) == (
        [], [API], [])
    assert _placements(engine)[(API, "prod")][0] == 6000
    # rename a tenant (git mv: both sides of the rename are changed paths)
    old_files = {p: None for p in repo.files if p.startswith("tenants/payments/payments-batch/")}
    renamed = merge({**old_files, **gitops.tenant("payments", "payments-jobs", {"dev": None,
                                                                       "stage": None})})
    assert (renamed.added, renamed.changed, renamed.removed) == (
        [JOBS], [], [BATCH])
    # remove a tenant: its application now points at a namespace that is gone
    removed = merge({p: None for p in repo.files if p.startswith("tenants/search/search-index/")})
    assert (removed.added, removed.changed, removed.removed) == (
        [], [], [INDEX])

    after = _entities(engine)
    untouched = set(before) - {API, BATCH,
                               INDEX, "application:search/indexer"}
    assert all(after[k].updated_at == before[k] for k in untouched)
    # decommissioned, not deleted (issue 15): off main, no relations or placements
    assert {after[k].status for k in (BATCH, INDEX)} == {"decommissioned"}
    assert not after[BATCH].on_main and not after[INDEX].on_main
    assert not [k for k in _placements(engine) if k[0] in (BATCH, INDEX)]
    assert after[JOBS].on_main
    indexer = after["application:search/indexer"]
    assert indexer.flagged
    assert indexer.problems == ["runs in unknown namespace 'search/search-index'"]
    rels = _relations(engine)
    assert not any("payments/payments-batch" in x or "search/search-index" in x
                   for x, _t, _y in rels if not x.startswith("application:"))
    # the application still points at the namespace it names (and is flagged for it)
    assert ("application:search/indexer", "runsIn", INDEX) in rels
    assert (QUERY, "runsIn", "environment:dev") in rels
    with Session(engine) as s:
        events = s.exec(select(TimelineEvent).where(
            col(TimelineEvent.entity).in_([BATCH,
                                           JOBS]))).all()
    assert {(e.entity, e.event) for e in events} == {
        (BATCH, "catalog.removed"),
        (JOBS, "catalog.added")}


def test_owner_removed_flags_orphans_and_return_clears_them(engine: Engine,
                                                            repo: gitops.Repo) -> None:
    reader = GitReader(repo.git_dir)
    with Session(engine) as s:
        service.reindex(s, forge=reader)
    old = repo.head
    new = repo.commit({p: None for p in list(repo.files) if p.startswith("teams/search/")})
    with Session(engine) as s:
        result = service.index_commit(s, forge=reader, commit=new,
                                      changed=repo.changed(old, new))
    assert result.removed == ["team:search"]
    assert result.flagged == ["application:search/indexer", INDEX]
    entities = _entities(engine)
    assert entities[INDEX].orphaned
    assert entities[INDEX].problems == [
        "owner team 'search' does not exist (no teams/search/)"]
    assert not entities[API].orphaned
    back = repo.commit(gitops.team("search"))
    with Session(engine) as s:
        service.index_commit(s, forge=reader, commit=back, changed=repo.changed(new, back))
    assert not _entities(engine)[INDEX].flagged


def test_malformed_files_flag_their_entity_and_the_rest_is_indexed(tmp_path, engine: Engine
                                                                   ) -> None:
    from tests.catalog.conftest import base_files

    repo = gitops.Repo(tmp_path / "bad.git")
    files = base_files()
    files["teams/search/team.yaml"] = "owners: [alice\nmembers: {"  # bad YAML
    files["tenants/payments/payments-batch/base/catalog-info.yaml"] = (
        "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: x\n"
        "spec:\n  type: kubernetes-namespace\n")  # missing owner
    files.update(gitops.tenant("payments", "payments-edge", {"qa": None}))  # unknown environment
    bad_quota = gitops.quota("lots", "8Gi", "50Gi")
    files["tenants/payments/payments-api/envs/prod/quota.yaml"] = bad_quota
    repo.commit(files)
    with Session(engine) as s:
        result = service.reindex(s, forge=GitReader(repo.git_dir))
    entities = _entities(engine)
    assert len(entities) == 11
    assert result.flagged == [API, BATCH,
                              EDGE, "team:search"]
    assert entities["team:search"].problems[0].startswith(
        "teams/search/team.yaml: invalid YAML (line 2): ")
    assert entities[BATCH].problems == [
        "tenants/payments/payments-batch/base/catalog-info.yaml: spec.owner is missing"]
    assert entities[EDGE].problems == [
        "runs in unknown environment 'qa' (no envs/qa/infra.yaml)"]
    assert "spec.hard.requests.cpu" in entities[API].problems[0]
    # the rest is indexed in full
    assert not entities[INDEX].flagged
    assert entities[INDEX].spec["environments"]["prod"]["cpu_milli"] == 8000
