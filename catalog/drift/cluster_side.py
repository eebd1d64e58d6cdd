"""The cluster side: what runs against what main says, when a cluster is connected.

Per tenant (namespace entity) on main: its Namespace exists; its ResourceQuota's hard limits
equal the quota main sets for the environment the Namespace serves (its
``caas.io/environment`` label, which every overlay sets; a tenant in a single environment
needs no label); each RoleBinding of ``base/rolebindings.yaml`` exists with the same role and
subjects. Per tenant environment and per application: its ArgoCD Application exists and is
Synced and Healthy. Quotas are compared as amounts (``gitops.quota``: ``"2"`` equals
``"2000m"``). Every finding's fix is an ArgoCD sync of the Application that applies the object.

Reads go through ``catalog.live.LiveStatus`` (short timeouts, never raises); the first answer
that is not from a connected cluster stops the side with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from catalog.drift.models import Finding, Fix, Side, SideResult, State
from catalog.drift.snapshot import Snapshot
from catalog.live import LiveStatus
from catalog.parse import load_docs
from gitops import object_names, quota

ENV_LABEL = "caas.io/environment"
_RESOURCES = {"cpu": "cpu_milli", "memory": "memory_bytes", "storage": "storage_bytes"}


class _Unreachable(Exception):
    """The cluster stopped answering: the side reports the reason instead of findings."""


Bindings = dict[str, tuple[str, tuple[str, ...]]]


def expected_bindings(files: Mapping[str, bytes], base: str) -> Bindings:
    """RoleBindings of ``<base>/rolebindings.yaml``: name -> (roleRef kind/name, subjects)."""
    raw = files.get(f"{base}/rolebindings.yaml")
    found: Bindings = {}
    for doc in load_docs(f"{base}/rolebindings.yaml", raw, []) if raw else []:
        if doc.get("kind") != "RoleBinding":
            continue
        meta, ref = doc.get("metadata") or {}, doc.get("roleRef") or {}
        subjects = tuple(sorted(f"{s.get('kind')}:{s.get('name')}"
                                for s in doc.get("subjects") or [] if isinstance(s, dict)))
        found[str(meta.get("name"))] = (f"{ref.get('kind')}/{ref.get('name')}", subjects)
    return found


def _live_quota(ns: Any) -> dict[str, int]:
    docs = [{"kind": "ResourceQuota", "metadata": {"name": q.name}, "spec": {"hard": q.hard}}
            for q in ns.quotas]
    return quota.limits(docs, problems=[])


def _app(live: LiveStatus, name: str, entity: str, team: str) -> list[Finding]:
    app = live.application(name)
    if not app.connected:
        raise _Unreachable(app.reason or "not connected")
    subject = f"Application {name}"
    if not app.found:
        return [Finding(entity=entity, side=Side.cluster, subject=subject, team=team,
                        what=f"ArgoCD Application {name} does not exist", fix=Fix.argocd_sync,
                        fix_target=name)]
    if app.sync == "Synced" and app.health == "Healthy":
        return []
    return [Finding(entity=entity, side=Side.cluster, subject=subject, team=team,
                    what=f"ArgoCD Application {name} is {app.sync or 'not synced yet'} and "
                         f"{app.health or 'of unknown health'}", fix=Fix.argocd_sync,
                    fix_target=name)]


def _tenant(live: LiveStatus, key: str, spec: Mapping[str, Any], files: Mapping[str, bytes],
            path: str) -> list[Finding]:
    team = str(spec.get("team") or key.partition(":")[2].split("/")[0])
    ns_name = str(spec.get("namespace") or key.rsplit("/", 1)[-1])
    envs: Mapping[str, Mapping[str, int]] = spec.get("environments") or {}
    found: list[Finding] = []
    ns = live.namespace(ns_name)
    if not ns.connected:
        raise _Unreachable(ns.reason or "not connected")
    env = ns.labels.get(ENV_LABEL) or (next(iter(envs)) if len(envs) == 1 else "")
    app = object_names.tenant_application(ns_name, env) if env else ""
    if not ns.present:
        found.append(Finding(entity=key, side=Side.cluster, subject=f"Namespace {ns_name}",
                             team=team, what=f"Namespace {ns_name} does not exist in the "
                             "cluster", fix=Fix.argocd_sync, fix_target=app))
    elif env not in envs:
        serves = f"environment {env!r}" if env else "no labelled environment"
        found.append(Finding(entity=key, side=Side.cluster, subject=f"ResourceQuota {ns_name}",
                             team=team, state=State.unknown, fix=Fix.none,
                             what=f"Namespace {ns_name} serves {serves}, which main does not "
                                  "place it in: its quota is not compared"))
    else:
        want = envs[env]
        have = _live_quota(ns)
        diffs = [f"{r}: git {want.get(k, 0)} / cluster {have.get(r, 'unbounded')}"
                 for r, k in _RESOURCES.items()
                 if (want.get(k) or r in have) and want.get(k) != have.get(r)]
        if diffs:
            found.append(Finding(
                entity=key, side=Side.cluster, subject=f"ResourceQuota {ns_name}", team=team,
                what=f"quota in the cluster differs from main ({env}): " + "; ".join(diffs),
                detail="\n".join(f"{q.name}: {q.hard}" for q in ns.quotas),
                fix=Fix.argocd_sync, fix_target=app))
        rb = live.role_bindings(ns_name)
        if not rb.connected:
            raise _Unreachable(rb.reason or "not connected")
        for name, (role, subjects) in sorted(expected_bindings(files, f"{path}/base").items()):
            actual = rb.bindings.get(name)
            if actual == (role, subjects):
                continue
            what = (f"RoleBinding {ns_name}/{name} is missing" if actual is None else
                    f"RoleBinding {ns_name}/{name} differs: git {role} {list(subjects)} / "
                    f"cluster {actual[0]} {list(actual[1])}")
            found.append(Finding(entity=key, side=Side.cluster, team=team, what=what,
                                 subject=f"RoleBinding {ns_name}/{name}", fix=Fix.argocd_sync,
                                 fix_target=app))
    for each in sorted(envs):
        found.extend(_app(live, object_names.tenant_application(ns_name, each), key, team))
    return found


def check(snapshot: Snapshot, *, live: LiveStatus) -> SideResult:
    """Every tenant and application on main against the connected cluster."""
    started = time.perf_counter()
    result = SideResult(side=Side.cluster)
    if not live.connected:
        result.status = live.reason or "not connected"
        return result
    try:
        for key in sorted(snapshot.units):
            parsed = snapshot.parsed(key)
            if parsed is None or parsed.kind not in ("namespace", "application"):
                continue
            result.checked += 1
            if parsed.kind == "namespace":
                result.findings.extend(_tenant(live, key, parsed.spec, snapshot.units[key],
                                               parsed.path))
            else:
                team, _, name = parsed.name.partition("/")
                # One Application per environment folder; the older single file has one.
                envs = sorted(parsed.spec.get("environments") or {}) \
                    if parsed.spec.get("layout") == "envs" else []
                for app in [object_names.team_application(team, name, e) for e in envs] or [
                        object_names.team_application(team, name)]:
                    result.findings.extend(_app(live, app, key, team))
    except _Unreachable as exc:
        result.status, result.findings = f"failed: {exc}", []
    result.seconds = time.perf_counter() - started
    return result
