provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name = "caas-${var.environment}"
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "backend"
  })
  # Account and region make the bucket name globally unique without a random suffix, so a
  # re-created backend lands on the same name and the other units' state keys stay valid.
  bucket_name      = "${local.name}-tfstate-${data.aws_caller_identity.current.account_id}-${var.region}"
  parameter_prefix = "/caas/${var.environment}"
  partition        = data.aws_partition.current.partition
  account_id       = data.aws_caller_identity.current.account_id
}

# One key per environment encrypts the state bucket, the lock table, the configuration
# parameters and (through the kubernetes unit) the cluster's Secrets.
# The key policy is explicit (no implicit default policy): the account administers the key
# through IAM, and CloudWatch Logs may use it for this account's log groups in this region
# (the kubernetes unit's control-plane logs). Key policies: docs.aws.amazon.com/kms/latest/
# developerguide/key-policy-default.html; logs: .../AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html

resource "aws_kms_key" "this" {
  description             = "caas ${var.environment}: state, configuration and secrets"
  enable_key_rotation     = true
  rotation_period_in_days = var.kms_rotation_period_in_days
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "AccountAdministersKeyThroughIam"
        Effect = "Allow"
        # In a key policy "*" means this key and nothing else; kms:* for the account root is
        # what lets IAM policies grant use of the key (without it the key can become unmanageable).
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*" # this key (key policy)
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

resource "aws_s3_bucket" "state" {
  #checkov:skip=CKV_AWS_144:one region per environment; cross-region replication of state is an account-level DR choice, not this unit's
  #checkov:skip=CKV2_AWS_62:no consumer of state-object events; Terraform reads the bucket directly
  #checkov:skip=CKV_AWS_18:access is audited by the account's CloudTrail data events; a log bucket per state bucket would need its own state
  bucket        = local.bucket_name
  force_destroy = var.force_destroy
}

# Versioning keeps every state revision; old ones expire so the bucket does not grow forever.
resource "aws_s3_bucket_lifecycle_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    id     = "expire-old-state-revisions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.state]
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket = aws_s3_bucket.state.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

data "aws_iam_policy_document" "state" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.state.arn,
      "${aws_s3_bucket.state.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "state" {
  bucket = aws_s3_bucket.state.id
  policy = data.aws_iam_policy_document.state.json

  # The public access block must exist first, or S3 may judge the policy public.
  depends_on = [aws_s3_bucket_public_access_block.state]
}

resource "aws_dynamodb_table" "lock" {
  name         = "${local.name}-tflock"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = var.tier != "dev"
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  deletion_protection_enabled = var.tier == "prod"
}

# The environment's own description, readable by tooling running in the account.
resource "aws_ssm_parameter" "environment" {
  name   = "${local.parameter_prefix}/environment"
  type   = "SecureString"
  key_id = aws_kms_key.this.arn
  value = jsonencode({
    environment = var.environment
    region      = var.region
    tier        = var.tier
    partition   = data.aws_partition.current.partition
  })
}
