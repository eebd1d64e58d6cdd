"""The manifest → unit mapping, checked against the modules' own variables.tf/outputs.tf."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gitops.environment import InfraManifest, parse_infra
from reconciler.tfmodule import module_interface
from reconciler.units import (
    READS,
    UNIT_ORDER,
    MissingUpstreamOutput,
    changed_units,
    dependants,
    own_inputs,
    plan_mode,
    unit_inputs,
    upstream_units,
)
from tests.gitops.test_environment import GOOD

MODULES = Path(__file__).resolve().parents[2] / "terraform"
PROVIDERS = ("aws", "local")


def manifest(**changes: Any) -> InfraManifest:
    data = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[part]
        node[last] = value
    return parse_infra(data, env="dev")


def all_outputs(provider: str) -> dict[str, dict[str, object]]:
    """Placeholder values for every output every module declares."""
    return {unit: {name: f"<{unit}.{name}>"
                   for name in module_interface(MODULES / provider / unit).outputs}
            for unit in UNIT_ORDER}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("unit", UNIT_ORDER)
def test_mapping_matches_the_module_both_ways(provider: str, unit: str) -> None:
    interface = module_interface(MODULES / provider / unit)
    variables = unit_inputs("dev", manifest(provider=provider), unit, all_outputs(provider),
                            gitops_repo_url="https://git.example.com/gitops.git")
    # every variable passed exists in the module ...
    assert set(variables) <= set(interface.variables), set(variables) - set(interface.variables)
    # ... and every required variable is passed
    assert interface.required <= set(variables), interface.required - set(variables)
    # every output this unit reads exists in the upstream module
    for variable, (upstream, output) in READS[unit].items():
        assert output in module_interface(MODULES / provider / upstream).outputs, (variable,
                                                                                   output)
        assert UNIT_ORDER.index(upstream) < UNIT_ORDER.index(unit)


@pytest.mark.parametrize("unit", UNIT_ORDER)
def test_aws_and_local_modules_share_inputs_and_outputs(unit: str) -> None:
    aws, local = (module_interface(MODULES / p / unit) for p in PROVIDERS)
    assert set(aws.variables) == set(local.variables)
    assert aws.outputs == local.outputs
    # A local default must not hide a variable the cloud module requires.
    assert aws.required == local.required


def test_module_interface_reads_required_and_optional(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(
        'variable "a" {\n  type = string\n}\n\nvariable "b" {\n  type    = string\n'
        '  default = "x"\n\n  validation {\n    condition     = var.b != ""\n'
        '    error_message = "no"\n  }\n}\n')
    (tmp_path / "outputs.tf").write_text('output "c" {\n  value = var.a\n}\n')
    (tmp_path / "x_override.tf").write_text('variable "ignored" {\n  type = string\n}\n')
    interface = module_interface(tmp_path)
    assert interface.variables == {"a": True, "b": False}
    assert interface.outputs == {"c"}


def test_upstream_outputs_are_passed_on() -> None:
    outputs = all_outputs("local")
    variables = unit_inputs("dev", manifest(), "addons", outputs)
    assert variables["cluster_endpoint"] == "<kubernetes.cluster_endpoint>"
    assert variables["zone_name"] == "<domain.zone_name>"
    assert variables["addons"] == ["cert-manager", "external-dns"]
    assert upstream_units("addons") == ["domain", "kubernetes"]
    assert upstream_units("kubernetes") == ["backend", "network"]


def test_missing_upstream_output_names_unit_and_output() -> None:
    outputs = all_outputs("local")
    del outputs["network"]["vpc_id"]
    with pytest.raises(MissingUpstreamOutput, match="'vpc_id' of unit 'network'"):
        unit_inputs("dev", manifest(), "kubernetes", outputs)


def test_own_inputs_follow_the_manifest() -> None:
    infra = manifest(tier="prod", network__vpc_id="vpc-0123456789abcdef0")
    network = own_inputs("dev", infra, "network")
    assert network["vpc_id"] == "vpc-0123456789abcdef0"
    assert network["public_subnets"] == [] and network["single_nat_gateway"] is False
    groups = own_inputs("dev", infra, "kubernetes")["node_groups"]
    assert groups == [{"name": "general", "instance_types": ["m6i.large"], "min_size": 1,
                       "max_size": 3, "desired_size": 2}]
    assert own_inputs("dev", infra, "backend")["force_destroy"] is False
    with pytest.raises(ValueError, match="unknown unit"):
        own_inputs("dev", infra, "database")


def test_dependants_follow_reads() -> None:
    assert dependants("backend") == {"kubernetes", "addons"}
    assert dependants("network") == {"kubernetes", "addons"}
    assert dependants("domain") == {"addons"}
    assert dependants("addons") == set()


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, []),
    ({"addons": ["cert-manager"]}, ["addons"]),
    ({"domain": {"name": "other.example.com"}}, ["domain", "addons"]),
    ({"kubernetes__version": "1.32"}, ["kubernetes", "addons"]),
    ({"network__cidr": "10.30.0.0/16"}, ["network", "kubernetes", "addons"]),
    ({"tier": "staging"}, list(UNIT_ORDER)),
    ({"region": "eu-west-2", "network__zones": ["eu-west-2a"]}, list(UNIT_ORDER)),
    ({"capacity": {"cpu": "16", "memory": "64Gi", "storage": "1Ti"}}, []),
    ({"provider": "local"}, list(UNIT_ORDER)),
])
def test_changed_units_are_own_changes_plus_dependants(changes: dict[str, Any],
                                                       expected: list[str]) -> None:
    assert changed_units(manifest(), manifest(**changes)) == expected


def test_install_and_uninstall() -> None:
    installed, uninstalled = manifest(), manifest(installed=False)
    assert changed_units(None, installed) == list(UNIT_ORDER)
    assert plan_mode(None, installed) == "apply"
    assert changed_units(installed, uninstalled) == list(reversed(UNIT_ORDER))
    assert plan_mode(installed, uninstalled) == "destroy"
    assert changed_units(installed, None) == list(reversed(UNIT_ORDER))  # file deleted
    assert plan_mode(installed, None) == "destroy"
    assert changed_units(uninstalled, installed) == list(UNIT_ORDER)
    assert changed_units(uninstalled, None) == [] and plan_mode(uninstalled, None) == "none"
    assert changed_units(None, None) == []


def test_missing_upstream_outputs_name_every_unit_to_apply_first() -> None:
    outputs = all_outputs("local")
    del outputs["network"]
    with pytest.raises(MissingUpstreamOutput) as raised:
        unit_inputs("dev", manifest(), "kubernetes", outputs)
    assert raised.value.upstreams == ["network"]
    with pytest.raises(MissingUpstreamOutput) as raised:
        unit_inputs("dev", manifest(), "addons", {})
    assert raised.value.upstreams == ["domain", "kubernetes"]
