"""Gatekeeper policies evaluated with regopy, before a change is merged.

Public API:

- ``PolicySet.from_directory(path)`` — every ConstraintTemplate and Constraint in the YAML files
  under ``path`` (e.g. ``platform/policies/``); ``PolicySet.from_documents(docs)`` does the same
  for documents already loaded.
- ``PolicySet.evaluate(obj) -> list[Violation]`` — what the Constraints that match ``obj``
  (``spec.match.kinds``, ``namespaces``, ``excludedNamespaces``, ``scope``, ``labelSelector``
  ``matchLabels``) report about it, as Gatekeeper would at admission: each template's Rego gets
  ``input.review.object`` (plus ``kind``, ``name``, ``namespace``, ``operation``) and
  ``input.parameters`` from the Constraint, and its ``violation`` set is read.
- ``PolicySet.constraints`` / ``PolicySet.kinds`` — what was loaded.
- ``PolicyError`` — a template that does not compile, a Constraint without its template, a
  template without a ``violation`` rule, or a Constraint whose ``spec.parameters`` do not satisfy
  its template's ``spec.crd.spec.validation.openAPIV3Schema`` (a missing ``required`` parameter is
  named with the Constraint: Gatekeeper's API server would refuse that Constraint the same way,
  https://open-policy-agent.github.io/gatekeeper/website/docs/constrainttemplates/).

Templates are written in Rego v1 (``contains``/``if``), either under ``targets[].code`` with
``engine: Rego`` and ``source.version: v1`` (Gatekeeper's form for v1) or in ``targets[].rego``;
``libs`` are loaded alongside. One regopy interpreter is kept per template (compiling is the
expensive part) and guarded by a lock, so a PolicySet may be shared between threads.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regopy
from jsonschema import Draft7Validator
from jsonschema.exceptions import SchemaError

from portal.errors import CaasError
from scaffolder.checks.manifests import load_documents

CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
TEMPLATE_API = "templates.gatekeeper.sh/"
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)


class PolicyError(CaasError):
    """The policies themselves are broken; a change set cannot be judged with them."""

    status = 500
    code = "policy_error"


@dataclass(frozen=True)
class Violation:
    """One ``violation`` of one Constraint for one object."""

    constraint_kind: str
    constraint_name: str
    object_ref: str
    message: str
    enforcement_action: str = "deny"

    def __str__(self) -> str:
        return f"[{self.constraint_kind}/{self.constraint_name}] {self.object_ref}: {self.message}"


@dataclass(frozen=True)
class Constraint:
    kind: str
    name: str
    match: Mapping[str, Any]
    parameters: Mapping[str, Any]
    enforcement_action: str = "deny"


@dataclass
class _Template:
    kind: str
    package: str
    modules: Sequence[str]
    schema: Mapping[str, Any] = field(default_factory=dict)
    interpreter: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def compile(self) -> None:
        interpreter = regopy.Interpreter()
        try:
            for index, module in enumerate(self.modules):
                interpreter.add_module(f"{self.kind}-{index}.rego", module)
        except Exception as exc:  # regopy raises its own error types from C++
            raise PolicyError(f"ConstraintTemplate {self.kind}: Rego does not load: {exc}") from exc
        self.interpreter = interpreter
        # Compile eagerly so a broken template fails when loaded, not on the first object.
        self.query({"review": {"object": {}}, "parameters": {}})

    def query(self, document: Mapping[str, Any]) -> list[Any]:
        with self.lock:
            self.interpreter.set_input_term(json.dumps(document))
            try:
                output = self.interpreter.query(f"violations := data.{self.package}.violation")
            except ValueError as exc:  # regopy could not encode the result as JSON
                raise PolicyError(
                    f"ConstraintTemplate {self.kind}: result is not valid JSON: {exc}"
                ) from exc
            text = str(output)
        if not output.ok() or text == "undefined" or "bindings" not in text:
            raise PolicyError(
                f"ConstraintTemplate {self.kind}: data.{self.package}.violation is undefined "
                f"or failed: {text[:300]}"
            )
        result = json.loads(text)["bindings"]["violations"]
        return list(result) if isinstance(result, list) else []


class PolicySet:
    """Compiled ConstraintTemplates and the Constraints that use them."""

    def __init__(self, templates: Mapping[str, _Template], constraints: Sequence[Constraint]):
        for constraint in constraints:
            if constraint.kind not in templates:
                raise PolicyError(
                    f"Constraint {constraint.kind}/{constraint.name} has no ConstraintTemplate"
                )
            _check_parameters(constraint, templates[constraint.kind])
        self._templates = dict(templates)
        self.constraints: tuple[Constraint, ...] = tuple(constraints)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._templates)

    @classmethod
    def from_directory(cls, path: str | Path) -> PolicySet:
        documents: list[dict[str, Any]] = []
        for file in sorted(Path(path).rglob("*.y*ml")):
            try:
                documents.extend(load_documents(file.read_text(encoding="utf-8")))
            except ValueError as exc:
                raise PolicyError(f"{file}: {exc}") from exc
        return cls.from_documents(documents)

    @classmethod
    def from_documents(cls, documents: Iterable[Mapping[str, Any]]) -> PolicySet:
        templates: dict[str, _Template] = {}
        constraints: list[Constraint] = []
        for doc in documents:
            api_version = str(doc.get("apiVersion") or "")
            if api_version.startswith(TEMPLATE_API) and doc.get("kind") == "ConstraintTemplate":
                template = _parse_template(doc)
                template.compile()
                templates[template.kind] = template
            elif api_version.startswith(CONSTRAINT_GROUP + "/"):
                spec = doc.get("spec") or {}
                constraints.append(
                    Constraint(
                        kind=str(doc["kind"]),
                        name=str((doc.get("metadata") or {}).get("name") or "?"),
                        match=spec.get("match") or {},
                        parameters=spec.get("parameters") or {},
                        enforcement_action=str(spec.get("enforcementAction") or "deny"),
                    )
                )
        return cls(templates, constraints)

    def evaluate(self, obj: Mapping[str, Any]) -> list[Violation]:
        """Every violation the matching Constraints report for ``obj``."""
        violations: list[Violation] = []
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        kind = str(obj.get("kind") or "")
        metadata = obj.get("metadata") or {}
        name = str(metadata.get("name") or "")
        namespace = str(metadata.get("namespace") or "")
        ref = f"{kind}/{namespace + '/' if namespace else ''}{name}"
        review = {
            "object": obj,
            "kind": {"group": group, "version": version, "kind": kind},
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
        }
        for constraint in self.constraints:
            if not matches(constraint.match, obj):
                continue
            template = self._templates[constraint.kind]
            results = template.query({"review": review, "parameters": constraint.parameters})
            for result in results:
                message = result.get("msg") if isinstance(result, dict) else None
                violations.append(
                    Violation(
                        constraint_kind=constraint.kind,
                        constraint_name=constraint.name,
                        object_ref=ref,
                        message=str(message if message is not None else result),
                        enforcement_action=constraint.enforcement_action,
                    )
                )
        return violations


def matches(match: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Gatekeeper's ``spec.match`` for one object (without a live namespaceSelector)."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    kind = str(obj.get("kind") or "")
    metadata = obj.get("metadata") or {}
    kinds = match.get("kinds")
    if kinds and not any(
        _listed(group, entry.get("apiGroups") or [""]) and _listed(kind, entry.get("kinds") or [])
        for entry in kinds
    ):
        return False
    namespaced = bool(metadata.get("namespace"))
    scope = match.get("scope", "*")
    if (scope == "Cluster" and namespaced) or (scope == "Namespaced" and not namespaced):
        return False
    # Gatekeeper matches a Namespace object by its own name.
    own = metadata.get("name") if kind == "Namespace" else metadata.get("namespace")
    namespace = str(own or "")
    if namespace:
        included = match.get("namespaces")
        if included and not any(fnmatch.fnmatchcase(namespace, p) for p in included):
            return False
        excluded = match.get("excludedNamespaces") or []
        if any(fnmatch.fnmatchcase(namespace, p) for p in excluded):
            return False
    selector = (match.get("labelSelector") or {}).get("matchLabels") or {}
    labels = metadata.get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def _listed(value: str, options: Sequence[str]) -> bool:
    return "*" in options or value in options


def _check_parameters(constraint: Constraint, template: _Template) -> None:
    """Refuse a Constraint whose parameters miss what its template declares as needed.

    A template's Rego that reads ``input.parameters.<p>`` over an absent ``p`` sees an empty set
    and admits every object, silently; declaring ``required`` in the template's schema and
    checking it here turns that into an error that names the Constraint and the parameter.
    """
    if not template.schema:
        return
    try:
        validator = Draft7Validator(dict(template.schema))
        errors = sorted(validator.iter_errors(dict(constraint.parameters)), key=str)
    except SchemaError as exc:
        raise PolicyError(f"ConstraintTemplate {template.kind}: openAPIV3Schema is not a "
                          f"valid schema: {exc.message}") from exc
    for error in errors:
        where = "parameters" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]"
                                       for p in error.absolute_path)
        if error.validator == "required":
            missing = [p for p in error.validator_value
                       if isinstance(error.instance, Mapping) and p not in error.instance]
            raise PolicyError(
                f"Constraint {constraint.kind}/{constraint.name} lacks the required parameter "
                f"{where}.{missing[0] if missing else '?'} (declared by its ConstraintTemplate)")
        raise PolicyError(f"Constraint {constraint.kind}/{constraint.name}: {where} "
                          f"{error.message}")


def _parse_template(doc: Mapping[str, Any]) -> _Template:
    spec = doc.get("spec") or {}
    kind = str(((spec.get("crd") or {}).get("spec") or {}).get("names", {}).get("kind") or "")
    if not kind:
        raise PolicyError("ConstraintTemplate without spec.crd.spec.names.kind")
    modules: list[str] = []
    for target in spec.get("targets") or []:
        rego = target.get("rego")
        for code in target.get("code") or []:
            if str(code.get("engine")).lower() == "rego":
                source = code.get("source") or {}
                rego = source.get("rego") or rego
        if rego:
            modules.append(str(rego))
            modules.extend(str(lib) for lib in target.get("libs") or [])
    if not modules:
        raise PolicyError(f"ConstraintTemplate {kind} has no Rego")
    found = _PACKAGE.search(modules[0])
    if found is None:
        raise PolicyError(f"ConstraintTemplate {kind}: Rego has no package")
    crd_spec = (spec.get("crd") or {}).get("spec") or {}
    schema = (crd_spec.get("validation") or {}).get("openAPIV3Schema") or {}
    if not isinstance(schema, Mapping):
        raise PolicyError(f"ConstraintTemplate {kind}: openAPIV3Schema is not a mapping")
    return _Template(kind=kind, package=found.group(1), modules=modules, schema=schema)
