"""An application's per-environment overlays: where they live and how one carries to another.

```
applications/<team>/<app>/envs/<env>/application.yaml   one ArgoCD Application per environment
applications/<team>/<app>/application.yaml              the older single-file layout (one env,
                                                        named by spec.destination.name)
```

The ApplicationSet ``appsets/applications.yaml`` generates ``app.<team>.<app>.<env>`` from each
overlay, on the cluster named after the folder (``gitops.object_names.team_application``).

``carry(source, target, …)`` is what a promotion writes: the target overlay with the source's
``spec.source`` (repository, chart or path, revision, Helm parameters and values — "the version
and values"), keeping the target's own destination namespace, sync policy and comments; a target
without an overlay yet starts as a copy of the source pointed at the target environment. The
edit is round-trip (``gitops.yaml.round_trip``): nothing else of the file changes.
"""

from __future__ import annotations

import io
import re
from typing import Any

from gitops import object_names
from gitops.yaml import round_trip

FILE = "application.yaml"
_OVERLAY = re.compile(r"^applications/([^/]+)/([^/]+)/envs/([^/]+)/application\.yaml$")


class OverlayError(ValueError):
    """An overlay that is not one ArgoCD Application document with a ``spec.source``."""


def unit_folder(team: str, app: str) -> str:
    return f"applications/{team}/{app}"


def overlay_path(team: str, app: str, env: str) -> str:
    """``applications/<team>/<app>/envs/<env>/application.yaml``."""
    return f"{unit_folder(team, app)}/envs/{env}/{FILE}"


def legacy_path(team: str, app: str) -> str:
    """The single file of the layout before per-environment folders."""
    return f"{unit_folder(team, app)}/{FILE}"


def parse_overlay_path(path: str) -> tuple[str, str, str] | None:
    """``(team, app, env)`` of an overlay path; None for any other path."""
    m = _OVERLAY.match(path)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def _load(content: bytes, what: str) -> Any:
    try:
        doc = round_trip().load(content.decode())
    except Exception as exc:  # ruamel raises several unrelated error types
        raise OverlayError(f"{what} does not parse: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "Application" \
            or not isinstance(doc.get("spec"), dict) \
            or not isinstance(doc["spec"].get("source"), dict):
        raise OverlayError(f"{what} is not one ArgoCD Application with spec.source")
    return doc


def _dump(doc: Any) -> bytes:
    out = io.StringIO()
    round_trip().dump(doc, out)
    return out.getvalue().encode()


def read(content: bytes, what: str = "the overlay") -> dict[str, Any]:
    """The Application document of an overlay (a plain mapping view); ``OverlayError``."""
    doc = _load(content, what)
    return dict(doc)


def carry(source: bytes, target: bytes | None, *, team: str, app: str, env: str) -> bytes:
    """The target overlay after promotion (see the module doc); ``OverlayError`` when either
    file is not an Application."""
    src = _load(source, "the source overlay")
    if target is not None:
        doc = _load(target, "the target overlay")
        doc["spec"]["source"] = src["spec"]["source"]
        return _dump(doc)
    doc = src
    meta = doc.get("metadata")
    if isinstance(meta, dict):
        meta["name"] = object_names.team_application(team, app, env)
        labels = meta.get("labels")
        if isinstance(labels, dict):
            labels["caas.io/environment"] = env
    destination = doc["spec"].get("destination")
    if isinstance(destination, dict):
        destination["name"] = env
    return _dump(doc)


def source_of(doc: dict[str, Any]) -> dict[str, Any]:
    """``spec.source`` of an Application document (empty when absent)."""
    spec = doc.get("spec")
    source = spec.get("source") if isinstance(spec, dict) else None
    return dict(source) if isinstance(source, dict) else {}


def images(doc: dict[str, Any]) -> list[str]:
    """The container images an Application names in its source: Helm parameters
    ``image`` / ``<x>.image`` (a full reference) or ``[<x>.]image.repository`` with
    ``[<x>.]image.tag`` (the common chart convention), and kustomize ``images`` entries
    (``name=newName:newTag`` or ``newName:newTag``). A repository without a tag yields the bare
    repository (untagged, which the image-tag policy refuses)."""
    source = source_of(doc)
    found: list[str] = []
    helm = source.get("helm")
    if isinstance(helm, dict):
        params = {str(p.get("name")): str(p.get("value", "")) for p in helm.get("parameters")
                  or [] if isinstance(p, dict)}
        for name, value in sorted(params.items()):
            if name == "image" or name.endswith(".image"):
                found.append(value)
            elif name == "image.repository" or name.endswith(".image.repository"):
                prefix = name.removesuffix("repository")
                tag = params.get(prefix + "tag", "")
                found.append(f"{value}:{tag}" if tag else value)
    kustomize = source.get("kustomize")
    if isinstance(kustomize, dict):
        for entry in kustomize.get("images") or []:
            text = str(entry)
            found.append(text.split("=", 1)[1] if "=" in text else text)
    return [f for f in found if f]
