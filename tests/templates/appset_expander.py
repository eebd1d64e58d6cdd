"""A small, faithful expander of the two ApplicationSet generators this repository uses.

It follows ArgoCD's documented semantics of the git generators with ``goTemplate: true``
(docs/operator-manual/applicationset/Generators-Git.md and GoTemplate.md; parameter building as
in applicationset/generators/git.go):

- directories: every directory of the repository (none starting with ``.``) that matches a
  ``path`` with Go's ``path.Match`` (``*`` never crosses ``/``) and no ``exclude: true`` path;
  parameters ``.path.path``, ``.path.basename``, ``.path.basenameNormalized`` and
  ``.path.segments`` (``strings.Split(path, "/")``);
- files: every file matching a ``path``; the file's YAML object at the top level plus
  ``.path.path`` (the file's directory), ``.path.basename`` (of that directory),
  ``.path.filename``, ``.path.segments`` (of the directory);
- every string of ``template`` rendered with Go's text/template, ``missingkey=error``: a missing
  map key is an error, as is ``index`` out of range; ``templatePatch`` rendered as one string,
  parsed as YAML and merged over the rendered template (maps merge, other values replace).

Only the template constructs these ApplicationSets use are supported (field chains, ``index``,
``toJson``); anything else raises, so a new construct fails the test instead of being guessed.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)


class TemplateError(ValueError):
    """What text/template with missingkey=error reports."""


def go_path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match`` for the patterns used here: ``*`` and ``?`` never match ``/``."""
    p_parts, n_parts = pattern.split("/"), name.split("/")
    return len(p_parts) == len(n_parts) and all(
        fnmatchcase(n, p) for p, n in zip(p_parts, n_parts, strict=True))


def _field(value: Any, chain: str) -> Any:
    for key in [k for k in chain.split(".") if k]:
        if not isinstance(value, dict) or key not in value:
            raise TemplateError(f"map has no entry for key {key!r} (missingkey=error)")
        value = value[key]
    return value


def _operand(token: str, params: dict[str, Any]) -> Any:
    if token.startswith("."):
        return _field(params, token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    raise TemplateError(f"unsupported operand {token!r}")


def _command(command: str, params: dict[str, Any], piped: Any = None,
             has_pipe: bool = False) -> Any:
    words = command.split()
    if not words:
        raise TemplateError("empty command")
    if words[0] == "index":
        args = [_operand(w, params) for w in words[1:]] + ([piped] if has_pipe else [])
        value = args[0]
        for i in args[1:]:
            if not isinstance(value, list) or not isinstance(i, int) or not 0 <= i < len(value):
                raise TemplateError(f"error calling index: index out of range: {i}")
            value = value[i]
        return value
    if words[0] == "toJson":
        arg = piped if has_pipe else _operand(words[1], params)
        return json.dumps(arg, sort_keys=True, separators=(",", ":"))
    if len(words) == 1 and not has_pipe:
        return _operand(words[0], params)
    raise TemplateError(f"unsupported command {command!r}")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise TemplateError("a map or slice printed as text (use toJson)")
    return str(value)


def render_string(template: str, params: dict[str, Any]) -> str:
    def action(match: re.Match[str]) -> str:
        stages = [s.strip() for s in match.group(1).split("|")]
        value = _command(stages[0], params)
        for stage in stages[1:]:
            value = _command(stage, params, value, has_pipe=True)
        return _text(value)

    return ACTION.sub(action, template)


def _render(node: Any, params: dict[str, Any]) -> Any:
    if isinstance(node, str):
        return render_string(node, params)
    if isinstance(node, dict):
        return {k: _render(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, params) for v in node]
    return node


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _directories(root: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_dir() and not any(part.startswith(".") for part in rel.split("/")):
            found.append(rel)
    return sorted(found)


def generator_params(root: Path, git: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if "directories" in git:
        include = [d["path"] for d in git["directories"] if not d.get("exclude")]
        exclude = [d["path"] for d in git["directories"] if d.get("exclude")]
        for rel in _directories(root):
            if any(go_path_match(p, rel) for p in include) and not any(
                    go_path_match(p, rel) for p in exclude):
                base = rel.rsplit("/", 1)[-1]
                params.append({"path": {"path": rel, "basename": base,
                                        "basenameNormalized": re.sub(r"[^-a-z0-9.]", "-", base),
                                        "segments": rel.split("/")}})
    for entry in git.get("files") or []:
        for file in sorted(root.glob(entry["path"])):
            rel = file.relative_to(root).as_posix()
            directory = rel.rsplit("/", 1)[0]
            obj = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            params.append({**obj, "path": {
                "path": directory, "basename": directory.rsplit("/", 1)[-1],
                "filename": file.name, "segments": directory.split("/")}})
    return params


def expand(root: Path, appset: dict[str, Any]) -> list[dict[str, Any]]:
    """The Applications ``appset`` generates over the repository checked out at ``root``."""
    spec = appset["spec"]
    assert spec.get("goTemplate") is True
    assert "missingkey=error" in spec.get("goTemplateOptions", [])
    apps = []
    for generator in spec["generators"]:
        for params in generator_params(root, generator["git"]):
            app = _render(spec["template"], params)
            if spec.get("templatePatch"):
                app = _merge(app, yaml.safe_load(render_string(spec["templatePatch"], params)))
            apps.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **app})
    return apps
