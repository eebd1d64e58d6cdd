"""One YAML reading everywhere: YAML 1.2 (``on``/``no`` stay strings, ``0755`` is 755, ``1e3`` is
1000.0) and dates kept as the strings they are written as — by every reader the portal uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from unittest.mock import patch

import pytest

from catalog.parse import load_docs
from gitops import environment, yaml
from gitops.environment import read_manifest
from scaffolder.changeset import load_yaml
from scaffolder.checks.manifests import load_documents
from scaffolder.render import read_answers

TEXT = "a: on\nb: no\nc: 0755\nd: 1e3\ne: 2026-01-01\n"
PINNED = {"a": "on", "b": "no", "c": 755, "d": 1000.0, "e": "2026-01-01"}


def _catalog(text: str) -> Any:
    problems: list[str] = []
    (doc,) = load_docs("x.yaml", text.encode(), problems)
    assert problems == []
    return doc


READERS: dict[str, Callable[[str], Any]] = {
    "gitops.yaml.load": yaml.load,
    "gitops.yaml.load (bytes)": lambda text: yaml.load(text.encode()),
    "gitops.yaml.load_all": lambda text: yaml.load_all(text)[0],
    "gitops.yaml.load_mappings": lambda text: yaml.load_mappings(text)[0],
    "scaffolder manifests.load_documents": lambda text: load_documents(text)[0],
    "scaffolder render.read_answers": lambda text: read_answers(
        ("answers:\n" + "".join(f"  {line}\n" for line in text.splitlines())).encode()),
    "catalog parse.load_docs (yaml_rs)": _catalog,
    "gitops.environment.read_manifest": lambda text: dict(read_manifest(text.encode()).raw),
    "gitops.environment.load_infra_text (reads before validating)": lambda text: (
        _infra_data(text)),
    "scaffolder changeset.load_yaml": lambda text: load_yaml(text.encode()),
}


def _infra_data(text: str) -> Any:
    seen: list[Any] = []
    with patch.object(environment, "parse_infra", lambda data, env=None: seen.append(data)):
        environment.load_infra_text(text, env="dev")
    return seen[0]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_reader_reads_the_same(reader: str) -> None:
    doc = READERS[reader](TEXT)
    assert doc == PINNED
    assert {k: type(v) for k, v in doc.items()} == {k: type(v) for k, v in PINNED.items()}


def test_the_dumper_quotes_what_any_reader_could_misread() -> None:
    data = {"a": "on", "b": "no", "c": "0755", "d": "1e3", "e": "2026-01-01", "f": "y",
            "g": "null", "h": "plain", "i": 3, "j": True, "k": "multi\nline"}
    text = yaml.dump(data)
    assert yaml.load(text) == data
    for word in ("on", "no", "0755", "1e3", "2026-01-01", "y", "null"):
        assert f"'{word}'" in text
    assert "h: plain\n" in text and "i: 3\n" in text and "j: true\n" in text
    assert list(yaml.load(text)) == sorted(data)


def test_safe_and_strict() -> None:
    with pytest.raises(yaml.YamlError):
        yaml.load("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(yaml.YamlError):
        yaml.load("a: 1\na: 2\n")  # duplicate keys are refused, never "last one wins"
    with pytest.raises(yaml.YamlError):
        yaml.load_mappings("- 1\n")
    with pytest.raises(yaml.YamlError):
        yaml.load(b"\xff")
    assert yaml.load_all("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    assert yaml.load("") is None


def test_multi_document_dump_keeps_order_when_asked() -> None:
    docs = [{"kind": "Group", "apiVersion": "backstage.io/v1alpha1", "metadata": {"name": "on"}},
            {"b": 1, "a": 2}]
    text = yaml.dump_all(docs, sort_keys=False)
    assert text.startswith("---\nkind: Group\napiVersion:") and "\n---\nb: 1\na: 2\n" in text
    assert yaml.load_all(text) == docs


def test_a_text_parsed_again_gives_equal_independent_documents() -> None:
    text = f"a: [1, 2]\nb: {{c: on}}\n---\nd: 2026-01-01\n# {id(object())}\n"
    first = yaml.load_all(text)
    first[0]["a"].append(3)  # a caller's change never reaches the next caller
    second = yaml.load_all(text.encode())
    assert second == [{"a": [1, 2], "b": {"c": "on"}}, {"d": "2026-01-01"}]
    assert second[0] is not first[0]
    bad = f"a: 1\na: 2\n# {id(object())}\n"
    for _ in range(2):  # refused every time, never kept
        with pytest.raises(yaml.YamlError):
            yaml.load_all(bad)
