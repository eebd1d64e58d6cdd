provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# No helm or kubernetes provider: those would need a reachable cluster at plan time and
# extra provider downloads. ArgoCD is installed with kubectl from a pinned upstream manifest;
# from then on ArgoCD owns every other addon through the GitOps repository.
data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

locals {
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "addons"
  })
  install_manifest_url = "https://raw.githubusercontent.com/argoproj/argo-cd/${var.argocd_version}/manifests/install.yaml"

  # The in-cluster "cluster" Secret carries the environment's facts as labels and annotations
  # (the GitOps-bridge pattern): ApplicationSets select addons by label and read values from
  # the annotations, so Terraform never has to template the addons themselves.
  cluster_secret = {
    apiVersion = "v1"
    kind       = "Secret"
    metadata = {
      name      = "in-cluster"
      namespace = var.argocd_namespace
      labels = merge(
        {
          "argocd.argoproj.io/secret-type" = "cluster"
          "caas.io/environment"            = var.environment
          "caas.io/tier"                   = var.tier
        },
        { for addon in var.addons : "addons.caas.io/${addon}" => "enabled" },
      )
      annotations = {
        "caas.io/cluster-name"      = var.cluster_name
        "caas.io/region"            = var.region
        "caas.io/zone-id"           = var.zone_id
        "caas.io/zone-name"         = var.zone_name
        "caas.io/oidc-provider-arn" = var.oidc_provider_arn
      }
    }
    stringData = {
      name   = "in-cluster"
      server = "https://kubernetes.default.svc"
    }
  }

  # The one Application Terraform creates: it syncs bootstrap/root.yaml (the App of Apps).
  root_application = {
    apiVersion = "argoproj.io/v1alpha1"
    kind       = "Application"
    metadata = {
      name       = var.root_app_name
      namespace  = var.argocd_namespace
      finalizers = ["resources-finalizer.argocd.argoproj.io"]
    }
    spec = {
      project = "default"
      source = {
        repoURL        = var.gitops_repo_url
        targetRevision = var.gitops_revision
        path           = dirname(var.root_app_path)
        directory      = { include = basename(var.root_app_path) }
      }
      destination = { server = "https://kubernetes.default.svc", namespace = var.argocd_namespace }
      syncPolicy = {
        automated   = { prune = true, selfHeal = true }
        syncOptions = ["ServerSideApply=true"]
      }
    }
  }

  manifests = jsonencode({
    apiVersion = "v1"
    kind       = "List"
    items      = [local.cluster_secret, local.root_application]
  })
}

resource "terraform_data" "argocd" {
  # Only the desired state triggers a re-run; the short-lived token must not.
  triggers_replace = {
    cluster   = var.cluster_name
    endpoint  = var.cluster_endpoint
    version   = var.argocd_version
    namespace = var.argocd_namespace
    manifests = sha256(local.manifests)
  }

  input = {
    namespace = var.argocd_namespace
    version   = var.argocd_version
    root_app  = var.root_app_name
  }

  provisioner "local-exec" {
    command = "sh ${path.module}/scripts/bootstrap-argocd.sh"

    environment = {
      KUBECTL              = var.kubectl_bin
      KUBE_SERVER          = var.cluster_endpoint
      KUBE_CA_DATA         = var.cluster_certificate_authority_data
      KUBE_TOKEN           = data.aws_eks_cluster_auth.this.token
      ARGOCD_NAMESPACE     = var.argocd_namespace
      ARGOCD_INSTALL_URL   = local.install_manifest_url
      ARGOCD_BOOTSTRAP     = local.manifests
      ARGOCD_READY_TIMEOUT = "${var.ready_timeout_seconds}s"
    }
  }
}
