"""Commit files onto a commit without a work tree, read blobs as bytes, and merge with
``git merge-tree --write-tree`` (the plumbing the local forge, the scaffolder and the reconciler
share). Reads and commits go through libgit2 in-process (``gitops.git.repository``); every git
process runs through ``gitops.git``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pygit2

from gitops.git import IDENTITY, failed, out, repository, run
from gitops.paths import check_path

ZERO = "0" * 40


class FileLike(Protocol):
    """What ``commit_files`` writes (``gitops.forges.base.FileChange`` is one)."""

    @property
    def path(self) -> str: ...

    @property
    def content(self) -> bytes | None: ...


def _object(git_dir: Path, spec: str) -> pygit2.Object | None:
    """The object ``spec`` names (git revision syntax: ``main``, a sha, ``main:path``,
    ``ref^{tree}``), or None when it names nothing."""
    try:
        return repository(git_dir).revparse_single(spec)
    except (KeyError, ValueError, pygit2.GitError):
        return None


def resolve(git_dir: Path, ref: str) -> str | None:
    found = _object(git_dir, f"{ref}^{{commit}}")
    return str(found.id) if found is not None else None


def read_blob(git_dir: Path, ref: str, path: str) -> bytes | None:
    found = _object(git_dir, f"{ref}:{path}") if path else None
    return found.data if isinstance(found, pygit2.Blob) else None


def _subtree(git_dir: Path, ref: str, directory: str) -> pygit2.Tree | None:
    """The tree of ``directory`` ("" for the root) at ``ref``, or None."""
    root = _object(git_dir, f"{ref}^{{tree}}")
    if not isinstance(root, pygit2.Tree):
        return None
    directory = directory.strip("/")
    if not directory:
        return root
    try:
        found = root[directory]
    except KeyError:
        return None
    return found if isinstance(found, pygit2.Tree) else None


def list_paths(git_dir: Path, ref: str, prefix: str = "") -> list[str]:
    """Every file (blob) path under the folder ``prefix`` (all when empty) at ``ref``, in git's
    tree order (as ``git ls-tree -r``); [] when the ref or the folder does not exist."""
    tree = _subtree(git_dir, ref, prefix)
    if tree is None:
        return []
    base = prefix.strip("/")
    found: list[str] = []
    _walk(repository(git_dir), tree, f"{base}/" if base else "", found)
    return found


def _walk(repo: pygit2.Repository, tree: pygit2.Tree, folder: str, found: list[str]) -> None:
    for entry in tree:
        if entry.type_str == "tree":
            sub = repo[entry.id]
            assert isinstance(sub, pygit2.Tree)
            _walk(repo, sub, f"{folder}{entry.name}/", found)
        elif entry.type_str == "blob":
            found.append(f"{folder}{entry.name}")


def list_dir(git_dir: Path, ref: str, directory: str) -> list[str]:
    """Names of the direct children of ``directory`` (files and folders) at ``ref``."""
    tree = _subtree(git_dir, ref, directory) if directory.strip("/") else None
    return [entry.name for entry in tree if entry.name] if tree is not None else []


def commit_files(git_dir: Path, *, parent: str, files: Sequence[FileLike], message: str,
                 author: str) -> str:
    """A new commit on top of ``parent`` whose tree is the parent's plus ``files`` (content
    None deletes); returns its id. Written in-process (libgit2): only the trees on the changed
    paths are rewritten, so the cost does not grow with the size of the repository. The author
    is ``author <author@caas.local>``, the committer the portal (``gitops.git.IDENTITY``)."""
    for change in files:
        check_path(change.path)
    repo = repository(git_dir)
    base = repo.revparse_single(f"{parent}^{{commit}}")
    assert isinstance(base, pygit2.Commit)
    changes: dict[str, pygit2.Oid | None] = {
        f.path: repo.create_blob(f.content) if f.content is not None else None for f in files}
    tree = _rewrite(repo, base.tree, changes) or repo.TreeBuilder().write()
    committer = pygit2.Signature(IDENTITY["GIT_COMMITTER_NAME"],
                                 IDENTITY["GIT_COMMITTER_EMAIL"])
    signed = pygit2.Signature(author, f"{author}@caas.local", committer.time, committer.offset)
    text = message if message.endswith("\n") else message + "\n"  # as commit-tree -m writes it
    return str(repo.create_commit(None, signed, committer, text, tree, [base.id]))


def _rewrite(repo: pygit2.Repository, tree: pygit2.Tree | None,
             changes: dict[str, pygit2.Oid | None]) -> pygit2.Oid | None:
    """The tree ``tree`` with ``changes`` (relative path → blob id, None deletes) applied;
    None when nothing is left in it."""
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    nested: dict[str, dict[str, pygit2.Oid | None]] = {}
    for path, blob in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = blob
        elif blob is None:
            if builder.get(head) is not None:
                builder.remove(head)
        else:
            builder.insert(head, blob, pygit2.enums.FileMode.BLOB)
    for name, inner in nested.items():
        current = builder.get(name)
        sub = repo[current.id] if current is not None and current.type_str == "tree" else None
        rewritten = _rewrite(repo, sub if isinstance(sub, pygit2.Tree) else None, inner)
        if rewritten is None:
            if current is not None:
                builder.remove(name)
        else:
            builder.insert(name, rewritten, pygit2.enums.FileMode.TREE)
    if len(builder) == 0:
        return None
    return builder.write()


def update_ref(git_dir: Path, branch: str, new: str, old: str | None) -> bool:
    """Compare-and-swap ``refs/heads/<branch>`` from ``old`` (None: must not exist) to ``new``."""
    proc = run(git_dir, "update-ref", f"refs/heads/{branch}", new, old or ZERO)
    return proc.returncode == 0


@dataclass(frozen=True)
class MergeResult:
    tree: str | None
    conflicts: list[str]


def merge_tree(git_dir: Path, ours: str, theirs: str) -> MergeResult:
    """Three-way merge in the object database only (git >= 2.38)."""
    proc = run(git_dir, "merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs)
    lines = proc.stdout.decode(errors="replace").splitlines()
    if proc.returncode == 0 and lines:
        return MergeResult(tree=lines[0].strip(), conflicts=[])
    if proc.returncode == 1:
        return MergeResult(tree=None, conflicts=sorted({ln for ln in lines[1:] if ln.strip()}))
    raise failed(["merge-tree", "--write-tree", ours, theirs], proc)


def changed_paths(git_dir: Path, base: str, head: str) -> list[str]:
    names = out(git_dir, "diff", "--name-only", "-z", "--no-renames", base, head)
    return sorted({p for p in names.split("\0") if p})


def is_ancestor(git_dir: Path, commit: str, ref: str) -> bool:
    """``commit`` is ``ref`` or one of its ancestors (``git merge-base --is-ancestor``); False
    when either names no commit."""
    older = _object(git_dir, f"{commit}^{{commit}}")
    newer = _object(git_dir, f"{ref}^{{commit}}")
    if older is None or newer is None:
        return False
    return older.id == newer.id or repository(git_dir).descendant_of(newer.id, older.id)


def read_many(git_dir: Path, ref: str, paths: Sequence[str]) -> dict[str, bytes]:
    """Several blobs at ``ref`` through one ``cat-file --batch`` (missing paths are left out)."""
    if not paths:
        return {}
    request = "".join(f"{ref}:{p}\n" for p in paths).encode()
    data = run(git_dir, "cat-file", "--batch", input_bytes=request).stdout
    found: dict[str, bytes] = {}
    pos = 0
    for path in paths:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            found[path] = data[pos:pos + size]
            pos += size + 1
        elif len(header) == 3:
            pos += int(header[2]) + 1
    return found
