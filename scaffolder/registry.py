"""The template registry: ``templates/*/template.yaml`` (Backstage v1beta3 Template entities).

A template's version is the git tree id of its folder, computed from the files themselves (the
same id ``git rev-parse HEAD:templates/<name>`` prints once committed), so a rendered unit's
``.caas-answers.yaml`` names exactly the template content it came from. Every version the
registry loads is also written to the versioned template store (``scaffolder.template_store``,
``<data_dir>/templates.git``), so an upgrade can render any version ever served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops import yaml
from gitops.names import is_dns_label
from portal.errors import CaasError, ConfigError, NotFound, ValidationFailed
from portal.settings import REPO_ROOT, Settings
from scaffolder.codeowners import owners_config
from scaffolder.template_store import TemplateStore
from scaffolder.template_subset import SubsetError, check_file, check_text

log = logging.getLogger(__name__)

_PARAM_REF = re.compile(r"\$\{\{\s*parameters\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    title: str
    description: str
    kind: str
    parameters: list[dict[str, Any]]
    target_path: str
    branch_name: str
    pr_title: str
    pr_description: str
    version: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    trusted: bool = True  # shipped with the portal: its hooks may run
    # The main fetch:template step's ``values``: cookiecutter variable -> ``${{ }}`` expression.
    fetch_values: Mapping[str, str] = field(default_factory=dict)

    @property
    def identity_fields(self) -> frozenset[str]:
        """The answers that name the unit: those ``targetPath`` is built from (a different
        value is a different unit, so they are fixed when a unit is changed)."""
        return frozenset(_PARAM_REF.findall(self.target_path))

    def fill(self, pattern: str, answers: Mapping[str, Any]) -> str:
        """Substitute ``${{ parameters.x }}`` with validated answers (plain text, no Jinja)."""
        def value(match: re.Match[str]) -> str:
            raw = answers.get(match.group(1), "")
            return raw if isinstance(raw, str) else json.dumps(raw)
        return _PARAM_REF.sub(value, pattern)


def tree_id(folder: Path) -> str:
    """The git tree id of ``folder`` (regular files, executable bit honoured, no symlinks)."""
    entries: list[tuple[str, bytes]] = []
    for child in folder.iterdir():
        if child.name in {".git", "__pycache__"} or child.is_symlink():
            continue
        if child.is_dir():
            entries.append((child.name + "/", b"40000 " + child.name.encode() + b"\0"
                            + bytes.fromhex(tree_id(child))))
        else:
            data = child.read_bytes()
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False)
            mode = b"100755" if child.stat().st_mode & 0o111 else b"100644"
            entries.append((child.name, mode + b" " + child.name.encode() + b"\0"
                            + blob.digest()))
    body = b"".join(entry for _name, entry in sorted(entries, key=lambda e: e[0].encode()))
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def _step_input(spec: Mapping[str, Any], action: str) -> Mapping[str, Any]:
    """The input of the first step running ``action`` (for each-less steps first)."""
    steps = [s for s in spec.get("steps") or [] if isinstance(s, Mapping)]
    for step in sorted(steps, key=lambda s: "each" in s):
        if step.get("action") == action:
            found = step.get("input") or {}
            return found if isinstance(found, Mapping) else {}
    return {}


def load_template(path: Path, *, trusted: bool) -> Template:
    manifest = path / "template.yaml"
    try:
        doc = yaml.load(manifest.read_text())
        defaults = json.loads((path / "cookiecutter.json").read_text())
    except (OSError, yaml.YamlError, json.JSONDecodeError) as exc:
        raise ConfigError(f"template {path.name}: cannot be read: {exc}",
                          field="templates_dir") from exc
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    publish = _step_input(spec, "publish:github:pull-request")
    target = str(publish.get("targetPath") or "")
    if not target:
        raise ConfigError(f"template {path.name}: the publish step has no targetPath",
                          field="templates_dir")
    params = spec.get("parameters") or []
    fetch = _step_input(spec, "fetch:template")
    values = fetch.get("values") or {}
    _check_subset(path, spec, fetch)
    return Template(
        name=str(meta.get("name") or path.name), path=path,
        title=str(meta.get("title") or path.name),
        description=" ".join(str(meta.get("description") or "").split()),
        kind=str(spec.get("type") or path.name),
        parameters=[dict(params)] if isinstance(params, Mapping) else list(params),
        target_path=target,
        branch_name=str(publish.get("branchName") or f"caas/{path.name}-" + "${{ parameters."
                        + "name }}"),
        pr_title=str(publish.get("title") or meta.get("title") or path.name),
        pr_description=str(publish.get("description") or ""),
        version=tree_id(path), defaults=defaults, trusted=trusted,
        fetch_values={str(k): str(v) for k, v in values.items()}
        if isinstance(values, Mapping) else {},
    )


def project_folder(path: Path) -> Path:
    """The template's single ``{{cookiecutter.<x>}}`` folder (what cookiecutter renders)."""
    found = sorted(p for p in path.iterdir()
                   if p.is_dir() and p.name.startswith("{{") and "cookiecutter" in p.name)
    if len(found) != 1:
        raise ConfigError(f"template {path.name}: expected one {{{{cookiecutter.<x>}}}} folder, "
                          f"found {len(found)}", field="templates_dir")
    return found[0]


def _check_subset(path: Path, spec: Mapping[str, Any], fetch: Mapping[str, Any]) -> None:
    """Refuse a template written outside the subset both renderers agree on
    (templates/README.md): every file of the project folder, every fetch:template step input,
    and the main step must fetch exactly the project folder (Backstage places its content at
    the workspace root, as the portal places it at ``targetPath``)."""
    project = project_folder(path)
    if not fetch.get("cookiecutterCompat"):
        raise ConfigError(f"template {path.name}: template.yaml: the fetch:template step needs "
                          "cookiecutterCompat: true", field="templates_dir")
    if fetch.get("url") != f"./{project.name}":
        raise ConfigError(f"template {path.name}: template.yaml: the fetch:template step must "
                          f"fetch ./{project.name} (its content lands at the repository path)",
                          field="templates_dir")
    for item in sorted(project.rglob("*")):
        if item.is_file() and not item.is_symlink():
            try:
                check_file(item, relative=item.relative_to(path).as_posix())
            except SubsetError as exc:
                raise ConfigError(f"template {path.name}: {exc.what} is outside the "
                                  "Jinja2/Nunjucks subset (templates/README.md)",
                                  field="templates_dir") from None
    for step in spec.get("steps") or []:
        if not isinstance(step, Mapping) or step.get("action") != "fetch:template":
            continue
        values = (step.get("input") or {}).get("values") or {}
        for key, expression in values.items() if isinstance(values, Mapping) else ():
            try:
                check_text(str(expression), step=True)
            except SubsetError as exc:
                raise ConfigError(f"template {path.name}: template.yaml step "
                                  f"{step.get('id')!s} value {key}: {exc.what} is outside the "
                                  "Jinja2/Nunjucks subset (templates/README.md)",
                                  field="templates_dir") from None


class Registry:
    """Templates found under ``settings.templates_dir``; re-read when the folder changes."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.templates_dir.resolve()
        self.settings = settings  # promotion gates read the cluster and soak settings
        # Hooks are code: only the templates shipped with the portal may run theirs.
        self.trusted = self.root == (REPO_ROOT / "templates").resolve()
        # Who CODEOWNERS names (GitHub organisation, platform-admin handles): team and
        # environment change sets carry the regenerated file.
        self.code_owners = owners_config(settings)
        # Parameter rules that are the platform's to set, not the template's.
        self.quota_bounds = settings.quota_bounds
        self.reserved_namespaces = settings.reserved_namespaces
        # Groups the settings name: no team file may target them (scaffolder.checks.identity).
        self.platform_groups = (settings.oidc_admin_group,)
        self._cache: dict[str, tuple[float, Template]] = {}
        # Every version served, kept for the base of upgrades (scaffolder.upgrade).
        self.store = TemplateStore(settings.data_dir / "templates.git")

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if (p / "template.yaml").is_file() and is_dns_label(p.name))

    def get(self, name: str, *, field_name: str = "template") -> Template:
        if not isinstance(name, str) or not is_dns_label(name) or name not in self.names():
            raise NotFound(f"{field_name}: no template named {str(name)[:63]!r}",
                           field=field_name, rule="known-template")
        path = self.root / name
        stamp = max((p.stat().st_mtime for p in path.rglob("*")), default=0.0)
        cached = self._cache.get(name)
        if cached and cached[0] == stamp:
            return cached[1]
        template = load_template(path, trusted=self.trusted)
        try:
            self.store.remember(template.name, path, template.version)
        except (CaasError, OSError) as exc:  # serving goes on; upgrades from it will say so
            log.warning("template %s %s not stored for upgrades: %s", name, template.version,
                        exc)
        self._cache[name] = (stamp, template)
        return template

    def all(self) -> list[Template]:
        return [self.get(n) for n in self.names()]


def unknown_template(name: str) -> ValidationFailed:
    return ValidationFailed(f"template: unknown template {name!r}", field="template",
                            rule="known-template")
