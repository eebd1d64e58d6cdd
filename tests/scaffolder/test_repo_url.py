"""A started platform's units name its own GitOps repository: what a template renders where it
names the repository (a team's AppProject ``sourceRepos``) is the URL ``caas init`` wrote into
``bootstrap/root.yaml``, not the skeleton's placeholder — else ArgoCD refuses every tenant of a
team created in the portal (the tenants ApplicationSet deploys from that repository)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gitops import bootstrap
from gitops.git import out, seed_repository
from portal.auth.models import Role
from portal.settings import Settings
from tests.conftest import UserFactory
from tests.scaffolder.conftest import write_skeleton

REPO_URL = "https://git.example.net/acme/platform-gitops.git"
Headers = Callable[[str], dict[str, str]]


def started_tree(root: Path, *, repo_url: str) -> Path:
    """``write_skeleton`` with the placeholders filled in as ``caas init`` fills them."""
    raw = write_skeleton(root / "raw")
    files = bootstrap.skeleton_files(raw, bootstrap.Placeholders(repo_url=repo_url, org="acme"))
    tree = root / "started"
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    shutil.rmtree(raw)
    return tree


@pytest.fixture
def gitops(settings: Settings, tmp_path: Path) -> Path:
    seed_repository(settings.resolved_gitops_repo, started_tree(tmp_path, repo_url=REPO_URL))
    return settings.resolved_gitops_repo


def test_the_root_application_names_the_repository() -> None:
    skeleton = (Path(__file__).parents[2] / "gitops-skeleton" / bootstrap.MARKER).read_bytes()
    assert bootstrap.repo_url_in(skeleton) == bootstrap.PLACEHOLDER_REPO_URL
    assert bootstrap.repo_url_in(skeleton.replace(
        bootstrap.PLACEHOLDER_REPO_URL.encode(), REPO_URL.encode())) == REPO_URL
    for broken in (None, b"", b": : :", b"- a list\n", b"kind: Application\nspec: 3\n",
                   b"kind: Application\nspec: {source: {repoURL: [1]}}\n"):
        assert bootstrap.repo_url_in(broken) is None


def test_a_new_team_may_deploy_from_the_platforms_repository(
        app_client: TestClient, gitops: Path, make_user: UserFactory,
        auth_headers: Headers) -> None:
    make_user("eve", teams={"search": Role.developer})
    got = app_client.post("/api/scaffolder/tasks", headers=auth_headers("eve"), json={
        "template": "team", "answers": {"team": "web", "display_name": "Web",
                                        "cost_center": "cc-1", "owners": ["eve"]}})
    assert got.status_code == 201, got.text
    change = app_client.get(f"/api/changes/{got.json()['change_id']}",
                            headers=auth_headers("eve")).json()
    project = out(gitops, "show", f"{change['head_sha']}:teams/web/appproject.yaml")
    assert f"- {REPO_URL}\n" in project
    assert bootstrap.PLACEHOLDER_REPO_URL not in project
