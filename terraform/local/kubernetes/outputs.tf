output "cluster_name" {
  description = "Name of the cluster."
  value       = terraform_data.cluster.output.name
}

output "cluster_endpoint" {
  description = "URL of the (simulated) Kubernetes API server."
  value       = "https://${lower(local.cluster_hex)}.${var.cluster_name}.k8s.local"
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the API server (a placeholder locally)."
  value       = base64encode("local CA of ${var.cluster_name}")
}

output "cluster_version" {
  description = "Kubernetes version of the control plane."
  value       = terraform_data.cluster.output.version
}

output "oidc_issuer_url" {
  description = "OIDC issuer of the cluster's service-account tokens."
  value       = local.oidc_issuer
}

output "oidc_provider_arn" {
  description = "ARN-shaped identifier of the IAM OIDC provider."
  value       = "arn:local:iam::000000000000:oidc-provider/${replace(local.oidc_issuer, "https://", "")}"
}

output "cluster_security_group_id" {
  description = "Security group shared by the control plane and the nodes."
  value       = "sg-${lower(substr(local.cluster_hex, 0, 17))}"
}

output "node_role_arn" {
  description = "IAM role of the nodes."
  value       = "arn:local:iam::000000000000:role/${var.cluster_name}-node"
}

output "karpenter_role_arn" {
  description = "IRSA role of the Karpenter controller."
  value       = "arn:local:iam::000000000000:role/${var.cluster_name}-karpenter"
}

output "node_groups" {
  description = "Names of the node groups."
  value       = keys(terraform_data.node_group)
}

output "node_instance_profile_name" {
  description = "Instance profile of the node role, for Karpenter's EC2NodeClass `spec.instanceProfile`."
  value       = "${var.cluster_name}-node"
}
