provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

locals {
  name   = "caas-${var.environment}"
  create = var.vpc_id == null
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "network"
  })

  public_count  = local.create ? length(var.public_subnets) : 0
  private_count = local.create ? length(var.private_subnets) : 0
  # One NAT gateway per zone keeps private subnets online when a zone fails; a single one is
  # cheaper and good enough outside production.
  nat_count = (local.create && var.enable_nat_gateway && local.public_count > 0
    ? (var.single_nat_gateway ? 1 : min(length(var.zones), local.public_count))
  : 0)

  # The tags EKS load balancers and Karpenter look for when they pick subnets.
  cluster_tag    = var.cluster_name == null ? {} : { "kubernetes.io/cluster/${var.cluster_name}" = "shared" }
  karpenter_tag  = var.cluster_name == null ? {} : { "karpenter.sh/discovery" = var.cluster_name }
  public_role    = { "kubernetes.io/role/elb" = "1" }
  private_role   = { "kubernetes.io/role/internal-elb" = "1" }
  existing_vpc   = local.create ? null : data.aws_vpc.existing[0]
  existing_pub   = local.create ? [] : sort(data.aws_subnets.existing_public[0].ids)
  existing_priv  = local.create ? [] : sort(data.aws_subnets.existing_private[0].ids)
  existing_cidrs = { for id, subnet in data.aws_subnet.existing : id => subnet.cidr_block }
}

################################################################################
# Reuse: an existing VPC whose subnets carry the standard EKS role tags
################################################################################

data "aws_vpc" "existing" {
  count = local.create ? 0 : 1
  id    = var.vpc_id
}

data "aws_subnets" "existing_public" {
  count = local.create ? 0 : 1
  tags  = local.public_role

  filter {
    name   = "vpc-id"
    values = [var.vpc_id]
  }
}

data "aws_subnets" "existing_private" {
  count = local.create ? 0 : 1
  tags  = local.private_role

  filter {
    name   = "vpc-id"
    values = [var.vpc_id]
  }
}

data "aws_subnet" "existing" {
  for_each = toset(concat(local.existing_pub, local.existing_priv))
  id       = each.value
}

################################################################################
# Create: VPC, subnets across the zones, internet and NAT gateways, routes
################################################################################

resource "aws_vpc" "this" {
  count = local.create ? 1 : 0

  cidr_block           = var.cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = local.name }

  lifecycle {
    precondition {
      condition = alltrue([
        for cidr in concat(var.public_subnets, var.private_subnets) :
        tonumber(split("/", cidr)[1]) >= tonumber(split("/", var.cidr)[1])
        && cidrhost("${split("/", cidr)[0]}/${split("/", var.cidr)[1]}", 0) == cidrhost(var.cidr, 0)
      ])
      error_message = "Every subnet must lie inside the VPC cidr."
    }
  }
}

resource "aws_internet_gateway" "this" {
  count = local.public_count > 0 ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = local.name }
}

resource "aws_subnet" "public" {
  count = local.public_count

  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = var.public_subnets[count.index]
  availability_zone       = element(var.zones, count.index)
  map_public_ip_on_launch = true

  tags = merge(local.public_role, local.cluster_tag, {
    Name = "${local.name}-public-${element(var.zones, count.index)}"
  })
}

resource "aws_subnet" "private" {
  count = local.private_count

  vpc_id            = aws_vpc.this[0].id
  cidr_block        = var.private_subnets[count.index]
  availability_zone = element(var.zones, count.index)

  tags = merge(local.private_role, local.cluster_tag, local.karpenter_tag, {
    Name = "${local.name}-private-${element(var.zones, count.index)}"
  })
}

resource "aws_route_table" "public" {
  count = local.public_count > 0 ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${local.name}-public" }
}

resource "aws_route" "public_internet" {
  count = local.public_count > 0 ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = local.public_count

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_eip" "nat" {
  count = local.nat_count

  domain = "vpc"
  tags   = { Name = "${local.name}-nat-${count.index}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  count = local.nat_count

  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${local.name}-nat-${count.index}" }
}

resource "aws_route_table" "private" {
  count = local.private_count

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${local.name}-private-${element(var.zones, count.index)}" }
}

resource "aws_route" "private_nat" {
  count = local.nat_count > 0 ? local.private_count : 0

  route_table_id         = aws_route_table.private[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[count.index % local.nat_count].id
}

resource "aws_route_table_association" "private" {
  count = local.private_count

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}
