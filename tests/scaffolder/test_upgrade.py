"""Template upgrades (issue 15) on real git: a unit rendered by an older template version (kept
in the versioned template store) is merged three ways — base: the old version + stored answers,
theirs: the current version + answers, ours: the files on main."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops import git, gittree, yaml
from gitops.forges.base import FileChange
from gitops.forges.factory import make_forge
from gitops.forges.local import LocalForge
from portal.auth import service as auth_service
from portal.auth.principal import Principal
from portal.bootstrap import REQUIRED_CHECKS
from portal.settings import REPO_ROOT, Settings
from scaffolder import merge_gate
from scaffolder.changeset import parameter_context
from scaffolder.models import Change, UpgradeRequest
from scaffolder.parameters import validate_answers
from scaffolder.registry import Registry, load_template, tree_id
from scaffolder.render import render
from scaffolder.template_store import TemplateVersionMissing
from scaffolder.upgrade import has_markers, units_behind
from scaffolder.upgrade_service import run_upgrades
from tests.conftest import UserFactory, make_settings

UNIT = "tenants/payments/payments-web"
QUOTA = f"{UNIT}/base/resourcequota.yaml"
TENANT = {"team": "payments", "name": "web", "cost_center": "cc-1", "environments": ["dev"]}
PODS = "    pods: '{{ cookiecutter.max_pods | int }}'\n"
MAX_PODS = ("        max_pods:\n          title: Maximum pods\n          type: integer\n"
            "          default: 50\n          minimum: 1\n          maximum: 1000\n")
LEGACY = "        legacy_tier:\n          title: Legacy tier\n          type: string\n" \
         "          default: gold\n"


def old_tenant(root: Path) -> Path:
    """The tenant template as it was before ``max_pods``: no pods line, a ``legacy_tier``."""
    folder = root / "tenant"
    shutil.copytree(REPO_ROOT / "templates" / "tenant", folder)
    project = folder / "{{cookiecutter.namespace}}"
    for quota in (project / "base" / "resourcequota.yaml",
                  project / "{{cookiecutter._overlay}}" / "quota.yaml"):
        text = quota.read_text()
        assert PODS in text
        quota.write_text(text.replace(PODS, ""))
    manifest = (folder / "template.yaml").read_text()
    assert MAX_PODS in manifest
    (folder / "template.yaml").write_text(manifest.replace(MAX_PODS, LEGACY))
    return folder


def admin(engine: Engine, make_user: UserFactory, name: str = "root") -> Principal:
    make_user(name, admin=True)
    with Session(engine) as s:
        return auth_service.principal_for(s, auth_service.get_user(s, username=name),
                                          via="token")


def commit_on_main(gitops: Path, files: dict[str, bytes], message: str) -> str:
    head = git.out(gitops, "rev-parse", "main").strip()
    new = gittree.commit_files(gitops, parent=head,
                               files=[FileChange(p, c) for p, c in files.items()],
                               message=message, author="someone")
    assert gittree.update_ref(gitops, "main", new, head)
    return new


def behind_unit(settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
                principal: Principal, edit: tuple[str, str]) -> tuple[Registry, LocalForge]:
    """main carries the tenant rendered by the old version, then a manual edit of its quota."""
    registry = Registry(settings)
    forge = make_forge(settings, engine)
    assert isinstance(forge, LocalForge)
    folder = old_tenant(tmp_path / "old")
    old = load_template(folder, trusted=True)
    registry.store.remember("tenant", folder, old.version)
    answers = validate_answers(old.parameters, TENANT,
                               context=parameter_context(forge, principal, registry))
    assert "max_pods" not in answers and answers["legacy_tier"] == "gold"
    commit_on_main(gitops, render(old, answers, target=UNIT), "tenant (old template)")
    shutil.rmtree(folder)  # only the store knows the old version now
    quota = forge.read_file(QUOTA)
    assert quota is not None and edit[0].encode() in quota
    commit_on_main(gitops, {QUOTA: quota.replace(edit[0].encode(), edit[1].encode())},
                   "manual edit")
    return registry, forge


def test_a_manual_edit_and_the_template_change_in_one_file_both_survive(
        settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    root = admin(engine, make_user)
    registry, forge = behind_unit(settings, engine, gitops, tmp_path, root, (
        "# The default quota;", "# Agreed with finance (ticket 42);"))
    behind = units_behind(forge, registry, template="tenant")
    assert [b.unit for b in behind] == [UNIT]
    with Session(engine) as session:
        [outcome] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                 request=UpgradeRequest(template="tenant"))
    assert outcome.state == "opened", outcome
    assert outcome.conflicts == [] and outcome.added == {"max_pods": 50}
    assert outcome.dropped == ["legacy_tier"]
    info = forge.get_change(outcome.number or 0)
    merged = forge.read_file(QUOTA, info.head_sha) or b""
    assert b"# Agreed with finance (ticket 42);" in merged and b"pods: '50'" in merged
    assert not has_markers(merged)
    overlay = forge.read_file(f"{UNIT}/envs/dev/quota.yaml", info.head_sha) or b""
    assert b"pods: '50'" in overlay
    stored = yaml.load(forge.read_file(f"{UNIT}/.caas-answers.yaml", info.head_sha) or b"")
    assert stored["version"] == registry.get("tenant").version
    assert stored["answers"]["max_pods"] == 50 and "legacy_tier" not in stored["answers"]
    assert "upgrade" in info.labels and "upgrade-conflict" not in info.labels
    assert "added `max_pods`" in info.body and "dropped `legacy_tier`" in info.body
    checks = {c.name: c.state for c in forge.get_change(info.number).checks}
    assert checks["caas/conflicts"] == "success"


def test_a_conflicting_edit_gives_markers_a_red_check_and_the_label_and_no_duplicate(
        settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    root = admin(engine, make_user)
    registry, forge = behind_unit(settings, engine, gitops, tmp_path, root, (
        'requests.storage: "50Gi"', 'requests.storage: "80Gi"'))
    with Session(engine) as session:
        [outcome] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                 request=UpgradeRequest())
    assert outcome.state == "opened" and outcome.conflicts == [QUOTA], outcome
    info = forge.get_change(outcome.number or 0)
    text = (forge.read_file(QUOTA, info.head_sha) or b"").decode()
    assert "<<<<<<< main" in text and ">>>>>>> template " in text
    assert '"80Gi"' in text and "pods: '50'" in text  # both sides are there to choose from
    assert "upgrade-conflict" in info.labels
    assert QUOTA in info.body
    assert {c.name: c.state for c in info.checks}["caas/conflicts"] == "failure"
    with Session(engine) as session:
        change = session.get(Change, outcome.change_id)
        assert change is not None and not change.checks_green
        again = run_upgrades(session, forge=forge, registry=registry, principal=root,
                             request=UpgradeRequest())
        assert [o.state for o in again] == ["open"] and again[0].number == info.number
        assert len(session.exec(select(Change)).all()) == 1

    # Resolved on the branch: the re-check at merge turns the conflicts check green.
    resolved = text.split("<<<<<<< main\n")[0] + '    requests.storage: "80Gi"\n' \
        "    pods: '50'\n"
    forge.update_change(info.number, [FileChange(QUOTA, resolved.encode())], "resolve")
    with Session(engine) as session:
        change = session.get(Change, outcome.change_id)
        assert change is not None
        change.head_sha = forge.get_change(info.number).head_sha
        fresh = merge_gate.recheck_change(session, forge=forge, change=change,
                                          code_owners=registry.code_owners)
    states = {c.name: c.state for c in fresh}
    assert states["conflicts"] == "success" and states["manifests"] == "success", fresh


def test_a_version_in_no_store_is_refused_naming_unit_and_version(
        settings: Settings, engine: Engine, gitops: Path, make_user: UserFactory) -> None:
    root = admin(engine, make_user)
    registry, forge = Registry(settings), make_forge(settings, engine)
    answers_path = "tenants/platform/platform-tools/.caas-answers.yaml"
    doc = yaml.load(forge.read_file(answers_path) or b"")
    doc["version"] = "0" * 40
    commit_on_main(gitops, {answers_path: yaml.dump(doc).encode()}, "a lost version")
    with Session(engine) as session:
        outcomes = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                request=UpgradeRequest(dry_run=True))
    refused = [o for o in outcomes if o.units == ["tenants/platform/platform-tools"]]
    assert refused and refused[0].state == "refused"
    assert "0" * 40 in refused[0].message and "tenants/platform/platform-tools" in \
        refused[0].message
    with pytest.raises(TemplateVersionMissing):
        registry.store.materialize("tenant", "0" * 40, Path(settings.data_dir))


def test_a_template_that_moves_again_updates_the_open_pr(
        engine: Engine, database_url: str, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    root = admin(engine, make_user)
    templates = tmp_path / "templates"
    shutil.copytree(REPO_ROOT / "templates", templates)
    settings = make_settings(tmp_path, database_url, templates_dir=templates)
    registry, forge = Registry(settings), make_forge(settings, engine)
    assert registry.all()  # the versions on main are served (and stored) first
    team_yaml = templates / "team" / "{{cookiecutter.team}}" / "team.yaml"
    original = team_yaml.read_text()

    def release(line: str) -> str:
        team_yaml.write_text(original + line)
        return registry.get("team").version

    v1 = release("# release 1\n")
    request = UpgradeRequest(template="team", team="platform")
    with Session(engine) as session:
        [opened] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                request=request)
    assert opened.state == "opened" and opened.to_version == v1, opened
    v2 = release("# release 2\n")
    with Session(engine) as session:
        [dry] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                             request=UpgradeRequest(template="team", dry_run=True))
        assert dry.state == "would-update" and dry.from_versions == [v1]
        [updated] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                 request=request)
        assert updated.state == "updated" and updated.number == opened.number, updated
        # The new head reports every check branch protection requires (caas init's list):
        # a required context missing on it blocks the PR on GitHub for good.
        reported = {c.name: c.state.value for c in forge.get_change(updated.number or 0).checks}
        assert set(REQUIRED_CHECKS) <= set(reported), reported
        assert set(reported.values()) == {"success"}, reported
        [again] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                               request=request)
        assert again.state == "open"
        assert len(session.exec(select(Change)).all()) == 1
        change = session.exec(select(Change)).one()
        assert change.template_version == v2
    head = forge.get_change(opened.number or 0).head_sha
    merged = (forge.read_file("teams/platform/team.yaml", head) or b"").decode()
    assert merged.endswith("# release 2\n") and "# release 1" not in merged
    stored = yaml.load(forge.read_file("teams/platform/.caas-answers.yaml", head) or b"")
    assert stored["version"] == v2
    assert registry.store.versions("team")[-2:] == [v1, v2]
    assert "+# release 2" in registry.store.diff("team", v1, v2)


def test_per_team_one_pr_covers_the_teams_units_and_per_unit_runs_open_no_duplicate(
        settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    root = admin(engine, make_user)
    registry, forge = behind_unit(settings, engine, gitops, tmp_path, root, (
        "# The default quota;", "# Agreed with finance;"))
    # A second tenant of the team, rendered by the same old version (copied with its name).
    api = {p.replace("payments-web", "payments-api"): (forge.read_file(p) or b"")
           .replace(b"payments-web", b"payments-api").replace(b"name: web", b"name: api")
           for p in forge.list_files(UNIT)}
    commit_on_main(gitops, api, "payments-api (old template)")
    assert [b.unit for b in units_behind(forge, registry)] == [
        "tenants/payments/payments-api", UNIT]
    with Session(engine) as session:
        [team] = run_upgrades(session, forge=forge, registry=registry, principal=root,
                              request=UpgradeRequest(per="team"))
        assert team.state == "opened" and team.key == "upgrade/tenant/payments", team
        assert team.units == ["tenants/payments/payments-api", UNIT]
        per_unit = run_upgrades(session, forge=forge, registry=registry, principal=root,
                                request=UpgradeRequest())
        assert {(o.state, o.number) for o in per_unit} == {("open", team.number)}
        again = run_upgrades(session, forge=forge, registry=registry, principal=root,
                             request=UpgradeRequest(per="team"))
        assert [o.state for o in again] == ["open"]
        assert len(session.exec(select(Change)).all()) == 1
    info = forge.get_change(team.number or 0)
    for unit in team.units:
        assert b"pods: '50'" in (forge.read_file(f"{unit}/base/resourcequota.yaml",
                                                info.head_sha) or b"")
    assert "payments-api" in info.body and "payments-web" in info.body


def test_an_old_version_todays_subset_refuses_is_refused_clearly_and_others_go_on(
        settings: Settings, engine: Engine, gitops: Path, tmp_path: Path,
        make_user: UserFactory) -> None:
    root = admin(engine, make_user)
    registry, forge = behind_unit(settings, engine, gitops, tmp_path, root, (
        "# The default quota;", "# Agreed with finance;"))
    # An older version written before the subset rules: a filter Backstage does not have.
    folder = old_tenant(tmp_path / "older")
    quota = folder / "{{cookiecutter.namespace}}" / "base" / "resourcequota.yaml"
    quota.write_text(quota.read_text() + "# {{ cookiecutter.team | tojson }}\n")
    older = tree_id(folder)
    registry.store.remember("tenant", folder, older)
    answers_path = "tenants/platform/platform-tools/.caas-answers.yaml"
    doc = yaml.load(forge.read_file(answers_path) or b"")
    doc["version"] = older
    commit_on_main(gitops, {answers_path: yaml.dump(doc).encode()}, "platform-tools: older")
    with Session(engine) as session:
        outcomes = {o.key: o for o in run_upgrades(session, forge=forge, registry=registry,
                                                   principal=root,
                                                   request=UpgradeRequest(dry_run=True))}
    refused = outcomes["tenants/platform/platform-tools"]
    assert refused.state == "refused"
    assert older in refused.message and "tojson" in refused.message
    assert "tenants/platform/platform-tools" in refused.message
    assert outcomes[UNIT].state == "would-open"
