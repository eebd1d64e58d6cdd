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
  description = "Name of the EKS cluster (the kubernetes unit's `cluster_name`)."
  type        = string
}

variable "cluster_endpoint" {
  description = "API server URL (the kubernetes unit's `cluster_endpoint`)."
  type        = string

  validation {
    condition     = startswith(var.cluster_endpoint, "https://")
    error_message = "cluster_endpoint must be an https:// URL."
  }
}

variable "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the API server (the kubernetes unit's output of that name)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "IRSA OIDC provider ARN (the kubernetes unit's output); published to the addons' ApplicationSets."
  type        = string
}

variable "zone_id" {
  description = "Hosted zone of the environment (the domain unit's `zone_id`), for external-dns and cert-manager."
  type        = string
}

variable "zone_name" {
  description = "DNS name of the environment's zone (the domain unit's `zone_name`)."
  type        = string
}

variable "addons" {
  description = "Addons enabled in this environment; each becomes an `addons.caas.io/<name>=enabled` cluster label that the GitOps repository's ApplicationSets select on."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for addon in var.addons : can(regex("^[a-z][a-z0-9-]{0,62}$", addon))])
    error_message = "addons must be lowercase names of letters, digits and '-'."
  }
}

variable "gitops_repo_url" {
  description = "URL of the GitOps repository ArgoCD syncs from (may be empty locally: recorded only)."
  type        = string
}

variable "gitops_revision" {
  description = "Branch, tag or commit of the GitOps repository to follow."
  type        = string
  default     = "main"
}

variable "root_app_path" {
  description = "Path of the App of Apps manifest inside the GitOps repository."
  type        = string
  default     = "bootstrap/root.yaml"
}

variable "root_app_name" {
  description = "Name of the Application that syncs `root_app_path`."
  type        = string
  default     = "bootstrap"
}

variable "argocd_namespace" {
  description = "Namespace ArgoCD is installed into."
  type        = string
  default     = "argocd"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.argocd_namespace))
    error_message = "argocd_namespace must be a Kubernetes namespace name."
  }
}

variable "argocd_version" {
  description = "ArgoCD release whose upstream install manifest is applied (a git tag, e.g. `v2.14.11`)."
  type        = string
  default     = "v2.14.11"

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+$", var.argocd_version))
    error_message = "argocd_version must be a release tag such as v2.14.11."
  }
}

variable "kubectl_bin" {
  description = "kubectl executable used by the bootstrap script."
  type        = string
  default     = "kubectl"
}

variable "ready_timeout_seconds" {
  description = "How long the bootstrap waits for ArgoCD's CRDs and repo server."
  type        = number
  default     = 300
}
