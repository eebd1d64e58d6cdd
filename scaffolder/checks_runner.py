"""The pre-merge checks of a change set, stored with it; any failure blocks merging.

manifests (strict schemas: kubernetes-validate and the repository's CRD schemas), kustomize
(each touched overlay builds with ``kubectl kustomize``), policies (the Gatekeeper constraints
on ``main`` evaluated with regopy on every rendered and every built object), collisions (the
unit's name is not used by another unit on ``main`` or in an open change), capacity (the sum
of the quotas in each touched environment stays within the ``capacity`` of its ``infra.yaml``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gitops import git, gittree, object_names
from gitops.forges.base import Forge
from gitops.quantity import format_bytes, format_cpu, parse_quantity
from scaffolder.changeset import Prepared
from scaffolder.checks import kustomize, manifests, policy
from scaffolder.models import CheckResult
from scaffolder.render import ANSWERS_FILE

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
POLICIES_DIR = "platform/policies"
RESOURCES = ("cpu", "memory", "storage")


def _docs(content: bytes) -> list[Any]:
    return [d for d in yaml.load_all(content, Loader=_LOADER) if d is not None]


def load_documents(text: str) -> list[dict[str, Any]]:
    """``manifests.load_documents`` semantics (safe loader, mappings only) on libyaml: the
    pure-Python loader costs more than the rest of a request."""
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from exc
    for doc in docs:
        if not isinstance(doc, dict):
            raise ValueError(f"a YAML document is a {type(doc).__name__}, not a mapping")
    return docs


def _is_data_file(path: str) -> bool:
    """Repository files that are not Kubernetes objects: answers, environment manifests."""
    parts = path.split("/")
    return (parts[-1] == ANSWERS_FILE
            or (len(parts) == 3 and parts[0] == "envs" and parts[2] == "infra.yaml"))


def _manifest_files(rendered: Mapping[str, bytes]) -> list[str]:
    return [p for p in sorted(rendered) if p.endswith((".yaml", ".yml"))
            and not _is_data_file(p)]


def check_manifests(rendered: Mapping[str, bytes], *, kubernetes_version: str
                    ) -> tuple[CheckResult, list[dict[str, Any]]]:
    """Strict schemas of every rendered manifest; also returns the cluster objects."""
    problems: list[str] = []
    objects: list[dict[str, Any]] = []
    for path in _manifest_files(rendered):
        try:
            docs = load_documents(rendered[path].decode())
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: {exc}")
            continue
        problems += [f"{path}: {p}" for p in manifests.validate_documents(
            docs, kubernetes_version=kubernetes_version)]
        objects += [d for d in docs if manifests.is_cluster_manifest(d)]
    if problems:
        return CheckResult(name="manifests", state="failure",
                           summary=f"{len(problems)} schema problem(s)",
                           details=problems[:50]), objects
    return CheckResult(name="manifests", state="success",
                       summary=f"{len(objects)} object(s) valid"), objects


def check_kustomize(rendered: Mapping[str, bytes]
                    ) -> tuple[CheckResult, list[dict[str, Any]]]:
    """``kubectl kustomize`` of every touched overlay; also returns the built objects."""
    overlays = sorted(p.rsplit("/", 1)[0] for p in rendered
                      if p.endswith("/kustomization.yaml") and "/envs/" in p)
    if not overlays:
        return CheckResult(name="kustomize", state="success", summary="no overlay touched"), []
    problems: list[str] = []
    built: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="caas-kustomize-") as tmp:
        root = Path(tmp)
        for path, content in rendered.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(content)
        # kubectl starts slowly (~0.3 s): build the overlays side by side.
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(_build, [root / o for o in overlays]))
        for overlay, (output, error) in zip(overlays, results, strict=True):
            if error:
                problems.append(f"{overlay}: {error}")
            else:
                built += load_documents(output)
    if problems:
        return CheckResult(name="kustomize", state="failure",
                           summary=f"{len(problems)} overlay(s) do not build",
                           details=problems), built
    return CheckResult(name="kustomize", state="success",
                       summary=f"{len(overlays)} overlay(s) build"), built


def _build(path: Path) -> tuple[str, str]:
    try:
        return kustomize.build(path, kubectl=KUBECTL), ""
    except kustomize.KustomizeError as exc:
        return "", exc.message


@lru_cache(maxsize=8)
def _policy_set(git_dir: str, tree: str) -> policy.PolicySet:
    """Compiling Rego is the expensive part: one PolicySet per policies tree id."""
    root = Path(git_dir)
    paths = [p for p in gittree.list_paths(root, tree) if p.endswith((".yaml", ".yml"))]
    docs: list[dict[str, Any]] = []
    for content in gittree.read_many(root, tree, paths).values():
        docs += load_documents(content.decode())
    return policy.PolicySet.from_documents(docs)


def _policies(forge: Forge, sha: str) -> policy.PolicySet | None:
    git_dir = getattr(forge, "git_dir", None)
    if git_dir is not None:
        proc = git.run(Path(git_dir), "rev-parse", "--verify", "--quiet",
                       f"{sha}:{POLICIES_DIR}")
        tree = proc.stdout.decode().strip()
        return _policy_set(str(git_dir), tree) if proc.returncode == 0 and tree else None
    docs: list[dict[str, Any]] = []
    for path in forge.list_files(POLICIES_DIR, sha):
        if path.endswith((".yaml", ".yml")):
            docs += load_documents((forge.read_file(path, sha) or b"").decode())
    return policy.PolicySet.from_documents(docs) if docs else None


def check_policies(forge: Forge, sha: str, objects: list[dict[str, Any]]) -> CheckResult:
    """The Gatekeeper constraints on main, evaluated with regopy on every rendered object."""
    try:
        policies = _policies(forge, sha)
    except policy.PolicyError as exc:
        return CheckResult(name="policies", state="error",
                           summary=f"the policies on main do not load: {exc.message}")
    if policies is None or not policies.constraints:
        return CheckResult(name="policies", state="failure",
                           summary=f"no Gatekeeper constraints under {POLICIES_DIR}/ on main",
                           details=["a change set is never admitted without policies"])
    denied = [str(v) for obj in objects for v in policies.evaluate(obj)
              if v.enforcement_action == "deny"]
    if denied:
        return CheckResult(name="policies", state="failure",
                           summary=f"{len(denied)} policy violation(s)", details=denied[:50])
    return CheckResult(name="policies", state="success",
                       summary=f"{len(objects)} object(s) admitted by "
                       f"{len(policies.constraints)} constraint(s)")


def unit_name(target: str) -> tuple[str, str]:
    """(kind, cluster-wide name) of a unit: namespaces are global whatever the team."""
    parts = target.split("/")
    if parts[0] == "tenants" and len(parts) >= 3:
        return "namespace", parts[2]
    return parts[0], parts[-1]


def _units_on(forge: Forge, sha: str) -> set[str]:
    """Every unit folder at ``sha``: tenants, applications, teams and environments."""
    units = set(_tenant_units(forge, sha))
    for prefix in ("applications", "teams", "envs"):
        units |= object_names.units_in(tuple(forge.list_files(prefix, sha)))
    return units


def check_collisions(forge: Forge, prepared: Prepared, open_units: Iterable[str]) -> CheckResult:
    """``collisions`` of the prepared unit against its base commit."""
    return collisions(forge, prepared.target, prepared.base_sha, open_units)


def collisions(forge: Forge, target: str, sha: str, open_units: Iterable[str]) -> CheckResult:
    """The names the unit ``target`` generates in a shared scope (``gitops.object_names``:
    namespace, dashboard uid, Application, AppProject, cluster) are used by no other unit at
    ``sha`` and by no open change; a clash names both units."""
    mine = object_names.generated_names(target)
    clashes: list[str] = []
    for scope, name in mine:
        if scope == "ArgoCD AppProject" and name in object_names.RESERVED_PROJECTS:
            clashes.append(f"{scope} {name} of {target} is reserved by the platform")
    if mine:
        others = [(u, "on main") for u in sorted(_units_on(forge, sha))]
        others += [(u, "in an open change") for u in sorted(set(open_units))]
        for unit, where in others:
            if unit == target:
                continue
            theirs = set(object_names.generated_names(unit))
            for scope, name in (n for n in mine if n in theirs):
                clashes.append(f"{scope} {name} of {target} is already generated by "
                               f"{unit} ({where})")
    if clashes:
        return CheckResult(name="collisions", state="failure", summary="name already taken",
                           details=clashes)
    names = ", ".join(f"{scope} {name}" for scope, name in mine) or "no shared-scope name"
    return CheckResult(name="collisions", state="success", summary=f"{names}: free"[:300])


@lru_cache(maxsize=16)
def _tenant_dirs(git_dir: str, sha: str) -> tuple[str, ...]:
    listing = git.out(Path(git_dir), "ls-tree", "-r", "-d", "-z", "--name-only", sha,
                      "--", "tenants/")
    return tuple(p for p in listing.split("\0") if p.count("/") == 2)


def _tenant_units(forge: Forge, sha: str) -> Iterable[str]:
    """``tenants/<team>/<namespace>`` folders at ``sha`` (one git call, cached per commit)."""
    git_dir = getattr(forge, "git_dir", None)
    if git_dir is not None:
        return _tenant_dirs(str(git_dir), sha)
    return sorted({"/".join(p.split("/")[:3]) for p in forge.list_files("tenants", sha)
                   if p.count("/") >= 3})


def _capacity(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    found = doc.get("capacity") or (spec or {}).get("capacity") or {}
    return found if isinstance(found, Mapping) else {}


def _quota_of(content: bytes) -> dict[str, float]:
    total = dict.fromkeys(RESOURCES, 0.0)
    try:
        docs = _docs(content)
    except yaml.YAMLError:
        return total
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "ResourceQuota":
            hard = (doc.get("spec") or {}).get("hard") or {}
            for key in RESOURCES:
                raw = hard.get(f"requests.{key}") or hard.get(key)
                if raw is not None:
                    total[key] += float(parse_quantity(raw))
    return total


def _is_quota_path(path: str, env: str) -> bool:
    return path.startswith("tenants/") and path.endswith(f"/envs/{env}/quota.yaml")


Usage = tuple[tuple[str, tuple[float, ...]], ...]


@lru_cache(maxsize=64)
def _used_on_main(git_dir: str, sha: str, env: str) -> Usage:
    """Per-tenant quota in ``env`` at commit ``sha`` (immutable, hence cached per commit)."""
    root = Path(git_dir)
    paths = [p for p in gittree.list_paths(root, sha, "tenants") if _is_quota_path(p, env)]
    contents = gittree.read_many(root, sha, paths)
    return tuple((p, tuple(_quota_of(c).values())) for p, c in contents.items())


def _main_quotas(forge: Forge, sha: str, env: str) -> Usage:
    git_dir = getattr(forge, "git_dir", None)
    if git_dir is not None:
        return _used_on_main(str(git_dir), sha, env)
    paths = [p for p in forge.list_files("tenants", sha) if _is_quota_path(p, env)]
    return tuple((p, tuple(_quota_of(forge.read_file(p, sha) or b"").values())) for p in paths)


def _show(key: str, amount: float) -> str:
    if key == "cpu":
        return format_cpu(amount)
    return format_bytes(int(amount))


def check_capacity(forge: Forge, prepared: Prepared) -> CheckResult:
    """Sum of the quotas per touched environment (main without this unit, plus the change)."""
    details: list[str] = []
    failed = False
    for env in prepared.envs:
        capacity = _capacity(prepared.env_docs.get(env, {}))
        if not capacity:
            details.append(f"{env}: no capacity declared in envs/{env}/infra.yaml")
            continue
        mine = f"{prepared.target}/"
        used = dict.fromkeys(RESOURCES, 0.0)
        old = dict.fromkeys(RESOURCES, 0.0)
        for path, amounts in _main_quotas(forge, prepared.base_sha, env):
            # This unit's old quota is replaced by the new one.
            into = old if path.startswith(mine) else used
            for key, amount in zip(RESOURCES, amounts, strict=True):
                into[key] += amount
        new = dict.fromkeys(RESOURCES, 0.0)
        for path, content in prepared.rendered.items():
            if _is_quota_path(path, env):
                for key, amount in _quota_of(content).items():
                    new[key] += amount
        for key in RESOURCES:
            used[key] += new[key]
            if capacity.get(key) is None:
                continue
            limit = float(parse_quantity(capacity[key]))
            line = f"{env}: {key} {_show(key, used[key])} of {_show(key, limit)}"
            # Over capacity already (e.g. capacity lowered) fails only a change that adds.
            if used[key] > limit and new[key] > old[key]:
                failed = True
                line += " (over capacity)"
            details.append(line)
    if failed:
        return CheckResult(name="capacity", state="failure", summary="over capacity",
                           details=details)
    return CheckResult(name="capacity", state="success",
                       summary="within capacity" if prepared.envs else "no environment",
                       details=details)


def _kubernetes_version(prepared: Prepared) -> str:
    for doc in prepared.env_docs.values():
        version = (doc.get("kubernetes") or {}).get("version") if isinstance(
            doc.get("kubernetes"), Mapping) else None
        if isinstance(version, str) and version:
            return version
    return manifests.DEFAULT_KUBERNETES_VERSION


def run_checks(forge: Forge, prepared: Prepared, *, open_units: Iterable[str]
               ) -> list[CheckResult]:
    rendered = prepared.rendered
    schemas, objects = check_manifests(rendered,
                                       kubernetes_version=_kubernetes_version(prepared))
    builds, built = check_kustomize(rendered)
    return [
        schemas,
        builds,
        check_policies(forge, prepared.base_sha, objects + built),
        check_collisions(forge, prepared, open_units),
        check_capacity(forge, prepared),
    ]


# Shared with scaffolder.merge_checks (the same quota reading at merge time).
capacity_of = _capacity
quota_of = _quota_of
is_quota_path = _is_quota_path
main_quotas = _main_quotas
show = _show
