output "argocd_namespace" {
  description = "Namespace ArgoCD runs in."
  value       = terraform_data.argocd.output.namespace
}

output "argocd_version" {
  description = "ArgoCD release recorded for the environment."
  value       = terraform_data.argocd.output.version
}

output "root_app_name" {
  description = "Name of the Application that syncs the App of Apps."
  value       = terraform_data.argocd.output.root_app
}

output "root_app_path" {
  description = "Path of the App of Apps manifest in the GitOps repository."
  value       = terraform_data.argocd.output.root_app_path
}

output "gitops_repo_url" {
  description = "Repository ArgoCD follows."
  value       = terraform_data.argocd.output.repo_url
}

output "addons" {
  description = "Addons enabled through cluster labels."
  value       = var.addons
}
