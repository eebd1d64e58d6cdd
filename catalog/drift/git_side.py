"""The git side: files on main against the stored answers rendered with the recorded template.

Each unit with a ``.caas-answers.yaml`` is compared by ``scaffolder.service.unit_drift``
(derived lists left out). Rendering runs cookiecutter and the template's hooks, so the
per-unit cache (``cache``: unit folder → ``UnitCache``, rows of ``catalog_drift_units``, in
the database so a restarted process stays warm) spares it at two levels:

1. the unit's files (fingerprint) and its template's current version are unchanged: its
   findings stand (nothing read, nothing rendered);
2. its answers file is unchanged (``render_key``: the folder, the template, the recorded
   version tree id and the answers): the rendering's digests stand, so a unit whose files
   digest to exactly them is clean without rendering; only one that differs is rendered
   again, for its diff.

A unit whose answers or recorded template version changed (or that was never seen) is
rendered; those renders run side by side on the render pool's workers (``workers`` threads,
one render each), and a template version materialized from the store once per run.
A hand edit is one finding per unit (subject: the unit folder)
listing every file that differs, with the diff from the rendering to main; the fix is a
re-render PR. A unit that cannot be compared is one ``unknown`` finding saying why.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from catalog.drift.models import Finding, Fix, Side, SideResult, State, UnitCache
from catalog.drift.snapshot import Snapshot, folder
from scaffolder import service as scaffolder_service
from scaffolder.registry import Registry, Template


def _team(key: str) -> str:
    kind, _, name = key.partition(":")
    return name if kind == "team" else name.split("/", 1)[0] if "/" in name else ""


def unit_findings(registry: Registry, key: str, files: Mapping[str, bytes],
                  templates: scaffolder_service.TemplateSource | None = None,
                  repo_url: str | None = None) -> tuple[list[Finding], dict[str, str]]:
    """The git-side findings of one unit (none when it matches its rendering, ``repo_url``
    filled in as ``scaffolder.render.render`` does) and the rendering's digests (empty when it
    could not be rendered)."""
    unit = folder(key)
    result = scaffolder_service.unit_drift(registry, unit=unit, files=files,
                                           templates=templates, repo_url=repo_url)
    if result.state == "clean":
        return [], result.expected
    if result.state == "unknown":
        return [Finding(entity=key, side=Side.git, subject=unit, state=State.unknown,
                        what=f"{result.reason}" + (f" (template {result.template} "
                                                   f"{result.recorded[:12]})"
                                                   if result.template else ""),
                        fix=Fix.none, team=_team(key))], result.expected
    names = ", ".join(f"{p[len(unit) + 1:]} {status}" for p, status in result.changed)
    return [Finding(entity=key, side=Side.git, subject=unit,
                    what=f"edited by hand: {len(result.changed)} file(s) differ from template "
                         f"{result.template}'s rendering of the stored answers: {names}",
                    fix=Fix.rerender, fix_target=unit, detail=result.diff, team=_team(key))
            ], result.expected




class _Templates:
    """(name, recorded version) → the template at that version, materialized from the store at
    most once per run into ``scratch`` (thread-safe: renders run on several threads)."""

    def __init__(self, registry: Registry, scratch: Path) -> None:
        self.registry, self.scratch = registry, scratch
        self.lock = threading.Lock()
        self.known: dict[tuple[str, str], Template | None] = {}

    def __call__(self, name: str, version: str) -> Template | None:
        with self.lock:
            if (name, version) not in self.known:
                self.known[(name, version)] = scaffolder_service.template_at(
                    self.registry, name, version, self.scratch / str(len(self.known)))
            return self.known[(name, version)]


def check(snapshot: Snapshot, *, registry: Registry, cache: Mapping[str, UnitCache],
          workers: int = scaffolder_service.RENDER_WORKERS
          ) -> tuple[SideResult, dict[str, UnitCache]]:
    """Every unit with an answers file on main; returns the side's result and the new cache
    (see the module docstring for what is reused). ``result.rendered`` counts the renders."""
    started = time.perf_counter()
    result = SideResult(side=Side.git)
    new_cache: dict[str, UnitCache] = {}
    found: dict[str, list[Finding]] = {}
    versions: dict[str | None, str] = {n: registry.get(n).version for n in registry.names()}
    current = set(versions.values())
    todo: list[tuple[str, str, str, str]] = []  # entity key, fingerprint, render key, version
    for key, files in snapshot.units.items():
        unit = folder(key)
        fingerprint = snapshot.fingerprint(key)
        cached = cache.get(unit)
        if (cached is not None and cached.fingerprint == fingerprint
                and cached.template_version in current):
            new_cache[unit], found[key] = cached, [_finding(d) for d in cached.findings]
            continue
        path = scaffolder_service.answers_path(unit, files)
        name = scaffolder_service.unit_template(unit, files) if path is not None else None
        if path is None or name is None:
            continue  # not rendered by the portal: nothing to compare with
        render_key = scaffolder_service.render_key(unit, files[path], snapshot.repo_url)
        version = versions.get(name, "")
        if (cached is not None and cached.render_key == render_key and cached.rendered
                and scaffolder_service.unit_digests(unit, files) == cached.rendered):
            new_cache[unit] = UnitCache(fingerprint=fingerprint, template_version=version,
                                        findings=[], render_key=render_key,
                                        rendered=cached.rendered)
            found[key] = []
            continue
        todo.append((key, fingerprint, render_key, version))
    with tempfile.TemporaryDirectory(prefix="caas-drift-") as scratch:
        templates = _Templates(registry, Path(scratch))

        def one(item: tuple[str, str, str, str]) -> tuple[list[Finding], dict[str, str]]:
            return unit_findings(registry, item[0], snapshot.units[item[0]], templates,
                                 snapshot.repo_url)

        with ThreadPoolExecutor(max_workers=max(1, workers),
                                thread_name_prefix="caas-drift-render") as pool:
            for (key, fingerprint, render_key, version), (findings, digests) in zip(
                    todo, pool.map(one, todo), strict=True):
                new_cache[folder(key)] = UnitCache(
                    fingerprint=fingerprint, template_version=version,
                    findings=[_plain(f) for f in findings],
                    render_key=render_key if digests else "", rendered=digests)
                found[key] = findings
    for key in sorted(found):
        result.findings.extend(found[key])
        result.checked += 1
    result.rendered = len(todo)
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
