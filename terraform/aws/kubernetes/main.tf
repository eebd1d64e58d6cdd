provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "kubernetes"
  })
  # Karpenter finds the subnets and security groups it may use by this tag.
  discovery_tag     = { "karpenter.sh/discovery" = var.cluster_name }
  node_groups       = { for group in var.node_groups : group.name => group }
  oidc_issuer       = aws_eks_cluster.this.identity[0].oidc[0].issuer
  oidc_host         = replace(local.oidc_issuer, "https://", "")
  account_id        = data.aws_caller_identity.current.account_id
  cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  # Karpenter may only touch EC2 resources tagged as this cluster's.
  owned_tag = "aws:RequestTag/kubernetes.io/cluster/${var.cluster_name}"
  owns_tag  = "aws:ResourceTag/kubernetes.io/cluster/${var.cluster_name}"
  ec2_arn   = "arn:${local.partition}:ec2:${var.region}"
}

################################################################################
# Control plane
################################################################################

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.cluster_name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_security_group" "cluster" {
  name        = "${var.cluster_name}-cluster"
  description = "EKS control plane and nodes of ${var.cluster_name}"
  vpc_id      = var.vpc_id
  tags        = local.discovery_tag
}

resource "aws_vpc_security_group_ingress_rule" "cluster_self" {
  security_group_id            = aws_security_group.cluster.id
  referenced_security_group_id = aws_security_group.cluster.id
  ip_protocol                  = "-1"
  description                  = "Nodes and control plane talk to each other"
}

resource "aws_vpc_security_group_egress_rule" "cluster_all" {
  security_group_id = aws_security_group.cluster.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
  description       = "Outbound through the NAT gateways"
}

# EKS writes control-plane logs to this group; creating it here sets retention and encryption
# (docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html).
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${var.cluster_name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_eks_cluster" "this" {
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  # Every control-plane log type (api, audit, authenticator, controllerManager, scheduler).
  enabled_cluster_log_types = local.cluster_log_types

  # The API endpoint is private (reached from the VPC) unless public access is opted into,
  # and then only from the allow-listed CIDRs (never 0.0.0.0/0, see variables.tf).
  vpc_config {
    subnet_ids              = concat(var.private_subnet_ids, var.public_subnet_ids)
    security_group_ids      = [aws_security_group.cluster.id]
    endpoint_private_access = true
    endpoint_public_access  = var.endpoint_public_access
    public_access_cidrs     = var.endpoint_public_access ? var.endpoint_public_access_cidrs : null
  }

  access_config {
    authentication_mode                         = "API_AND_CONFIG_MAP"
    bootstrap_cluster_creator_admin_permissions = true
  }

  dynamic "encryption_config" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]

    content {
      resources = ["secrets"]

      provider {
        key_arn = encryption_config.value
      }
    }
  }

  tags = local.discovery_tag

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

################################################################################
# IRSA: the cluster's OIDC issuer as an IAM identity provider
################################################################################

resource "aws_iam_openid_connect_provider" "this" {
  url            = local.oidc_issuer
  client_id_list = ["sts.amazonaws.com"]
}

# Karpenter's controller role, assumable only by its service account through IRSA.
data "aws_iam_policy_document" "karpenter_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = ["system:serviceaccount:${var.karpenter_namespace}:karpenter"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "karpenter" {
  name               = "${var.cluster_name}-karpenter"
  assume_role_policy = data.aws_iam_policy_document.karpenter_assume.json
}

# Karpenter's controller policy, scoped the way Karpenter's own reference policy is
# (karpenter.sh/docs/reference/cloudformation/): launches and deletions only of resources
# tagged kubernetes.io/cluster/<name>=owned, read-only calls pinned to the region.
data "aws_iam_policy_document" "karpenter" {
  statement {
    sid     = "LaunchFromSharedResources"
    actions = ["ec2:RunInstances", "ec2:CreateFleet"]
    resources = [
      "${local.ec2_arn}::image/*", "${local.ec2_arn}::snapshot/*",
      "${local.ec2_arn}:*:security-group/*", "${local.ec2_arn}:*:subnet/*",
      "${local.ec2_arn}:*:capacity-reservation/*",
    ]
  }

  statement {
    sid       = "LaunchFromOwnedLaunchTemplates"
    actions   = ["ec2:RunInstances", "ec2:CreateFleet"]
    resources = ["${local.ec2_arn}:*:launch-template/*"]

    condition {
      test     = "StringEquals"
      variable = local.owns_tag
      values   = ["owned"]
    }
  }

  statement {
    sid     = "CreateOwnedResources"
    actions = ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"]
    resources = [
      "${local.ec2_arn}:*:fleet/*", "${local.ec2_arn}:*:instance/*", "${local.ec2_arn}:*:volume/*",
      "${local.ec2_arn}:*:network-interface/*", "${local.ec2_arn}:*:launch-template/*",
      "${local.ec2_arn}:*:spot-instances-request/*",
    ]

    condition {
      test     = "StringEquals"
      variable = local.owned_tag
      values   = ["owned"]
    }
  }

  statement {
    sid     = "TagOnCreateOnly"
    actions = ["ec2:CreateTags"]
    resources = [
      "${local.ec2_arn}:*:fleet/*", "${local.ec2_arn}:*:instance/*", "${local.ec2_arn}:*:volume/*",
      "${local.ec2_arn}:*:network-interface/*", "${local.ec2_arn}:*:launch-template/*",
      "${local.ec2_arn}:*:spot-instances-request/*",
    ]

    condition {
      test     = "StringEquals"
      variable = local.owned_tag
      values   = ["owned"]
    }

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]
    }
  }

  statement {
    sid       = "DeleteOwnedResources"
    actions   = ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"]
    resources = ["${local.ec2_arn}:*:instance/*", "${local.ec2_arn}:*:launch-template/*"]

    condition {
      test     = "StringEquals"
      variable = local.owns_tag
      values   = ["owned"]
    }
  }

  statement {
    sid = "RegionalReadOnly"
    actions = [
      "ec2:DescribeAvailabilityZones", "ec2:DescribeImages", "ec2:DescribeInstances",
      "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplates", "ec2:DescribeSecurityGroups",
      "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets", "ec2:DescribeCapacityReservations",
    ]
    # "*" is required: EC2 Describe* calls support no resource-level permissions.
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.region]
    }
  }

  statement {
    sid       = "ReadAmiParameters"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.partition}:ssm:${var.region}::parameter/aws/service/*"]
  }

  statement {
    sid     = "ReadPrices"
    actions = ["pricing:GetProducts"]
    # "*" is required: the Price List API supports no resource-level permissions.
    resources = ["*"]
  }

  statement {
    sid       = "PassNodeRoleToEc2"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.node.arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }

  statement {
    sid       = "DescribeThisCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [aws_eks_cluster.this.arn]
  }
}

resource "aws_iam_role_policy" "karpenter" {
  name   = "karpenter-controller"
  role   = aws_iam_role.karpenter.id
  policy = data.aws_iam_policy_document.karpenter.json
}

################################################################################
# Managed node groups
################################################################################

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "AmazonSSMManagedInstanceCore",
  ])

  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

# Karpenter's EC2NodeClass names this profile (spec.instanceProfile), so the controller needs
# no iam:*InstanceProfile permissions of its own.
resource "aws_iam_instance_profile" "node" {
  name = "${var.cluster_name}-node"
  role = aws_iam_role.node.name
}

resource "aws_eks_node_group" "this" {
  for_each = local.node_groups

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  instance_types  = each.value.instance_types
  version         = var.kubernetes_version

  scaling_config {
    min_size     = each.value.min_size
    max_size     = each.value.max_size
    desired_size = each.value.desired_size
  }

  update_config {
    max_unavailable = 1
  }

  labels = { "caas.io/node-group" = each.key }

  # The cluster autoscaler / Karpenter moves desired_size; Terraform must not fight it.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}
