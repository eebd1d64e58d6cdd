"""From a request to a change set: validate the answers, render, and diff against ``main``.

Nothing here writes: rendering happens in temporary directories and git is only read, so a
request refused at this stage leaves no branch, no row and no file behind.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitops import bootstrap, layout, lists, yaml
from gitops.environment import read_manifest
from gitops.forges.base import FileChange, Forge
from gitops.paths import is_safe
from portal.auth import policy
from portal.auth.principal import Principal
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from scaffolder import parameters, uninstall
from scaffolder.checks.identity import check_identity
from scaffolder.codeowners import codeowners_changes
from scaffolder.models import RenderedFile, ScaffoldRequest
from scaffolder.parameters import ParameterContext, form_fields, validate_answers
from scaffolder.registry import Registry, Template
from scaffolder.render import ANSWERS_FILE, read_answers, render

MAX_DIFF_CHARS = 400_000


@dataclass
class Prepared:
    template: Template
    answers: dict[str, Any]
    action: str  # create | update
    target: str
    entity: str
    team: str | None
    rendered: dict[str, bytes]
    changes: list[FileChange]
    files: list[RenderedFile]
    diff: str
    envs: list[str]
    tier: policy.Tier
    touches_envs: bool
    routing: str
    base_sha: str
    branch: str
    title: str
    body: str
    unit_exists: bool
    env_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Labels beyond pr_text.labels' own (an upgrade: ``upgrade``, ``upgrade-conflict``).
    extra_labels: list[str] = field(default_factory=list)


def _dirs(forge: Forge, directory: str, ref: str = "main") -> set[str]:
    return set(forge.list_dir(directory, ref))


def environments_on_main(forge: Forge) -> set[str]:
    return {e for e in _dirs(forge, "envs")
            if forge.read_file(f"envs/{e}/infra.yaml") is not None}


def teams_on_main(forge: Forge, ref: str = "main") -> set[str]:
    """The teams that exist (a folder ``teams/<team>/``) on main, or at commit ``ref``: the
    ``team`` answer rule's choices at request, the ``team`` check's at merge
    (``scaffolder.merge_checks``)."""
    return _dirs(forge, "teams", ref)


def parameter_context(forge: Forge, principal: Principal,
                      registry: Registry | None = None) -> ParameterContext:
    """Dynamic choices: teams that exist on main and the user belongs to; environments; and
    the configured quota bounds and reserved namespaces (``CAAS_QUOTA_BOUNDS``,
    ``CAAS_RESERVED_NAMESPACES``) when a registry carries them."""
    teams = teams_on_main(forge)
    mine = teams if principal.is_platform_admin else teams & set(principal.team_roles)
    return parameters.parameter_context(
        teams=frozenset(mine), environments=frozenset(environments_on_main(forge)),
        quota_bounds=registry.quota_bounds if registry else None,
        reserved_namespaces=registry.reserved_namespaces if registry else "")


def load_yaml(content: bytes | None) -> dict[str, Any]:
    if content is None:
        return {}
    try:
        doc = yaml.load(content)
    except yaml.YamlError:
        return {}
    return doc if isinstance(doc, dict) else {}


def touched_envs(paths: list[str], answers: Mapping[str, Any]) -> list[str]:
    """Environments a change touches: ``envs/<env>/…`` anywhere in a path, plus answers."""
    found: set[str] = set()
    for path in paths:
        parts = path.split("/")
        for i, part in enumerate(parts[:-1]):
            if part == "envs" and i + 1 < len(parts) - 1:
                found.add(parts[i + 1])
    for key in ("environment", "environments"):
        value = answers.get(key)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return sorted(found)


def unified(path: str, old: bytes | None, new: bytes | None) -> str:
    a = (old or b"").decode(errors="replace").splitlines(keepends=True)
    b = (new or b"").decode(errors="replace").splitlines(keepends=True)
    return "".join(difflib.unified_diff(a, b, f"a/{path}" if old is not None else "/dev/null",
                                        f"b/{path}" if new is not None else "/dev/null"))


def stored_answers(forge: Forge, target: str) -> dict[str, Any] | None:
    direct = read_answers(forge.read_file(f"{target}/{ANSWERS_FILE}"))
    if direct is not None:
        return direct
    for path in forge.list_files(target):
        if path.rsplit("/", 1)[-1] == ANSWERS_FILE:
            return read_answers(forge.read_file(path))
    return None


@dataclass
class _Unit:
    """The unit a request names, resolved and authorized: validated answers, its folder and
    who owns the request."""

    clean: dict[str, Any]
    target: str
    team: str | None
    new_team: bool
    touches: bool
    on_main: list[str]


@dataclass
class ChangeList:
    """The change set against ``main``; the three lists run in parallel (one entry per file)."""

    changes: list[FileChange] = field(default_factory=list)
    files: list[RenderedFile] = field(default_factory=list)
    diff_parts: list[str] = field(default_factory=list)

    def add(self, path: str, status: str, old: bytes | None, new: bytes | None,
            content: str | None) -> None:
        self.changes.append(FileChange(path, new))
        self.files.append(RenderedFile(path=path, status=status, content=content))
        self.diff_parts.append(unified(path, old, new))

    def add_codeowners(self, forge: Forge, registry: Registry, base_sha: str) -> None:
        """Ownership or tiers may change: the same PR keeps CODEOWNERS current (one entry per
        CODEOWNERS file whose content the changes so far alter)."""
        org, admins = registry.code_owners
        for extra in codeowners_changes(forge, self.changes, org=org, admins=admins,
                                        ref=base_sha):
            old = forge.read_file(extra.path, base_sha)
            self.add(extra.path, "added" if old is None else "modified", old, extra.content,
                     (extra.content or b"").decode())


def prepare(forge: Forge, registry: Registry, principal: Principal,
            request: ScaffoldRequest) -> Prepared:
    """Resolve the unit, authorize, render, diff against ``main`` (plus the derived lists and
    CODEOWNERS), and describe the pull request; nothing is written."""
    template = registry.get(request.template)
    unit = _resolve_unit(forge, registry, principal, request, template)
    base_sha = forge.head()
    _refuse_uninstall_with_dependants(forge, unit, base_sha)
    rendered = render(template, unit.clean, target=unit.target,
                      repo_url=bootstrap.repo_url_on(forge, base_sha))
    # Nothing a team's files grant may reach beyond the team's own groups (422, nothing written).
    check_identity(rendered, platform_groups=registry.platform_groups)
    diff = _file_changes(forge, base_sha, rendered, unit.on_main)
    derived_lists(forge, base_sha, rendered, diff.changes, diff.files, diff.diff_parts)
    if not diff.changes:
        raise Conflict(f"{unit.target} already matches these answers: nothing to change",
                       field="answers", rule="no-change")
    if unit.target.startswith(("teams/", "envs/")):
        diff.add_codeowners(forge, registry, base_sha)
    return _build(forge, template, request, unit, base_sha, rendered, diff)


def _refuse_uninstall_with_dependants(forge: Forge, unit: _Unit, base_sha: str) -> None:
    """``installed: false`` on an installed environment: 409 while something runs there."""
    if not (unit.target.startswith("envs/") and unit.on_main
            and unit.clean.get("installed") is False):
        return
    env = unit.target.split("/", 1)[1]
    if not read_manifest(forge.read_file(layout.infra_path(env), base_sha)).installed:
        return  # already uninstalled: nothing more is destroyed
    refused = uninstall.uninstall_refusal(forge, env=env, ref=base_sha)
    if refused is not None:
        raise refused


def _resolve_unit(forge: Forge, registry: Registry, principal: Principal,
                  request: ScaffoldRequest, template: Template) -> _Unit:
    """Validate the answers, place the unit and check the principal may ask for it."""
    context = parameter_context(forge, principal, registry)
    answers = _merged_answers(forge, request, template)
    clean = validate_answers(template.parameters, answers, context=context)
    target = template.fill(template.target_path, clean)
    if not is_safe(target):
        raise ValidationFailed(f"answers: they place the unit at an unsafe path {target!r}",
                               field="answers", rule="safe-path")
    raw_team = clean.get("team")
    team = raw_team if isinstance(raw_team, str) else None
    touches = target.startswith("envs/")
    on_main = forge.list_files(target)
    # A team not on main yet has nobody to own the request: anybody may ask, a platform-admin
    # approves (policy.can_request_new_team).
    new_team = target.startswith("teams/") and not request.update and not on_main
    if new_team:
        team = None
    _authorize(principal, team=team, touches=touches, new_team=new_team)
    if on_main and not request.update:
        raise Conflict(f"{target} already exists on main; send `update: true` to change it",
                       field="answers", rule="unit-exists")
    return _Unit(clean=clean, target=target, team=team, new_team=new_team, touches=touches,
                 on_main=on_main)


def _merged_answers(forge: Forge, request: ScaffoldRequest,
                    template: Template) -> Mapping[str, Any]:
    """The request's answers; for an update, over the form fields stored with the unit."""
    answers: Mapping[str, Any] = request.answers
    if not request.update:
        return answers
    # The unit is named by the answers that name it; the rest comes from what is stored.
    target = template.fill(template.target_path, answers)
    previous = stored_answers(forge, target) if is_safe(target) else None
    if previous is None:
        raise NotFound(f"answers: no unit at {target!r} to update (no {ANSWERS_FILE})",
                       field="answers", rule="unit-exists")
    # Stored answers also hold derived values (e.g. namespace): keep the form's fields.
    fields = {f.name for f in form_fields(template.parameters)}
    return {**{k: v for k, v in previous.items() if k in fields}, **answers}


def request_decision(principal: Principal, *, team: str | None, touches: bool,
                     new_team: bool = False) -> policy.Decision:
    """May ``principal`` ask for this unit: a new team (anybody signed in), an environment
    (platform-admins), anything else (the owning team's members)."""
    if new_team:
        return policy.can_request_new_team(principal)
    return policy.can_request(principal, team=team, touches_envs=touches)


def change_decision(principal: Principal, *, unit: str) -> policy.Decision:
    """May ``principal`` request a change of the unit at folder ``unit`` (``teams/<t>``,
    ``tenants/<t>/<ns>``, ``applications/<t>/<app>``, ``envs/<env>``): the rule ``prepare``
    applies to an update (an entity page's "Change" button shows it)."""
    parts = unit.strip("/").split("/")
    touches = parts[0] == "envs"
    team = parts[1] if not touches and len(parts) > 1 else None
    return request_decision(principal, team=team, touches=touches)


def _authorize(principal: Principal, *, team: str | None, touches: bool,
               new_team: bool) -> None:
    decision = request_decision(principal, team=team, touches=touches, new_team=new_team)
    if not decision:
        raise Forbidden(decision.reason, field="team" if not touches else "template",
                        rule="can-request")


def _file_changes(forge: Forge, base_sha: str, rendered: dict[str, bytes],
                  on_main: list[str]) -> ChangeList:
    """Rendered files against the unit's files on ``main``: added, modified or deleted."""
    diff = ChangeList()
    for path in sorted(set(rendered) | set(on_main)):
        new = rendered.get(path)
        old = forge.read_file(path, base_sha) if path in on_main else None
        if old == new:
            continue
        status = "added" if old is None else ("deleted" if new is None else "modified")
        diff.add(path, status, old, new, new.decode(errors="replace") if new else None)
    return diff


def _build(forge: Forge, template: Template, request: ScaffoldRequest, unit: _Unit,
           base_sha: str, rendered: dict[str, bytes], diff: ChangeList) -> Prepared:
    """The environments touched, their strictest tier and routing, and the PR's text."""
    clean = unit.clean
    envs = touched_envs(list(rendered), clean)
    env_docs = {e: load_yaml(rendered.get(f"envs/{e}/infra.yaml")
                             or forge.read_file(f"envs/{e}/infra.yaml", base_sha)) for e in envs}
    tier = policy.strictest_tier(read_manifest(doc).tier for doc in env_docs.values())
    routing = policy.describe_routing(tier=tier, touches_envs=unit.touches, team=unit.team,
                                      new_team=unit.new_team)
    suffix, prefix = ("-update", "Update ") if request.update else ("", "")
    branch = template.fill(template.branch_name, clean) + suffix
    title = prefix + template.fill(template.pr_title, clean)
    body = template.fill(template.pr_description, clean)
    return Prepared(
        template=template, answers=dict(clean), action="update" if request.update else "create",
        target=unit.target, entity=layout.key_for_unit(unit.target), team=unit.team,
        rendered=rendered, changes=diff.changes, files=diff.files,
        diff="".join(diff.diff_parts)[:MAX_DIFF_CHARS], envs=envs, tier=tier,
        touches_envs=unit.touches, routing=routing, base_sha=base_sha, branch=branch[:200],
        title=title[:300], body=body, unit_exists=bool(unit.on_main), env_docs=env_docs,
    )


def derived_lists(forge: Forge, base_sha: str, rendered: dict[str, bytes],
                   changes: list[FileChange], files: list[RenderedFile],
                   diff_parts: list[str]) -> None:
    """Add (or replace) the files whose lists name the tenants (``gitops.lists``): a tenant
    added or removed, or a team re-rendered, updates its AppProject in the same change set."""
    # Only the touched teams' folders: listing every tenant costs ~0.1 s per 1,000 tenants.
    main_paths = [path for team in sorted(lists.touched_teams(c.path for c in changes))
                  for path in forge.list_files(f"tenants/{team}/", base_sha)]
    try:
        derived = lists.derived_updates(
            main_paths=main_paths,
            changes={c.path: c.content for c in changes},
            read=lambda path: forge.read_file(path, base_sha))
    except lists.ListError as exc:
        raise Conflict(f"team: the AppProject on main cannot be updated: {exc}", field="team",
                       rule="derived-lists") from None
    for path, content in derived.items():
        old = forge.read_file(path, base_sha)
        index = next((i for i, c in enumerate(changes) if c.path == path), None)
        entry = RenderedFile(path=path, status="added" if old is None else "modified",
                             content=content.decode())
        # changes, files and diff_parts run in parallel (one entry per file) up to here.
        if index is None:
            changes.append(FileChange(path, content))
            files.append(entry)
            diff_parts.append(unified(path, old, content))
        elif content == old:  # a re-rendered team whose list is already right on main
            del changes[index], files[index], diff_parts[index]
        else:
            changes[index], files[index] = FileChange(path, content), entry
            diff_parts[index] = unified(path, old, content)
        rendered[path] = content
