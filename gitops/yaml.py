"""The one YAML loader and dumper of the portal: YAML 1.2, safe, through ruamel.yaml.

Why YAML 1.2 (the README's architecture section says the same): the GitOps repository is
written by people and read by tools, and YAML 1.1's implicit types silently change meaning —
``on``/``no``/``yes`` become booleans, ``0755`` an octal 493, ``1e3`` a string. The 1.2 core
schema reads ``on``/``no`` as strings, ``0755`` as the decimal 755, ``1e3`` as 1000.0.
Timestamps are not part of the 1.2 core schema and JSON has none, so ``2026-01-01`` stays the
string ``"2026-01-01"`` — what Kubernetes' JSON-based decoding sees too.

Public functions:

- ``load(text) -> Any`` — one document (``None`` when empty); ``YamlError`` when it does not parse.
- ``load_all(text) -> list[Any]`` — every non-empty document of a multi-document file. The
  last ``PARSED_KEPT`` texts of up to ``PARSED_MAX_CHARS`` (``PARSED_BUDGET`` bytes in all)
  are kept parsed (pickled, so each caller gets its own copy): a change set's files are read
  by several checks (identity, manifests) and again by its pull request's checks, and parsing
  is the dearest part of them.
- ``load_mappings(text) -> list[dict]`` — the same, refusing any document that is not a mapping.
- ``dump(data, sort_keys=True) -> str`` / ``dump_all(docs, sort_keys=True) -> str`` (``---``
  before each document) — block-style YAML; any string another YAML reader
  (1.1 or 1.2) could take for something else (``"on"``, ``"0755"``, ``"1e3"``, ``"2026-01-01"``,
  ``"null"``…) is quoted, so Kubernetes, ArgoCD (go-yaml, 1.1-ish) and the portal read the same.
- ``round_trip() -> YAML`` — a comment- and layout-preserving editor for files people maintain.

``str`` and ``bytes`` (UTF-8) are accepted as input. Duplicate keys are refused (``YamlError``):
the YAML spec requires unique keys, and a silent "last one wins" hides mistakes.
"""

from __future__ import annotations

import io
import pickle
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.resolver import VersionedResolver

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# YAML 1.1 booleans go-yaml v2 (Kubernetes, ArgoCD) also accepts and ruamel's 1.1 resolver lacks.
_SHORT_BOOLS = re.compile(r"^(?:y|Y|n|N)$")


class YamlError(ValueError):
    """Text that is not valid YAML (or not the shape the caller asked for)."""


class _Constructor(SafeConstructor):
    """The safe constructor with timestamps kept as the strings they are written as."""


_Constructor.add_constructor(_TIMESTAMP, SafeConstructor.construct_yaml_str)

_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))


def _ambiguous(text: str) -> bool:
    """True when a YAML 1.1 or 1.2 reader would read the plain scalar ``text`` as a non-string."""
    if _SHORT_BOOLS.match(text):
        return True
    return any(str(r.resolve(ScalarNode, text, (True, False))) != _STR for r in _RESOLVERS)


class _Representer(SafeRepresenter):
    def represent_str(self, data: str) -> Any:
        style = "'" if "\n" not in data and _ambiguous(data) else None
        return self.represent_scalar(_STR, data, style=style)


_Representer.add_representer(str, _Representer.represent_str)

_local = threading.local()  # YAML instances are not thread-safe; one loader per thread


def _loader() -> YAML:
    yaml: YAML | None = getattr(_local, "loader", None)
    if yaml is None:
        yaml = YAML(typ="safe")  # libyaml-based parser from ruamel.yaml.clib when installed
        yaml.version = (1, 2)
        yaml.Constructor = _Constructor
        _local.loader = yaml
    return yaml


def _text(source: str | bytes) -> str:
    if isinstance(source, bytes):
        try:
            return source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(f"not UTF-8 text: {exc}") from exc
    return source


def load(source: str | bytes) -> Any:
    """The one document of ``source`` as plain data (dict, list, str, int, float, bool, None)."""
    try:
        return _loader().load(_text(source))
    except YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}") from exc


PARSED_KEPT = 512  # texts kept parsed per process (a few KB each) ...
PARSED_MAX_CHARS = 64 * 1024  # ... each at most this long ...
PARSED_BUDGET = 8 * 1024 * 1024  # ... and all, text and pickle, at most this many bytes
_parsed: OrderedDict[str, bytes] = OrderedDict()
_parsed_size = [0]
_parsed_lock = threading.Lock()


def load_all(source: str | bytes) -> list[Any]:
    """Every non-empty document of ``source`` as plain data (a fresh copy on every call)."""
    text = _text(source)
    with _parsed_lock:
        kept = _parsed.get(text)
        if kept is not None:
            _parsed.move_to_end(text)
    if kept is not None:
        docs: list[Any] = pickle.loads(kept)  # noqa: S301  (pickled by this process, below)
        return docs
    try:
        docs = [doc for doc in _loader().load_all(text) if doc is not None]
    except YAMLError as exc:
        raise YamlError(f"not valid YAML: {exc}") from exc
    if len(text) <= PARSED_MAX_CHARS:
        pickled = pickle.dumps(docs, protocol=pickle.HIGHEST_PROTOCOL)
        with _parsed_lock:
            if text not in _parsed:
                _parsed[text] = pickled
                _parsed_size[0] += len(text) + len(pickled)
            while len(_parsed) > PARSED_KEPT or _parsed_size[0] > PARSED_BUDGET:
                old, old_pickled = _parsed.popitem(last=False)
                _parsed_size[0] -= len(old) + len(old_pickled)
    return docs


def load_mappings(source: str | bytes) -> list[dict[str, Any]]:
    """Every non-empty document of ``source``; ``YamlError`` when one is not a mapping."""
    docs = load_all(source)
    for doc in docs:
        if not isinstance(doc, dict):
            raise YamlError(f"a YAML document is a {type(doc).__name__}, not a mapping")
    return docs


def _dumper(sort_keys: bool) -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _Representer
    yaml.sort_base_mapping_type_on_output = sort_keys  # type: ignore[assignment]
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    return yaml


def dump(data: Any, *, sort_keys: bool = True) -> str:
    """``data`` as block-style YAML 1.2 text (sorted keys unless told otherwise) with ambiguous
    strings quoted."""
    out = io.StringIO()
    _dumper(sort_keys).dump(data, out)
    return out.getvalue()


def dump_all(docs: Iterable[Any], *, sort_keys: bool = True) -> str:
    """Several documents, each starting with ``---`` (as a multi-document file)."""
    yaml = _dumper(sort_keys)
    yaml.explicit_start = True
    out = io.StringIO()
    yaml.dump_all(list(docs), out)
    return out.getvalue()


def round_trip() -> YAML:
    """A round-trip YAML editor: comments, key order and quoting of untouched parts are kept."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml
