"""What tenants' quotas take of an environment's capacity, before and after a change.

One reading for the three places that need it: the pre-merge ``capacity`` check
(``scaffolder.checks_runner``), the same check again at merge time on current main
(``scaffolder.merge_checks``), and the dry-run preview's "remaining capacity" per environment.

- ``usage(forge, sha, env, infra=..., overlay=...) -> EnvUsage``: the environment's declared
  ``capacity`` (``envs/<env>/infra.yaml``, read by ``gitops.environment.read_manifest``), the sum
  of every tenant's ``tenants/<team>/<ns>/envs/<env>/quota.yaml`` on commit ``sha`` (``before``)
  and the same sum with ``overlay`` in place (``after``; a ``None`` content deletes the file).
  Amounts are exact integers: millicores for ``cpu``, bytes for ``memory`` and ``storage``
  (``gitops.quota``); a quota that bounds nothing counts 0.
- ``EnvUsage.over(key)``: ``after`` exceeds the capacity and the change adds to it. An
  environment already over capacity (its capacity was lowered) fails only a change that adds,
  so removing or shrinking a quota is always possible.
- ``unit_usages(forge, prepared)``: ``usage`` of every environment a prepared change set touches,
  the unit's own quota files on main replaced by the ones it renders;
  ``previews(forge, prepared)``: the same as the dry run shows it (``EnvironmentPreview``: the
  unit's requested quota, the tier that prices it, what remains).
- ``capacity_result(usages, context="")``: the ``capacity`` ``CheckResult`` with one detail line
  per environment and resource (``"dev: cpu 6 of 8"``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from gitops import quota
from gitops.environment import read_manifest
from gitops.forges.base import Forge
from gitops.quantity import QuantityError, format_bytes, format_cpu
from scaffolder.changeset import Prepared
from scaffolder.commit_cache import At, at
from scaffolder.models import CheckResult, EnvironmentPreview

RESOURCES = quota.RESOURCES
Usage = tuple[tuple[str, tuple[int, ...]], ...]


def quota_of(content: bytes) -> tuple[int, ...]:
    """Hard limits of one quota file per ``RESOURCES`` (millicores, bytes; 0: not bounded)."""
    total = quota.quota_total(content)
    return tuple(total.get(key, 0) for key in RESOURCES)


def is_quota_path(path: str, env: str) -> bool:
    return path.startswith("tenants/") and path.endswith(f"/envs/{env}/quota.yaml")


@lru_cache(maxsize=64)
def _used_at(commit: At, env: str) -> Usage:
    """Per-tenant quota in ``env`` at a commit (immutable, hence cached per commit)."""
    paths = [p for p in commit.forge.list_files("tenants", commit.sha) if is_quota_path(p, env)]
    contents = commit.forge.read_tree(paths, commit.sha) if paths else {}
    return tuple((p, quota_of(c)) for p, c in sorted(contents.items()))


def quotas_at(forge: Forge, sha: str, env: str) -> Usage:
    """``((quota file path, amounts per RESOURCES), ...)`` of ``env`` at ``sha``."""
    return _used_at(at(forge, sha), env)


@lru_cache(maxsize=64)
def _indexed_at(commit: At, env: str) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """``_used_at`` as path → amounts, and their sum (per commit: 5,000 tenants are summed
    once, not on every request)."""
    used = _used_at(commit, env)
    return dict(used), _sum(amounts for _path, amounts in used)


def _quota_paths_under(forge: Forge, sha: str, env: str, folder: str) -> list[str]:
    """The quota files of ``env`` at ``sha`` below ``folder/`` (a bisection of the sorted
    ``quotas_at``)."""
    used = quotas_at(forge, sha, env)
    start = bisect.bisect_left(used, (folder,))
    found = []
    for path, _amounts in used[start:]:
        if not path.startswith(folder):
            break
        found.append(path)
    return found


def show(key: str, amount: int) -> str:
    """Millicores or bytes in their shortest Kubernetes spelling (``"500m"``, ``"12Gi"``)."""
    if key == "cpu":
        return format_cpu(Decimal(amount) / 1000)
    return format_bytes(amount)


@dataclass(frozen=True)
class EnvUsage:
    """One environment's capacity and use (amounts as in ``gitops.quota``)."""

    env: str
    declared: bool
    capacity: dict[str, int] = field(default_factory=dict)
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def remaining(self, key: str) -> int | None:
        """Capacity left after the change (negative: over); None when not declared."""
        return self.capacity[key] - self.after[key] if key in self.capacity else None

    def over(self, key: str) -> bool:
        return (key in self.capacity and self.after[key] > self.capacity[key]
                and self.after[key] > self.before[key])


def _sum(amounts: Iterable[tuple[int, ...]]) -> dict[str, int]:
    total = dict.fromkeys(RESOURCES, 0)
    for values in amounts:
        for key, amount in zip(RESOURCES, values, strict=True):
            total[key] += amount
    return total


def usage(forge: Forge, sha: str, env: str, *, infra: Mapping[str, Any],
          overlay: Mapping[str, bytes | None]) -> EnvUsage:
    """``env``'s capacity (from the ``infra`` document) and its use at ``sha`` without and
    with ``overlay`` (path → new content, None: removed)."""
    capacity = read_manifest(dict(infra)).capacity
    before, before_total = _indexed_at(at(forge, sha), env)
    after_total = dict(before_total)
    for path, content in overlay.items():
        if is_quota_path(path, env):
            for key, amount in zip(RESOURCES, before.get(path, ()), strict=False):
                after_total[key] -= amount
            if content is not None:
                for key, amount in zip(RESOURCES, quota_of(content), strict=True):
                    after_total[key] += amount
    limits: dict[str, int] = {}
    problems: list[str] = []
    for key in RESOURCES:
        if capacity.get(key) is None:
            continue
        try:
            limits[key] = quota.amount(key, capacity[key])
        except QuantityError as exc:
            problems.append(f"{env}: capacity.{key}: {exc}")
    return EnvUsage(env=env, declared=bool(capacity), capacity=limits,
                    before=dict(before_total), after=after_total, problems=problems)


def capacity_result(usages: Iterable[EnvUsage], *, context: str = "",
                    infra_path: str = "envs/{env}/infra.yaml") -> CheckResult:
    """The ``capacity`` check: fails when an environment goes (further) over capacity or
    declares a capacity that is not a quantity. ``context`` is appended to lines and summary
    (" with current main" at merge time)."""
    details: list[str] = []
    failed = False
    envs = list(usages)
    for use in envs:
        if not use.declared:
            details.append(f"{use.env}: no capacity declared in "
                           + infra_path.format(env=use.env))
            continue
        details += use.problems
        failed = failed or bool(use.problems)
        for key in RESOURCES:
            if key not in use.capacity:
                continue
            line = (f"{use.env}: {key} {show(key, use.after[key])} of "
                    f"{show(key, use.capacity[key])}{context}")
            if use.over(key):
                failed = True
                line += " (over capacity)"
            details.append(line)
    if failed:
        return CheckResult(name="capacity", state="failure", summary=f"over capacity{context}",
                           details=details)
    return CheckResult(name="capacity", state="success",
                       summary=f"within capacity{context}" if envs else "no environment",
                       details=details)


class UnitRender(Protocol):
    """What the capacity of a unit's change reads: its folder, the commit it was rendered
    against, the environments it touches with their ``infra.yaml`` documents, and the
    rendered files (``changeset.Prepared``; ``pr_checks`` rebuilds one from a PR's head)."""

    @property
    def target(self) -> str: ...
    @property
    def base_sha(self) -> str: ...
    @property
    def envs(self) -> list[str]: ...
    @property
    def env_docs(self) -> dict[str, dict[str, Any]]: ...
    @property
    def rendered(self) -> dict[str, bytes]: ...


def unit_overlay(forge: Forge, prepared: UnitRender, env: str) -> dict[str, bytes | None]:
    """The unit's quota files in ``env``: its old ones on main removed, its rendered ones."""
    mine = f"{prepared.target}/"
    overlay: dict[str, bytes | None] = dict.fromkeys(
        _quota_paths_under(forge, prepared.base_sha, env, mine))
    overlay.update((p, c) for p, c in prepared.rendered.items() if is_quota_path(p, env))
    return overlay


def unit_usages(forge: Forge, prepared: UnitRender) -> list[EnvUsage]:
    return [usage(forge, prepared.base_sha, env, infra=prepared.env_docs.get(env, {}),
                  overlay=unit_overlay(forge, prepared, env))
            for env in prepared.envs]


def previews(forge: Forge, prepared: Prepared) -> list[EnvironmentPreview]:
    """Per touched environment: the quota the unit requests there, its tier, the capacity and
    what remains of it after the change (amounts in millicores and bytes)."""
    result: list[EnvironmentPreview] = []
    for use in unit_usages(forge, prepared):
        files = [c for p, c in prepared.rendered.items() if is_quota_path(p, use.env)]
        requested = _sum(quota_of(c) for c in files)
        tier = prepared.env_docs.get(use.env, {}).get("tier")
        result.append(EnvironmentPreview(
            env=use.env, tier=str(tier or ""), requests_quota=bool(files), requested=requested,
            capacity_declared=use.declared, capacity=use.capacity, used=use.after,
            remaining={k: v for k in RESOURCES if (v := use.remaining(k)) is not None},
            over=[k for k in RESOURCES if use.over(k)], problems=use.problems))
    return result
