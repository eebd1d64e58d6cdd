"""The pre-merge checks of a change set, stored with it; any failure blocks merging.

manifests (strict schemas: kubernetes-validate and the repository's CRD schemas), kustomize
(each touched overlay builds with ``kubectl kustomize``), policies (the Gatekeeper constraints
on ``main`` evaluated with regopy on every rendered and every built object), collisions (the
unit's name is not used by another unit on ``main`` or in an open change), capacity (the sum
of the quotas in each touched environment stays within the ``capacity`` of its ``infra.yaml``).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

from gitops import object_names, yaml
from gitops.forges.base import Forge
from scaffolder import capacity
from scaffolder.changeset import Prepared
from scaffolder.checks import kustomize, manifests, policy
from scaffolder.commit_cache import At, at
from scaffolder.models import CheckResult
from scaffolder.render import ANSWERS_FILE
from scaffolder.upgrade import check_conflicts

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
POLICIES_DIR = "platform/policies"


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
            docs = yaml.load_mappings(rendered[path].decode())
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
    """``kubectl kustomize`` of every touched overlay; also returns the built objects.

    A build reads only the rendered files (written to a fresh folder; remote bases are
    refused), so its result is kept per (digest of those files, overlay): a preview asked
    again, and the pull request's checks after a preview in the same process, skip kubectl
    (0.1 to 0.4 s a process start)."""
    overlays = sorted(p.rsplit("/", 1)[0] for p in rendered
                      if p.endswith("/kustomization.yaml") and "/envs/" in p)
    if not overlays:
        return CheckResult(name="kustomize", state="success", summary="no overlay touched"), []
    digest = _digest(rendered)
    with _BUILDS_LOCK:
        known = {o: _BUILDS[(digest, o)] for o in overlays if (digest, o) in _BUILDS}
    missing = [o for o in overlays if o not in known]
    if missing:
        with tempfile.TemporaryDirectory(prefix="caas-kustomize-") as tmp:
            root = Path(tmp)
            for path, content in rendered.items():
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(content)
            # kubectl starts slowly (~0.3 s): build the overlays side by side.
            with ThreadPoolExecutor(max_workers=4) as pool:
                fresh = dict(zip(missing, pool.map(_build, [root / o for o in missing]),
                                 strict=True))
        with _BUILDS_LOCK:
            for overlay, result in fresh.items():
                _BUILDS[(digest, overlay)] = result
                _BUILDS.move_to_end((digest, overlay))
            while len(_BUILDS) > BUILDS_KEPT:
                _BUILDS.popitem(last=False)
        known |= fresh
    problems: list[str] = []
    built: list[dict[str, Any]] = []
    for overlay in overlays:
        output, error = known[overlay]
        if error:
            problems.append(f"{overlay}: {error}")
        else:
            built += yaml.load_mappings(output)
    if problems:
        return CheckResult(name="kustomize", state="failure",
                           summary=f"{len(problems)} overlay(s) do not build",
                           details=problems), built
    return CheckResult(name="kustomize", state="success",
                       summary=f"{len(overlays)} overlay(s) build"), built


BUILDS_KEPT = 256  # overlay builds kept per process (a few KB of YAML each)
_BUILDS: OrderedDict[tuple[str, str], tuple[str, str]] = OrderedDict()
_BUILDS_LOCK = threading.Lock()


def _digest(files: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


def _build(path: Path) -> tuple[str, str]:
    try:
        return kustomize.build(path, kubectl=KUBECTL), ""
    except kustomize.KustomizeError as exc:
        return "", exc.message


@lru_cache(maxsize=16)
def _policy_files(at: At) -> tuple[tuple[str, bytes], ...]:
    files = at.forge.read_tree([POLICIES_DIR], at.sha)
    return tuple(sorted((p, c) for p, c in files.items() if p.endswith((".yaml", ".yml"))))


@lru_cache(maxsize=8)
def _policy_set(files: tuple[tuple[str, bytes], ...]) -> policy.PolicySet:
    """Compiling Rego is the expensive part: one PolicySet per distinct set of policy files."""
    docs: list[dict[str, Any]] = []
    for _path, content in files:
        docs += yaml.load_mappings(content)
    return policy.PolicySet.from_documents(docs)


def _policies(forge: Forge, sha: str) -> policy.PolicySet | None:
    files = _policy_files(at(forge, sha))
    return _policy_set(files) if files else None


def check_policies(forge: Forge, sha: str, objects: list[dict[str, Any]], *,
                   kinds: frozenset[str] | None = None) -> CheckResult:
    """The Gatekeeper constraints on main, evaluated with regopy on every rendered object
    (``kinds``: only the violations of these constraint kinds count)."""
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
              if v.enforcement_action == "deny" and (kinds is None or v.constraint_kind in kinds)]
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


@lru_cache(maxsize=16)
def _names_on(at: At) -> dict[tuple[str, str], tuple[str, ...]]:
    """Every shared-scope name generated by a unit folder at a commit (tenants, applications,
    teams and environments) → the units generating it; a commit never changes, so it is
    computed once per commit instead of once per request (5,000 tenants: 10,000 names)."""
    units = set(_tenant_dirs(at))
    for prefix in ("applications", "teams", "envs"):
        units |= object_names.units_in(tuple(at.forge.list_files(prefix, at.sha)))
    index: dict[tuple[str, str], list[str]] = {}
    for unit in units:
        for name in object_names.generated_names(unit):
            index.setdefault(name, []).append(unit)
    return {name: tuple(sorted(found)) for name, found in index.items()}


def check_collisions(forge: Forge, prepared: Prepared, open_units: Iterable[str]) -> CheckResult:
    """``collisions`` of the prepared unit against its base commit."""
    return collisions(forge, prepared.target, prepared.base_sha, open_units)


def collisions(forge: Forge, target: str, sha: str, open_units: Iterable[str]) -> CheckResult:
    """The names the unit ``target`` generates in a shared scope (``gitops.object_names``:
    namespace, dashboard uid, Application, AppProject, cluster) are used by no other unit at
    ``sha`` and by no open change; a clash names both units. ``target`` itself among
    ``open_units`` is a clash too: another open change edits the unit (a change reopened on
    the forge while a newer one holds the unit, ``scaffolder.reopen``)."""
    mine = object_names.generated_names(target)
    open_units = sorted(set(open_units))
    clashes: list[str] = []
    if target in open_units:
        clashes.append(f"{target} is already requested by another open change")
    for scope, name in mine:
        if scope == "ArgoCD AppProject" and name in object_names.RESERVED_PROJECTS:
            clashes.append(f"{scope} {name} of {target} is reserved by the platform")
    if mine:
        on_main = _names_on(at(forge, sha))
        others = [(u, "on main") for u in sorted({u for n in mine for u in on_main.get(n, ())})]
        others += [(u, "in an open change") for u in open_units]
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
def _tenant_dirs(at: At) -> tuple[str, ...]:
    return tuple(sorted({"/".join(p.split("/")[:3]) for p in at.forge.list_files("tenants", at.sha)
                         if p.count("/") >= 3}))


def check_capacity(forge: Forge, subject: capacity.UnitRender) -> CheckResult:
    """Sum of the quotas per touched environment: main without this unit's quota files, plus
    the ones it renders (``scaffolder.capacity``)."""
    return capacity.capacity_result(capacity.unit_usages(forge, subject))


def _kubernetes_version(env_docs: Mapping[str, Mapping[str, Any]]) -> str:
    for doc in env_docs.values():
        version = (doc.get("kubernetes") or {}).get("version") if isinstance(
            doc.get("kubernetes"), Mapping) else None
        if isinstance(version, str) and version:
            return version
    return manifests.DEFAULT_KUBERNETES_VERSION


def immediate_checks(forge: Forge, prepared: Prepared, *, open_units: Iterable[str]
                     ) -> list[CheckResult]:
    """The checks a request answers before its pull request opens (cheap, name-bound):
    ``collisions``, and an upgrade's ``conflicts`` (a merge may leave conflict markers: red
    until they are resolved)."""
    conflicts = [check_conflicts({c.path: c.content for c in prepared.changes})] \
        if prepared.action == "upgrade" else []
    return [check_collisions(forge, prepared, open_units), *conflicts]


def deferred_checks(forge: Forge, subject: capacity.UnitRender) -> list[CheckResult]:
    """``DEFERRED``, in that order: manifests and kustomize side by side, then policies on
    what both produced (rendered and built objects) beside capacity. A pull request reports
    them after it opens (``scaffolder.pr_checks``); a dry run waits for them."""
    rendered = subject.rendered
    with ThreadPoolExecutor(max_workers=3) as pool:
        schemas_f = pool.submit(check_manifests, rendered,
                                kubernetes_version=_kubernetes_version(subject.env_docs))
        builds_f = pool.submit(check_kustomize, rendered)
        capacity_f = pool.submit(check_capacity, forge, subject)
        schemas, objects = schemas_f.result()
        builds, built = builds_f.result()
        policies = check_policies(forge, subject.base_sha, objects + built)
        return [schemas, builds, policies, capacity_f.result()]


# The checks ``deferred_checks`` returns; what a pull request reports as pending at first.
DEFERRED = ("manifests", "kustomize", "policies", "capacity")


def run_checks(forge: Forge, prepared: Prepared, *, open_units: Iterable[str]
               ) -> list[CheckResult]:
    """Every check, now (a dry run): manifests, kustomize, policies, collisions, capacity, and
    an upgrade's conflicts."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(deferred_checks, forge, prepared)
        now = immediate_checks(forge, prepared, open_units=open_units)
        return in_order(later.result(), now)


def in_order(deferred: list[CheckResult], immediate: list[CheckResult]) -> list[CheckResult]:
    """One order wherever checks are listed: manifests, kustomize, policies, collisions,
    capacity, then the rest (conflicts)."""
    schemas, builds, policies, room = deferred
    return [schemas, builds, policies, immediate[0], room, *immediate[1:]]
