"""Drift over a real repository on both databases: a hand edit in git and a catalog row left
behind are each reported exactly once, on the right side with the right fix; edits to derived
lists (AppProject destinations, CODEOWNERS) are not edits; runs are idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from catalog.drift import service
from catalog.drift.models import DriftReport
from gitops.forges.factory import make_forge
from portal.settings import REPO_ROOT, Settings
from scaffolder.registry import Registry
from tests.catalog.drift.conftest import APPPROJECT, QUOTA, Main, reindex


def _run(engine: Engine, settings: Settings, registry: Registry,
         sides: list[str] | None = None) -> DriftReport:
    with Session(engine) as session:
        return service.run(session, settings=settings, forge=make_forge(settings, engine),
                           registry=registry, sides=sides or ["git", "catalog"])


def _edits(main: Main) -> None:
    """A quota edited by hand; the derived lists edited as the portal would write them."""
    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "6"'))
    project = main.read(APPPROJECT)
    assert "namespace: platform-tools" in project
    main.write(APPPROJECT, project.replace(
        "      namespace: platform-tools\n",
        "      namespace: platform-tools\n    - name: '*'\n      namespace: platform-extra\n"))
    main.write("CODEOWNERS", main.read("CODEOWNERS") + "/tenants/x/ @org/x\n")
    main.commit("hand edits")


def test_a_clean_repository_has_no_drift(engine: Engine, settings: Settings, main: Main,
                                          registry: Registry) -> None:
    reindex(engine, main)
    report = _run(engine, settings, registry)
    assert report.findings == []
    sides = {s.side: s for s in report.sides}
    assert sides["git"].status == "checked" and sides["git"].checked == 3  # answers files
    assert sides["catalog"].status == "checked" and sides["catalog"].commit == main.head


def test_hand_edit_and_row_left_behind_each_reported_once(
        engine: Engine, settings: Settings, main: Main, registry: Registry) -> None:
    _edits(main)
    reindex(engine, main)
    main.write("teams/search", None)  # removed on main; the catalog is not told
    main.commit("remove search by hand")

    report = _run(engine, settings, registry)
    got = sorted((f.side, f.entity, f.fix, f.fix_target) for f in report.findings)
    assert got == [
        ("catalog", "team:search", "reindex", "team:search"),
        ("git", "namespace:platform/platform-tools", "rerender",
         "tenants/platform/platform-tools"),
    ]
    git = next(f for f in report.findings if f.side == "git")
    assert "base/resourcequota.yaml modified" in git.what and git.fix_label
    assert '-    requests.cpu: "2"' in git.detail and '+    requests.cpu: "6"' in git.detail
    assert "appproject" not in git.detail and git.team == "platform"
    left = next(f for f in report.findings if f.side == "catalog")
    assert "left behind" in left.what
    assert report.counts == {"namespace/git": 1, "team/catalog": 1}

    again = _run(engine, settings, registry)  # idempotent: same rows, same ids
    assert [(f.id, f.what) for f in again.findings] == [(f.id, f.what) for f in report.findings]
    assert [f.first_seen for f in again.findings] == [f.first_seen for f in report.findings]


def test_filters_and_badges(engine: Engine, settings: Settings, main: Main,
                            registry: Registry) -> None:
    _edits(main)
    _run(engine, settings, registry)  # nothing indexed: every unit is "not in the catalog"
    with Session(engine) as session:
        only_git = service.report(session, side="git")
        assert [f.entity for f in only_git.findings] == ["namespace:platform/platform-tools"]
        teams = service.report(session, kind="team", side="catalog")
        assert {f.entity for f in teams.findings} == {"team:platform", "team:payments",
                                                      "team:search"}
        assert service.report(session, team="nobody").findings == []
        badges = service.entity_badges(session, ["namespace:platform/platform-tools",
                                                 "environment:dev", "team:none"])
        assert badges == {"namespace:platform/platform-tools": {"git": 1, "catalog": 1},
                          "environment:dev": {"catalog": 1}}


def test_a_template_version_not_at_hand_is_unknown_not_drift(
        engine: Engine, settings: Settings, main: Main, registry: Registry) -> None:
    path = "envs/dev/.caas-answers.yaml"
    old = main.read(path)
    version = registry.get("environment").version
    main.write(path, old.replace(version, "0" * 40))
    main.commit("an answers file from an older template")
    reindex(engine, main)
    report = _run(engine, settings, registry)
    [finding] = report.findings
    assert (finding.side, finding.entity, finding.state, finding.fix) == (
        "git", "environment:dev", "unknown", "none")
    assert "unknown (template version not available)" in finding.what


def test_a_unit_behind_its_template_is_rendered_with_its_own_version(
        engine: Engine, settings: Settings, main: Main, tmp_path: Path) -> None:
    """The versioned template store gives drift the version a unit records: a unit behind
    the template is no drift by itself, and a hand edit to it still is."""
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", templates)
    moved = settings.model_copy(update={"templates_dir": templates})
    old = Registry(moved).get("environment").version  # loaded once: the store keeps it
    assert old in main.read("envs/dev/.caas-answers.yaml")
    infra = templates / "environment" / "{{cookiecutter.environment}}" / "infra.yaml"
    infra.write_text("# a newer template version\n" + infra.read_text())
    registry = Registry(moved)
    assert registry.get("environment").version != old
    reindex(engine, main)
    # (A copied template folder is untrusted: its hooks do not run, so only the environment,
    # which has none, renders as the portal's own templates do.)
    env = "environment:dev"
    assert [f for f in _run(engine, moved, registry).findings if f.entity == env] == []

    main.write("envs/dev/infra.yaml", main.read("envs/dev/infra.yaml").replace(
        'region: "local"', 'region: "elsewhere"'))
    main.commit("a hand edit to a unit behind its template")
    reindex(engine, main)
    [finding] = [f for f in _run(engine, moved, registry, ["git"]).findings if f.entity == env]
    assert (finding.entity, finding.state, finding.fix) == ("environment:dev", "drift",
                                                            "rerender")
    assert '-region: "local"' in finding.detail and '+region: "elsewhere"' in finding.detail


def test_a_platform_started_by_caas_init_has_no_drift(
        engine: Engine, settings: Settings, main: Main, registry: Registry) -> None:
    """``caas init`` fills the skeleton's placeholders (repository URL, organisation); the
    units' renderings fill the same URL, so a fresh platform is clean (no hand edit on
    ``team:platform``)."""
    from gitops import bootstrap

    url = "https://git.example.net/acme/platform-gitops.git"
    filled = bootstrap.skeleton_files(main.tree, bootstrap.Placeholders(repo_url=url, org="acme"))
    for rel, data in filled.items():
        (main.tree / rel).write_bytes(data)
    assert url in main.read(APPPROJECT)
    main.commit("caas init")
    reindex(engine, main)
    report = _run(engine, settings, registry, sides=["git"])
    assert report.findings == []
