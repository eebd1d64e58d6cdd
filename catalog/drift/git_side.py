"""The git side: files on main against the stored answers rendered with the recorded template.

Each unit with a ``.caas-answers.yaml`` is compared by ``scaffolder.service.unit_drift``
(derived lists left out). Rendering runs cookiecutter and the template's hooks, so a unit
is rendered again only when its files (fingerprint) or its template's current version changed
since the last run: ``cache`` maps unit folder → ``(fingerprint, template version, findings)``
from ``catalog_drift_units``. A hand edit is one finding per unit (subject: the unit folder)
listing every file that differs, with the diff from the rendering to main; the fix is a
re-render PR. A unit that cannot be compared is one ``unknown`` finding saying why.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict

from catalog.drift.models import Finding, Fix, Side, SideResult, State
from catalog.drift.snapshot import Snapshot, folder
from scaffolder import service as scaffolder_service
from scaffolder.registry import Registry

CacheEntry = tuple[str, str, list[dict[str, object]]]  # fingerprint, version, findings


def _team(key: str) -> str:
    kind, _, name = key.partition(":")
    return name if kind == "team" else name.split("/", 1)[0] if "/" in name else ""


def unit_findings(registry: Registry, key: str, files: Mapping[str, bytes]) -> list[Finding]:
    """The git-side findings of one unit (none when it matches its rendering)."""
    unit = folder(key)
    result = scaffolder_service.unit_drift(registry, unit=unit, files=files)
    if result.state == "clean":
        return []
    if result.state == "unknown":
        return [Finding(entity=key, side=Side.git, subject=unit, state=State.unknown,
                        what=f"{result.reason}" + (f" (template {result.template} "
                                                   f"{result.recorded[:12]})"
                                                   if result.template else ""),
                        fix=Fix.none, team=_team(key))]
    names = ", ".join(f"{p[len(unit) + 1:]} {status}" for p, status in result.changed)
    return [Finding(entity=key, side=Side.git, subject=unit,
                    what=f"edited by hand: {len(result.changed)} file(s) differ from template "
                         f"{result.template}'s rendering of the stored answers: {names}",
                    fix=Fix.rerender, fix_target=unit, detail=result.diff, team=_team(key))]


def check(snapshot: Snapshot, *, registry: Registry, cache: Mapping[str, CacheEntry]
          ) -> tuple[SideResult, dict[str, CacheEntry]]:
    """Every unit with an answers file on main; returns the side's result and the new cache.

    A cached unit is reused without reading its answers when its fingerprint is unchanged and
    the template version cached with it is still the current version of a template (versions
    are tree ids: a template that changed has a new one)."""
    started = time.perf_counter()
    result = SideResult(side=Side.git)
    new_cache: dict[str, CacheEntry] = {}
    versions: dict[str | None, str] = {n: registry.get(n).version for n in registry.names()}
    current = set(versions.values())
    for key, files in sorted(snapshot.units.items()):
        unit = folder(key)
        fingerprint = snapshot.fingerprint(key)
        cached = cache.get(unit)
        if cached is not None and cached[0] == fingerprint and cached[1] in current:
            new_cache[unit] = cached
            found = [_finding(d) for d in cached[2]]
        else:
            name = scaffolder_service.unit_template(unit, files)
            if name is None:
                continue  # not rendered by the portal: nothing to compare with
            version = versions.get(name, "")
            found = unit_findings(registry, key, files)
            new_cache[unit] = (fingerprint, version, [_plain(f) for f in found])
        result.findings.extend(found)
        result.checked += 1
    result.seconds = time.perf_counter() - started
    return result, new_cache


def _plain(finding: Finding) -> dict[str, object]:
    return {k: str(v) for k, v in asdict(finding).items()}


def _finding(data: Mapping[str, object]) -> Finding:
    return Finding(entity=str(data["entity"]), side=Side(str(data["side"])),
                   subject=str(data["subject"]), what=str(data["what"]),
                   fix=Fix(str(data["fix"])), fix_target=str(data.get("fix_target", "")),
                   state=State(str(data.get("state", State.drift))),
                   detail=str(data.get("detail", "")), team=str(data.get("team", "")))
