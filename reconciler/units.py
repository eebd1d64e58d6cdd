"""The one mapping from an environment manifest to its Terraform units.

``envs/<env>/infra.yaml`` expands to the units in ``UNIT_ORDER``; each is a root module
``terraform/<provider>/<unit>`` with its own state. This module says, for every unit, which
variables come from the manifest (``own_inputs``) and which come from an earlier unit's outputs
(``READS``), and from that which units a manifest change touches (``changed_units``). Both the
AWS and the local modules share the same variable and output names, so one mapping serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from gitops.environment import InfraManifest

UNIT_ORDER: tuple[str, ...] = ("backend", "network", "domain", "kubernetes", "addons")

# unit -> {variable: (upstream unit, output)}: what each unit reads from the units before it.
READS: Mapping[str, Mapping[str, tuple[str, str]]] = {
    "backend": {},
    "network": {},
    "domain": {},
    "kubernetes": {
        "kms_key_arn": ("backend", "kms_key_arn"),
        "vpc_id": ("network", "vpc_id"),
        "private_subnet_ids": ("network", "private_subnet_ids"),
        "public_subnet_ids": ("network", "public_subnet_ids"),
    },
    "addons": {
        "cluster_name": ("kubernetes", "cluster_name"),
        "cluster_endpoint": ("kubernetes", "cluster_endpoint"),
        "cluster_certificate_authority_data": ("kubernetes",
                                               "cluster_certificate_authority_data"),
        "oidc_provider_arn": ("kubernetes", "oidc_provider_arn"),
        "zone_id": ("domain", "zone_id"),
        "zone_name": ("domain", "zone_name"),
    },
}

PlanMode = Literal["apply", "destroy", "none"]


class MissingUpstreamOutput(KeyError):
    """A unit needs an output that its upstream unit has not produced (not applied yet).
    ``upstreams``: every unit whose outputs are missing, in ``UNIT_ORDER``."""

    def __init__(self, message: str, *, upstreams: list[str]) -> None:
        super().__init__(message)
        self.upstreams = upstreams


def cluster_name(env: str) -> str:
    return f"caas-{env}"


def _tags(env: str, infra: InfraManifest) -> dict[str, str]:
    return {"caas.io/managed-by": "caas-portal", "caas.io/provider": infra.provider,
            "caas.io/environment": env}


def own_inputs(env: str, infra: InfraManifest, unit: str) -> dict[str, object]:
    """The variables of ``unit`` that come from the manifest itself (no upstream outputs)."""
    common: dict[str, object] = {"environment": env, "region": infra.region, "tier": infra.tier,
                                 "tags": _tags(env, infra)}
    # Throw-away tiers may lose their data on destroy; staging and prod keep guards on.
    disposable = infra.tier == "dev"
    if unit == "backend":
        return {**common, "force_destroy": disposable,
                "kms_deletion_window_in_days": 7 if disposable else 30}
    if unit == "network":
        reuse = infra.network.vpc_id is not None
        return {**common, "cidr": infra.network.cidr, "zones": list(infra.network.zones),
                "public_subnets": [] if reuse else infra.public_subnets,
                "private_subnets": [] if reuse else infra.private_subnets,
                "vpc_id": infra.network.vpc_id,
                "single_nat_gateway": infra.tier != "prod",
                "cluster_name": cluster_name(env)}
    if unit == "domain":
        return {**common, "domain_name": infra.domain.name, "zone_id": infra.domain.zone_id,
                "force_destroy": disposable}
    if unit == "kubernetes":
        return {**common, "cluster_name": cluster_name(env),
                "kubernetes_version": infra.kubernetes.version,
                "node_groups": [{"name": g.name, "instance_types": list(g.instance_types),
                                 "min_size": g.min, "max_size": g.max, "desired_size": g.desired}
                                for g in infra.kubernetes.node_groups]}
    if unit == "addons":
        return {**common, "addons": list(infra.addons)}
    raise ValueError(f"unknown unit {unit!r} (units: {', '.join(UNIT_ORDER)})")


def unit_inputs(env: str, infra: InfraManifest, unit: str,
                upstream_outputs: Mapping[str, Mapping[str, object]], *,
                gitops_repo_url: str = "", gitops_revision: str = "main") -> dict[str, object]:
    """All variables of ``unit``: its own inputs plus the outputs it reads from earlier units.

    ``upstream_outputs`` maps a unit name to that unit's outputs (``TerraformRunner.outputs``);
    a missing one raises ``MissingUpstreamOutput`` naming the unit and the output.
    """
    variables = own_inputs(env, infra, unit)
    if unit == "addons":
        variables["gitops_repo_url"] = gitops_repo_url
        variables["gitops_revision"] = gitops_revision
    missing: dict[str, str] = {}  # upstream unit -> its first missing output
    for variable, (upstream, output) in READS[unit].items():
        outputs = upstream_outputs.get(upstream)
        if outputs is None or output not in outputs:
            missing.setdefault(upstream, output)
            continue
        variables[variable] = outputs[output]
    if missing:
        upstream, output = next(iter(missing.items()))
        raise MissingUpstreamOutput(f"unit {unit!r} needs output {output!r} of unit "
                                    f"{upstream!r}, which has not been applied",
                                    upstreams=[u for u in UNIT_ORDER if u in missing])
    return variables


def upstream_units(unit: str) -> list[str]:
    """The units whose outputs ``unit`` reads, in order."""
    needed = {upstream for upstream, _ in READS[unit].values()}
    return [u for u in UNIT_ORDER if u in needed]


def dependants(unit: str) -> set[str]:
    """Every unit that reads ``unit``'s outputs, directly or through another unit."""
    found: set[str] = set()
    frontier = {unit}
    while frontier:
        current = frontier.pop()
        for candidate, reads in READS.items():
            if candidate not in found and any(up == current for up, _ in reads.values()):
                found.add(candidate)
                frontier.add(candidate)
    return found


def _live(infra: InfraManifest | None) -> bool:
    return infra is not None and infra.installed


def plan_mode(old: InfraManifest | None, new: InfraManifest | None) -> PlanMode:
    """``destroy`` when an installed environment is uninstalled or its file deleted."""
    if _live(new):
        return "apply"
    return "destroy" if _live(old) else "none"


def changed_units(old: InfraManifest | None, new: InfraManifest | None) -> list[str]:
    """Units to plan for a manifest change, in the order to run them.

    Apply: the units whose own inputs changed plus their dependants, in ``UNIT_ORDER``.
    Destroy (``installed: false`` or the file deleted): every unit, in reverse order.
    """
    mode = plan_mode(old, new)
    if mode == "none":
        return []
    if mode == "destroy":
        return list(reversed(UNIT_ORDER))
    assert new is not None  # plan_mode said apply
    if old is None or not old.installed or old.provider != new.provider:
        # A provider switch means other modules and fresh state: every unit runs.
        return list(UNIT_ORDER)
    # The environment name feeds every unit alike, so any fixed name compares fairly.
    changed = {unit for unit in UNIT_ORDER
               if own_inputs("env", old, unit) != own_inputs("env", new, unit)}
    for unit in list(changed):
        changed |= dependants(unit)
    return [unit for unit in UNIT_ORDER if unit in changed]
