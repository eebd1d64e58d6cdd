provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  name       = "caas-${var.environment}"
  create     = var.vpc_id == null
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

# The default security group of a created VPC allows nothing; every workload names its own.
resource "aws_default_security_group" "this" {
  count = local.create ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = "${local.name}-default-deny" }
}

################################################################################
# VPC flow logs: every accepted and rejected flow to CloudWatch Logs, KMS-encrypted
# (docs.aws.amazon.com/vpc/latest/userguide/flow-logs-cwl.html)
################################################################################


resource "aws_kms_key" "flow_logs" {
  count = var.flow_logs ? 1 : 0

  description             = "caas ${var.environment}: VPC flow logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "AccountAdministersKeyThroughIam"
        Effect = "Allow"
        # In a key policy "*" is this key; kms:* for the account root lets IAM grant its use.
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsTheFlowLogGroup"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*" # this key (key policy)
        Condition = {
          ArnEquals = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/caas/${var.environment}/vpc-flow-logs"
          }
        }
      },
    ]
  })
}

resource "aws_cloudwatch_log_group" "flow_logs" {
  count = var.flow_logs ? 1 : 0

  name              = "/caas/${var.environment}/vpc-flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.flow_logs[0].arn
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "flow_logs" {
  count = var.flow_logs ? 1 : 0

  name               = "${local.name}-vpc-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json
}

data "aws_iam_policy_document" "flow_logs" {
  count = var.flow_logs ? 1 : 0

  statement {
    sid       = "WriteTheFlowLogGroupOnly"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.flow_logs[0].arn, "${aws_cloudwatch_log_group.flow_logs[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  count = var.flow_logs ? 1 : 0

  name   = "vpc-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs[0].json
}

resource "aws_flow_log" "this" {
  count = var.flow_logs ? 1 : 0

  vpc_id               = local.create ? aws_vpc.this[0].id : var.vpc_id
  traffic_type         = "ALL"
  log_destination_type = "cloud-watch-logs"
  log_destination      = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn         = aws_iam_role.flow_logs[0].arn
  tags                 = { Name = "${local.name}-flow-logs" }
}
