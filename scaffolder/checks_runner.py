"""The pre-merge checks of a change set, stored with it; any failure blocks merging.

manifests (every rendered YAML document parses and is a Kubernetes object), kustomize (each
touched overlay builds with ``kubectl kustomize``), collisions (the unit's name is not used by
another unit on ``main`` or in an open change), capacity (the sum of the quotas in each touched
environment stays within the ``capacity`` its ``infra.yaml`` declares).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from scaffolder.changeset import Prepared
from scaffolder.forges.base import Forge
from scaffolder.models import CheckResult
from scaffolder.quantity import parse_quantity

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _docs(content: bytes) -> list[Any]:
    return [d for d in yaml.load_all(content, Loader=_LOADER) if d is not None]


def check_manifests(rendered: Mapping[str, bytes]) -> CheckResult:
    problems: list[str] = []
    count = 0
    for path, content in rendered.items():
        if not path.endswith((".yaml", ".yml")) or path.endswith(".caas-answers.yaml"):
            continue
        try:
            docs = _docs(content)
        except yaml.YAMLError as exc:
            problems.append(f"{path}: not valid YAML: {str(exc).splitlines()[0]}")
            continue
        for doc in docs:
            count += 1
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
                problems.append(f"{path}: a document without apiVersion and kind")
            elif doc.get("kind") != "Kustomization" and not (doc.get("metadata") or {}).get(
                    "name"):
                problems.append(f"{path}: {doc['kind']} without metadata.name")
    if problems:
        return CheckResult(name="manifests", state="failure",
                           summary=f"{len(problems)} invalid manifest(s)", details=problems)
    return CheckResult(name="manifests", state="success", summary=f"{count} objects valid")


def check_kustomize(rendered: Mapping[str, bytes]) -> CheckResult:
    overlays = sorted(p.rsplit("/", 1)[0] for p in rendered
                      if p.endswith("/kustomization.yaml"))
    if not overlays:
        return CheckResult(name="kustomize", state="success", summary="no overlays touched")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="caas-kustomize-") as tmp:
        root = Path(tmp)
        for path, content in rendered.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
        # kubectl starts slowly: build every overlay at once.
        procs = [(o, subprocess.Popen([KUBECTL, "kustomize", str(root / o)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
                 for o in overlays]
        for overlay, proc in procs:
            _out, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                problems.append(f"{overlay}: {err.decode(errors='replace').strip()}")
    if problems:
        return CheckResult(name="kustomize", state="failure",
                           summary=f"{len(problems)} overlay(s) do not build", details=problems)
    return CheckResult(name="kustomize", state="success",
                       summary=f"{len(overlays)} overlay(s) build")


def unit_name(target: str) -> tuple[str, str]:
    """(kind, cluster-wide name) of a unit: namespaces are global whatever the team."""
    parts = target.split("/")
    if parts[0] == "tenants" and len(parts) >= 3:
        return "namespace", parts[2]
    return parts[0], parts[-1]


def check_collisions(forge: Forge, prepared: Prepared, open_units: Iterable[str]) -> CheckResult:
    kind, name = unit_name(prepared.target)
    clashes: list[str] = []
    if kind == "namespace":
        for team in _children(forge, "tenants"):
            for ns in _children(forge, f"tenants/{team}"):
                if ns == name and f"tenants/{team}/{ns}" != prepared.target:
                    clashes.append(f"namespace {name} exists on main at tenants/{team}/{ns}")
    for other in open_units:
        if other != prepared.target and unit_name(other) == (kind, name):
            clashes.append(f"{kind} {name} is requested by an open change at {other}")
    if clashes:
        return CheckResult(name="collisions", state="failure", summary="name already taken",
                           details=clashes)
    return CheckResult(name="collisions", state="success", summary=f"{kind} {name} is free")


def _children(forge: Forge, directory: str) -> list[str]:
    lister = getattr(forge, "list_dir", None)
    if lister is not None:
        return list(lister(directory))
    prefix = directory + "/"
    return sorted({p[len(prefix):].split("/", 1)[0] for p in forge.list_files(prefix)})


def _capacity(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    found = doc.get("capacity") or (spec or {}).get("capacity") or {}
    return found if isinstance(found, Mapping) else {}


def _quota_of(content: bytes) -> dict[str, float]:
    total = {"cpu": 0.0, "memory": 0.0}
    try:
        docs = _docs(content)
    except yaml.YAMLError:
        return total
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "ResourceQuota":
            hard = (doc.get("spec") or {}).get("hard") or {}
            for key in ("cpu", "memory"):
                raw = hard.get(f"requests.{key}") or hard.get(key)
                if raw is not None:
                    total[key] += float(parse_quantity(raw))
    return total


def _is_quota_path(path: str, env: str) -> bool:
    return path.startswith("tenants/") and path.endswith(f"/envs/{env}/quota.yaml")


@lru_cache(maxsize=64)
def _used_on_main(git_dir: str, sha: str, env: str) -> tuple[tuple[str, float, float], ...]:
    """Per-tenant quota in ``env`` at commit ``sha`` (immutable, hence cached per commit)."""
    from scaffolder import gittree

    root = Path(git_dir)
    paths = [p for p in gittree.list_paths(root, sha, "tenants") if _is_quota_path(p, env)]
    contents = gittree.read_many(root, sha, paths)
    return tuple((p, q["cpu"], q["memory"]) for p, c in contents.items()
                 for q in [_quota_of(c)])


def _main_quotas(forge: Forge, sha: str, env: str) -> list[tuple[str, float, float]]:
    git_dir = getattr(forge, "git_dir", None)
    if git_dir is not None:
        return list(_used_on_main(str(git_dir), sha, env))
    paths = [p for p in forge.list_files("tenants", sha) if _is_quota_path(p, env)]
    out = []
    for path in paths:
        q = _quota_of(forge.read_file(path, sha) or b"")
        out.append((path, q["cpu"], q["memory"]))
    return out


def check_capacity(forge: Forge, prepared: Prepared) -> CheckResult:
    details: list[str] = []
    failed = False
    for env in prepared.envs:
        capacity = _capacity(prepared.env_docs.get(env, {}))
        if not capacity:
            details.append(f"{env}: no capacity declared in envs/{env}/infra.yaml")
            continue
        mine = f"{prepared.target}/"
        used = {"cpu": 0.0, "memory": 0.0}
        for path, cpu, memory in _main_quotas(forge, prepared.base_sha, env):
            if not path.startswith(mine):  # this unit's old quota is replaced by the new one
                used["cpu"] += cpu
                used["memory"] += memory
        for path, content in prepared.rendered.items():
            if _is_quota_path(path, env):
                q = _quota_of(content)
                used["cpu"] += q["cpu"]
                used["memory"] += q["memory"]
        for key in ("cpu", "memory"):
            if capacity.get(key) is None:
                continue
            limit = float(parse_quantity(capacity[key]))
            line = f"{env}: {key} {used[key]:g} of {limit:g}"
            if used[key] > limit:
                failed = True
                line += " (over capacity)"
            details.append(line)
    if failed:
        return CheckResult(name="capacity", state="failure", summary="over capacity",
                           details=details)
    return CheckResult(name="capacity", state="success",
                       summary="within capacity" if prepared.envs else "no environment",
                       details=details)


def run_checks(forge: Forge, prepared: Prepared, *, open_units: Iterable[str]) -> list[CheckResult]:
    rendered = prepared.rendered
    return [
        check_manifests(rendered),
        check_kustomize(rendered),
        check_collisions(forge, prepared, open_units),
        check_capacity(forge, prepared),
    ]
