"""``envs/<env>/infra.yaml`` is refused before any Terraform runs, naming the field and rule."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from gitops.environment import load_infra, load_infra_text, parse_infra
from portal.errors import ValidationFailed

GOOD: dict[str, Any] = {
    "name": "dev",
    "provider": "aws",
    "region": "eu-west-1",
    "tier": "dev",
    "installed": True,
    "network": {"cidr": "10.20.0.0/16", "zones": ["eu-west-1a", "eu-west-1b"]},
    "domain": {"name": "dev.example.com"},
    "kubernetes": {"version": "1.31", "node_groups": [
        {"name": "general", "instance_types": ["m6i.large"], "min": 1, "max": 3, "desired": 2}]},
    "addons": ["cert-manager", "external-dns"],
    "capacity": {"cpu": "8", "memory": "32Gi", "storage": "500Gi"},
}


def variant(path: str, value: object) -> dict[str, Any]:
    """GOOD with one dotted path set (``None`` value deletes the key)."""
    data = copy.deepcopy(GOOD)
    node: Any = data
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


def test_good_manifest_parses_and_derives_subnets() -> None:
    infra = parse_infra(GOOD, env="dev")
    assert infra.provider == "aws" and infra.kubernetes.node_groups[0].desired == 2
    assert infra.private_subnets == ["10.20.0.0/20", "10.20.16.0/20"]
    assert infra.public_subnets == ["10.20.32.0/20", "10.20.48.0/20"]


def test_explicit_subnets_are_kept() -> None:
    data = variant("network.public_subnets", ["10.20.200.0/24", "10.20.201.0/24"])
    data["network"]["private_subnets"] = ["10.20.0.0/19", "10.20.32.0/19"]
    infra = parse_infra(data, env="dev")
    assert infra.public_subnets == ["10.20.200.0/24", "10.20.201.0/24"]
    assert infra.private_subnets == ["10.20.0.0/19", "10.20.32.0/19"]


def test_local_provider_accepts_local_region_and_free_zone_names() -> None:
    data = variant("provider", "local")
    data["region"] = "local"
    data["network"]["zones"] = ["zone-a"]
    assert parse_infra(data, env="dev").region == "local"


@pytest.mark.parametrize(("path", "value", "field", "rule"), [
    ("network.cidr", "10.20.0.0/33", "network.cidr", "cidr"),
    ("network.cidr", "10.20.0.1/16", "network.cidr", "cidr"),
    ("network.cidr", "banana", "network.cidr", "cidr"),
    ("network.cidr", "10.0.0.0/12", "network.cidr", "prefix_length"),
    ("network.cidr", "8.8.0.0/16", "network.cidr", "private_range"),
    ("region", "Europe West", "region", "region_format"),
    ("region", "eu-west", "region", "region_format"),
    ("region", "local", "region", "region_format"),  # aws needs a real region
    ("network.zones", ["us-east-1a"], "network.zones[0]", "zone_in_region"),
    ("network.zones", ["eu-west-1a", "eu-west-1a"], "network.zones", "unique"),
    ("network.public_subnets", ["10.20.64.0/24", "10.20.64.128/25"], "network.public_subnets[1]",
     "no_overlap"),
    ("network.public_subnets", ["10.99.0.0/24"], "network.public_subnets[0]", "inside_vpc"),
    ("network.public_subnets", ["10.20.0.0/24", "10.20.1.0/24", "10.20.2.0/24"],
     "network.public_subnets", "one_per_zone"),
    ("network.public_subnets", ["10.20.0.0/30"], "network.public_subnets[0]", "prefix_length"),
    ("network.vpc_id", "vpc-XYZ", "network.vpc_id", "string_pattern_mismatch"),
    ("kubernetes.version", "1.24", "kubernetes.version", "kubernetes_version"),
    ("kubernetes.version", "latest", "kubernetes.version", "kubernetes_version"),
    ("kubernetes.node_groups.0.min", 5, "kubernetes.node_groups[0]", "scaling_bounds"),
    ("kubernetes.node_groups.0.instance_types", [], "kubernetes.node_groups[0].instance_types",
     "too_short"),
    ("kubernetes.node_groups", [], "kubernetes.node_groups", "too_short"),
    ("tier", "production", "tier", "literal_error"),
    ("provider", "gcp", "provider", "literal_error"),
    ("installed", "maybe", "installed", "bool_parsing"),
    ("domain.name", "Not A Domain", "domain.name", "dns_name"),
    ("domain.zone_id", "zone-1", "domain.zone_id", "string_pattern_mismatch"),
    ("capacity.memory", "lots", "capacity.memory", "quantity"),
    ("addons", ["cert-manager", "cert-manager"], "addons", "unique"),
    ("addons", ["Not Valid"], "addons[0]", "string_pattern_mismatch"),
    ("name", "prod", "name", "matches_folder"),
    ("domain", None, "domain", "missing"),
    ("surprise", {"a": 1}, "surprise", "unknown_field"),
    ("network.subnet", "10.0.0.0/24", "network.subnet", "unknown_field"),
])
def test_bad_manifest_is_refused_naming_the_field(path: str, value: object, field: str,
                                                  rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_infra(variant(path, value), env="dev")
    assert (caught.value.field, caught.value.rule) == (field, rule)
    assert field in caught.value.message


def test_private_subnets_overlapping_public_ones() -> None:
    data = variant("network.private_subnets", ["10.20.0.0/20", "10.20.16.0/20"])
    data["network"]["public_subnets"] = ["10.20.8.0/24"]
    with pytest.raises(ValidationFailed) as caught:
        parse_infra(data, env="dev")
    assert caught.value.field == "network.public_subnets[0]"
    assert "network.private_subnets[0]" in caught.value.message


@pytest.mark.parametrize(("text", "rule"), [
    ("provider: [unclosed", "yaml"),
    ("- a\n- b\n", "mapping"),
    ("!!python/object:os.system {}\n", "yaml"),
    ("a: " + "x" * 70_000, "max_size"),
])
def test_bad_yaml_is_refused(text: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_infra_text(text, env="dev")
    assert caught.value.rule == rule


def test_bad_environment_name_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_infra(GOOD, env="../etc")
    assert caught.value.field == "environment"


def test_load_infra_takes_the_environment_from_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "envs" / "dev" / "infra.yaml"
    path.parent.mkdir(parents=True)
    with path.open("w") as handle:
        YAML(typ="safe", pure=True).dump(GOOD, handle)
    assert load_infra(path).domain.name == "dev.example.com"
    moved = tmp_path / "envs" / "qa" / "infra.yaml"
    moved.parent.mkdir(parents=True)
    path.rename(moved)
    with pytest.raises(ValidationFailed, match="differs from the folder"):
        load_infra(moved)


def test_environment_template_output_parses(tmp_path: Path) -> None:
    """The manifest the `environment` template renders with its defaults is accepted."""
    from cookiecutter.main import cookiecutter

    root = Path(__file__).resolve().parents[2] / "templates" / "environment"
    assert (root / "cookiecutter.json").is_file()
    out = Path(cookiecutter(str(root), no_input=True, output_dir=str(tmp_path),
                            extra_context={"environment": "demo"}))
    assert load_infra(out / "infra.yaml").name == "demo"



# ---- one tier default for every reader of an environment manifest ----------------------------

NO_TIER = b"provider: local\nregion: local\ncapacity: {cpu: '8', memory: 32Gi, storage: 1Ti}\n"


def test_a_missing_tier_is_prod_for_every_reader() -> None:
    from catalog.parse import parse_entity
    from gitops.environment import DEFAULT_TIER, read_manifest
    from portal.auth import policy

    assert DEFAULT_TIER == "prod"
    manifest = read_manifest(NO_TIER)
    assert (manifest.tier, manifest.tier_declared) == ("prod", False)
    assert read_manifest(b"spec:\n  tier: staging\n").tier == "staging"  # caas.io/v1 shape
    assert read_manifest(b"tier: [unclosed\n").tier == "prod"
    assert read_manifest(None).tier == "prod"
    # the reconciler's strict model
    data = copy.deepcopy(GOOD)
    del data["tier"]
    assert parse_infra(data, env="dev").tier == "prod"
    # approvals (the scaffolder's change sets route by the strictest tier)
    assert policy.strictest_tier([manifest.tier]) is policy.Tier.prod
    # the catalog: the tier is prod, and the missing declaration is a problem
    parsed = parse_entity("environment:dev", {"envs/dev/infra.yaml": NO_TIER})
    assert parsed is not None and parsed.spec["tier"] == "prod"
    assert "envs/dev/infra.yaml: tier is missing (read as prod)" in parsed.problems


def test_codeowners_and_capacity_read_the_same_manifest() -> None:
    from gitops.environment import read_manifest

    assert dict(read_manifest(NO_TIER).capacity) == {"cpu": "8", "memory": "32Gi",
                                                     "storage": "1Ti"}
