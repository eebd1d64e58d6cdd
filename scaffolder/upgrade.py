"""Template upgrades: which units are behind their template, and the three-way merge that brings
one up to date without losing the edits made to it in git.

A unit is *behind* when the version in its ``.caas-answers.yaml`` differs from its template's
current version (``Template.version``, the git tree id of the folder). For one unit at ``ref``:

- **base**: the old version (from ``scaffolder.template_store``) rendered with the stored answers
  — what the portal wrote back then;
- **theirs**: the current version rendered with the answers carried over: answers the new
  version no longer asks for are dropped, answers it adds get their defaults
  (``parameters.validate_answers``), derived values are derived again;
- **ours**: the unit's files at ``ref`` (``main``, or the head of an open upgrade PR when the
  template moved again).

Per path (``merge_path``): unchanged by the template → ours; untouched in git → theirs (added,
changed or deleted); both changed alike → ours; both changed differently → ``git merge-file``
(``gitops.git`` runner) with conflict markers labelled ``main`` / ``template <old>`` /
``template <new>``; changed on one side and deleted on the other → the surviving content between
markers (a conflict). ``.caas-answers.yaml`` is always theirs. Files only in git stay.

``plan_unit`` returns a ``UnitPlan`` (changes against ``ref``, conflicted paths, added and dropped
answers) or raises ``UpgradeRefused`` naming the unit and why (version missing from every store,
old version not loadable, answers invalid under the new version). Nothing here writes a ref.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from gitops import bootstrap, git, layout
from gitops.forges.base import FileChange, Forge
from gitops.gitreader import FEW
from portal.errors import CaasError
from scaffolder import parameters
from scaffolder.changeset import environments_on_main, teams_on_main
from scaffolder.models import CheckResult
from scaffolder.parameters import form_fields, validate_answers
from scaffolder.registry import Registry, Template, load_template
from scaffolder.render import ANSWERS_FILE, parse_answers_file, render

UNIT_TOPS = ("teams", "tenants", "applications", "envs")
_MARKER = re.compile(rb"^(<<<<<<<|>>>>>>>)( |$)", re.MULTILINE)
# The top-level keys as ``render.answers_document`` writes them (block style, column 0): read
# without a YAML parse, which costs more than anything else when listing thousands of units.
_TOP = re.compile(rb"""^(template|version): ?['"]?([a-z0-9-]*)['"]?[ \t]*$""", re.MULTILINE)


class UpgradeRefused(CaasError):
    """One unit cannot be upgraded (the others go on); the message names unit and version."""

    status = 409
    code = "upgrade_refused"


@dataclass(frozen=True)
class Behind:
    """A unit whose stored template version is not the template's current one."""

    unit: str  # folder, e.g. tenants/pay/pay-web
    template: str
    version: str  # stored
    current: str  # the template's version now
    content: bytes  # its .caas-answers.yaml

    @cached_property
    def answers(self) -> dict[str, Any]:
        """The stored answers (parsed when a merge needs them, not to list the unit)."""
        parsed = parse_answers_file(self.content)
        return parsed[2] if parsed is not None else {}

    @property
    def team(self) -> str | None:
        parts = self.unit.split("/")
        return parts[1] if parts[0] in ("teams", "tenants", "applications") else None


@dataclass
class UnitPlan:
    """The merge of one unit: file changes against the ref it was read from."""

    behind: Behind
    changes: list[FileChange] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # path -> added|modified|deleted
    conflicts: list[str] = field(default_factory=list)
    added: dict[str, Any] = field(default_factory=dict)  # answers the new version adds
    dropped: list[str] = field(default_factory=list)  # answers it no longer takes
    answers: dict[str, Any] = field(default_factory=dict)  # the new answers
    files: dict[str, bytes] = field(default_factory=dict)  # the unit's files after the merge
    ours: dict[str, bytes] = field(default_factory=dict)  # the unit's files before it


def has_markers(content: bytes | None) -> bool:
    """True when ``content`` holds a line starting a or ending a conflict (``<<<<<<<``/
    ``>>>>>>>`` then a space or the end of the line), as ``git merge-file`` writes them."""
    return bool(content) and _MARKER.search(content or b"") is not None


def check_conflicts(files: Mapping[str, bytes | None]) -> CheckResult:
    """The ``conflicts`` check of an upgrade: red while any file it writes holds conflict
    markers (resolve them on the branch; the check is evaluated again at merge)."""
    marked = sorted(p for p, c in files.items() if has_markers(c))
    if marked:
        return CheckResult(name="conflicts", state="failure",
                           summary=f"{len(marked)} file(s) hold merge conflict markers",
                           details=marked[:50])
    return CheckResult(name="conflicts", state="success", summary="no conflict markers")


def units_behind(forge: Forge, registry: Registry, *, ref: str = "main",
                 template: str | None = None, team: str | None = None) -> list[Behind]:
    """Every unit at ``ref`` whose ``.caas-answers.yaml`` names a known template at another
    version, sorted by folder. One listing per top folder, then the answers files read in
    batches of ``gitreader.FEW`` paths (``Forge.read_tree``; on the local forge one
    ``cat-file --batch`` per batch, where one call with thousands of pathspecs would make
    ``ls-tree`` compare every path with every pathspec): no unit's other files are read."""
    paths = [p for top in UNIT_TOPS for p in forge.list_files(top, ref)
             if p.endswith("/" + ANSWERS_FILE)
             and layout.key_for_unit(p.rsplit("/", 1)[0]) != ""
             and p.count("/") == (2 if p.startswith(("teams/", "envs/")) else 3)]
    if team is not None:
        paths = [p for p in paths if not p.startswith("envs/") and p.split("/")[1] == team]
    docs: dict[str, bytes] = {}
    for start in range(0, len(paths), FEW):
        docs.update(forge.read_tree(paths[start:start + FEW], ref))
    known = {name: registry.get(name) for name in registry.names()}
    found: list[Behind] = []
    for path in sorted(docs):
        head = _head(docs[path])
        if head is None:
            continue
        name, version = head
        current = known.get(name)
        if current is None or (template and name != template):
            continue
        if version != current.version:
            found.append(Behind(unit=path.rsplit("/", 1)[0], template=current.name,
                                version=version, current=current.version, content=docs[path]))
    return found


def _head(content: bytes) -> tuple[str, str] | None:
    """(template, version) of an answers file: its top-level lines, else a full parse."""
    keys = {m.group(1): m.group(2).decode() for m in _TOP.finditer(content)}
    if keys.get(b"template") and b"version" in keys and b"answers:" in content:
        return keys[b"template"], keys[b"version"]
    parsed = parse_answers_file(content)
    return (parsed[0], parsed[1]) if parsed is not None else None


def behind_at(forge: Forge, registry: Registry, unit: str, ref: str) -> Behind | None:
    """The unit at ``ref`` if it is behind its template there (an open PR's head), else None."""
    content = forge.read_file(f"{unit}/{ANSWERS_FILE}", ref)
    parsed = parse_answers_file(content)
    if content is None or parsed is None or parsed[0] not in registry.names():
        return None
    name, version, _answers = parsed
    current = registry.get(name)
    if version == current.version:
        return None
    return Behind(unit=unit, template=current.name, version=version, current=current.version,
                  content=content)


class Run:
    """What every unit of one upgrade run shares, computed once: the parameter context of
    ``main`` (teams, environments) and the old template versions, materialized from the
    template store into a private temporary folder. Use as a context manager."""

    def __init__(self, forge: Forge, registry: Registry) -> None:
        self.forge, self.registry = forge, registry
        self.context = parameters.parameter_context(
            teams=frozenset(teams_on_main(forge)),
            environments=frozenset(environments_on_main(forge)),
            quota_bounds=registry.quota_bounds, reserved_namespaces=registry.reserved_namespaces)
        self._tmp = tempfile.TemporaryDirectory(prefix="caas-upgrade-")
        self._old: dict[tuple[str, str], Template | CaasError] = {}

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._tmp.cleanup()

    def old_template(self, behind: Behind) -> Template:
        """The template ``behind.template`` at ``behind.version``, from the template store;
        ``UpgradeRefused`` naming unit and version when it is in no store or does not load
        (e.g. refused by today's ``template_subset`` rules)."""
        key = (behind.template, behind.version)
        if key not in self._old:
            try:
                folder = self.registry.store.materialize(
                    behind.template, behind.version, Path(self._tmp.name) / str(len(self._old)))
                self._old[key] = load_template(folder, trusted=self.registry.trusted)
            except CaasError as exc:
                self._old[key] = exc
        found = self._old[key]
        if isinstance(found, CaasError):
            raise UpgradeRefused(f"{behind.unit}: template {behind.template} version "
                                 f"{behind.version or '(none)'} cannot be loaded for the merge "
                                 f"base: {found.message}", field="version",
                                 rule="template-version")
        return found


def new_answers(run: Run, template: Template, behind: Behind
                ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(answers for the new version, answers it adds with their defaults, answers dropped).

    The stored form answers the new version still asks for are kept; derived values are
    derived again. ``UpgradeRefused`` when they are invalid under the new version."""
    fields = {f.name for f in form_fields(template.parameters)}
    kept = {k: v for k, v in behind.answers.items() if k in fields}
    try:
        answers = dict(validate_answers(template.parameters, kept, context=run.context))
    except CaasError as exc:
        raise UpgradeRefused(f"{behind.unit}: the stored answers do not fit template "
                             f"{template.name} {template.version[:12]}: {exc.message}",
                             field="answers", rule="upgrade-answers") from exc
    added = {k: v for k, v in answers.items() if k not in behind.answers}
    dropped = sorted(k for k in behind.answers if k not in answers)
    return answers, added, dropped


def plan_unit(run: Run, behind: Behind, *, ref: str = "main") -> UnitPlan:
    """The three-way merge of one behind unit at ``ref`` (module doc): two renders, one read
    of the unit's folder, one ``git merge-file`` per file both sides changed."""
    forge, registry = run.forge, run.registry
    template = registry.get(behind.template)
    answers, added, dropped = new_answers(run, template, behind)
    if template.fill(template.target_path, answers) != behind.unit:
        raise UpgradeRefused(f"{behind.unit}: template {template.name} "
                             f"{template.version[:12]} places this unit elsewhere "
                             f"({template.fill(template.target_path, answers)!r})",
                             field="answers", rule="upgrade-target")
    old = run.old_template(behind)
    repo_url = bootstrap.repo_url_on(forge, ref)
    try:
        base = render(old, behind.answers, target=behind.unit, repo_url=repo_url)
    except CaasError as exc:
        raise UpgradeRefused(f"{behind.unit}: template {behind.template} version "
                             f"{behind.version[:12]} does not render with the stored "
                             f"answers: {exc.message}", field="version",
                             rule="template-version") from exc
    theirs = render(template, answers, target=behind.unit, repo_url=repo_url)
    ours = forge.read_tree([behind.unit], ref)
    plan = UnitPlan(behind=behind, added=added, dropped=dropped, answers=answers,
                    files=dict(ours), ours=ours)
    labels = ("main", f"template {behind.version[:12]}", f"template {template.version[:12]}")
    with tempfile.TemporaryDirectory(prefix="caas-merge-") as scratch:
        for path in sorted(set(base) | set(theirs) | set(ours)):
            if path.rsplit("/", 1)[-1] == ANSWERS_FILE:
                result, conflict = theirs.get(path), False
            else:
                result, conflict = merge_path(registry.store.git_dir, Path(scratch), labels,
                                              path, (base.get(path), ours.get(path),
                                                     theirs.get(path)))
            if conflict:
                plan.conflicts.append(path)
            if result == ours.get(path):
                continue
            plan.changes.append(FileChange(path, result))
            plan.statuses[path] = ("added" if path not in ours else
                                   "deleted" if result is None else "modified")
            if result is None:
                plan.files.pop(path, None)
            else:
                plan.files[path] = result
    return plan


def merge_path(git_dir: Path, scratch: Path, labels: Sequence[str], path: str,
               sides: tuple[bytes | None, bytes | None, bytes | None]
               ) -> tuple[bytes | None, bool]:
    """(merged content or None for deleted, True when it is a conflict) for ``path`` from its
    (base, ours, theirs) contents (None: absent on that side)."""
    base, ours, theirs = sides
    if base == theirs or ours == theirs:
        return ours, False
    if ours == base:
        return theirs, False
    if ours is None or theirs is None:  # changed on one side, deleted on the other
        kept = ours if ours is not None else theirs
        side = (f"{labels[0]}", f"{labels[2]} (deleted)") if ours is not None else \
            (f"{labels[0]} (deleted)", labels[2])
        top, bottom = (kept, b"") if ours is not None else (b"", kept)
        text = (f"<<<<<<< {side[0]}\n".encode() + _eol(top or b"") + b"=======\n"
                + _eol(bottom or b"") + f">>>>>>> {side[1]}\n".encode())
        return text, True
    names = []
    for name, content in (("ours", ours), ("base", base or b""), ("theirs", theirs)):
        (scratch / name).write_bytes(content)
        names.append(str(scratch / name))
    args = ["merge-file", "-p"]
    for label in labels:
        args += ["-L", label]
    proc = git.run(git_dir, *args, *names)
    if proc.returncode < 0 or proc.returncode > 127:  # git could not merge (binary, error)
        raise UpgradeRefused(f"{path}: git merge-file cannot merge it: "
                             f"{proc.stderr.decode(errors='replace').strip()}", field="files",
                             rule="merge")
    return proc.stdout, proc.returncode > 0


def _eol(content: bytes) -> bytes:
    return content if not content or content.endswith(b"\n") else content + b"\n"


def answers_changes(added: Mapping[str, Any], dropped: Sequence[str]) -> list[str]:
    """Markdown lines naming the answers an upgrade adds (with their defaults) and drops."""
    lines = [f"- added `{k}` = `{v!r}` (the new version's default)" for k, v in added.items()]
    lines += [f"- dropped `{k}` (the new version no longer asks for it)" for k in dropped]
    return lines or ["- none"]
