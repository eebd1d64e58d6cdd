"""``caas init`` (portal.bootstrap): the local forge from nothing and again (no change); GitHub
(the fake REST API) with an empty repository, a repository with commits (one bootstrap PR), and a
token that may not administer branch protection. Both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from sqlmodel import Session, select

from catalog.models import Entity
from devtools.server import serve
from gitops import git
from gitops.bootstrap import BRANCH, MARKER
from portal import db
from portal.auth.models import User
from portal.bootstrap import REQUIRED_CHECKS, init_platform
from portal.settings import Settings
from tests.conftest import REPO_ROOT, make_settings
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo

SKELETON = REPO_ROOT / "gitops-skeleton"
_names = itertools.count(1)


@pytest.fixture
def local(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, skeleton_dir=SKELETON)


def _refs(git_dir: Path) -> str:
    return git.out(git_dir, "for-each-ref", "--format=%(refname) %(objectname)")


def test_init_on_an_empty_local_forge_then_again_changes_nothing(local: Settings) -> None:
    engine = db.make_engine(local)
    db.upgrade(engine)
    try:
        first = init_platform(settings=local, engine=engine, admin="root")
        git_dir = local.resolved_gitops_repo
        assert first.repository.outcome == "created"
        assert first.password and first.admin == "root"
        root = yaml.safe_load_all(git.out(git_dir, "show", f"main:{MARKER}"))
        urls = {d["spec"]["source"]["repoURL"] for d in root if d["kind"] == "Application"}
        assert urls == {git_dir.resolve().as_uri()}  # the placeholder is filled in
        codeowners = git.out(git_dir, "show", "main:CODEOWNERS")
        assert "@platform-admins" in codeowners and "example-org" not in codeowners
        with Session(engine) as session:
            assert session.exec(select(Entity)).first() is not None  # the catalog is indexed
        before = _refs(git_dir)

        second = init_platform(settings=local, engine=engine, admin="other")
        assert second.repository.outcome == "unchanged"
        assert second.password == "" and second.admin == "root"  # no second admin
        assert _refs(git_dir) == before  # nothing written to the repository
        with Session(engine) as session:
            admins = session.exec(select(User).where(User.is_platform_admin == True)  # noqa: E712
                                  ).all()
        assert [u.username for u in admins] == ["root"]
    finally:
        engine.dispose()


def test_init_on_a_local_repository_with_other_commits_opens_one_bootstrap_change(
        local: Settings) -> None:
    engine = db.make_engine(local)
    db.upgrade(engine)
    try:
        git_dir = local.resolved_gitops_repo
        git.init_bare(git_dir)
        source = local.data_dir / "own"
        source.mkdir(parents=True)
        (source / "README.md").write_text("# our gitops\n")
        git.commit_directory(git_dir, source, branch="main", message="ours")
        first = init_platform(settings=local, engine=engine)
        assert first.repository.outcome == "change-opened"
        again = init_platform(settings=local, engine=engine)
        assert again.repository.outcome == "change-open"
        assert again.repository.change_url == first.repository.change_url
        files = git.out(git_dir, "ls-tree", "-r", "--name-only", BRANCH).split()
        assert MARKER in files and "README.md" in files
        assert git.out(git_dir, "show", f"{BRANCH}:README.md") == "# our gitops\n"  # kept
    finally:
        engine.dispose()


# ---- GitHub --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    with serve(github.app) as url:
        github.base_url = url
        yield github


def _github(fake: FakeGitHub, tmp_path: Path, database_url: str) -> tuple[Settings, FakeRepo]:
    repo = fake.add_repo(f"acme/gitops-{next(_names)}")
    settings = make_settings(tmp_path, database_url, skeleton_dir=SKELETON, forge="github",
                             github_url=fake.base_url + PREFIX,
                             github_repo=f"{repo.owner}/{repo.name}",
                             github_token=SecretStr("ghs_test"), github_write_interval_s=0)
    return settings, repo


def test_init_pushes_the_skeleton_into_an_empty_github_repository(
        fake: FakeGitHub, tmp_path: Path, database_url: str) -> None:
    settings, repo = _github(fake, tmp_path, database_url)
    engine = db.make_engine(settings)
    db.upgrade(engine)
    try:
        report = init_platform(settings=settings, engine=engine)
        assert report.repository.outcome == "created"
        files = repo.files_at("main")
        assert set(files) == {p.relative_to(SKELETON).as_posix()
                              for p in SKELETON.rglob("*") if p.is_file()}
        root = files[MARKER].decode()
        assert f"repoURL: https://github.com/acme/{repo.name}.git" not in root  # GHE host
        assert f"{fake.base_url}/acme/{repo.name}.git" in root
        assert "example-org" not in files["teams/platform/appproject.yaml"].decode()
        codeowners = files["CODEOWNERS"].decode()
        assert "@acme/platform-admins" in codeowners and "@acme/team-platform" in codeowners
        # the first commit went through the contents API (the Git Data API answers 409 on an
        # empty repository), the rest through one tree and one commit
        puts = [c for c in fake.calls if c.method == "PUT" and "/contents/" in c.path
                and repo.name in c.path]
        assert len(puts) == 1
        assert len(repo.commits) == 2
        protection = repo.protection["main"]
        assert set(protection["required_status_checks"]["contexts"]) == set(REQUIRED_CHECKS)
        assert protection["required_status_checks"]["strict"] is True
        assert protection["required_pull_request_reviews"]["require_code_owner_reviews"]
        assert report.password

        head = repo.refs["heads/main"]
        fake.reset_log()
        again = init_platform(settings=settings, engine=engine)
        assert again.repository.outcome == "unchanged"
        assert repo.refs["heads/main"] == head and not repo.pulls
        assert not [w for w in fake.writes() if repo.name in w[1]]  # no write at all
        assert again.repository.protection == ["branch protection of main: in place"]
    finally:
        engine.dispose()


def test_init_on_a_github_repository_with_commits_opens_one_bootstrap_pr(
        fake: FakeGitHub, tmp_path: Path, database_url: str) -> None:
    settings, repo = _github(fake, tmp_path, database_url)
    repo.commit_files("main", {"README.md": b"# ours\n", "apps/x.yaml": b"kind: X\n"}, "ours")
    repo.admin = False  # a token that may not administer branch protection
    engine = db.make_engine(settings)
    db.upgrade(engine)
    try:
        report = init_platform(settings=settings, engine=engine)
        assert report.repository.outcome == "change-opened"
        assert len(repo.pulls) == 1
        pr = repo.pulls[1]
        assert pr["head"] == BRANCH and pr["base"] == "main"
        branch_files = repo.files_at(BRANCH)
        assert branch_files["README.md"] == b"# ours\n"  # existing files are left as they are
        assert MARKER in branch_files
        assert MARKER not in repo.files_at("main")
        assert "main" not in repo.protection
        text = "\n".join(report.repository.protection)
        assert "NOT applied" in text and "caas/policies" in text and "up to date" in text
        assert "Code Owners" in text

        again = init_platform(settings=settings, engine=engine)
        assert again.repository.outcome == "change-open"
        assert len(repo.pulls) == 1  # one bootstrap PR, however often init runs
    finally:
        engine.dispose()
