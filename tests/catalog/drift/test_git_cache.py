"""The git side's cache (both databases): a warm run renders nothing; a unit is rendered again
when its answers change or when it records another template version; a hand edit is still
found with a warm cache, and a cache read back from the database (a restarted process) is
as warm."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from catalog.drift import git_side, store
from catalog.drift.models import Finding, SideResult, UnitCache
from catalog.drift.snapshot import read_main
from gitops.gitreader import GitReader
from portal.settings import REPO_ROOT, Settings
from scaffolder.registry import Registry
from tests.catalog.drift.conftest import QUOTA, Main

ENV = "envs/dev"
ANSWERS = f"{ENV}/.caas-answers.yaml"


def _check(engine: Engine, main: Main,
           registry: Registry) -> tuple[SideResult, dict[str, UnitCache]]:
    """One git-side check with the cache as stored, stored again afterwards (a fresh session:
    what a restarted process reads)."""
    with Session(engine) as session:
        cache = store.load_cache(session)
        result, new = git_side.check(read_main(GitReader(main.git_dir)), registry=registry,
                                     cache=cache)
        store.save_cache(session, cache, new)
    return result, new


def _env(result: SideResult) -> list[Finding]:
    return [f for f in result.findings if f.entity == "environment:dev"]


def test_warm_runs_render_nothing_and_a_hand_edit_is_still_found(
        engine: Engine, main: Main, registry: Registry) -> None:
    cold, cache = _check(engine, main, registry)
    assert cold.checked == 3 and cold.rendered == 3 and cold.findings == []
    assert all(e.render_key and e.rendered for e in cache.values())
    assert "base/resourcequota.yaml" in cache["tenants/platform/platform-tools"].rendered

    warm, _ = _check(engine, main, registry)  # read back from the database
    assert (warm.checked, warm.rendered, warm.findings) == (3, 0, [])

    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "2"', 'requests.cpu: "7"'))
    main.commit("hand edit")
    edited, _ = _check(engine, main, registry)
    [finding] = edited.findings
    assert finding.subject == "tenants/platform/platform-tools" and finding.fix == "rerender"
    assert '+    requests.cpu: "7"' in finding.detail
    assert edited.rendered == 1  # only the edited unit, for its diff

    again, _ = _check(engine, main, registry)  # its findings stand: nothing rendered
    assert again.rendered == 0 and [f.detail for f in again.findings] == [finding.detail]

    main.write(QUOTA, main.read(QUOTA).replace('requests.cpu: "7"', 'requests.cpu: "2"'))
    main.commit("edit undone")
    undone, _ = _check(engine, main, registry)  # matches the kept rendering: no render
    assert (undone.findings, undone.rendered) == ([], 0)


def test_changed_answers_are_rendered_again(engine: Engine, main: Main,
                                            registry: Registry) -> None:
    _check(engine, main, registry)
    old = main.read(ANSWERS)
    assert "domain_name: dev.caas.internal" in old
    main.write(ANSWERS, old.replace("domain_name: dev.caas.internal",
                                    "domain_name: dev2.caas.internal"))
    main.commit("answers changed, files not re-rendered")
    result, cache = _check(engine, main, registry)
    assert result.rendered == 1
    [finding] = result.findings  # the files still hold the old domain: they differ now
    assert finding.entity == "environment:dev" and "dev2.caas.internal" in finding.detail
    assert cache[ENV].render_key != ""


def test_a_unit_recording_another_template_version_is_rendered_again(
        engine: Engine, settings: Settings, main: Main, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", templates)
    moved = settings.model_copy(update={"templates_dir": templates})
    old = Registry(moved).get("environment").version  # the store keeps it
    _check(engine, main, Registry(moved))

    infra = templates / "environment" / "{{cookiecutter.environment}}" / "infra.yaml"
    infra.write_text("# a newer template version\n" + infra.read_text())
    registry = Registry(moved)
    new = registry.get("environment").version
    assert new != old
    # The units still record the old version: their renderings stand (no render), although
    # the findings cache is spent because the template moved on. (A copied template folder
    # is untrusted: hooks do not run, so only the environment, which has none, renders as
    # the portal's own templates do: the tenant's findings are left aside.)
    behind, _ = _check(engine, main, registry)
    assert _env(behind) == [] and behind.rendered == 0

    # The unit now records the new version (an upgrade PR that forgot the file): rendered
    # with the new version, whose infra.yaml differs from the file on main.
    main.write(ANSWERS, main.read(ANSWERS).replace(old, new))
    main.commit("answers record the new version")
    moved_on, cache = _check(engine, main, registry)
    assert moved_on.rendered == 1
    [finding] = _env(moved_on)
    assert finding.entity == "environment:dev" and "infra.yaml modified" in finding.what
    assert "+# a newer template version" not in finding.detail  # main lacks it: removed
    assert "-# a newer template version" in finding.detail
    assert cache[ENV].template_version == new
