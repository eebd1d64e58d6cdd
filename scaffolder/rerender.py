"""A unit on main against what its stored answers render to: the git side of drift.

``unit_drift(registry, unit=..., files=...)`` renders the unit's ``.caas-answers.yaml`` with the
template version it records and compares every file (``files``: path → content of the unit's
files on main). Lists the portal maintains across units are derived, not edits: an AppProject's
``spec.destinations`` (``gitops.lists``) is left out of the comparison on both sides.
CODEOWNERS lies outside every unit and is never compared.

Answer shape: ``UnitDrift(template, recorded, state, reason, changed, diff, expected)`` with
``state`` ``clean`` | ``drift`` | ``unknown``; ``changed`` lists ``(path,
"modified"|"added"|"deleted")`` where "added" is a file on main that the template does not
render and "deleted" a rendered file missing on main. ``unknown`` says why in ``reason``: no
answers, a template not in the registry, a recorded version the registry cannot render
("unknown (template version not available)": only the current version of each template is at
hand), or a render that fails.
``expected`` is the rendering as digests (``unit_digests``: path inside the unit → sha1 of the
comparable content), so a caller can keep it and later tell a unit that still matches its
rendering without rendering again: a rendering is a function of ``render_key(unit, answers
file)`` — the unit folder and the answers file's bytes, which name the template, its version
(a tree id: that content, forever) and the answers.

The fix for a hand edit is ``scaffolder.service.rerender_task``: an update PR re-rendering the
unit with its stored answers, which restores every hand-edited file.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitops import lists, yaml
from portal.errors import CaasError, NotFound, ValidationFailed
from scaffolder.changeset import unified
from scaffolder.registry import Registry, Template, load_template
from scaffolder.render import ANSWERS_FILE, parse_answers_file, read_template_name, render

VERSION_UNAVAILABLE = "unknown (template version not available)"
MAX_DIFF = 20_000  # characters of diff kept per unit
_APPPROJECT = re.compile(r"^teams/[^/]+/appproject\.ya?ml$")


@dataclass(frozen=True)
class UnitDrift:
    unit: str
    template: str = ""
    recorded: str = ""  # the template version the answers file records
    state: str = "clean"  # clean | drift | unknown
    reason: str = ""
    changed: list[tuple[str, str]] = field(default_factory=list)
    diff: str = ""
    expected: dict[str, str] = field(default_factory=dict)  # the rendering's ``unit_digests``


# (template name, recorded version) -> the template at that version, or None when unavailable
TemplateSource = Callable[[str, str], Template | None]


def answers_path(unit: str, files: Mapping[str, bytes]) -> str | None:
    """The unit's ``.caas-answers.yaml``: at its root, else the first one inside it."""
    root = f"{unit}/{ANSWERS_FILE}"
    if root in files:
        return root
    return next((p for p in sorted(files) if p.rsplit("/", 1)[-1] == ANSWERS_FILE), None)


def unit_template(unit: str, files: Mapping[str, bytes]) -> str | None:
    """The template name the unit's answers file names (None: no answers file, or no name)."""
    path = answers_path(unit, files)
    return read_template_name(files[path]) if path is not None else None


def _recorded_version(content: bytes) -> str:
    try:
        doc = yaml.load(content)
    except yaml.YamlError:
        return ""
    return str(doc.get("version") or "") if isinstance(doc, dict) else ""


def template_at(registry: Registry, name: str, version: str, scratch: Path) -> Template | None:
    """The template ``name`` as it was at ``version`` (a git tree id): the registry's own when
    current, else materialized from the versioned template store into ``scratch``; None when
    no store holds that version. ``NotFound`` when the registry has no such template."""
    template = registry.get(name, field_name="answers_file")
    if template.version == version:
        return template
    try:
        folder = registry.store.materialize(name, version, scratch)
        return load_template(folder, trusted=registry.trusted)
    except CaasError:  # TemplateVersionMissing, or a stored folder that no longer loads
        return None


def _comparable(path: str, content: bytes) -> bytes:
    """The content to compare: an AppProject without its derived ``spec.destinations``."""
    return lists.without_derived(content) if _APPPROJECT.match(path) else content


def render_key(unit: str, answers_file: bytes, repo_url: str | None = None) -> str:
    """sha256 over the unit folder, its answers file and the repository URL ``render`` fills
    in: equal keys render equal files."""
    digest = hashlib.sha256(unit.encode() + b"\0" + (repo_url or "").encode() + b"\0")
    digest.update(answers_file)
    return digest.hexdigest()


def unit_digests(unit: str, files: Mapping[str, bytes]) -> dict[str, str]:
    """``{path inside the unit: sha1 hex of its comparable content}`` (derived lists left out,
    as ``unit_drift`` compares): equal maps mean the same comparison outcome."""
    cut = len(unit) + 1
    return {path[cut:]: hashlib.sha1(_comparable(path, content),
                                     usedforsecurity=False).hexdigest()
            for path, content in files.items()}


def unit_drift(registry: Registry, *, unit: str, files: Mapping[str, bytes],
               templates: TemplateSource | None = None,
               repo_url: str | None = None) -> UnitDrift:
    """Compare the unit at folder ``unit`` (``files``: its files on main) with its rendering.
    ``templates`` resolves (name, version) to a template (a run over many units shares one;
    default: ``template_at`` into a scratch folder of this call); ``repo_url``: the platform's
    GitOps repository, as ``render`` takes it (``gitops.bootstrap.repo_url_on`` of main)."""
    path = answers_path(unit, files)
    if path is None:
        return UnitDrift(unit=unit, state="unknown", reason=f"no {ANSWERS_FILE}: not rendered "
                         "by the portal")
    content = files[path]
    parsed = parse_answers_file(content)  # one YAML parse: drift reads thousands
    if parsed is None:
        return UnitDrift(unit=unit, recorded=_recorded_version(content), state="unknown",
                         reason=f"{path} holds no template and answers")
    name, recorded, answers = parsed
    with contextlib.ExitStack() as stack:
        try:
            if templates is None:
                scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="caas-drift-"))
                template = template_at(registry, name, recorded, Path(scratch))
            else:
                template = templates(name, recorded)
        except NotFound:
            return UnitDrift(unit=unit, template=name, recorded=recorded, state="unknown",
                             reason=f"template {name!r} is not in the registry")
        if template is None:
            return UnitDrift(unit=unit, template=name, recorded=recorded, state="unknown",
                             reason=VERSION_UNAVAILABLE)
        try:
            expected = render(template, answers, target=unit, repo_url=repo_url)
        except ValidationFailed as exc:
            return UnitDrift(unit=unit, template=name, recorded=recorded, state="unknown",
                             reason=f"the stored answers do not render: {exc.message}")
    digests = unit_digests(unit, expected)
    changed: list[tuple[str, str]] = []
    parts: list[str] = []
    for file in sorted(set(expected) | set(files)):
        want, have = expected.get(file), files.get(file)
        if want is not None and have is not None and (
                want == have or _comparable(file, want) == _comparable(file, have)):
            continue
        changed.append((file, "deleted" if have is None else "added" if want is None
                        else "modified"))
        parts.append(unified(file, want, have))
    if not changed:
        return UnitDrift(unit=unit, template=name, recorded=recorded, expected=digests)
    return UnitDrift(unit=unit, template=name, recorded=recorded, state="drift",
                     changed=changed, diff="".join(parts)[:MAX_DIFF], expected=digests)
