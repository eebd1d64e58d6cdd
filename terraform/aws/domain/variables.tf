variable "environment" {
  description = "Name of the environment (the folder under `envs/`); prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.environment))
    error_message = "environment must be 1-20 characters: lowercase letters, digits and '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region the unit runs in, e.g. `eu-west-1`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like an AWS region, e.g. eu-west-1."
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

variable "domain_name" {
  description = "DNS name of the environment's zone, e.g. `dev.example.com`."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS name such as dev.example.com."
  }
}

variable "zone_id" {
  description = "Reuse this existing Route53 hosted zone instead of creating one."
  type        = string
  default     = null

  validation {
    condition     = var.zone_id == null || can(regex("^Z[A-Z0-9]{1,32}$", var.zone_id))
    error_message = "zone_id must be a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ."
  }
}

variable "force_destroy" {
  description = "Delete the records of a created zone on destroy. Meant for `dev` only."
  type        = bool
  default     = false
}
