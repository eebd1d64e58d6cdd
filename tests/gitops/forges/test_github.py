"""GitHubForge through PyGithub's real HTTP layer against a fake GitHub Enterprise on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from devtools.server import serve
from gitops.forges.base import (
    ChangeSpec,
    ChangeState,
    Check,
    CheckState,
    FileChange,
    Forge,
    ForgeError,
)
from gitops.forges.github import GitHubForge
from gitops.forges.github_codeowners import codeowners_for, split_reviewers
from portal.errors import ConfigError, NotFound
from portal.settings import Settings
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo

CODEOWNERS = b"""\
# generated from catalog ownership
*                       @acme/platform-admins
/tenants/shop/          @acme/team-shop @carol
/envs/prod/             @acme/platform-admins @dave
docs/*.md               alice@example.com
"""
_names = itertools.count(1)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    with serve(github.app) as url:
        github.base_url = url
        yield github


@pytest.fixture
def repo(fake: FakeGitHub) -> FakeRepo:
    repo = fake.add_repo(f"acme/gitops-{next(_names)}")
    repo.commit_files("main", {"README.md": b"# gitops\n", "CODEOWNERS": CODEOWNERS,
                               "tenants/shop/base/namespace.yaml": b"kind: Namespace\n"},
                      "seed")
    return repo


@pytest.fixture
def forge(fake: FakeGitHub, repo: FakeRepo) -> GitHubForge:
    return GitHubForge(f"{repo.owner}/{repo.name}", token="ghs_test",
                       base_url=fake.base_url + PREFIX, seconds_between_writes=None)


def _spec(**overrides: object) -> ChangeSpec:
    values: dict[str, object] = {
        "branch": "caas/tenant-shop-web", "title": "Add tenant shop-web",
        "body": "Requested in the portal.", "author": "alice",
        "files": [FileChange("tenants/shop/web/base/namespace.yaml", b"kind: Namespace\n"),
                  FileChange("tenants/shop/web/.caas-answers.yaml", b"template: tenant\n")],
        "labels": ["caas", "tenant"], "reviewers": ["erin"],
    }
    values.update(overrides)
    return ChangeSpec(**values)  # type: ignore[arg-type]


def test_implements_the_forge_protocol(forge: GitHubForge) -> None:
    assert isinstance(forge, Forge)
    assert forge.kind == "github"


def test_open_change_commits_through_git_data_api_and_opens_pr(
        forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub) -> None:
    main_before = repo.refs["heads/main"]
    fake.reset_log()
    info = forge.open_change(_spec())

    calls = [(m, p.split(f"/{repo.name}", 1)[-1]) for m, p in fake.requests]
    assert ("POST", "/git/blobs") not in calls  # text rides inline in the tree request
    assert ("POST", "/git/trees") in calls
    assert ("POST", "/git/commits") in calls
    assert ("POST", "/git/refs") in calls
    assert ("POST", "/pulls") in calls
    assert not any(p.startswith("/contents") and m != "GET" for m, p in calls)

    # One commit on top of main holding main's files plus the new ones.
    head = repo.refs["heads/caas/tenant-shop-web"]
    assert repo.commits[head]["parents"] == [main_before]
    assert "Requested-by: alice" in repo.commits[head]["message"]
    files = repo.files_at(head)
    assert files["tenants/shop/web/base/namespace.yaml"] == b"kind: Namespace\n"
    assert files["README.md"] == b"# gitops\n"
    assert repo.refs["heads/main"] == main_before  # nothing lands on main before a merge

    assert info.number == 1
    assert info.state is ChangeState.open
    assert (info.branch, info.base, info.head_sha, info.base_sha) == (
        "caas/tenant-shop-web", "main", head, main_before)
    assert info.title == "Add tenant shop-web"
    assert info.body == "Requested in the portal."
    assert info.author == "alice"
    assert list(info.labels) == ["caas", "tenant"]
    assert info.url.endswith(f"/{repo.owner}/{repo.name}/pull/1")


def test_reviewers_come_from_codeowners_and_the_spec(forge: GitHubForge, repo: FakeRepo
                                                     ) -> None:
    info = forge.open_change(_spec())
    pr = repo.pulls[info.number]
    # /tenants/shop/ is the last matching line: its team and user, plus the given reviewer.
    assert sorted(pr["reviewers"]) == ["carol", "erin"]
    assert pr["teams"] == ["team-shop"]
    assert sorted(info.reviewers) == ["acme/team-shop", "carol", "erin"]


def test_author_and_bot_are_never_requested_as_reviewers(forge: GitHubForge, repo: FakeRepo,
                                                         fake: FakeGitHub) -> None:
    info = forge.open_change(_spec(reviewers=["alice", fake.login, "@acme/sre"],
                                   files=[FileChange("envs/prod/infra.yaml", b"tier: prod\n")]))
    pr = repo.pulls[info.number]
    assert pr["reviewers"] == ["dave"]
    assert sorted(pr["teams"]) == ["platform-admins", "sre"]


def test_open_change_is_idempotent(forge: GitHubForge, repo: FakeRepo) -> None:
    first = forge.open_change(_spec())
    again = forge.open_change(_spec())
    assert again.number == first.number
    assert len(repo.pulls) == 1


def test_leftover_branch_without_pr_is_reused(forge: GitHubForge, repo: FakeRepo) -> None:
    repo.refs["heads/caas/tenant-shop-web"] = repo.refs["heads/main"]  # interrupted attempt
    info = forge.open_change(_spec())
    assert "tenants/shop/web/.caas-answers.yaml" in repo.files_at(info.head_sha)


def test_update_change_adds_a_commit_and_deletes(forge: GitHubForge, repo: FakeRepo) -> None:
    info = forge.open_change(_spec())
    updated = forge.update_change(info.number, [
        FileChange("tenants/shop/web/base/namespace.yaml", b"kind: Namespace # v2\n"),
        FileChange("tenants/shop/web/.caas-answers.yaml", None),
    ], "Update tenant shop-web")
    assert repo.commits[updated.head_sha]["parents"] == [info.head_sha]
    files = repo.files_at(updated.head_sha)
    assert files["tenants/shop/web/base/namespace.yaml"] == b"kind: Namespace # v2\n"
    assert "tenants/shop/web/.caas-answers.yaml" not in files
    assert forge.changed_paths(info.head_sha, updated.head_sha) == [
        "tenants/shop/web/.caas-answers.yaml", "tenants/shop/web/base/namespace.yaml"]


def test_checks_become_commit_statuses_on_the_head(forge: GitHubForge, repo: FakeRepo) -> None:
    info = forge.open_change(_spec())
    forge.set_check(info.number, Check("caas/policy", CheckState.pending))
    forge.set_check(info.number, Check("caas/policy", CheckState.failure, "x" * 300,
                                       "http://portal/changes/1"))
    forge.set_check(info.number, Check("caas/schema", CheckState.success, "all valid"))
    statuses = repo.statuses[info.head_sha]
    assert [s["state"] for s in statuses] == ["success", "failure", "pending"]
    assert len(statuses[1]["description"]) == 140
    assert statuses[1]["target_url"] == "http://portal/changes/1"
    checks = {c.name: c for c in forge.get_change(info.number).checks}
    assert checks["caas/policy"].state is CheckState.failure
    assert checks["caas/schema"] == Check("caas/schema", CheckState.success, "all valid")


def test_one_comment_per_key_is_edited_in_place(forge: GitHubForge, repo: FakeRepo,
                                                fake: FakeGitHub) -> None:
    info = forge.open_change(_spec())
    forge.comment(info.number, "preview v1")
    forge.comment(info.number, "plan: 1 to add", key="plan")
    forge.comment(info.number, "preview v2")
    fake.reset_log()
    forge.comment(info.number, "preview v2")  # unchanged: no write at all
    assert [m for m, _ in fake.requests if m != "GET"] == []
    bodies = sorted(c["body"] for c in repo.comments.values())
    assert bodies == ["<!-- caas:plan -->\nplan: 1 to add", "<!-- caas:preview -->\npreview v2"]


def test_reading_files_and_listing(forge: GitHubForge, repo: FakeRepo) -> None:
    assert forge.read_file("README.md") == b"# gitops\n"
    assert forge.read_file("missing.yaml") is None
    assert forge.read_file("tenants") is None  # a directory is not a file
    assert forge.list_files("tenants") == ["tenants/shop/base/namespace.yaml"]
    assert forge.list_files("tenants/sh") == []
    assert forge.list_files() == ["CODEOWNERS", "README.md", "tenants/shop/base/namespace.yaml"]
    assert forge.head() == repo.refs["heads/main"]
    with pytest.raises(NotFound):
        forge.head("no-such-branch")


def test_merge_on_github_then_ancestry_and_changed_paths(forge: GitHubForge, repo: FakeRepo,
                                                         fake: FakeGitHub) -> None:
    before = forge.head()
    info = forge.open_change(_spec())
    assert not forge.is_ancestor(info.head_sha)
    merge_sha = fake.merge(f"{repo.owner}/{repo.name}", info.number, merged_by="bob")
    merged = forge.get_change(info.number)
    assert merged.state is ChangeState.merged
    assert (merged.merge_sha, merged.merged_by) == (merge_sha, "bob")
    assert forge.is_ancestor(merge_sha)
    assert forge.is_ancestor(before)
    assert not forge.is_ancestor("f" * 40)
    assert forge.changed_paths(before, merge_sha) == [
        "tenants/shop/web/.caas-answers.yaml", "tenants/shop/web/base/namespace.yaml"]
    assert forge.find_change("caas/tenant-shop-web") is None  # merged is no longer open


def test_close_change(forge: GitHubForge, repo: FakeRepo) -> None:
    info = forge.open_change(_spec())
    closed = forge.close_change(info.number, by="alice")
    assert closed.state is ChangeState.closed
    assert forge.find_change(info.branch) is None
    assert any("Closed from the portal by @alice" in c["body"] for c in repo.comments.values())
    with pytest.raises(ForgeError):
        forge.update_change(info.number, [FileChange("a.txt", b"a")], "late")


def test_errors_map_to_the_portal_error_tree(forge: GitHubForge) -> None:
    with pytest.raises(NotFound):
        forge.get_change(999)
    with pytest.raises(ForgeError):  # deleting a file that is not there: GitHub says 422
        forge.open_change(_spec(files=[FileChange("nope.yaml", None)]))


def test_binary_content_goes_through_blobs_and_round_trips(forge: GitHubForge,
                                                           fake: FakeGitHub) -> None:
    data = bytes(range(256))
    text = "größe: 1Gi\n".encode()
    fake.reset_log()
    info = forge.open_change(_spec(files=[FileChange("bin/blob.dat", data),
                                          FileChange("a/text.yaml", text)], reviewers=[]))
    assert [m for m, p in fake.requests if p.endswith("/git/blobs")] == ["POST"]
    assert forge.read_file("bin/blob.dat", ref=info.branch) == data
    assert forge.read_file("a/text.yaml", ref=info.branch) == text


def test_from_settings(tmp_path: Path, fake: FakeGitHub, repo: FakeRepo) -> None:
    settings = Settings(data_dir=tmp_path, github_url=fake.base_url + PREFIX + "/",
                        github_repo=f"{repo.owner}/{repo.name}", github_token="ghs_x")
    assert GitHubForge.from_settings(settings).read_file("README.md") == b"# gitops\n"
    with pytest.raises(ConfigError):
        GitHubForge.from_settings(Settings(data_dir=tmp_path, github_token="t"))
    with pytest.raises(ConfigError):
        GitHubForge.from_settings(Settings(data_dir=tmp_path, github_repo="a/b"))


@pytest.mark.parametrize(("paths", "users", "teams"), [
    (["tenants/shop/base/q.yaml"], ["carol"], ["acme/team-shop"]),
    (["tenants/shopping/x.yaml"], [], ["acme/platform-admins"]),
    (["envs/prod/infra.yaml"], ["dave"], ["acme/platform-admins"]),
    (["docs/a.md"], [], []),  # email owners cannot be requested
    (["docs/sub/a.md"], [], ["acme/platform-admins"]),  # docs/*.md is one level only
])
def test_codeowners_matching(paths: list[str], users: list[str], teams: list[str]) -> None:
    assert codeowners_for(CODEOWNERS.decode(), paths) == (users, teams)


def test_codeowners_patterns_at_any_depth() -> None:
    text = "*.tf @tf-owner\napps/ @acme/apps\n/root.yaml @root\n**/logs @acme/logs\n"
    assert codeowners_for(text, ["terraform/aws/main.tf"]) == (["tf-owner"], [])
    assert codeowners_for(text, ["x/apps/y.yaml"]) == ([], ["acme/apps"])
    assert codeowners_for(text, ["root.yaml"]) == (["root"], [])
    assert codeowners_for(text, ["x/root.yaml"]) == ([], [])
    assert codeowners_for(text, ["a/b/logs/c.txt"]) == ([], ["acme/logs"])


def test_split_reviewers() -> None:
    assert split_reviewers(["@bob", "acme/sre", "@acme/sre", "bob", "x@y.z", ""]) == (
        ["bob"], ["acme/sre"])


def test_codeowners_matching_reads_the_generated_file() -> None:
    """The reviewers GitHubForge requests follow the portal's own generated CODEOWNERS."""
    from scaffolder.codeowners import TeamOwners, render_codeowners

    text = render_codeowners(
        teams=[TeamOwners("shop", ("@acme/team-shop",), ("@acme/team-shop-admins",))],
        environments={"dev": "dev", "stage": "staging", "prod": "prod"},
        admins=["@acme/platform-admins"])
    admins = "acme/platform-admins"
    assert codeowners_for(text, ["tenants/shop/web/base/quota.yaml"]) == (
        [], ["acme/team-shop", admins])
    assert codeowners_for(text, ["tenants/shop/web/envs/dev/kustomization.yaml"]) == (
        [], ["acme/team-shop", admins])
    assert codeowners_for(text, ["tenants/shop/web/envs/stage/kustomization.yaml"]) == (
        [], ["acme/team-shop-admins", admins])
    assert codeowners_for(text, ["tenants/shop/web/envs/prod/kustomization.yaml"]) == (
        [], [admins])
    assert codeowners_for(text, ["teams/shop/team.yaml"]) == (
        [], ["acme/team-shop-admins", admins])
    assert codeowners_for(text, ["envs/prod/infra.yaml"]) == ([], [admins])


def test_the_factory_keeps_one_github_forge_so_etags_outlive_a_request(
        tmp_path: Path, fake: FakeGitHub, repo: FakeRepo) -> None:
    from gitops.forges.factory import make_forge
    from portal.settings import ForgeKind

    settings = Settings(data_dir=tmp_path, forge=ForgeKind.github,
                        github_url=fake.base_url + PREFIX, github_token="ghs_x",
                        github_repo=f"{repo.owner}/{repo.name}", github_write_interval_s=0)
    first = make_forge(settings, None)  # type: ignore[arg-type]
    assert make_forge(settings, None) is first  # type: ignore[arg-type]
    fake.reset_log()
    first.head()
    make_forge(settings, None).head()  # type: ignore[arg-type]
    assert [c.status for c in fake.calls] == [200, 304]
    other = settings.model_copy(update={"github_token": SecretStr("ghs_other")})
    assert make_forge(other, None) is not first  # type: ignore[arg-type]


def test_one_forge_shared_by_threads_gets_each_answer_right(forge: GitHubForge,
                                                            repo: FakeRepo) -> None:
    """The factory shares one forge per process: requests from many threads never cross."""
    from concurrent.futures import ThreadPoolExecutor

    files = {f"t/{i}.yaml": f"i: {i}\n".encode() for i in range(16)}
    repo.commit_files("main", files, "many")

    def read(path: str) -> bool:
        return all(forge.read_file(path) == files[path] for _ in range(5))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(read, sorted(files) * 2))
