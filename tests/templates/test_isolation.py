"""Isolation and unique names by construction, over an adversarial repository.

Teams whose names are dash-prefixes of each other (``pay``, ``pay-web``, ``pay-web-prod``;
``a``, ``a-b``), tenants, environments and applications whose old concatenated names coincided
(``pay-web`` on ``prod-eu`` and ``pay-web-prod`` on ``eu``; ``applications/pay/web-prod-eu``)
are rendered with the real templates into a copy of the skeleton; every AppProject list is
written the way a pull request writes it (``gitops.lists``, one tenant at a time); then the
ApplicationSets are expanded over that tree (tests/templates/appset_expander.py, ArgoCD's
documented git generator semantics) and what each team can reach is compared.
"""

from __future__ import annotations

import shutil
from collections import Counter
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml
from cookiecutter.generate import generate_files

from gitops import lists, object_names
from scaffolder.checks.manifests import load_documents
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import load_template
from scaffolder.render import cookiecutter_values
from scaffolder.render_pool import hook_scratch
from tests.templates.appset_expander import TemplateError, expand, render_string
from tests.templates.support import SKELETON, TEMPLATES, TYPICAL, parameters

TEAMS = ("pay", "pay-web", "pay-web-prod", "a", "a-b")
ENVS = ("dev", "eu", "prod-eu")
TENANTS = (  # team, name, environments
    ("pay", "web", ["prod-eu", "dev"]),
    ("pay", "web-prod", ["eu"]),
    ("pay-web", "api", ["dev"]),
    ("pay-web-prod", "eu", ["dev"]),
    ("a", "b", ["dev"]),
    ("a-b", "c", ["dev", "eu"]),
)
APPLICATIONS = (  # team, name, tenant, environments (one envs/<env>/ folder each)
    ("pay", "web-prod-eu", "web", ["dev", "prod-eu"]),
    ("pay-web", "prod-eu", "api", ["dev"]),
    ("a", "b-dev", "b", ["dev"]),
    ("a-b", "dev", "c", ["dev", "eu"]),
)
# A unit rendered before per-environment folders: applications/<team>/<name>/application.yaml.
LEGACY = ("a", "legacy", "b", "dev")
CONTEXT = ParameterContext(teams=frozenset(TEAMS), environments=frozenset(ENVS))


def _render(name: str, answers: dict[str, Any], out: Path) -> Path:
    clean = validate_answers(parameters(name), answers, context=CONTEXT)
    values = cookiecutter_values(load_template(TEMPLATES / name, trusted=True), clean)
    with hook_scratch():  # cookiecutter's hook runner leaves its rendered script behind
        return Path(generate_files(repo_dir=str(TEMPLATES / name),
                                   context={"cookiecutter": values},
                                   output_dir=str(out), accept_hooks=True))


def _files(root: Path, under: str) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted((root / under).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adversarial") / "gitops"
    shutil.copytree(SKELETON, root)
    for team in TEAMS:
        _render("team", {**TYPICAL["team"], "team": team}, root / "teams")
    for team, name, envs in TENANTS:
        before = set(_files(root, "tenants"))
        staging = _render("tenant", {**TYPICAL["tenant"], "team": team, "name": name,
                                     "environments": envs, "environment_quotas": {}},
                          root.parent / "staging" / team)
        changes = {f"tenants/{team}/{staging.name}/{p.relative_to(staging).as_posix()}":
                   p.read_bytes() for p in staging.rglob("*") if p.is_file()}
        # What the tenant's pull request writes: its files plus every list naming it.
        changes |= lists.derived_updates(
            main_paths=before, changes=changes,
            read=lambda path: (root / path).read_bytes() if (root / path).exists() else None)
        for path, content in changes.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
    for team, name, tenant, envs in APPLICATIONS:
        for i, env in enumerate(envs):
            # The first environment is the request; the others arrive as promotions do, one
            # envs/<env>/ folder each (rendered here for that environment).
            out = root / "applications" / team if i == 0 else root.parent / "more" / env / team
            unit = _render("application", {**TYPICAL["application"], "team": team,
                                           "name": name, "tenant": tenant, "environment": env},
                           out)
            if i:
                shutil.copytree(unit / "envs" / env,
                                root / "applications" / team / name / "envs" / env)
    team, name, tenant, env = LEGACY
    old = _render("application", {**TYPICAL["application"], "team": team, "name": name,
                                  "tenant": tenant, "environment": env},
                  root.parent / "legacy" / team)
    (root / "applications" / team / name).mkdir(parents=True)
    (old / "envs" / env / "application.yaml").rename(
        root / "applications" / team / name / "application.yaml")
    return root


def _docs(root: Path, pattern: str) -> list[tuple[str, dict[str, Any]]]:
    return [(p.relative_to(root).as_posix(), d) for p in sorted(root.glob(pattern))
            for d in load_documents(p.read_text(encoding="utf-8"))]


def _owned(root: Path) -> dict[str, set[str]]:
    return lists.team_namespaces(_files(root, "tenants"))


def _generated(root: Path) -> list[dict[str, Any]]:
    apps = []
    for _, appset in _docs(root, "appsets/*.yaml"):
        apps += expand(root, appset)
    return apps


def test_the_matrix_is_adversarial_under_the_old_names(repo: Path) -> None:
    """The old ``<namespace>-<env>`` / ``<team>-<app>`` names collide in this repository."""
    old = [f"{ns}-{env}" for team, name, envs in TENANTS for ns in [f"{team}-{name}"]
           for env in envs] + [f"{team}-{name}" for team, name, *_ in APPLICATIONS]
    assert {n for n, count in Counter(old).items() if count > 1} >= {"pay-web-prod-eu",
                                                                   "a-b-dev"}
    # ... and the old `<team>-*` destination of `pay` admitted `pay-web`'s namespace.
    assert fnmatchcase("pay-web-api", "pay-*")


def test_no_two_generated_applications_share_a_name(repo: Path) -> None:
    generated = _generated(repo)
    assert len(generated) == (sum(len(envs) for *_, envs in TENANTS)
                              + sum(len(envs) for *_, envs in APPLICATIONS) + 1 + 1)
    platform = [d["metadata"]["name"] for _, d in _docs(repo, "bootstrap/root.yaml")
                if d["kind"] == "Application"]
    platform += [d["metadata"]["name"] for _, d in _docs(repo, "platform/*/application.yaml")]
    names = [a["metadata"]["name"] for a in generated] + platform
    assert [n for n, count in Counter(names).items() if count > 1] == []
    # The portal's own idea of each name is what ArgoCD generates.
    expected = {object_names.tenant_application(f"{t}-{n}", e) for t, n, envs in TENANTS
                for e in envs} | {object_names.team_application(t, n, e)
                                  for t, n, _, envs in APPLICATIONS for e in envs}
    expected |= {object_names.tenant_application("platform-tools", "dev"),
                 object_names.team_application(LEGACY[0], LEGACY[1])}
    assert {a["metadata"]["name"] for a in generated} == expected
    # Within a label value's 63 characters or not, each is a valid DNS-1123 subdomain.
    assert all(len(n) <= 253 for n in names)


def test_app_projects_have_unique_names(repo: Path) -> None:
    projects = [d["metadata"]["name"] for _, d in _docs(repo, "teams/*/appproject.yaml")]
    projects += [d["metadata"]["name"] for _, d in _docs(repo, "bootstrap/root.yaml")
                 if d["kind"] == "AppProject"]
    assert len(projects) == len(set(projects)) == len(TEAMS) + 2
    assert object_names.PLATFORM_PROJECT in projects


def _admits(project: dict[str, Any], namespace: str) -> bool:
    """ArgoCD matches destination namespaces as globs (``*`` any run of characters)."""
    return any(fnmatchcase(namespace, d.get("namespace", "")) for d in
               project["spec"].get("destinations") or [])


def test_for_every_pair_of_teams_nothing_of_one_admits_a_namespace_of_the_other(
        repo: Path) -> None:
    owned = _owned(repo)
    assert owned["pay"] == {"pay-web", "pay-web-prod"}
    projects = {d["metadata"]["name"]: d for _, d in _docs(repo, "teams/*/appproject.yaml")}
    generated = _generated(repo)
    for team in TEAMS:
        mine = owned.get(team, set())
        # The AppProject lists exactly the team's namespaces.
        assert {d["namespace"] for d in projects[team]["spec"]["destinations"]} == mine
        for other in set(TEAMS) - {team}:
            for namespace in owned.get(other, set()):
                assert not _admits(projects[team], namespace), (team, namespace)
        # Every generated Application of the team targets one of its namespaces, and its
        # project admits that namespace; none lands in another team's project.
        for app in (a for a in generated if a["spec"]["project"] == team):
            assert app["spec"]["destination"]["namespace"] in mine, app["metadata"]["name"]
            assert _admits(projects[team], app["spec"]["destination"]["namespace"])
        # RoleBindings and network policies exist only in the team's namespaces and name no
        # namespace of another team.
        for path, doc in _docs(repo, f"tenants/{team}/*/base/*.yaml"):
            if doc["kind"] in ("RoleBinding", "CiliumNetworkPolicy", "NetworkPolicy"):
                assert doc["metadata"]["namespace"] in mine, path
                others = set().union(*(owned.get(o, set()) for o in set(TEAMS) - {team}))
                assert not (_namespace_selectors(doc) & others), path
            if doc["kind"] == "RoleBinding":
                assert {s["name"] for s in doc["subjects"]} <= {
                    f"team-{team}", f"team-{team}-admins", f"team-{team}-viewers"}


NAMESPACE_KEYS = ("k8s:io.kubernetes.pod.namespace", "io.kubernetes.pod.namespace",
                  "kubernetes.io/metadata.name")


def _namespace_selectors(node: Any) -> set[str]:
    """Every namespace a policy selects peers by (Cilium's namespace label, the standard
    ``kubernetes.io/metadata.name``), wherever it appears in the document."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in NAMESPACE_KEYS and isinstance(value, str):
                found.add(value)
            found |= _namespace_selectors(value)
    elif isinstance(node, list):
        for value in node:
            found |= _namespace_selectors(value)
    return found


def test_a_tenant_removed_leaves_its_team_list_in_the_same_change(repo: Path) -> None:
    files = _files(repo, "tenants")
    gone = {p: None for p in files if p.startswith("tenants/pay/pay-web-prod/")}
    updates = lists.derived_updates(main_paths=files, changes=gone,
                                    read=lambda p: (repo / p).read_bytes())
    assert set(updates) == {"teams/pay/appproject.yaml"}
    project = yaml.safe_load(updates["teams/pay/appproject.yaml"])
    assert project["spec"]["destinations"] == [{"name": "*", "namespace": "pay-web"}]
    # Comments and the rest of the file stay as they were.
    before = (repo / "teams/pay/appproject.yaml").read_text()
    assert before.splitlines()[:3] == updates["teams/pay/appproject.yaml"].decode(
        ).splitlines()[:3]


def test_expander_follows_missingkey_error() -> None:
    with pytest.raises(TemplateError, match="missingkey=error"):
        render_string("{{ .path.nope }}", {"path": {"path": "a"}})
    with pytest.raises(TemplateError, match="index out of range"):
        render_string("{{ index .path.segments 3 }}", {"path": {"segments": ["a"]}})
    assert render_string("x.{{ index .path.segments 1 }}.{{ .path.basename }}",
                         {"path": {"segments": ["a", "b"], "basename": "c"}}) == "x.b.c"


def test_one_application_per_environment_folder_on_that_environment(repo: Path) -> None:
    """Each ``envs/<env>/`` folder of an application generates ``app.<team>.<app>.<env>`` on
    the cluster named after the folder, whatever its file says; the older single file keeps
    ``app.<team>.<app>`` on the cluster its file names."""
    generated = {a["metadata"]["name"]: a for a in _generated(repo)}
    for team, name, tenant, envs in APPLICATIONS:
        for env in envs:
            app = generated[object_names.team_application(team, name, env)]
            assert app["spec"]["destination"] == {"name": env,
                                                  "namespace": f"{team}-{tenant}"}
            assert app["spec"]["project"] == team
            assert app["metadata"]["labels"] == {"team": team, "caas.io/application": name,
                                                 "caas.io/environment": env}
            assert app["spec"]["source"]["targetRevision"] == TYPICAL["application"][
                "revision"]
    legacy = generated[object_names.team_application(LEGACY[0], LEGACY[1])]
    assert legacy["spec"]["destination"] == {"name": LEGACY[3],
                                             "namespace": f"{LEGACY[0]}-{LEGACY[2]}"}


def test_an_overlay_cannot_choose_another_cluster(repo: Path, tmp_path: Path) -> None:
    """A file under ``envs/dev/`` that names the ``prod-eu`` cluster still deploys to ``dev``."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy)
    path = copy / "applications/pay/web-prod-eu/envs/dev/application.yaml"
    path.write_text(path.read_text().replace("    name: dev\n", "    name: prod-eu\n"))
    assert "name: prod-eu" in path.read_text()
    generated = {a["metadata"]["name"]: a for a in _generated(copy)}
    assert generated["app.pay.web-prod-eu.dev"]["spec"]["destination"]["name"] == "dev"


def test_the_touched_teams_folders_give_the_same_lists_as_every_tenant(repo: Path) -> None:
    """The scaffolder lists only ``tenants/<team>/`` of ``touched_teams`` (not every tenant):
    teams whose names are dash-prefixes of each other must not leak into each other."""
    files = _files(repo, "tenants")
    gone = {p: None for p in files if p.startswith("tenants/pay/pay-web-prod/")}
    added = {"tenants/pay-web/pay-web-new/base/namespace.yaml": b"kind: Namespace\n"}
    for changes in (gone, added, {**gone, **added}):
        teams = lists.touched_teams(changes)
        assert teams == {p.split("/")[1] for p in changes}
        few = [p for p in files if p.split("/")[1] in teams]
        assert len(few) < len(files)

        def read(p: str) -> bytes:
            return (repo / p).read_bytes()

        assert lists.derived_updates(main_paths=few, changes=changes, read=read) == \
            lists.derived_updates(main_paths=files, changes=changes, read=read)
    assert lists.touched_teams(["teams/a-b/appproject.yaml", "teams/a/team.yaml",
                                "tenants/a/only-a-file"]) == {"a-b"}
