# Offline stand-in of the AWS kubernetes unit: a "cluster" record with the same outputs as EKS,
# so the addons unit and the catalog see the shape they see in the cloud.
locals {
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "kubernetes"
  })
  node_groups = { for group in var.node_groups : group.name => group }
}

resource "terraform_data" "cluster" {
  input = {
    name                   = var.cluster_name
    version                = var.kubernetes_version
    vpc_id                 = var.vpc_id
    subnet_ids             = concat(var.private_subnet_ids, var.public_subnet_ids)
    secrets_key            = var.kms_key_arn
    endpoint_public_access = var.endpoint_public_access
    public_access_cidrs    = var.endpoint_public_access_cidrs
    # Every control-plane log type, as on EKS (terraform/aws/kubernetes).
    log_types          = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    log_retention_days = var.log_retention_days
    tags               = merge(local.tags, { "karpenter.sh/discovery" = var.cluster_name })
  }
}

resource "terraform_data" "node_group" {
  for_each = local.node_groups

  input = {
    cluster        = terraform_data.cluster.output.name
    instance_types = each.value.instance_types
    min_size       = each.value.min_size
    max_size       = each.value.max_size
    desired_size   = each.value.desired_size
    subnet_ids     = var.private_subnet_ids
  }
}

locals {
  cluster_hex = upper(substr(replace(terraform_data.cluster.id, "-", ""), 0, 32))
  oidc_issuer = "https://oidc.eks.${var.region}.local/id/${local.cluster_hex}"
}
