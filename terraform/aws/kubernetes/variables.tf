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
  description = "Expose the Kubernetes API endpoint on the internet (restricted by `endpoint_public_access_cidrs`)."
  type        = bool
  default     = true
}

variable "endpoint_public_access_cidrs" {
  description = "Addresses allowed to reach the public API endpoint."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cluster_log_types" {
  description = "Control plane log types sent to CloudWatch."
  type        = list(string)
  default     = ["api", "audit", "authenticator"]
}

variable "karpenter_namespace" {
  description = "Namespace of Karpenter's service account (trusted by its IRSA role)."
  type        = string
  default     = "karpenter"
}
