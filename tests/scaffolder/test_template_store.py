"""The versioned template store on real git: every version served is retrievable by its tree
id; the source repository is the fallback; a version in neither is named in the error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops import git
from portal.settings import REPO_ROOT
from scaffolder.registry import tree_id
from scaffolder.template_store import TemplateStore, TemplateVersionMissing


def test_versions_are_stored_once_and_read_back_with_the_same_tree_id(tmp_path: Path) -> None:
    folder = tmp_path / "team"
    shutil.copytree(REPO_ROOT / "templates" / "team", folder)
    store = TemplateStore(tmp_path / "templates.git", source=None)
    v1 = tree_id(folder)
    store.remember("team", folder, v1)
    store.remember("team", folder, v1)  # idempotent
    (folder / "template.yaml").write_text((folder / "template.yaml").read_text() + "# v2\n")
    v2 = tree_id(folder)
    store.remember("team", folder, v2)
    assert store.versions("team") == [v1, v2]
    refs = git.out(store.git_dir, "for-each-ref", "--format=%(refname)").split()
    assert sorted(refs) == sorted(["refs/caas/templates/team", f"refs/caas/versions/team/{v1}",
                                   f"refs/caas/versions/team/{v2}"])
    back = store.materialize("team", v1, tmp_path / "out")
    assert back.name == "team" and tree_id(back) == v1
    assert "+# v2" in store.diff("team", v1, v2)
    with pytest.raises(TemplateVersionMissing) as missing:
        store.materialize("team", "e" * 40, tmp_path / "none")
    assert "team" in missing.value.message and "e" * 40 in missing.value.message


def test_a_version_only_in_the_source_history_is_found_there(tmp_path: Path) -> None:
    source = tmp_path / "source.git"
    git.init_bare(source)
    folder = tmp_path / "tree" / "templates" / "team"
    shutil.copytree(REPO_ROOT / "templates" / "team", folder)
    git.commit_directory(source, tmp_path / "tree", branch="main", message="templates")
    version = git.out(source, "rev-parse", "main:templates/team").strip()
    assert version == tree_id(folder)
    store = TemplateStore(tmp_path / "templates.git", source=source)
    assert store.where(version) == source
    assert tree_id(store.materialize("team", version, tmp_path / "out")) == version
