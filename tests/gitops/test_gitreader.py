"""The batched git reader returns the same files whichever way it reads them."""

from __future__ import annotations

from pathlib import Path

from gitops.gitreader import GitReader
from tests.catalog import gitops
from tests.catalog.conftest import base_files


def test_walk_and_ls_tree_agree(tmp_path: Path) -> None:
    repo = gitops.Repo(tmp_path / "g.git")
    first = repo.commit(base_files())
    reader = GitReader(repo.git_dir)
    few = reader.read_tree(["tenants/payments/payments-api", "teams/search", "envs/none"], "main")
    many = reader.read_tree(["tenants", "teams", "envs"] * 30, "main")  # ls-tree + cat-file
    assert few == {p: c for p, c in many.items()
                   if p.startswith(("tenants/payments/payments-api/", "teams/search/"))}
    assert few["teams/search/team.yaml"] == repo.files["teams/search/team.yaml"].encode()
    assert reader.head() == first
    assert reader.read_file("README.md") == b"GitOps repository\n"
    assert reader.read_file("missing.yaml") is None
    assert reader.list_files("envs") == ["envs/dev/infra.yaml", "envs/prod/infra.yaml",
                                         "envs/stage/infra.yaml"]
    second = repo.commit({"README.md": None})
    assert reader.read_file("README.md", first) == b"GitOps repository\n"
    assert reader.read_file("README.md", second) is None
