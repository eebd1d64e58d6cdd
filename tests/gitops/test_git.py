"""The one git runner: its error names the command, the exit status and what git said."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops import git


def test_git_error_carries_command_status_and_stderr(tmp_path: Path) -> None:
    repo = tmp_path / "r.git"
    git.init_bare(repo)
    with pytest.raises(git.GitError) as caught:
        git.out(repo, "rev-parse", "--verify", "no-such-ref^{commit}")
    error = caught.value
    assert error.command == ("rev-parse", "--verify", "no-such-ref^{commit}")
    assert error.returncode == 128
    assert "no-such-ref" in error.stderr or "Needed a single revision" in error.stderr
    assert error.stderr in error.message and "exit 128" in error.message


def test_seed_commits_the_skeleton_once(tmp_path: Path) -> None:
    skeleton = tmp_path / "skeleton"
    (skeleton / "envs").mkdir(parents=True)
    (skeleton / "envs" / "README.md").write_text("envs\n")
    repo = tmp_path / "g.git"
    assert git.seed_repository(repo, skeleton) is True
    assert git.seed_repository(repo, skeleton) is False
    assert git.out(repo, "ls-tree", "-r", "--name-only", "main").split() == ["envs/README.md"]
    assert git.run(repo, "rev-parse", "--verify", "nope").returncode != 0
