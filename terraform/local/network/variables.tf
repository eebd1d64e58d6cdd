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

variable "cidr" {
  description = "IPv4 CIDR block of the VPC. When `vpc_id` is set, the CIDR the existing VPC is expected to have."
  type        = string

  validation {
    condition     = can(cidrhost(var.cidr, 0)) && tonumber(split("/", var.cidr)[1]) >= 16 && tonumber(split("/", var.cidr)[1]) <= 24
    error_message = "cidr must be an IPv4 CIDR block between /16 and /24, e.g. 10.0.0.0/16."
  }
}

variable "zones" {
  description = "Availability zones to spread the subnets over, e.g. `[\"eu-west-1a\", \"eu-west-1b\"]`."
  type        = list(string)

  validation {
    condition     = length(var.zones) >= 1 && length(var.zones) <= 6
    error_message = "zones must list between 1 and 6 availability zones."
  }
}

variable "public_subnets" {
  description = "CIDR blocks of the public subnets, one per zone in order. Ignored when `vpc_id` is set."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.public_subnets : can(cidrhost(cidr, 0))])
    error_message = "public_subnets must be IPv4 CIDR blocks."
  }
}

variable "private_subnets" {
  description = "CIDR blocks of the private subnets (nodes and pods), one per zone in order. Ignored when `vpc_id` is set."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.private_subnets : can(cidrhost(cidr, 0))])
    error_message = "private_subnets must be IPv4 CIDR blocks."
  }
}

variable "vpc_id" {
  description = "Reuse this existing VPC instead of creating one. Its subnets are found by the `kubernetes.io/role/elb` and `kubernetes.io/role/internal-elb` tags."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "enable_nat_gateway" {
  description = "Give the private subnets outbound internet access through NAT gateways."
  type        = bool
  default     = true
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all zones (cheaper) instead of one per zone (survives a zone failure)."
  type        = bool
  default     = true
}

variable "cluster_name" {
  description = "Name of the cluster that will use these subnets; tags them for load balancers and Karpenter discovery."
  type        = string
  default     = null
}

variable "flow_logs" {
  description = "Send the VPC's flow logs (all traffic) to a KMS-encrypted CloudWatch log group."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Days CloudWatch keeps the VPC flow logs (a CloudWatch retention value)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, ..., 3653)."
  }
}
