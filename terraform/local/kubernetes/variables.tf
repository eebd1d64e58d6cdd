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

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must start with a letter and hold letters, digits and '-' (at most 100)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and node groups, e.g. `1.31`."
  type        = string

  validation {
    condition     = contains(["1.30", "1.31", "1.32", "1.33"], var.kubernetes_version)
    error_message = "kubernetes_version must be one of 1.30, 1.31, 1.32, 1.33."
  }
}

variable "vpc_id" {
  description = "VPC of the cluster (the network unit's `vpc_id`)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Subnets for the nodes and the control plane's interfaces (the network unit's `private_subnet_ids`)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 1
    error_message = "private_subnet_ids must name at least one subnet."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets the control plane may place load-balancer interfaces in."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key that envelope-encrypts the cluster's Secrets (the backend unit's `kms_key_arn`); null disables it."
  type        = string
  default     = null
}

variable "node_groups" {
  description = "Managed node groups: name, instance types and scaling bounds."
  type = list(object({
    name           = string
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
  }))

  validation {
    condition = alltrue([
      for group in var.node_groups :
      group.min_size >= 0 && group.min_size <= group.desired_size && group.desired_size <= group.max_size && group.max_size >= 1
    ])
    error_message = "Each node group needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }

  validation {
    condition     = length(distinct([for group in var.node_groups : group.name])) == length(var.node_groups)
    error_message = "Node group names must be unique."
  }
}

variable "endpoint_public_access" {
  description = "Also expose the Kubernetes API endpoint on the internet, reachable only from `endpoint_public_access_cidrs`. Off: the API is reached from inside the VPC (VPN, bastion, peering)."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "Allow-list of IPv4 CIDRs that may reach the public API endpoint (required when `endpoint_public_access` is true; 0.0.0.0/0 is refused)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.endpoint_public_access_cidrs : can(cidrhost(cidr, 0)) && !endswith(cidr, "/0")])
    error_message = "endpoint_public_access_cidrs must be IPv4 CIDR blocks narrower than /0."
  }

  validation {
    condition     = !var.endpoint_public_access || length(var.endpoint_public_access_cidrs) > 0
    error_message = "endpoint_public_access needs at least one CIDR in endpoint_public_access_cidrs."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the control-plane logs (a CloudWatch retention value)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ..., 365, ..., 3653)."
  }
}

variable "karpenter_namespace" {
  description = "Namespace of Karpenter's service account (trusted by its IRSA role)."
  type        = string
  default     = "karpenter"
}
