"""Commit files onto a commit without a work tree, read blobs as bytes, and merge with
``git merge-tree --write-tree`` (the plumbing the local forge, the scaffolder and the reconciler
share). Every git process runs through ``gitops.git``."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitops.git import failed, out, run
from gitops.paths import check_path

ZERO = "0" * 40


class FileLike(Protocol):
    """What ``commit_files`` writes (``gitops.forges.base.FileChange`` is one)."""

    @property
    def path(self) -> str: ...

    @property
    def content(self) -> bytes | None: ...


def resolve(git_dir: Path, ref: str) -> str | None:
    proc = run(git_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def read_blob(git_dir: Path, ref: str, path: str) -> bytes | None:
    proc = run(git_dir, "cat-file", "blob", f"{ref}:{path}")
    return proc.stdout if proc.returncode == 0 else None


def list_paths(git_dir: Path, ref: str, prefix: str = "") -> list[str]:
    args = ["ls-tree", "-r", "-z", "--name-only", ref]
    if prefix:
        args += ["--", prefix.rstrip("/") + "/" if not prefix.endswith("/") else prefix]
    proc = run(git_dir, *args)
    if proc.returncode != 0:
        return []
    return [p for p in proc.stdout.decode().split("\0") if p]


def list_dir(git_dir: Path, ref: str, directory: str) -> list[str]:
    """Names of the direct children of ``directory`` (files and folders) at ``ref``."""
    proc = run(git_dir, "ls-tree", "-z", "--name-only", ref, "--", directory.rstrip("/") + "/")
    if proc.returncode != 0:
        return []
    return [p.rsplit("/", 1)[-1] for p in proc.stdout.decode().split("\0") if p]


def author_env(author: str) -> dict[str, str]:
    return {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author}@caas.local"}


def commit_files(git_dir: Path, *, parent: str, files: Sequence[FileLike], message: str,
                 author: str) -> str:
    """A new commit on top of ``parent`` whose tree is the parent's plus ``files``.

    Only the trees on the changed paths are rewritten (``ls-tree`` + ``mktree``), so the cost
    does not grow with the size of the repository the way an index of every file would.
    """
    for change in files:
        check_path(change.path)
    writes = [f for f in files if f.content is not None]
    blobs: dict[str, str] = {}
    if writes:
        with tempfile.TemporaryDirectory(prefix="caas-commit-") as tmp:
            blob_paths = []
            for i, change in enumerate(writes):
                blob = Path(tmp) / f"blob-{i}"
                blob.write_bytes(change.content or b"")
                blob_paths.append(str(blob))
            shas = out(git_dir, "hash-object", "-w", "--stdin-paths",
                       input_bytes="\n".join(blob_paths).encode()).split()
        blobs = {f.path: sha for f, sha in zip(writes, shas, strict=True)}
    changes: dict[str, str | None] = {f.path: blobs.get(f.path) for f in files}
    root = out(git_dir, "rev-parse", f"{parent}^{{tree}}").strip()
    tree = _rewrite(git_dir, root, changes) or _empty_tree(git_dir)
    return out(git_dir, "commit-tree", tree, "-p", parent, "-m", message,
               env=author_env(author)).strip()


def _entries(git_dir: Path, tree: str | None) -> dict[str, tuple[str, str, str]]:
    """name → (mode, type, object) of one tree's direct entries."""
    if tree is None:
        return {}
    found: dict[str, tuple[str, str, str]] = {}
    for record in out(git_dir, "ls-tree", "-z", tree).split("\0"):
        if record:
            meta, name = record.split("\t", 1)
            mode, kind, obj = meta.split()
            found[name] = (mode, kind, obj)
    return found


def _rewrite(git_dir: Path, tree: str | None, changes: dict[str, str | None]) -> str | None:
    """The tree ``tree`` with ``changes`` (relative path → blob id, None deletes) applied;
    None when nothing is left in it."""
    entries = _entries(git_dir, tree)
    nested: dict[str, dict[str, str | None]] = {}
    for path, blob in changes.items():
        head, sep, rest = path.partition("/")
        if sep:
            nested.setdefault(head, {})[rest] = blob
        elif blob is None:
            entries.pop(head, None)
        else:
            entries[head] = ("100644", "blob", blob)
    for name, inner in nested.items():
        current = entries.get(name)
        sub = current[2] if current and current[1] == "tree" else None
        rewritten = _rewrite(git_dir, sub, inner)
        if rewritten is None:
            entries.pop(name, None)
        else:
            entries[name] = ("040000", "tree", rewritten)
    if not entries:
        return None
    listing = "".join(f"{mode} {kind} {obj}\t{name}\0"
                      for name, (mode, kind, obj) in sorted(entries.items()))
    return out(git_dir, "mktree", "-z", input_bytes=listing.encode()).strip()


def _empty_tree(git_dir: Path) -> str:
    return out(git_dir, "mktree", input_bytes=b"").strip()


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
    return run(git_dir, "merge-base", "--is-ancestor", commit, ref).returncode == 0


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
