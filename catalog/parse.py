"""Turn one entity's files (from the GitOps repository) into a ``Parsed`` record.

Pure functions: no database, no git. Anything wrong with a file becomes a problem string on
the entity (``"<path>: <reason>"``) and parsing carries on with what it could read, so a bad
file flags its entity and never stops the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml_rs

from gitops import layout, quantity, quota
from gitops.environment import DEFAULT_TIER, read_manifest
from portal.groups import GroupRuleError, check_team_file


@dataclass
class Parsed:
    key: str
    kind: str
    name: str
    owner: str = ""
    title: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    relations: list[tuple[str, str]] = field(default_factory=list)  # (type, target key)
    problems: list[str] = field(default_factory=list)
    path: str = ""
    catalog_name: str = ""  # metadata.name of its catalog-info.yaml, when it has one


def load_docs(path: str, raw: bytes, problems: list[str]) -> list[dict[str, Any]]:
    """Every mapping document in ``raw``; a YAML error becomes a problem, not an exception.

    yaml-rs (Rust) parses ~15x faster than PyYAML's C loader, which is what keeps a full reindex
    of tens of thousands of files within seconds. Dates stay strings (they go into JSON).
    """
    try:
        loaded = yaml_rs.loads(raw.decode("utf-8"), parse_datetime=False)
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text ({exc.reason})")
        return []
    except (yaml_rs.YAMLDecodeError, ValueError) as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        where = re.search(r"line (\d+)", lines[0]) if lines else None
        reason = lines[-1].strip() if len(lines) > 1 else (lines[0] if lines else "")
        problems.append(f"{path}: invalid YAML"
                        + (f" (line {where.group(1)})" if where else "") + f": {reason}")
        return []
    docs = loaded if isinstance(loaded, list) else [loaded]
    return [doc for doc in docs if isinstance(doc, dict)]


def _map(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return "" if value is None else str(value)


def _owner_ref(value: object) -> str:
    """``group:default/payments`` or ``group:payments`` or ``payments`` → ``payments``."""
    text = _str(value)
    return text.split(":", 1)[-1].split("/")[-1]


def _catalog_info(path: str, files: Mapping[str, bytes], parsed: Parsed) -> dict[str, Any]:
    raw = files.get(path)
    if raw is None:
        return {}
    docs = load_docs(path, raw, parsed.problems)
    doc = docs[0] if docs else {}
    meta = _map(doc.get("metadata"))
    parsed.catalog_name = _str(meta.get("name"))
    parsed.title = _str(meta.get("title")) or parsed.title
    parsed.description = _str(meta.get("description")) or parsed.description
    tags = meta.get("tags")
    if isinstance(tags, list):
        parsed.tags = [str(t) for t in tags]
    return doc


def parse_entity(key: str, files: Mapping[str, bytes]) -> Parsed | None:
    """None when the entity has no files at all (it was deleted)."""
    if not files:
        return None
    kind, _, name = key.partition(":")
    parsed = Parsed(key=key, kind=kind, name=name, path=layout.unit_dir(key))
    {"team": _team, "namespace": _namespace, "environment": _environment,
     "application": _application}[kind](parsed, files)
    if parsed.catalog_name:
        parsed.spec["catalog_name"] = parsed.catalog_name
    return parsed


def _team(parsed: Parsed, files: Mapping[str, bytes]) -> None:
    base = parsed.path
    parsed.owner = parsed.name
    doc = _catalog_info(f"{base}/catalog-info.yaml", files, parsed)
    team_path = f"{base}/team.yaml"
    if team_path not in files:
        parsed.problems.append(f"{team_path}: missing")
        return
    docs = load_docs(team_path, files[team_path], parsed.problems)
    team = docs[0] if docs else {}
    group = ""
    try:  # the team's groups are derived from its name; a file naming others is a problem
        group = check_team_file(parsed.name, team, where=team_path).developers
    except GroupRuleError as exc:
        parsed.problems.append(f"{exc.field}: {exc.message} ({exc.rule})")
    if team.get("kind") == "Team":  # caas.io/v1 Team: the fields sit under spec
        team = _map(team.get("spec"))
    profile = _map(_map(doc.get("spec")).get("profile"))
    display = team.get("displayName") or team.get("display_name") or profile.get("displayName")
    parsed.title = _str(display) or parsed.title or parsed.name
    parsed.description = _str(team.get("description")) or parsed.description
    owners = _names(team.get("owners"))
    members = _names(team.get("members"))
    if docs and not owners:
        parsed.problems.append(f"{team_path}: owners is missing or empty (a team needs an owner)")
    parsed.spec = {
        "owners": owners, "members": sorted(set(members) | set(owners)),
        "keycloak_group": group,
        "cost_center": _str(team.get("costCenter") or team.get("cost_center") or ""),
        "email": _str(team.get("email") or ""),
    }


def _names(value: object) -> list[str]:
    """Owners/members as plain user names (a list of strings or of ``{name|username: …}``)."""
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("username") or item.get("name") or item.get("user")
        if item:
            names.append(_owner_ref(item))
    return names


def _quota(docs: Iterable[dict[str, Any]], where: str, problems: list[str]) -> dict[str, int]:
    """Namespace-wide hard limits of the ResourceQuota documents in ``docs`` (``gitops.quota``)."""
    return quota.limits(docs, problems=problems, where=where)


def _docs_with_patches(path: str, raw: bytes, problems: list[str]) -> list[dict[str, Any]]:
    """A file's documents plus the inline ``patches[].patch`` documents of a kustomization."""
    docs = load_docs(path, raw, problems)
    extra: list[dict[str, Any]] = []
    for doc in docs:
        for key in ("patches", "patchesStrategicMerge"):
            items = doc.get(key)
            if not isinstance(items, list):
                continue
            for item in items:
                text = item.get("patch") if isinstance(item, dict) else item
                if isinstance(text, str) and "\n" in text:
                    extra.extend(load_docs(f"{path} ({key})", text.encode(), problems))
    return docs + extra


def _namespace(parsed: Parsed, files: Mapping[str, bytes]) -> None:
    team, _, ns = parsed.name.partition("/")
    base = f"{parsed.path}/base"
    doc = _catalog_info(f"{base}/catalog-info.yaml", files, parsed)
    spec = _map(doc.get("spec"))
    if doc and not spec.get("owner"):
        parsed.problems.append(f"{base}/catalog-info.yaml: spec.owner is missing")
    owner = _owner_ref(spec.get("owner")) if spec.get("owner") else team
    if owner != team:
        parsed.problems.append(f"{base}/catalog-info.yaml: spec.owner {owner!r} differs from "
                               f"the team folder {team!r}")
    parsed.owner = owner
    parsed.title = parsed.title or ns
    base_docs: list[dict[str, Any]] = []
    overlays: dict[str, list[dict[str, Any]]] = {}
    k8s_name = ""
    env_prefix = f"{parsed.path}/envs/"
    for path in sorted(files):
        raw = files[path]
        if not path.endswith((".yaml", ".yml")) or path.endswith("catalog-info.yaml"):
            continue
        if path.startswith(env_prefix):
            env = path[len(env_prefix):].split("/", 1)[0]
            bucket = overlays.setdefault(env, [])
            if b"ResourceQuota" in raw:  # only quota documents matter per environment
                bucket.extend(_docs_with_patches(path, raw, parsed.problems))
        elif path.startswith(base + "/") and (b"ResourceQuota" in raw or b"Namespace" in raw):
            for d in load_docs(path, raw, parsed.problems):
                if d.get("kind") == "Namespace" and isinstance(d.get("metadata"), dict):
                    k8s_name = _str(d["metadata"].get("name"))
                base_docs.append(d)
    base_quota = _quota(base_docs, base, parsed.problems)
    environments: dict[str, dict[str, int]] = {}
    for env, docs in sorted(overlays.items()):
        quota = dict(base_quota)
        quota.update(_quota(docs, f"{env_prefix}{env}", parsed.problems))
        environments[env] = {"cpu_milli": quota.get("cpu", 0),
                             "memory_bytes": quota.get("memory", 0),
                             "storage_bytes": quota.get("storage", 0)}
        parsed.relations.append(("runsIn", f"environment:{env}"))
    parsed.relations.append(("ownedBy", f"team:{owner}"))
    parsed.spec = {"namespace": k8s_name or ns, "team": team, "environments": environments,
                   "base_quota": {"cpu_milli": base_quota.get("cpu", 0),
                                  "memory_bytes": base_quota.get("memory", 0),
                                  "storage_bytes": base_quota.get("storage", 0)},
                   "lifecycle": _str(spec.get("lifecycle") or "")}


def _environment(parsed: Parsed, files: Mapping[str, bytes]) -> None:
    path = f"{parsed.path}/infra.yaml"
    parsed.title = parsed.name
    if path not in files:
        parsed.problems.append(f"{path}: missing")
        return
    docs = load_docs(path, files[path], parsed.problems)
    infra = docs[0] if docs else {}
    manifest = read_manifest(infra)
    if docs and not manifest.tier_declared:
        parsed.problems.append(f"{path}: tier is missing (read as {DEFAULT_TIER})")
    capacity: dict[str, int] = {}
    raw_capacity = manifest.capacity
    if raw_capacity:
        for name in ("cpu", "memory", "storage"):
            if name in raw_capacity:
                try:
                    capacity[name] = (quantity.cpu_milli(raw_capacity[name]) if name == "cpu"
                                      else quantity.to_bytes(raw_capacity[name]))
                except quantity.QuantityError as exc:
                    parsed.problems.append(f"{path}: capacity.{name}: {exc}")
    elif docs:
        parsed.problems.append(f"{path}: capacity is missing (cpu, memory, storage)")
    parsed.owner = _owner_ref(infra.get("owner") or "")
    parsed.description = _str(infra.get("description") or "")
    parsed.spec = {
        "tier": manifest.tier, "provider": _str(infra.get("provider") or ""),
        "region": _str(infra.get("region") or ""),
        "installed": bool(infra.get("installed", True)),
        "capacity": {"cpu_milli": capacity.get("cpu", 0),
                     "memory_bytes": capacity.get("memory", 0),
                     "storage_bytes": capacity.get("storage", 0)},
    }


def _overlay(path: str, app_spec: Mapping[str, Any]) -> dict[str, Any]:
    """One environment's deployment as the Application file states it: source (repository,
    chart or path, revision), the Helm parameters, and the sync policy."""
    source = _map(app_spec.get("source"))
    sync = _map(app_spec.get("syncPolicy"))
    automated = _map(sync.get("automated")) if "automated" in sync else None
    helm = _map(source.get("helm"))
    parameters = {_str(p.get("name")): _str(p.get("value"))
                  for p in helm.get("parameters") or [] if isinstance(p, dict)}
    return {"file": path, "repo_url": _str(source.get("repoURL")),
            "chart": _str(source.get("chart") or ""), "path": _str(source.get("path") or ""),
            "revision": _str(source.get("targetRevision") or ""),
            "namespace": _str(_map(app_spec.get("destination")).get("namespace")),
            "parameters": parameters,
            "sync": "automated" if automated is not None else "manual",
            "prune": bool(automated and automated.get("prune")),
            "self_heal": bool(automated and automated.get("selfHeal"))}


def _application(parsed: Parsed, files: Mapping[str, bytes]) -> None:
    """An ArgoCD Application per environment (``envs/<env>/application.yaml``; a unit of the
    older layout has one ``application.yaml`` whose destination names the environment), each
    deploying into the tenant's namespace, plus, optionally, a Backstage Component. ``spec``
    keeps ``environment`` (the first environment, by name) for the older readers and lists
    every environment's overlay under ``environments``."""
    team, _, app = parsed.name.partition("/")
    doc = _catalog_info(f"{parsed.path}/catalog-info.yaml", files, parsed)
    spec = _map(doc.get("spec"))
    if doc and not spec.get("owner"):
        parsed.problems.append(f"{parsed.path}/catalog-info.yaml: spec.owner is missing")
    owner = _owner_ref(spec.get("owner")) if spec.get("owner") else ""
    overlays: dict[str, dict[str, Any]] = {}
    found = False
    folder = re.compile(re.escape(parsed.path) + r"/envs/([^/]+)/")
    for path in sorted(files):
        if not path.endswith((".yaml", ".yml")) or b"Application" not in files[path]:
            continue
        for d in load_docs(path, files[path], parsed.problems):
            if d.get("kind") != "Application":
                continue
            found = True
            meta = _map(d.get("metadata"))
            app_spec = _map(d.get("spec"))
            overlay = _overlay(path, app_spec)
            # The folder names the environment (the ApplicationSet targets its cluster); the
            # older single file names it in spec.destination.name.
            match = folder.match(path)
            env = match.group(1) if match else _str(_map(app_spec.get("destination")).get("name"))
            overlays[env] = overlay
            owner = owner or _str(_map(meta.get("labels")).get("team"))
            parsed.description = parsed.description or _str(
                _map(meta.get("annotations")).get("caas.io/description"))
    if not found:
        parsed.problems.append(f"{parsed.path}: no ArgoCD Application manifest")
    for _env, overlay in sorted(overlays.items()):
        if not overlay["namespace"]:
            parsed.problems.append(f"{overlay['file']}: the Application has no "
                                   "spec.destination.namespace")
    first = overlays[min(overlays)] if overlays else {}
    destination = str(first.get("namespace") or "")
    parsed.owner = owner or team
    parsed.title = parsed.title or app
    for namespace in sorted({str(o["namespace"]) for o in overlays.values() if o["namespace"]}):
        parsed.relations.append(("runsIn", f"namespace:{team}/{namespace}"))
    for env in sorted(e for e in overlays if e):
        parsed.relations.append(("deployedTo", f"environment:{env}"))
    parsed.relations.append(("ownedBy", f"team:{parsed.owner}"))
    parsed.spec = {"team": team, "tenant": destination,
                   "environment": min(overlays) if overlays else "",
                   "environments": dict(sorted(overlays.items())),
                   "layout": "envs" if any(folder.match(str(o["file"])) for o in overlays.values())
                   else "single",
                   "repo_url": str(first.get("repo_url") or ""),
                   "path": str(first.get("path") or first.get("chart") or ""),
                   "type": _str(spec.get("type") or "service"),
                   "lifecycle": _str(spec.get("lifecycle") or "production"),
                   "system": _str(spec.get("system") or "")}
