"""The local units apply and destroy in order, offline, each one's outputs feeding the next."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gitops.environment import parse_infra
from reconciler.terraform import TerraformRunner, UnitRef
from reconciler.units import UNIT_ORDER, changed_units, unit_inputs, upstream_units
from tests.terraform.conftest import runner_settings

pytestmark = pytest.mark.terraform
GITOPS = "file:///srv/gitops.git"
LOCAL: dict[str, Any] = {
    "name": "demo", "provider": "local", "region": "local", "tier": "dev", "installed": True,
    "network": {"cidr": "10.20.0.0/16", "zones": ["zone-a", "zone-b"]},
    "domain": {"name": "demo.caas.internal"},
    "kubernetes": {"version": "1.31", "node_groups": [
        {"name": "general", "instance_types": ["m6i.large"], "min": 1, "max": 3, "desired": 2}]},
    "addons": ["cert-manager", "external-dns"],
    "capacity": {"cpu": "8", "memory": "32Gi", "storage": "500Gi"},
}


def resource_input(work: Path, address: str) -> dict[str, Any]:
    """The ``input`` a terraform_data resource recorded in the unit's state."""
    state = json.loads((work / "terraform.tfstate").read_text())
    for resource in state["resources"]:
        if f"{resource['type']}.{resource['name']}" == address:
            value: dict[str, Any] = resource["instances"][0]["attributes"]["input"]["value"]
            return value
    raise AssertionError(f"{address} not in {work}")


def test_local_units_apply_in_order_then_destroy_in_reverse(tmp_path: Path) -> None:
    runner = TerraformRunner(runner_settings(tmp_path / ".caas"))
    infra = parse_infra(LOCAL, env="demo")
    outputs: dict[str, dict[str, object]] = {}
    lines: list[str] = []
    for unit in UNIT_ORDER:
        summary, out = runner.run(UnitRef("demo", unit, "local"),
                                  unit_inputs("demo", infra, unit, outputs,
                                              gitops_repo_url=GITOPS), log=lines.append)
        assert summary.add >= 1 and summary.destroy == 0, (unit, summary)
        outputs[unit] = out.values

    # Outputs were passed on: what the later units recorded is what the earlier ones produced.
    network, kubernetes = outputs["network"], outputs["kubernetes"]
    assert str(network["vpc_id"]).startswith("vpc-")
    assert network["private_subnet_cidrs"] == ["10.20.0.0/20", "10.20.16.0/20"]
    cluster = resource_input(runner.root / "demo" / "kubernetes", "terraform_data.cluster")
    assert cluster["vpc_id"] == network["vpc_id"]
    assert cluster["secrets_key"] == outputs["backend"]["kms_key_arn"]
    subnet_ids = [*list(network["private_subnet_ids"]),  # type: ignore[call-overload]
                  *list(network["public_subnet_ids"])]  # type: ignore[call-overload]
    assert cluster["subnet_ids"] == subnet_ids
    argocd = resource_input(runner.root / "demo" / "addons", "terraform_data.argocd")
    assert argocd["zone"] == {"id": outputs["domain"]["zone_id"], "name": "demo.caas.internal"}
    assert argocd["oidc_provider"] == kubernetes["oidc_provider_arn"]
    assert argocd["cluster_labels"]["addons.caas.io/cert-manager"] == "enabled"
    assert outputs["addons"]["root_app_path"] == "bootstrap/root.yaml"
    assert outputs["addons"]["gitops_repo_url"] == GITOPS
    assert any("Apply complete!" in line for line in lines)

    # Re-applying every unit is a no-op plan (idempotent).
    for unit in UNIT_ORDER:
        again, out = runner.run(UnitRef("demo", unit, "local"),
                                unit_inputs("demo", infra, unit, outputs, gitops_repo_url=GITOPS))
        assert not again.has_changes, (unit, again)
        assert out.values == outputs[unit]

    # One addon more: only the addons unit plans, and it updates in place.
    data = copy.deepcopy(LOCAL)
    data["addons"].append("karpenter")
    changed = parse_infra(data, env="demo")
    assert changed_units(infra, changed) == ["addons"]
    summary, out = runner.run(UnitRef("demo", "addons", "local"),
                              unit_inputs("demo", changed, "addons", outputs,
                                          gitops_repo_url=GITOPS))
    assert (summary.add, summary.change, summary.destroy) == (0, 1, 0)
    assert out.values["addons"] == ["cert-manager", "external-dns", "karpenter"]

    # Uninstall: reverse order; upstream outputs are read back from the still-existing states.
    uninstalled = parse_infra({**data, "installed": False}, env="demo")
    order = changed_units(changed, uninstalled)
    assert order == list(reversed(UNIT_ORDER))
    for unit in order:
        upstream = {u: runner.outputs(UnitRef("demo", u, "local")).values
                    for u in upstream_units(unit)}
        summary = runner.destroy(UnitRef("demo", unit, "local"),
                                 unit_inputs("demo", changed, unit, upstream,
                                             gitops_repo_url=GITOPS))
        assert summary.destroy >= 1 and summary.add == 0, (unit, summary)
        assert runner.outputs(UnitRef("demo", unit, "local")).values == {}
