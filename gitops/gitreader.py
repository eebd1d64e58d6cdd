"""A fast, batched reader of a bare git repository (``LocalForge.read_tree`` is this).

The indexer reads thousands of small files per commit. One ``git ls-tree`` plus one streamed
``git cat-file --batch`` read them all in two processes instead of two per file, which is what
makes a full reindex of a large GitOps repository take seconds rather than minutes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from gitops import git

FEW = 64  # up to this many folders, walk them in one cat-file process (no ls-tree spawn)


class TreeSource(Protocol):
    """What the indexer needs: the commit of a ref, and every file under some prefixes
    (every ``Forge`` is one, and so is a ``GitReader``)."""

    def head(self, ref: str = "main") -> str: ...

    def read_tree(self, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
        """Path → content of every file under ``prefixes`` (all files when empty) at ``ref``."""
        ...


class GitReader:
    """Reads a bare repository with git plumbing; implements ``head``/``read_file``/``list_files``
    of the Forge Protocol and the batched ``read_tree``."""

    kind = "git"

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = Path(git_dir)

    def head(self, ref: str = "main") -> str:
        return git.out(self.git_dir, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()

    def _ls(self, prefixes: Sequence[str], ref: str) -> list[tuple[str, str]]:
        """(blob id, path) of every file under ``prefixes`` at ``ref``."""
        out = git.out(self.git_dir, "ls-tree", "-r", "-z", "--full-tree", ref, "--",
                  *[p.rstrip("/") for p in prefixes if p])
        entries: list[tuple[str, str]] = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                entries.append((parts[2], path))
        return entries

    def list_files(self, prefix: str = "", ref: str = "main") -> list[str]:
        return [path for _sha, path in self._ls([prefix] if prefix else [], ref)]

    def read_file(self, path: str, ref: str = "main") -> bytes | None:
        return self.read_tree([path], ref).get(path)

    def read_tree(self, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
        if prefixes and len(prefixes) <= FEW:
            return self._walk(prefixes, ref)
        entries = self._ls(prefixes, ref)
        # ls-tree matches path prefixes component-wise; a file named exactly like the prefix
        # counts too (read_file of a single path).
        blobs = self._cat(sha for sha, _path in entries)
        return {path: blobs[sha] for sha, path in entries}

    def _walk(self, prefixes: Sequence[str], ref: str) -> dict[str, bytes]:
        """Read a few folders through one interactive ``git cat-file --batch``: after a merge
        only one or two entities change, and each process spawn costs more than the reads."""
        proc = subprocess.Popen(git.argv(self.git_dir, "cat-file", "--batch"),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=git.environment())
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def get(name: str) -> tuple[bytes, bytes] | None:
            stdin.write(name.encode() + b"\n")
            stdin.flush()
            header = stdout.readline().split()
            if len(header) != 3:  # "<name> missing" (or ambiguous)
                return None
            data = stdout.read(int(header[2]))
            stdout.read(1)
            return header[1], data

        files: dict[str, bytes] = {}
        try:
            for prefix in prefixes:
                top = get(f"{ref}:{prefix.rstrip('/')}")
                stack = [(prefix.rstrip("/"), top)] if top else []
                while stack:
                    path, (kind, data) = stack.pop()
                    if kind == b"blob":
                        files[path] = data
                        continue
                    if kind != b"tree":
                        continue
                    for mode, name, sha in _tree_entries(data):
                        if mode != b"160000":  # submodules have no objects here
                            child = get(sha)
                            if child is not None:
                                stack.append((f"{path}/{name}", child))
        finally:
            stdin.close()
            proc.wait()
        return files

    def _cat(self, shas: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        proc = git.run(self.git_dir, "cat-file", "--batch",
                       input_bytes=("\n".join(wanted) + "\n").encode())
        if proc.returncode != 0:
            raise git.failed(["cat-file", "--batch"], proc)
        data = proc.stdout
        result: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            if len(header) != 3:  # "<sha> missing"
                raise git.GitError(f"git object {sha} is missing", command=["cat-file", "--batch"])
            size = int(header[2])
            result[sha] = data[end + 1:end + 1 + size]
            pos = end + 1 + size + 1
        return result


def _tree_entries(data: bytes) -> Iterable[tuple[bytes, str, str]]:
    """Entries of a raw tree object: ``<mode> <name>\\0<20-byte id>`` repeated."""
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        yield data[pos:space], data[space + 1:nul].decode(), data[nul + 1:nul + 21].hex()
        pos = nul + 21
