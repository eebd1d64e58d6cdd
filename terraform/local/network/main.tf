# Offline stand-in of the AWS network unit: same inputs and outputs; identifiers are derived
# from terraform_data ids, which stay stable for the life of the state.
locals {
  name   = "caas-${var.environment}"
  create = var.vpc_id == null
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "network"
  })
  public  = local.create ? var.public_subnets : []
  private = local.create ? var.private_subnets : []
  nat_count = (local.create && var.enable_nat_gateway && length(local.public) > 0
    ? (var.single_nat_gateway ? 1 : min(length(var.zones), length(local.public)))
  : 0)
}

resource "terraform_data" "vpc" {
  input = {
    name      = local.name
    cidr      = var.cidr
    reused    = !local.create
    id        = var.vpc_id
    flow_logs = var.flow_logs ? { retention_days = var.flow_log_retention_days } : null
    tags      = local.tags
  }

  lifecycle {
    # Python validates the manifest first; this keeps the module safe when used on its own.
    precondition {
      condition = alltrue([
        for cidr in concat(local.public, local.private) :
        tonumber(split("/", cidr)[1]) >= tonumber(split("/", var.cidr)[1])
        && cidrhost("${split("/", cidr)[0]}/${split("/", var.cidr)[1]}", 0) == cidrhost(var.cidr, 0)
      ])
      error_message = "Every subnet must lie inside the VPC cidr."
    }
  }
}

resource "terraform_data" "public_subnet" {
  count = length(local.public)

  input = {
    cidr = local.public[count.index]
    zone = element(var.zones, count.index)
    vpc  = terraform_data.vpc.id
    tags = merge(local.tags, { "kubernetes.io/role/elb" = "1" })
  }
}

resource "terraform_data" "private_subnet" {
  count = length(local.private)

  input = {
    cidr = local.private[count.index]
    zone = element(var.zones, count.index)
    vpc  = terraform_data.vpc.id
    tags = merge(local.tags, { "kubernetes.io/role/internal-elb" = "1" }, var.cluster_name == null ? {} : { "karpenter.sh/discovery" = var.cluster_name })
  }
}

resource "terraform_data" "nat_gateway" {
  count = local.nat_count

  input = {
    subnet    = terraform_data.public_subnet[count.index].id
    public_ip = cidrhost("198.51.100.0/24", count.index + 1)
  }
}

locals {
  vpc_id = local.create ? "vpc-${substr(replace(terraform_data.vpc.id, "-", ""), 0, 17)}" : var.vpc_id
}
