"""The versioned template store: every template folder the registry ever served, retrievable by
its version (the git tree id of the folder, ``scaffolder.registry.tree_id``).

An upgrade renders its base with the template *as it was* when the unit was rendered, so old
versions must outlive the folder on disk. The store is a bare git repository,
``<data_dir>/templates.git``: each time the registry loads a template version it has not stored,
one ``git fast-import`` commits the folder on ``refs/caas/versions/<name>/<version>`` (which
keeps it reachable) and moves ``refs/caas/templates/<name>`` to it (a history of the versions
served, oldest first). git computes the same tree id as ``tree_id`` (same modes, no
symlinks, no ``__pycache__``), so the version in a unit's ``.caas-answers.yaml`` *is* the object
to read back.

Lookup order for a version: the store, then the portal's own source repository
(``REPO_ROOT/.git``, a clone's or a worktree's history of ``templates/``) when present.
``materialize`` writes the folder into a directory (``read-tree`` + ``checkout-index`` into a
private index: no work tree is touched). A version found in neither raises
``TemplateVersionMissing`` naming the template and the version.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from gitops import git
from portal.errors import CaasError
from portal.settings import REPO_ROOT

log = logging.getLogger(__name__)
REF_PREFIX = "refs/caas/templates/"
VERSION_PREFIX = "refs/caas/versions/"
_SKIP = frozenset({".git", "__pycache__"})
# (store, version) pairs known stored: loading a template again costs no git process.
_STORED: set[tuple[str, str]] = set()


class TemplateVersionMissing(CaasError):
    """No store knows this template version (the unit cannot get a three-way merge base)."""

    status = 409
    code = "template_version_missing"


def _files(folder: Path, prefix: str = "") -> list[tuple[str, str, Path]]:
    """(mode, path inside the folder, file) for every regular file, as ``tree_id`` counts."""
    found: list[tuple[str, str, Path]] = []
    for child in sorted(folder.iterdir()):
        if child.name in _SKIP or child.is_symlink():
            continue
        if child.is_dir():
            found += _files(child, f"{prefix}{child.name}/")
        else:
            mode = "100755" if child.stat().st_mode & 0o111 else "100644"
            found.append((mode, prefix + child.name, child))
    return found


class TemplateStore:
    """The bare repository at ``git_dir`` plus the source repository to fall back on."""

    def __init__(self, git_dir: Path, *, source: Path | None = REPO_ROOT / ".git") -> None:
        self.git_dir = git_dir.resolve()
        self.source = source if source is not None and source.exists() else None

    def remember(self, name: str, folder: Path, version: str) -> None:
        """Store ``folder`` (template ``name``) as ``version`` unless it is stored already.
        ``GitError``/``OSError`` when the data directory cannot be written."""
        key = (str(self.git_dir), version)
        if key in _STORED:
            return
        if not (self.git_dir / "HEAD").exists():
            git.init_bare(self.git_dir)
        # Each version has its own ref (what keeps it reachable, whoever else writes the store:
        # the server and the worker may load a new version at the same moment).
        pinned = f"{VERSION_PREFIX}{name}/{version}"
        if git.run(self.git_dir, "rev-parse", "--verify", "-q", pinned).returncode == 0:
            _STORED.add(key)
            return
        ref = REF_PREFIX + name
        tip = git.run(self.git_dir, "rev-parse", "--verify", "-q", ref + "^{commit}")
        message = f"{name} {version}".encode()
        stream = [b"commit " + pinned.encode() + b"\n",
                  b"committer caas-portal <caas-portal@localhost> %d +0000\n" % int(time.time()),
                  b"data %d\n" % len(message), message, b"\n"]
        if tip.returncode == 0:
            stream.append(b"from " + tip.stdout.strip() + b"\n")
        stream.append(b"deleteall\n")
        for mode, path, file in _files(folder):
            data = file.read_bytes()
            stream += [f"M {mode} inline {path}\n".encode(), b"data %d\n" % len(data), data,
                       b"\n"]
        git.out(self.git_dir, "fast-import", "--quiet", input_bytes=b"".join(stream))
        commit = git.out(self.git_dir, "rev-parse", pinned).strip()
        # The template's history (``versions``); last writer wins, the pinned ref stays.
        git.out(self.git_dir, "update-ref", ref, commit)
        stored = git.out(self.git_dir, "rev-parse", pinned + "^{tree}").strip()
        if stored != version:  # a file git and tree_id count differently: say so, keep serving
            log.warning("template %s: stored tree %s differs from its version %s", name,
                        stored, version)
        _STORED.add(key)

    @staticmethod
    def _has(git_dir: Path, version: str) -> bool:
        proc = git.run(git_dir, "cat-file", "-e", version + "^{tree}")
        return proc.returncode == 0

    def where(self, version: str) -> Path | None:
        """The repository holding tree ``version`` (the store first), or None."""
        if not version or not all(c in "0123456789abcdef" for c in version) \
                or len(version) != 40:
            return None
        if (self.git_dir / "HEAD").exists() and self._has(self.git_dir, version):
            return self.git_dir
        if self.source is not None and self._has(self.source, version):
            return self.source
        return None

    def materialize(self, name: str, version: str, dest: Path) -> Path:
        """Write template ``name`` at ``version`` into ``dest/<name>`` and return that folder.

        Errors: ``TemplateVersionMissing`` naming the template and version when neither the
        store nor the source repository has it."""
        git_dir = self.where(version)
        if git_dir is None:
            raise TemplateVersionMissing(
                f"template {name} version {version[:40] or '(none)'} is in no template store "
                f"({self.git_dir}) nor in the portal's source history", field="version",
                rule="template-version")
        folder = dest / name
        folder.mkdir(parents=True)
        with tempfile.TemporaryDirectory(prefix="caas-tpl-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            git.out(git_dir, "read-tree", version, env=env)
            git.out(git_dir, f"--work-tree={folder}", "checkout-index", "--all", "--force",
                    env=env)
        return folder

    def diff(self, name: str, old: str, new: str) -> str:
        """The unified diff of template ``name`` from version ``old`` to ``new`` ("what
        changed"); empty when they are equal. ``TemplateVersionMissing`` naming the version
        no repository holds (or when no single repository holds both)."""
        if old == new:
            return ""
        where = self.where(old)
        if where is None or where != self.where(new):
            lost = old if where is None else new
            raise TemplateVersionMissing(
                f"template {name} version {lost} is in no template store ({self.git_dir}) "
                "nor in the portal's source history, with the other version beside it",
                field="version", rule="template-version")
        return git.out(where, "diff-tree", "-p", "--no-color", old, new)

    def versions(self, name: str) -> list[str]:
        """The versions of ``name`` this store has served, oldest first."""
        if not (self.git_dir / "HEAD").exists():
            return []
        proc = git.run(self.git_dir, "log", "--reverse", "--format=%T", REF_PREFIX + name)
        return proc.stdout.decode().split() if proc.returncode == 0 else []
