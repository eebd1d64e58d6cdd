"""LocalForge on a real bare repository and a real database (SQLite: git is what is tested)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from gitops.forges.base import (
    ChangeSpec,
    ChangeState,
    Check,
    CheckState,
    FileChange,
    Forge,
    MergeConflict,
)
from gitops.forges.factory import make_forge
from gitops.forges.local import LocalForge
from gitops.forges.models import LocalCheck
from gitops.git import seed_repository
from gitops.paths import UnsafePath
from portal import db
from portal.errors import Conflict, Forbidden
from portal.settings import Settings
from tests.conftest import make_settings
from tests.harness.databases import SqliteFactory


@pytest.fixture
def forge(tmp_path: Path, sqlite_factory: SqliteFactory) -> Iterator[LocalForge]:
    settings: Settings = make_settings(tmp_path, sqlite_factory.new(tmp_path / "db"))
    skeleton = tmp_path / "skeleton"
    (skeleton / "envs" / "dev").mkdir(parents=True)
    (skeleton / "envs" / "dev" / "infra.yaml").write_text("tier: dev\n")
    (skeleton / "README.md").write_text("gitops\n")
    seed_repository(settings.resolved_gitops_repo, skeleton)
    engine: Engine = db.make_engine(settings)
    made = make_forge(settings, engine)
    assert isinstance(made, LocalForge)
    yield made
    engine.dispose()


def _open(forge: LocalForge, branch: str, files: dict[str, bytes | None]) -> int:
    spec = ChangeSpec(branch=branch, title=f"change {branch}", body="body", author="alice",
                      files=[FileChange(p, c) for p, c in files.items()])
    return forge.open_change(spec).number


def _green_and_approved(forge: LocalForge, number: int) -> None:
    forge.set_check(number, Check("schemas", CheckState.success))
    forge.approve(number, by="bob")


def test_open_change_commits_files_on_a_branch(forge: LocalForge) -> None:
    assert isinstance(forge, Forge)
    main = forge.head()
    number = _open(forge, "caas/a", {"tenants/a/ns.yaml": b"kind: Namespace\n",
                                     "README.md": None})
    info = forge.get_change(number)
    assert info.state is ChangeState.open and info.base_sha == main
    assert forge.read_file("tenants/a/ns.yaml", info.head_sha) == b"kind: Namespace\n"
    assert forge.read_file("README.md", info.head_sha) is None
    assert forge.changed_paths(main, info.head_sha) == ["README.md", "tenants/a/ns.yaml"]
    assert forge.head() == main  # main untouched until merged
    assert forge.find_change("caas/a") == info
    assert _open(forge, "caas/a", {"x.yaml": b"x"}) == number  # a retry: the same change


def test_merge_needs_green_checks_and_someone_elses_approval(forge: LocalForge) -> None:
    number = _open(forge, "caas/b", {"tenants/b/ns.yaml": b"b\n"})
    with pytest.raises(Forbidden):
        forge.approve(number, by="alice")
    forge.approve(number, by="bob")
    with pytest.raises(Conflict, match="checks"):
        forge.merge(number, by="bob")
    forge.set_check(number, Check("schemas", CheckState.failure))
    with pytest.raises(Conflict, match="checks"):
        forge.merge(number, by="bob")
    forge.set_check(number, Check("schemas", CheckState.success))
    before = forge.head()
    event = forge.merge(number, by="bob")
    assert event.before == before and event.commit == forge.head()
    assert forge.read_file("tenants/b/ns.yaml") == b"b\n"
    assert forge.is_ancestor(forge.get_change(number).head_sha)
    assert forge.get_change(number).state is ChangeState.merged
    assert forge.find_change("caas/b") is None
    with pytest.raises(Conflict):
        forge.merge(number, by="bob")


def test_a_push_makes_the_approval_stale(forge: LocalForge) -> None:
    number = _open(forge, "caas/c", {"c.yaml": b"1\n"})
    _green_and_approved(forge, number)
    forge.update_change(number, [FileChange("c.yaml", b"2\n")], "second")
    forge.set_check(number, Check("schemas", CheckState.success))
    with pytest.raises(Conflict, match="approval"):
        forge.merge(number, by="bob")
    forge.approve(number, by="bob")
    forge.merge(number, by="bob")
    assert forge.read_file("c.yaml") == b"2\n"


def test_second_merge_touching_the_same_file_conflicts_and_main_is_untouched(
        forge: LocalForge) -> None:
    first = _open(forge, "caas/d1", {"same.yaml": b"one\n"})
    second = _open(forge, "caas/d2", {"same.yaml": b"two\n"})
    for n in (first, second):
        _green_and_approved(forge, n)
    forge.merge(first, by="bob")
    main = forge.head()
    with pytest.raises(MergeConflict, match=r"same\.yaml"):
        forge.merge(second, by="bob")
    assert forge.head() == main
    assert forge.read_file("same.yaml") == b"one\n"
    assert forge.get_change(second).state is ChangeState.open


def test_disjoint_changes_both_merge(forge: LocalForge) -> None:
    first = _open(forge, "caas/e1", {"e1.yaml": b"1\n"})
    second = _open(forge, "caas/e2", {"e2.yaml": b"2\n"})
    for n in (first, second):
        _green_and_approved(forge, n)
    forge.merge(first, by="bob")
    forge.merge(second, by="bob")
    assert forge.read_file("e1.yaml") == b"1\n" and forge.read_file("e2.yaml") == b"2\n"


def test_close_comment_and_unsafe_paths(forge: LocalForge) -> None:
    number = _open(forge, "caas/f", {"f.yaml": b"f\n"})
    forge.comment(number, "first")
    forge.comment(number, "second")
    assert forge.comments(number) == {"preview": "second"}
    assert forge.close_change(number, by="alice").state is ChangeState.closed
    with pytest.raises(Conflict):
        forge.approve(number, by="bob")
    for bad in ("../x", "/etc/passwd", ".git/config", "a//b", "a\nb"):
        with pytest.raises(UnsafePath):
            _open(forge, f"caas/bad{len(bad)}", {bad: b"x"})


def test_concurrent_writers_of_one_check_and_comment_end_with_one_row(
        tmp_path: Path, settings: Settings, engine: Engine) -> None:
    """Two merges re-check one PR at once (its own merge and another's re-check of the open
    PRs): the writers race to create the same (number, name) row; all succeed, one row each."""
    import threading

    skeleton = tmp_path / "skeleton"
    skeleton.mkdir()
    (skeleton / "README.md").write_text("gitops\n")
    seed_repository(settings.resolved_gitops_repo, skeleton)
    made = make_forge(settings, engine)
    assert isinstance(made, LocalForge)
    number = _open(made, "race", {"a.txt": b"a\n"})
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        barrier.wait()
        try:
            made.set_check(number, Check("codeowners", CheckState.success, description=str(i)))
            made.comment(number, f"body {i}", key="preview")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(engine) as session:
        rows = session.exec(select(LocalCheck).where(LocalCheck.number == number)).all()
    assert [r.name for r in rows] == ["codeowners"]
    assert list(made.comments(number)) == ["preview"]
