"""gitops.gittree reads and commits in-process (libgit2); the git CLI checks what it wrote."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from gitops import git, gittree


@dataclass(frozen=True)
class Change:
    path: str
    content: bytes | None


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for path, text in {"envs/dev/infra.yaml": "a\n", "teams/pay/team.yaml": "b\n",
                       "teams/pay-web/team.yaml": "c\n", "tenants/pay/pay-a/base/ns.yaml": "d\n",
                       "tenants/pay-web/pay-web-b/base/ns.yaml": "e\n", "run.sh": "#!/bin/sh\n"
                       }.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_text(text)
    (tree / "run.sh").chmod(0o755)
    git_dir = tmp_path / "g.git"
    git.init_bare(git_dir)
    git.commit_directory(git_dir, tree, branch="main", message="seed")
    return git_dir


def _ls(repo: Path, ref: str, *prefix: str) -> list[str]:
    return [p for p in git.out(repo, "ls-tree", "-r", "-z", "--name-only", ref, "--",
                               *prefix).split("\0") if p]


def test_reads_agree_with_the_git_cli(repo: Path) -> None:
    assert gittree.list_paths(repo, "main") == _ls(repo, "main")
    assert gittree.list_paths(repo, "main", "tenants/pay") == _ls(repo, "main", "tenants/pay/")
    assert gittree.list_paths(repo, "main", "tenants/pay/") == ["tenants/pay/pay-a/base/ns.yaml"]
    assert gittree.list_paths(repo, "main", "run.sh") == []  # a file is not a folder
    assert gittree.list_paths(repo, "nope") == gittree.list_paths(repo, "main", "nope") == []
    # git's tree order: a folder sorts as "name/" ("pay-web" before "pay"), as ls-tree lists it.
    assert gittree.list_dir(repo, "main", "teams") == ["pay-web", "pay"] == [
        p.rsplit("/", 1)[-1] for p in git.out(repo, "ls-tree", "-z", "--name-only", "main",
                                              "--", "teams/").split("\0") if p]
    assert gittree.list_dir(repo, "main", "teams/pay/team.yaml") == []
    assert gittree.resolve(repo, "main") == git.out(repo, "rev-parse", "main").strip()
    assert gittree.resolve(repo, "nope") is None
    assert gittree.read_blob(repo, "main", "teams/pay/team.yaml") == b"b\n"
    assert gittree.read_blob(repo, "main", "teams") is None
    assert gittree.read_blob(repo, "main", "teams/none.yaml") is None


def test_commit_files_writes_deletes_and_prunes_like_git(repo: Path) -> None:
    parent = gittree.resolve(repo, "main")
    assert parent is not None
    commit = gittree.commit_files(repo, parent=parent, message="Add b\n\nbody", author="alice",
                                  files=[Change("tenants/pay/pay-a/base/ns.yaml", None),
                                         Change("tenants/new/new-x/envs/dev/q.yaml", b"q\n"),
                                         Change("teams/pay/team.yaml", b"B\n")])
    assert git.out(repo, "cat-file", "-t", commit).strip() == "commit"
    git.out(repo, "fsck", "--strict", "--no-dangling")
    assert _ls(repo, commit) == [
        "envs/dev/infra.yaml", "run.sh", "teams/pay-web/team.yaml", "teams/pay/team.yaml",
        "tenants/new/new-x/envs/dev/q.yaml", "tenants/pay-web/pay-web-b/base/ns.yaml"]
    assert git.out(repo, "show", f"{commit}:teams/pay/team.yaml") == "B\n"
    # The emptied folder tenants/pay is gone; an untouched file keeps its mode.
    assert "100755 blob" in git.out(repo, "ls-tree", commit, "run.sh")
    assert git.out(repo, "log", "-1", "--format=%P%n%an <%ae>%n%cn <%ce>%n%B", commit) == (
        f"{parent}\nalice <alice@caas.local>\ncaas-portal <caas-portal@localhost>\n"
        "Add b\n\nbody\n\n")


def test_a_commit_that_deletes_everything_has_the_empty_tree(repo: Path) -> None:
    parent = gittree.resolve(repo, "main") or ""
    everything = [Change(p, None) for p in gittree.list_paths(repo, "main")]
    commit = gittree.commit_files(repo, parent=parent, files=everything, message="m",
                                  author="a")
    assert git.out(repo, "rev-parse", f"{commit}^{{tree}}").strip() == \
        git.out(repo, "hash-object", "-t", "tree", "/dev/null").strip()


def test_a_repository_created_again_at_the_same_path_is_read_afresh(repo: Path,
                                                                   tmp_path: Path) -> None:
    first = gittree.resolve(repo, "main")
    shutil.rmtree(repo)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "f").write_text("x\n")
    git.init_bare(repo)
    git.commit_directory(repo, tmp_path / "other", branch="main", message="again")
    assert gittree.resolve(repo, "main") not in (None, first)
    assert gittree.list_paths(repo, "main") == ["f"]


def test_a_ref_moved_by_the_git_cli_is_seen_at_once(repo: Path) -> None:
    parent = gittree.resolve(repo, "main") or ""
    commit = gittree.commit_files(repo, parent=parent, files=[Change("x", b"1")],
                                  message="m", author="a")
    assert gittree.update_ref(repo, "main", commit, parent)
    assert gittree.resolve(repo, "main") == commit
    assert gittree.read_blob(repo, "main", "x") == b"1"
    assert not stat.S_ISDIR(os.stat(repo / "HEAD").st_mode)


def test_is_ancestor_agrees_with_merge_base(repo: Path) -> None:
    first = gittree.resolve(repo, "main") or ""
    second = gittree.commit_files(repo, parent=first, files=[Change("y", b"2")], message="m",
                                  author="a")
    side = gittree.commit_files(repo, parent=first, files=[Change("z", b"3")], message="m",
                                author="a")
    assert gittree.update_ref(repo, "main", second, first)
    for commit, ref in ((first, "main"), (second, "main"), (side, "main"), (second, first),
                        ("0" * 40, "main"), (first, "nope")):
        expected = git.run(repo, "merge-base", "--is-ancestor", commit, ref).returncode == 0
        assert gittree.is_ancestor(repo, commit, ref) is expected, (commit, ref)
