variable "environment" {
  description = "Name of the environment (the folder under `envs/`); prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be 1-20 characters: lowercase letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "Region the unit runs in: `local` or an AWS-style name such as `eu-west-1` (recorded only)."
  type        = string

  validation {
    condition     = var.region == "local" || can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be local or look like an AWS region, e.g. eu-west-1."
  }
}

variable "tier" {
  description = "Environment tier: `dev`, `staging` or `prod`. Decides protections such as deletion guards."
  type        = string
  default     = "dev"

  validation {
    condition     = contains(["dev", "staging", "prod"], var.tier)
    error_message = "tier must be one of dev, staging, prod."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of the `caas.io/*` tags the unit sets itself)."
  type        = map(string)
  default     = {}
}

variable "force_destroy" {
  description = "Allow destroying the state bucket while it still holds objects. Meant for `dev` only."
  type        = bool
  default     = false
}

variable "kms_deletion_window_in_days" {
  description = "Days AWS waits before deleting the environment's KMS key after a destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "kms_rotation_period_in_days" {
  description = "Days between automatic rotations of the environment's KMS key (90-2560)."
  type        = number
  default     = 365

  validation {
    condition     = var.kms_rotation_period_in_days >= 90 && var.kms_rotation_period_in_days <= 2560
    error_message = "kms_rotation_period_in_days must be between 90 and 2560."
  }
}

variable "noncurrent_version_days" {
  description = "Days a superseded state revision is kept before S3 expires it."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}
