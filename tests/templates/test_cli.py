"""Each template folder renders with the plain ``cookiecutter`` command: defaults, lists and maps
in their string form from the command line and from a config file (the same files the portal
renders from the equivalent form answers), and a unit's ``.caas-answers.yaml`` replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops import lists
from scaffolder.checks.manifests import validate_manifest
from scaffolder.parameters import validate_answers
from scaffolder.registry import load_template
from scaffolder.render import ANSWERS_FILE, render
from tests.templates.support import (
    CONTEXT,
    NAMES,
    SKELETON,
    TEMPLATES,
    cluster_objects,
    parameters,
    yaml_files,
)

COOKIECUTTER = Path(sys.executable).with_name("cookiecutter")


def cookiecutter(tmp_path: Path, *args: str) -> Path:
    """Run the plain CLI with its replay and clone folders under ``tmp_path``; the project."""
    config = tmp_path / "cookiecutter-config.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump({"replay_dir": str(tmp_path / "replay"),
                                          "cookiecutters_dir": str(tmp_path / "clones")}))
    out = tmp_path / "out"
    scratch = tmp_path / "tmp"  # cookiecutter's hook runner leaves its rendered script there
    scratch.mkdir(exist_ok=True)
    result = subprocess.run(
        [str(COOKIECUTTER), "--config-file", str(config), "--output-dir", str(out), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert result.returncode == 0, result.stderr
    (project,) = [p for p in out.iterdir() if p.is_dir()]
    return project


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != ANSWERS_FILE}


def portal_files(name: str, answers: dict[str, Any]) -> dict[str, bytes]:
    template = load_template(TEMPLATES / name, trusted=True)
    clean = validate_answers(parameters(name), answers, context=CONTEXT)
    files = render(template, clean, target="unit")
    return {p.removeprefix("unit/"): b for p, b in files.items()
            if not p.endswith(ANSWERS_FILE)}


@pytest.mark.parametrize("name", NAMES)
def test_plain_cookiecutter_renders(name: str, tmp_path: Path) -> None:
    out = cookiecutter(tmp_path, "--no-input", str(TEMPLATES / name))
    assert yaml_files(out)
    objects = cluster_objects(out)
    assert objects
    assert [e for _p, doc in objects for e in validate_manifest(doc)] == []
    assert not (out / ".overlay").exists()
    if name == "tenant":
        assert (out / "envs" / "dev" / "kustomization.yaml").is_file()


TENANT_FORM = {
    "team": "payments", "name": "checkout", "cost_center": "cc-1001",
    "description": "Checkout — «ünïcödé» 🚀 'quoted'",
    "environments": ["dev", "staging", "prod"],
    "environment_quotas": {"prod": {"cpu": "8", "memory": "16Gi"}, "staging": {"cpu": "2"}},
    "http_allow": [{"from_namespace": "payments-web", "port": 8080, "method": "GET",
                    "path": "/api/v1"}],
    "max_pods": 60, "allow_egress_world": True,
}
# The same answers as the command line and a config file write them: lists comma-separated,
# environment_quotas "<env>:<cpu>:<memory>", http_allow "<namespace>:<port>:<METHOD>:<path>".
TENANT_STRINGS = {
    "team": "payments", "name": "checkout", "cost_center": "cc-1001",
    "description": "Checkout — «ünïcödé» 🚀 'quoted'",
    "environments": "dev,staging,prod",
    "environment_quotas": "prod:8:16Gi,staging:2:",
    "http_allow": "payments-web:8080:GET:/api/v1",
    "max_pods": "60", "allow_egress_world": "true",
}
TEAM_FORM = {"team": "payments", "display_name": "Payments 💳", "cost_center": "cc-1001",
             "owners": ["carol", "dave"], "members": ["erin", "carol"],
             "source_repos": ["https://github.com/example-org/*", "https://charts.example.org/"]}
TEAM_STRINGS = {"team": "payments", "display_name": "Payments 💳", "cost_center": "cc-1001",
                "owners": "carol,dave", "members": "erin,carol",
                "source_repos": "https://github.com/example-org/*,https://charts.example.org/"}


@pytest.mark.parametrize(("name", "form", "strings"), [
    ("tenant", TENANT_FORM, TENANT_STRINGS), ("team", TEAM_FORM, TEAM_STRINGS)])
def test_lists_and_maps_from_the_command_line(
    name: str, form: dict[str, Any], strings: dict[str, str], tmp_path: Path
) -> None:
    out = cookiecutter(tmp_path, "--no-input", str(TEMPLATES / name),
                       *(f"{k}={v}" for k, v in strings.items()))
    assert files_of(out) == portal_files(name, form)
    if name == "tenant":
        assert sorted(p.name for p in (out / "envs").iterdir()) == ["dev", "prod", "staging"]
        quota = yaml.safe_load((out / "envs" / "prod" / "quota.yaml").read_text())
        assert quota["spec"]["hard"]["requests.cpu"] == "8"
    else:
        team = yaml.safe_load((out / "team.yaml").read_text())
        assert team["spec"]["owners"] == ["carol", "dave"]


@pytest.mark.parametrize(("name", "form", "strings"), [
    ("tenant", TENANT_FORM, TENANT_STRINGS), ("team", TEAM_FORM, TEAM_STRINGS)])
def test_lists_and_maps_from_a_config_file(
    name: str, form: dict[str, Any], strings: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "cookiecutter-config.yaml"
    config.write_text(yaml.safe_dump({
        "replay_dir": str(tmp_path / "replay"), "cookiecutters_dir": str(tmp_path / "clones"),
        "default_context": strings}, allow_unicode=True), encoding="utf-8")
    out = cookiecutter(tmp_path, "--no-input", str(TEMPLATES / name))
    assert files_of(out) == portal_files(name, form)


def caas(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAAS_")}
    env["CAAS_DATA_DIR"] = str(tmp_path / ".caas")
    return subprocess.run([sys.executable, "-m", "portal.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("unit", ["teams/platform", "tenants/platform/platform-tools", "envs/dev"])
def test_replay_of_a_unit_reproduces_it_byte_for_byte(unit: str, tmp_path: Path) -> None:
    """``caas replay <unit>/.caas-answers.yaml`` → ``cookiecutter --replay-file``."""
    stored = yaml.safe_load((SKELETON / unit / ANSWERS_FILE).read_text())
    replay = tmp_path / f"{stored['template']}.json"
    done = caas(tmp_path, "replay", str(SKELETON / unit / ANSWERS_FILE), "--output", str(replay))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = cookiecutter(tmp_path, "--replay-file", str(replay), str(TEMPLATES / stored["template"]))
    replayed = files_of(out)
    if "appproject.yaml" in replayed:
        # The destinations list is derived from the team's tenants (gitops.lists), kept by the
        # tenant pull requests rather than by the team template.
        namespaces = lists.team_namespaces(
            p.relative_to(SKELETON).as_posix() for p in SKELETON.rglob("*") if p.is_file())
        replayed["appproject.yaml"] = lists.with_destinations(
            replayed["appproject.yaml"], namespaces[stored["answers"]["team"]])
    assert replayed == files_of(SKELETON / unit)


def test_replay_refuses_a_file_without_answers(tmp_path: Path) -> None:
    bad = tmp_path / ANSWERS_FILE
    bad.write_text("template: tenant\n")
    done = caas(tmp_path, "replay", str(bad))
    assert done.returncode != 0
    assert done.stderr.startswith("caas: error: answers_file: not a .caas-answers.yaml")
    other = tmp_path / "other.yaml"
    other.write_text("template: nosuch\nversion: x\nanswers: {}\n")
    done = caas(tmp_path, "replay", str(other))
    assert done.returncode != 0 and "no template named 'nosuch'" in done.stderr


def test_replay_names_an_older_template_version(tmp_path: Path) -> None:
    stored = yaml.safe_load((SKELETON / "envs/dev" / ANSWERS_FILE).read_text())
    old = tmp_path / ANSWERS_FILE
    old.write_text(yaml.safe_dump({**stored, "version": "0" * 40}))
    done = caas(tmp_path, "replay", str(old))
    assert done.returncode == 0
    assert json.loads(done.stdout)["cookiecutter"]["environment"] == "dev"
    assert f"rendered by environment {'0' * 40}" in done.stderr
