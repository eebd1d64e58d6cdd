"""``main`` read once per drift run: every unit's files, grouped by entity key, parsed lazily.

One batched read of the whole tree (``TreeSource.read_tree([])``: ``git ls-tree`` plus one
streamed ``git cat-file --batch``; naming the four unit folders would take the reader's
few-folders path, one round trip per object) serves the git, catalog and cluster sides alike;
files outside the unit folders are dropped.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from catalog.parse import Parsed, parse_entity
from gitops import bootstrap
from gitops.gitreader import TreeSource
from gitops.layout import key_for_path, unit_dir


@dataclass
class Snapshot:
    commit: str
    units: dict[str, dict[str, bytes]]  # entity key -> {path: content}
    # The platform's GitOps repository URL (``gitops.bootstrap.repo_url_in`` of main's
    # bootstrap/root.yaml): what renders fill in where a template names the repository.
    repo_url: str | None = None
    _parsed: dict[str, Parsed | None] = field(default_factory=dict)

    def parsed(self, key: str) -> Parsed | None:
        """The unit as the catalog's indexer reads it (None when it is no entity)."""
        if key not in self._parsed:
            self._parsed[key] = parse_entity(key, self.units.get(key, {}))
        return self._parsed[key]

    def fingerprint(self, key: str) -> str:
        """sha1 over the repository URL and the unit's paths and contents: equal means
        unchanged (a moved repository URL changes what the unit renders to)."""
        digest = hashlib.sha1((self.repo_url or "").encode() + b"\0", usedforsecurity=False)
        for path, content in sorted(self.units.get(key, {}).items()):
            digest.update(path.encode() + b"\0" + hashlib.sha1(
                content, usedforsecurity=False).digest())
        return digest.hexdigest()


def read_main(source: TreeSource, *, ref: str = "main") -> Snapshot:
    """Every unit's files at the head of ``ref``."""
    commit = source.head(ref)
    files = source.read_tree([], commit)
    units: dict[str, dict[str, bytes]] = defaultdict(dict)
    for path, content in files.items():
        key = key_for_path(path)
        if key is not None:
            units[key][path] = content
    return Snapshot(commit=commit, units=dict(units),
                    repo_url=bootstrap.repo_url_in(files.get(bootstrap.MARKER)))


def folder(key: str) -> str:
    return unit_dir(key)
