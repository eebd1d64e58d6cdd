"""The environment manifest ``envs/<env>/infra.yaml``: the one model and the one reader.

Two ways in, one meaning:

- ``parse_infra(data, env=)`` / ``load_infra_text(text, env=)`` / ``load_infra(path)`` — the strict
  model the reconciler applies (``InfraManifest``). Everything Terraform would refuse late (or,
  worse, accept and apply) is refused here first, with the offending field named: a bad CIDR, a
  region that is not one, subnets that overlap or leave the VPC, a Kubernetes version the modules
  do not support. The shape is the one the ``environment`` template renders.
- ``read_manifest(content) -> Manifest`` — the lenient view for checks, approvals, CODEOWNERS and
  the catalog, which must keep working on a manifest that is still being written: the ``tier``,
  whether it was declared, and the ``capacity`` (top level, or under ``spec`` of a ``caas.io/v1``
  document). Unreadable YAML reads as an empty manifest.

A manifest that does not declare its tier is ``DEFAULT_TIER`` (``prod``) everywhere: approvals
need platform admins, CODEOWNERS keeps it admin-only, Terraform keeps deletion protection. A
missing tier must never buy a laxer review than a declared one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gitops import yaml
from gitops.names import DNS_LABEL_PATTERN
from gitops.quantity import QuantityError, parse_quantity
from portal.errors import ValidationFailed

SUPPORTED_KUBERNETES_VERSIONS = ("1.30", "1.31", "1.32", "1.33")
AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_DOMAIN = re.compile(rf"^({DNS_LABEL_PATTERN}\.)+[a-z]{{2,63}}$")
# A VPC between /16 and /24 leaves room for two /28-or-larger subnets per zone.
VPC_PREFIX_RANGE = (16, 24)
MAX_YAML_BYTES = 64 * 1024
TIERS = ("dev", "staging", "prod")
DEFAULT_TIER: Literal["prod"] = "prod"


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "{value} is not an IPv4 CIDR block ({reason})",
                                  {"value": value, "reason": str(exc)}) from exc
    return str(network)


def _quantity(value: str) -> str:
    try:
        refused = parse_quantity(value) < 0
    except QuantityError:
        refused = True
    if refused:
        raise PydanticCustomError("quantity", "{value} is not a Kubernetes quantity "
                                  "(e.g. 8, 500m, 32Gi)", {"value": value})
    return value


def _kubernetes_version(value: str) -> str:
    if value not in SUPPORTED_KUBERNETES_VERSIONS:
        raise PydanticCustomError("kubernetes_version", "Kubernetes {value} is not supported "
                                  "(supported: {supported})",
                                  {"value": value,
                                   "supported": ", ".join(SUPPORTED_KUBERNETES_VERSIONS)})
    return value


def _domain(value: str) -> str:
    if not _DOMAIN.match(value) or len(value) > 253:
        raise PydanticCustomError("dns_name", "{value} is not a lowercase DNS name",
                                  {"value": value})
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Name = Annotated[str, Field(pattern=rf"^{DNS_LABEL_PATTERN}$", max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class NodeGroup(_Strict):
    name: Name
    instance_types: list[Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[a-z0-9]+$")]] = Field(
        min_length=1, max_length=10)
    min: int = Field(ge=0, le=1000)
    max: int = Field(ge=1, le=1000)
    desired: int = Field(ge=0, le=1000)

    @model_validator(mode="after")
    def _bounds(self) -> NodeGroup:
        if not self.min <= self.desired <= self.max:
            raise PydanticCustomError("scaling_bounds", "needs min <= desired <= max "
                                      "(got {min} <= {desired} <= {max})",
                                      {"min": self.min, "desired": self.desired, "max": self.max})
        return self


class Network(_Strict):
    cidr: Cidr
    zones: list[Name] = Field(min_length=1, max_length=6)
    public_subnets: list[Cidr] | None = None
    private_subnets: list[Cidr] | None = None
    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")] | None = None


class Domain(_Strict):
    name: Annotated[str, AfterValidator(_domain)]
    zone_id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,32}$")] | None = None


class Kubernetes(_Strict):
    version: Annotated[str, AfterValidator(_kubernetes_version)]
    node_groups: list[NodeGroup] = Field(min_length=1, max_length=10)


class Capacity(_Strict):
    cpu: Quantity
    memory: Quantity
    storage: Quantity


class InfraManifest(_Strict):
    """One environment's infrastructure, as merged on ``main``."""

    name: Annotated[str, Field(pattern=ENV_NAME.pattern)] | None = None
    provider: Literal["aws", "local"]
    region: str
    tier: Literal["dev", "staging", "prod"] = DEFAULT_TIER
    installed: bool = True
    network: Network
    domain: Domain
    kubernetes: Kubernetes
    addons: list[Name] = Field(default_factory=list, max_length=30)
    capacity: Capacity | None = None

    @property
    def public_subnets(self) -> list[str]:
        """The public subnets: as written, or derived from the VPC CIDR (see ``_derived``)."""
        if self.network.public_subnets is not None:
            return list(self.network.public_subnets)
        return _derived(self.network.cidr, len(self.network.zones))[1]

    @property
    def private_subnets(self) -> list[str]:
        if self.network.private_subnets is not None:
            return list(self.network.private_subnets)
        return _derived(self.network.cidr, len(self.network.zones))[0]


def _derived(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Default layout: the VPC cut into 16 equal blocks; private ones first, one per zone, then
    public ones. Stable for a given CIDR and zone count, so re-plans see no change."""
    network = ipaddress.IPv4Network(cidr)
    blocks = list(network.subnets(prefixlen_diff=4))
    return ([str(b) for b in blocks[:zones]], [str(b) for b in blocks[zones:2 * zones]])


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_error(exc: ValidationError) -> ValidationFailed:
    error = exc.errors(include_url=False)[0]
    field = _loc(tuple(p for p in error["loc"] if isinstance(p, int | str))) or "infra.yaml"
    rule = str(error["type"])
    if rule == "extra_forbidden":
        return ValidationFailed(f"{field}: unknown field", field=field, rule="unknown_field")
    return ValidationFailed(f"{field}: {error['msg']}", field=field, rule=rule)


def _check_semantics(infra: InfraManifest, env: str | None) -> None:
    """Rules that need several fields at once (pydantic validates each field on its own)."""
    if env is not None and infra.name is not None and infra.name != env:
        raise ValidationFailed(f"name: {infra.name!r} differs from the folder envs/{env}/",
                               field="name", rule="matches_folder")
    if infra.region != "local" and not AWS_REGION.match(infra.region):
        raise ValidationFailed(f"region: {infra.region!r} is not a region such as eu-west-1",
                               field="region", rule="region_format")
    if infra.provider == "aws":
        if infra.region == "local":
            raise ValidationFailed("region: the aws provider needs an AWS region",
                                   field="region", rule="region_format")
        for i, zone in enumerate(infra.network.zones):
            if not (zone.startswith(infra.region) and len(zone) == len(infra.region) + 1):
                raise ValidationFailed(f"network.zones[{i}]: {zone!r} is not a zone of "
                                       f"{infra.region}", field=f"network.zones[{i}]",
                                       rule="zone_in_region")
    if len(set(infra.network.zones)) != len(infra.network.zones):
        raise ValidationFailed("network.zones: zones repeat", field="network.zones",
                               rule="unique")
    vpc = ipaddress.IPv4Network(infra.network.cidr)
    low, high = VPC_PREFIX_RANGE
    if not low <= vpc.prefixlen <= high:
        raise ValidationFailed(f"network.cidr: a VPC must be between /{low} and /{high}",
                               field="network.cidr", rule="prefix_length")
    if not vpc.is_private:
        raise ValidationFailed("network.cidr: a VPC needs a private (RFC 1918) range",
                               field="network.cidr", rule="private_range")
    _check_subnets(infra, vpc)
    names = [group.name for group in infra.kubernetes.node_groups]
    if len(set(names)) != len(names):
        raise ValidationFailed("kubernetes.node_groups: names repeat",
                               field="kubernetes.node_groups", rule="unique")
    if len(set(infra.addons)) != len(infra.addons):
        raise ValidationFailed("addons: names repeat", field="addons", rule="unique")


def _check_subnets(infra: InfraManifest, vpc: ipaddress.IPv4Network) -> None:
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for kind in ("private_subnets", "public_subnets"):
        subnets: list[str] = getattr(infra, kind)
        if kind == "private_subnets" and not subnets and infra.network.vpc_id is None:
            raise ValidationFailed("network.private_subnets: at least one is needed for the "
                                   "nodes", field="network.private_subnets", rule="min_items")
        if len(subnets) > len(infra.network.zones) and infra.network.vpc_id is None:
            raise ValidationFailed(f"network.{kind}: more subnets than zones",
                                   field=f"network.{kind}", rule="one_per_zone")
        for i, text in enumerate(subnets):
            field = f"network.{kind}[{i}]"
            subnet = ipaddress.IPv4Network(text)
            if not subnet.subnet_of(vpc):
                raise ValidationFailed(f"{field}: {subnet} lies outside the VPC {vpc}",
                                       field=field, rule="inside_vpc")
            if subnet.prefixlen > 28:
                raise ValidationFailed(f"{field}: subnets must be /28 or larger",
                                       field=field, rule="prefix_length")
            for other_field, other in seen:
                if subnet.overlaps(other):
                    raise ValidationFailed(f"{field}: {subnet} overlaps {other_field} ({other})",
                                           field=field, rule="no_overlap")
            seen.append((field, subnet))


def parse_infra(data: Any, *, env: str | None = None) -> InfraManifest:
    """Validate an already-loaded mapping; raises ``ValidationFailed`` naming the field."""
    if env is not None and not ENV_NAME.match(env):
        raise ValidationFailed(f"environment name {env!r} must be 1-20 lowercase letters, digits "
                               "or '-', starting with a letter", field="environment",
                               rule="env_name")
    if not isinstance(data, dict):
        raise ValidationFailed("infra.yaml must hold a mapping", field="infra.yaml",
                               rule="mapping")
    try:
        infra = InfraManifest.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc) from None
    _check_semantics(infra, env)
    return infra


def load_infra_text(text: str, *, env: str | None = None) -> InfraManifest:
    """Parse the YAML text of an ``infra.yaml`` (safe loader: no tags, no objects)."""
    if len(text.encode()) > MAX_YAML_BYTES:
        raise ValidationFailed("infra.yaml is larger than 64 KiB", field="infra.yaml",
                               rule="max_size")
    try:
        data = yaml.load(text)
    except yaml.YamlError as exc:
        raise ValidationFailed(f"infra.yaml is not valid YAML: {exc}", field="infra.yaml",
                               rule="yaml") from None
    return parse_infra(data, env=env)


def load_infra(path: Path) -> InfraManifest:
    """Read ``envs/<env>/infra.yaml``; the folder name is the environment."""
    return load_infra_text(path.read_text(encoding="utf-8"), env=path.parent.name)


@dataclass(frozen=True)
class Manifest:
    """The lenient view of one ``infra.yaml``: ``tier`` (``DEFAULT_TIER`` when not declared; an
    undeclared or unknown spelling is kept as written so callers may treat it as strict),
    ``tier_declared``, ``capacity`` (resource name → quantity as written), ``installed`` (False
    only when the file says ``installed: false``) and the raw mapping."""

    tier: str = DEFAULT_TIER
    tier_declared: bool = False
    installed: bool = True
    capacity: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)


def read_manifest(content: bytes | str | Mapping[str, Any] | None) -> Manifest:
    """The lenient view of an environment manifest (file content or an already-loaded mapping)."""
    if content is None:
        doc: Any = {}
    elif isinstance(content, Mapping):
        doc = content
    else:
        try:
            doc = yaml.load(content)
        except yaml.YamlError:
            doc = {}
    if not isinstance(doc, Mapping):
        doc = {}
    spec = doc.get("spec") if isinstance(doc.get("spec"), Mapping) else {}
    tier = doc.get("tier") or spec.get("tier")
    capacity = doc.get("capacity") or spec.get("capacity") or {}
    return Manifest(tier=str(tier) if tier else DEFAULT_TIER, tier_declared=bool(tier),
                    installed=doc.get("installed", True) is not False,
                    capacity=capacity if isinstance(capacity, Mapping) else {}, raw=doc)
