"""Lists derived from the repository's units, kept in step in the same change set.

One owner for "everything that must list a tenant's namespace": today the team's ArgoCD
AppProject (``teams/<team>/appproject.yaml``, ``spec.destinations``). A request that adds or
removes a tenant, or re-renders a team, gets these files rewritten here; decommissioning reuses
``derived_updates`` with the unit's files deleted, and drift treats the lists as derived.

AppProject destinations admit exactly the team's namespaces: one entry per namespace, no glob.
ArgoCD matches ``destinations[].namespace`` as a glob pattern, so ``pay-*`` would also admit
team ``pay-web``'s ``pay-web-api``; a DNS-1123 label holds no glob character, so an entry equal
to a namespace matches that namespace only
(https://argo-cd.readthedocs.io/en/stable/user-guide/projects/#managing-projects).

Public API:

- ``team_namespaces(paths) -> dict[team, set[namespace]]`` from file paths under ``tenants/``;
- ``with_destinations(appproject_yaml, namespaces) -> bytes`` (comments and layout kept);
- ``derived_updates(*, main_paths, changes, read) -> dict[path, bytes]`` — the AppProject files
  a change set must also write so every list matches the tenants after the change;
- ``touched_teams(changes) -> set[team]`` — the only teams whose lists a change set can change
  (so a caller lists ``tenants/<team>/`` of these, not every tenant in the repository).
- ``without_derived(content) -> bytes`` — the AppProject text with its ``destinations`` list
  cut out (every other line, comments included, kept): what drift compares, since the list is
  the portal's to write, not a hand edit.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from gitops.yaml import round_trip

APPPROJECT = "teams/{team}/appproject.yaml"
# Any registered cluster: the environment (cluster) of an Application is chosen by its folder.
ANY_CLUSTER = "*"


class ListError(ValueError):
    """A file that should hold a derived list cannot be read as one."""


def team_namespaces(paths: Iterable[str]) -> dict[str, set[str]]:
    """``{team: {namespace}}`` of the files ``tenants/<team>/<namespace>/…`` in ``paths``."""
    found: dict[str, set[str]] = {}
    for path in paths:
        parts = path.split("/")
        if parts[0] == "tenants" and len(parts) >= 4:
            found.setdefault(parts[1], set()).add(parts[2])
    return found


def destinations(namespaces: Iterable[str]) -> list[dict[str, str]]:
    """AppProject ``spec.destinations``: one exact entry per namespace, sorted."""
    return [{"name": ANY_CLUSTER, "namespace": ns} for ns in sorted(set(namespaces))]


def with_destinations(content: bytes, namespaces: Iterable[str]) -> bytes:
    """The AppProject document ``content`` with ``spec.destinations`` listing ``namespaces``."""
    yaml = round_trip()  # keep comments, key order and quoting of the rest of the file
    try:
        doc: Any = yaml.load(content.decode())
    except Exception as exc:  # ruamel raises several unrelated error types
        raise ListError(f"the AppProject does not parse: {exc}") from exc
    if not isinstance(doc, CommentedMap) or doc.get("kind") != "AppProject":
        raise ListError("the file is not one AppProject document")
    spec = doc.get("spec")
    if not isinstance(spec, CommentedMap):
        raise ListError("the AppProject has no spec mapping")
    items = CommentedSeq()
    for entry in destinations(namespaces):
        items.append(CommentedMap(entry))
    if isinstance(spec.get("destinations"), CommentedSeq):
        items.ca.comment = spec["destinations"].ca.comment
    spec["destinations"] = items
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue().encode()


def touched_teams(changes: Iterable[str]) -> set[str]:
    """Teams whose derived lists the changed ``paths`` can change: those with a file written or
    deleted under ``tenants/<team>/`` and those whose ``teams/<team>/appproject.yaml`` is in the
    change. Any other team's namespaces are the same before and after."""
    teams: set[str] = set()
    for path in changes:
        parts = path.split("/")
        tenant_file = parts[0] == "tenants" and len(parts) >= 4
        if tenant_file or (parts[0] == "teams" and parts[2:] == ["appproject.yaml"]):
            teams.add(parts[1])
    return teams


def derived_updates(*, main_paths: Iterable[str], changes: Mapping[str, bytes | None],
                    read: Callable[[str], bytes | None]) -> dict[str, bytes]:
    """Files (path → new content) that keep every derived list true after ``changes``.

    ``main_paths``: the files under ``tenants/`` on the base commit — every one, or only those
    under ``tenants/<team>/`` for the teams of ``touched_teams(changes)`` (the same result:
    other teams' lists do not change); ``changes``: the change
    set (``None`` deletes); ``read(path)``: a file on the base commit. A team's AppProject is
    rewritten when its set of namespaces changes or when the change set itself writes the file
    (a re-rendered team template must not drop the namespaces it already had). Teams without an
    AppProject (neither on main nor in the change) are skipped: there is no list to update.
    """
    before_paths = set(main_paths)
    after_paths = (before_paths - {p for p, c in changes.items() if c is None}) | {
        p for p, c in changes.items() if c is not None}
    before = team_namespaces(before_paths)
    after = team_namespaces(after_paths)
    teams = {t for t in set(before) | set(after) if before.get(t) != after.get(t)}
    teams |= {p.split("/")[1] for p, c in changes.items()
              if c is not None and p.count("/") == 2 and p.startswith("teams/")
              and p.endswith("/appproject.yaml")}
    updates: dict[str, bytes] = {}
    for team in sorted(teams):
        path = APPPROJECT.format(team=team)
        current = changes[path] if path in changes else read(path)
        if current is None:
            continue
        new = with_destinations(current, after.get(team, set()))
        if new != current:
            updates[path] = new
    return updates


_DESTINATIONS = re.compile(r"^( *)destinations:")


def without_derived(content: bytes) -> bytes:
    """``content`` (an AppProject) without the lines of its ``spec.destinations`` value: the
    key line becomes ``destinations: <derived>``; the value's lines (deeper indented, or
    ``- `` items at the key's indentation) go. Text in, text out: nothing is re-serialised,
    so two files that differ only in that list compare equal."""
    lines = content.decode(errors="replace").splitlines(keepends=True)
    out: list[str] = []
    skip_indent: int | None = None
    for line in lines:
        if skip_indent is not None:
            stripped = line.lstrip(" ")
            indent = len(line) - len(stripped)
            if not stripped.strip() or indent > skip_indent or (
                    indent == skip_indent and stripped.startswith("- ")):
                continue
            skip_indent = None
        match = _DESTINATIONS.match(line)
        if match:
            skip_indent = len(match.group(1))
            out.append(f"{match.group(1)}destinations: <derived>\n")
            continue
        out.append(line)
    return "".join(out).encode()
