# Offline stand-in of the AWS backend unit: the same inputs and outputs, built from
# terraform_data so that state, plans and outputs behave like the real thing.
locals {
  name = "caas-${var.environment}"
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "backend"
  })
  parameter_prefix = "/caas/${var.environment}"
}

resource "terraform_data" "kms_key" {
  input = {
    description         = "caas ${var.environment}: state, configuration and secrets"
    deletion_window     = var.kms_deletion_window_in_days
    enable_key_rotation = true
    rotation_period     = var.kms_rotation_period_in_days
    tags                = local.tags
  }
}

resource "terraform_data" "state_bucket" {
  input = {
    name                       = "${local.name}-tfstate-local-${var.region}"
    versioning                 = "Enabled"
    noncurrent_expiration_days = var.noncurrent_version_days
    force_destroy              = var.force_destroy
    encrypted_by               = terraform_data.kms_key.id
    tags                       = local.tags
  }
}

resource "terraform_data" "lock_table" {
  input = {
    name     = "${local.name}-tflock"
    hash_key = "LockID"
    tags     = local.tags
  }
}

resource "terraform_data" "environment_parameter" {
  input = {
    name = "${local.parameter_prefix}/environment"
    value = jsonencode({
      environment = var.environment
      region      = var.region
      tier        = var.tier
      partition   = "local"
    })
  }
}
