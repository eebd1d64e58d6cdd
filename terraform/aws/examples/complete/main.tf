# Runs the five units in order in one configuration, wiring each unit's outputs into the next
# the same way the reconciler does (reconciler/units.py), which runs them as separate states.

locals {
  environment = "example"
  region      = "eu-west-1"
  tier        = "dev"
  tags        = { "caas.io/example" = "complete" }
}

module "backend" {
  source = "../../backend"

  environment   = local.environment
  region        = local.region
  tier          = local.tier
  tags          = local.tags
  force_destroy = true
}

module "network" {
  source = "../../network"

  environment     = local.environment
  region          = local.region
  tier            = local.tier
  tags            = local.tags
  cidr            = "10.20.0.0/16"
  zones           = ["eu-west-1a", "eu-west-1b"]
  private_subnets = ["10.20.0.0/20", "10.20.16.0/20"]
  public_subnets  = ["10.20.32.0/20", "10.20.48.0/20"]
  cluster_name    = "caas-example"
}

module "domain" {
  source = "../../domain"

  environment   = local.environment
  region        = local.region
  tier          = local.tier
  tags          = local.tags
  domain_name   = "example.caas.internal"
  force_destroy = true
}

module "kubernetes" {
  source = "../../kubernetes"

  environment        = local.environment
  region             = local.region
  tier               = local.tier
  tags               = local.tags
  cluster_name       = "caas-example"
  kubernetes_version = "1.31"
  kms_key_arn        = module.backend.kms_key_arn
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  public_subnet_ids  = module.network.public_subnet_ids
  node_groups = [
    { name = "general", instance_types = ["m6i.large"], min_size = 1, max_size = 3, desired_size = 2 },
  ]
}

module "addons" {
  source = "../../addons"

  environment                        = local.environment
  region                             = local.region
  tier                               = local.tier
  tags                               = local.tags
  cluster_name                       = module.kubernetes.cluster_name
  cluster_endpoint                   = module.kubernetes.cluster_endpoint
  cluster_certificate_authority_data = module.kubernetes.cluster_certificate_authority_data
  oidc_provider_arn                  = module.kubernetes.oidc_provider_arn
  zone_id                            = module.domain.zone_id
  zone_name                          = module.domain.zone_name
  addons                             = ["cert-manager", "external-dns"]
  gitops_repo_url                    = "https://git.example.com/platform/gitops.git"
}

output "cluster_endpoint" {
  description = "API server of the example cluster."
  value       = module.kubernetes.cluster_endpoint
}

output "argocd_namespace" {
  description = "Where ArgoCD runs."
  value       = module.addons.argocd_namespace
}
