"""The catalog's Backstage export, from a real repository of template-rendered units, passes
``@backstage/catalog-model``'s kind validators and the catalog's default entity policies, and
every entity ref in its spec fields resolves inside the export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session

from catalog import backstage, service
from gitops.gitreader import GitReader
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.registry import load_template
from scaffolder.render import render
from tests.backstage.conftest import run_node
from tests.catalog import gitops
from tests.templates.support import NAMES, SKELETON, TEMPLATES, parameters

CONTEXT = ParameterContext(teams=frozenset({"payments", "search"}),
                           environments=frozenset({"dev", "prod"}))

pytestmark = pytest.mark.backstage

UNITS: list[tuple[str, dict[str, Any]]] = [
    ("team", {"team": "payments", "display_name": "Zahlungen 💳 «ü»", "cost_center": "cc-1",
              "description": "Pays: \"everything\" — 'now'", "email": "pay@example.org",
              "owners": ["alice", "bob"], "members": ["bob", "carol"]}),
    ("team", {"team": "search", "display_name": "Search", "cost_center": "cc-2",
              "owners": ["carol"]}),
    ("environment", {"environment": "prod", "provider": "local", "region": "local",
                     "tier": "prod"}),
    ("tenant", {"team": "payments", "name": "checkout", "cost_center": "cc-1",
                "description": "Checkout 🚀", "environments": ["dev", "prod"]}),
    ("tenant", {"team": "search", "name": "index", "cost_center": "cc-2",
                "environments": ["prod"]}),
    ("application", {"team": "payments", "name": "api", "tenant": "checkout",
                     "environment": "prod", "repo_url": "https://charts.example.org/p",
                     "revision": "1.0.0", "description": "The API ✓"}),
]


def repository_files() -> dict[str, str]:
    files = {p.relative_to(SKELETON).as_posix(): p.read_text(encoding="utf-8")
             for p in SKELETON.rglob("*") if p.is_file()}
    for name, answers in UNITS:
        template = load_template(TEMPLATES / name, trusted=True)
        clean = validate_answers(parameters(name), answers, context=CONTEXT)
        rendered = render(template, clean, target=template.fill(template.target_path, clean))
        files.update({p: b.decode("utf-8") for p, b in rendered.items()})
    return files


@pytest.mark.parametrize("db_backend", ["sqlite"], indirect=True)
def test_export_is_valid_under_backstage_policies(
    backstage_node: Path, engine: Engine, tmp_path: Path
) -> None:
    repo = gitops.Repo(tmp_path / "gitops.git")
    repo.commit(repository_files(), "units rendered by the templates")
    with Session(engine) as session:
        service.reindex(session, forge=GitReader(repo.git_dir))
        entities = backstage.export(session)
    kinds = {e["kind"] for e in entities}
    assert kinds == {"Group", "User", "Resource", "System", "Component"}
    # What a url Location reads: the multi-document YAML of the same entities.
    assert list(yaml.safe_load_all(backstage.to_yaml(entities))) == entities
    # The templates register beside it (scaffolder-common's Template validator, owner resolved).
    templates = [yaml.safe_load((TEMPLATES / n / "template.yaml").read_text()) for n in NAMES]
    result = run_node("validate", entities + templates, tmp_path)
    assert result == {"checked": len(entities) + len(templates), "problems": []}
    refs = {f"{e['kind'].lower()}:default/{e['metadata']['name']}" for e in entities}
    assert {"group:default/payments", "group:default/platform", "user:default/carol",
            "resource:default/payments-checkout", "component:default/payments-api"} <= refs


def test_the_validator_refuses_what_backstage_refuses(backstage_node: Path, tmp_path: Path) -> None:
    """The check can fail: a root ``relations`` field and a dangling owner are reported."""
    entity = {"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
              "metadata": {"name": "a", "namespace": "default"},
              "spec": {"type": "team", "children": []},
              "relations": [{"type": "ownerOf", "targetRef": "resource:default/x"}]}
    dangling = {"apiVersion": "backstage.io/v1alpha1", "kind": "System",
                "metadata": {"name": "s"}, "spec": {"owner": "group:default/nobody"}}
    result = run_node("validate", [entity, dangling], tmp_path)
    assert len(result["problems"]) == 2
    assert "relations" in result["problems"][0]
    assert "group:default/nobody" in result["problems"][1]
