# Offline stand-in of the AWS addons unit: records the ArgoCD bootstrap it would perform (the
# cluster Secret's labels and the root Application) without a cluster to talk to.
locals {
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "addons"
  })
  cluster_labels = merge(
    {
      "argocd.argoproj.io/secret-type" = "cluster"
      "caas.io/environment"            = var.environment
      "caas.io/tier"                   = var.tier
    },
    { for addon in var.addons : "addons.caas.io/${addon}" => "enabled" },
  )
}

resource "terraform_data" "argocd" {
  triggers_replace = {
    cluster   = var.cluster_name
    endpoint  = var.cluster_endpoint
    version   = var.argocd_version
    namespace = var.argocd_namespace
  }

  input = {
    namespace      = var.argocd_namespace
    version        = var.argocd_version
    root_app       = var.root_app_name
    root_app_path  = var.root_app_path
    repo_url       = var.gitops_repo_url
    revision       = var.gitops_revision
    cluster_labels = local.cluster_labels
    zone           = { id = var.zone_id, name = var.zone_name }
    oidc_provider  = var.oidc_provider_arn
    ca_fingerprint = sha256(var.cluster_certificate_authority_data)
    tags           = local.tags
  }
}
