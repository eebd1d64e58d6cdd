provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

locals {
  create = var.zone_id == null
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "domain"
  })
}

resource "aws_route53_zone" "this" {
  #checkov:skip=CKV2_AWS_38:DNSSEC signing needs a us-east-1 asymmetric KMS key and a DS record in the parent zone, which this unit does not own; enable it where the parent is delegated
  #checkov:skip=CKV2_AWS_39:query logging must go to a us-east-1 log group with a Route 53 resource policy (an account-wide setup outside this regional unit)
  count = local.create ? 1 : 0

  name          = var.domain_name
  comment       = "caas ${var.environment}: managed by the caas-portal reconciler"
  force_destroy = var.force_destroy
}

data "aws_route53_zone" "existing" {
  count = local.create ? 0 : 1

  zone_id = var.zone_id
}

locals {
  zone = local.create ? {
    id           = aws_route53_zone.this[0].zone_id
    name         = aws_route53_zone.this[0].name
    arn          = aws_route53_zone.this[0].arn
    name_servers = aws_route53_zone.this[0].name_servers
    } : {
    id           = data.aws_route53_zone.existing[0].zone_id
    name         = data.aws_route53_zone.existing[0].name
    arn          = data.aws_route53_zone.existing[0].arn
    name_servers = data.aws_route53_zone.existing[0].name_servers
  }
}
