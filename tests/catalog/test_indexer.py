"""Indexing a real repository: entities, relations, incremental merges, malformed files."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from catalog import service
from catalog.gitreader import GitReader
from catalog.models import Entity, Placement, Relation, TimelineEvent
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


def test_full_index_entities_and_relations(engine: Engine, repo: gitops.Repo) -> None:
    with Session(engine) as s:
        result = service.reindex(s, forge=GitReader(repo.git_dir))
    assert result.full and result.commit == repo.head and result.removed == []
    assert result.flagged == []
    entities = _entities(engine)
    assert set(entities) == {
        "team:payments", "team:search", "environment:dev", "environment:stage",
        "environment:prod", "namespace:payments/api", "namespace:payments/batch",
        "namespace:search/index", "application:payments/checkout", "application:search/indexer",
    }
    api = entities["namespace:payments/api"]
    assert (api.kind, api.owner, api.status, api.on_main) == ("namespace", "payments", "merged",
                                                             True)
    assert api.spec["namespace"] == "payments-api"
    team = entities["team:payments"]
    assert team.title == "Team Payments"
    assert team.spec["owners"] == ["alice"] and team.spec["cost_center"] == "CC-payments"
    assert entities["environment:prod"].spec["tier"] == "production"
    assert entities["environment:prod"].spec["capacity"]["cpu_milli"] == 64000
    assert _relations(engine) == {
        ("namespace:payments/api", "ownedBy", "team:payments"),
        ("namespace:payments/api", "runsIn", "environment:dev"),
        ("namespace:payments/api", "runsIn", "environment:prod"),
        ("namespace:payments/batch", "ownedBy", "team:payments"),
        ("namespace:payments/batch", "runsIn", "environment:dev"),
        ("namespace:payments/batch", "runsIn", "environment:stage"),
        ("namespace:search/index", "ownedBy", "team:search"),
        ("namespace:search/index", "runsIn", "environment:stage"),
        ("namespace:search/index", "runsIn", "environment:prod"),
        ("application:payments/checkout", "ownedBy", "team:payments"),
        ("application:payments/checkout", "runsIn", "namespace:payments/api"),
        ("application:search/indexer", "ownedBy", "team:search"),
        ("application:search/indexer", "runsIn", "namespace:search/index"),
    }
    assert _placements(engine) == {
        ("namespace:payments/api", "dev"): (1000, 2 * GI, 10 * GI),
        ("namespace:payments/api", "prod"): (4000, 8 * GI, 50 * GI),
        ("namespace:payments/batch", "dev"): (500, 1 * GI, 5 * GI),
        ("namespace:payments/batch", "stage"): (500, 1 * GI, 5 * GI),
        ("namespace:search/index", "stage"): (2000, 4 * GI, 100 * GI),
        ("namespace:search/index", "prod"): (8000, 16 * GI, 200 * GI),
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
    added = merge(gitops.tenant("search", "query", {"dev": None}))
    assert (added.added, added.changed, added.removed) == (["namespace:search/query"], [], [])
    # change a tenant's prod quota
    changed = merge({"tenants/payments/api/envs/prod/quota.yaml": gitops.quota("6", "8Gi",
                                                                               "50Gi")})
    assert (changed.added, changed.changed, changed.removed) == (
        [], ["namespace:payments/api"], [])
    assert _placements(engine)[("namespace:payments/api", "prod")][0] == 6000
    # rename a tenant (git mv: both sides of the rename are changed paths)
    old_files = {p: None for p in repo.files if p.startswith("tenants/payments/batch/")}
    renamed = merge({**old_files, **gitops.tenant("payments", "jobs", {"dev": None,
                                                                       "stage": None})})
    assert (renamed.added, renamed.changed, renamed.removed) == (
        ["namespace:payments/jobs"], [], ["namespace:payments/batch"])
    # remove a tenant: its application now points at a namespace that is gone
    removed = merge({p: None for p in repo.files if p.startswith("tenants/search/index/")})
    assert (removed.added, removed.changed, removed.removed) == (
        [], [], ["namespace:search/index"])

    after = _entities(engine)
    untouched = set(before) - {"namespace:payments/api", "namespace:payments/batch",
                               "namespace:search/index", "application:search/indexer"}
    assert all(after[k].updated_at == before[k] for k in untouched)
    assert "namespace:payments/batch" not in after and "namespace:search/index" not in after
    assert after["namespace:payments/jobs"].on_main
    indexer = after["application:search/indexer"]
    assert indexer.flagged and indexer.problems == ["runs in unknown namespace 'search/index'"]
    rels = _relations(engine)
    assert not any("payments/batch" in x or "search/index" in x
                   for x, _t, _y in rels if not x.startswith("application:"))
    # the application still points at the namespace it names (and is flagged for it)
    assert ("application:search/indexer", "runsIn", "namespace:search/index") in rels
    assert ("namespace:search/query", "runsIn", "environment:dev") in rels
    with Session(engine) as s:
        events = s.exec(select(TimelineEvent).where(
            col(TimelineEvent.entity).in_(["namespace:payments/batch",
                                           "namespace:payments/jobs"]))).all()
    assert {(e.entity, e.event) for e in events} == {
        ("namespace:payments/batch", "catalog.removed"),
        ("namespace:payments/jobs", "catalog.added")}


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
    assert result.flagged == ["application:search/indexer", "namespace:search/index"]
    entities = _entities(engine)
    assert entities["namespace:search/index"].orphaned
    assert entities["namespace:search/index"].problems == [
        "owner team 'search' does not exist (no teams/search/)"]
    assert not entities["namespace:payments/api"].orphaned
    back = repo.commit(gitops.team("search"))
    with Session(engine) as s:
        service.index_commit(s, forge=reader, commit=back, changed=repo.changed(new, back))
    assert not _entities(engine)["namespace:search/index"].flagged


def test_malformed_files_flag_their_entity_and_the_rest_is_indexed(tmp_path, engine: Engine
                                                                   ) -> None:
    from tests.catalog.conftest import base_files

    repo = gitops.Repo(tmp_path / "bad.git")
    files = base_files()
    files["teams/search/team.yaml"] = "owners: [alice\nmembers: {"  # bad YAML
    files["tenants/payments/batch/base/catalog-info.yaml"] = (
        "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: x\n"
        "spec:\n  type: kubernetes-namespace\n")  # missing owner
    files.update(gitops.tenant("payments", "edge", {"qa": None}))  # unknown environment
    files["tenants/payments/api/envs/prod/quota.yaml"] = gitops.quota("lots", "8Gi", "50Gi")
    repo.commit(files)
    with Session(engine) as s:
        result = service.reindex(s, forge=GitReader(repo.git_dir))
    entities = _entities(engine)
    assert len(entities) == 11
    assert result.flagged == ["namespace:payments/api", "namespace:payments/batch",
                              "namespace:payments/edge", "team:search"]
    assert entities["team:search"].problems[0].startswith(
        "teams/search/team.yaml: invalid YAML (line 2)")
    assert entities["namespace:payments/batch"].problems == [
        "tenants/payments/batch/base/catalog-info.yaml: spec.owner is missing"]
    assert entities["namespace:payments/edge"].problems == [
        "runs in unknown environment 'qa' (no envs/qa/infra.yaml)"]
    assert "spec.hard.requests.cpu" in entities["namespace:payments/api"].problems[0]
    # the rest is indexed in full
    assert not entities["namespace:search/index"].flagged
    assert entities["namespace:search/index"].spec["environments"]["prod"]["cpu_milli"] == 8000
