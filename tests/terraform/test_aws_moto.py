"""The AWS units applied and destroyed for real against moto in server mode on loopback.

The hashicorp/aws provider comes from the filesystem mirror; a test-only ``*_override.tf``
points it at moto and skips the checks a real account would need.

moto's EKS (5.2) serves create/describe/delete of clusters and node groups, so the kubernetes
unit applies and destroys too; it does not store ``accessConfig`` (nor
``bootstrapSelfManagedAddons``), so a second plan of that unit against moto wants to replace the
cluster. The idempotency check therefore runs on the network unit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from gitops.environment import parse_infra
from reconciler.terraform import TerraformRunner, UnitRef
from reconciler.units import unit_inputs
from tests.gitops.test_environment import GOOD
from tests.terraform.conftest import runner_settings

# Each AWS provider start loads a very large schema; on a busy 2-core machine a unit takes minutes.
pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(1800)]
SERVICES = ("s3", "dynamodb", "kms", "ssm", "sts", "iam", "ec2", "route53", "eks", "logs")
REGION = "eu-west-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    # EKS roles attach AWS-managed policies, which moto only knows when told to load them.
    patch = pytest.MonkeyPatch()
    patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        patch.undo()


def provider_override(url: str) -> str:
    endpoints = "".join(f'    {service} = "{url}"\n' for service in SERVICES)
    return ('provider "aws" {\n  access_key                  = "testing"\n'
            '  secret_key                  = "testing"\n'
            "  skip_credentials_validation = true\n  skip_metadata_api_check     = true\n"
            "  skip_requesting_account_id  = true\n  s3_use_path_style           = true\n"
            f"  endpoints {{\n{endpoints}  }}\n}}\n")


def client(url: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_backend_network_domain_kubernetes_apply_and_destroy(moto_url: str,
                                                            tmp_path: Path) -> None:
    runner = TerraformRunner(runner_settings(tmp_path / ".caas"),
                             override_files={"moto_override.tf": provider_override(moto_url)},
                             extra_env=CREDENTIALS)
    data = copy.deepcopy(GOOD)
    data["name"] = "moto"
    infra = parse_infra(data, env="moto")
    units = ("backend", "network", "domain", "kubernetes")
    outputs: dict[str, dict[str, object]] = {}
    for unit in units:
        summary, out = runner.run(UnitRef("moto", unit, "aws"),
                                  unit_inputs("moto", infra, unit, outputs))
        assert summary.add >= 1, unit
        outputs[unit] = out.values

    s3, ec2, route53 = (client(moto_url, s) for s in ("s3", "ec2", "route53"))
    bucket = str(outputs["backend"]["state_bucket"])
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    table = client(moto_url, "dynamodb").describe_table(TableName=outputs["backend"]["lock_table"])
    assert table["Table"]["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]

    vpc_id = str(outputs["network"]["vpc_id"])
    assert ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["CidrBlock"] == "10.20.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    assert sorted(s["CidrBlock"] for s in subnets) == sorted(
        [*infra.private_subnets, *infra.public_subnets])
    assert {s["AvailabilityZone"] for s in subnets} == {"eu-west-1a", "eu-west-1b"}
    assert len(ec2.describe_nat_gateways()["NatGateways"]) == 1  # dev: a single NAT gateway
    zone = route53.get_hosted_zone(Id=str(outputs["domain"]["zone_id"]))
    assert zone["HostedZone"]["Name"] == "dev.example.com."

    eks = client(moto_url, "eks")
    cluster = eks.describe_cluster(name="caas-moto")["cluster"]
    assert (cluster["status"], cluster["version"]) == ("ACTIVE", "1.31")
    assert set(cluster["resourcesVpcConfig"]["subnetIds"]) == {
        *outputs["network"]["private_subnet_ids"],  # type: ignore[misc]
        *outputs["network"]["public_subnet_ids"]}
    assert cluster["tags"]["karpenter.sh/discovery"] == "caas-moto"
    group = eks.describe_nodegroup(clusterName="caas-moto", nodegroupName="general")["nodegroup"]
    assert group["scalingConfig"] == {"minSize": 1, "maxSize": 3, "desiredSize": 2}
    assert outputs["kubernetes"]["oidc_issuer_url"] == cluster["identity"]["oidc"]["issuer"]
    providers = client(moto_url, "iam").list_open_id_connect_providers()
    assert [p["Arn"] for p in providers["OpenIDConnectProviderList"]] == [
        outputs["kubernetes"]["oidc_provider_arn"]]

    # Idempotent against the real provider: a second plan of the biggest unit is empty.
    assert not runner.plan(UnitRef("moto", "network", "aws"),
                           unit_inputs("moto", infra, "network", outputs)).has_changes

    for unit in reversed(units):
        summary = runner.destroy(UnitRef("moto", unit, "aws"),
                                 unit_inputs("moto", infra, unit, outputs))
        assert summary.destroy >= 1 and summary.add == 0, unit
    assert s3.list_buckets()["Buckets"] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"] == []
    assert route53.list_hosted_zones()["HostedZones"] == []
    assert eks.list_clusters()["clusters"] == []
