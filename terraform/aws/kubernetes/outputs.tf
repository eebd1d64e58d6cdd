output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API server."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA certificate of the API server."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_version" {
  description = "Kubernetes version of the control plane."
  value       = aws_eks_cluster.this.version
}

output "oidc_issuer_url" {
  description = "OIDC issuer of the cluster's service-account tokens."
  value       = local.oidc_issuer
}

output "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider (IRSA roles trust it)."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "cluster_security_group_id" {
  description = "Security group shared by the control plane and the nodes (tagged for Karpenter)."
  value       = aws_security_group.cluster.id
}

output "node_role_arn" {
  description = "IAM role of the managed nodes (and of Karpenter-launched nodes)."
  value       = aws_iam_role.node.arn
}

output "karpenter_role_arn" {
  description = "IRSA role of the Karpenter controller."
  value       = aws_iam_role.karpenter.arn
}

output "node_groups" {
  description = "Names of the managed node groups."
  value       = keys(aws_eks_node_group.this)
}

output "node_instance_profile_name" {
  description = "Instance profile of the node role, for Karpenter's EC2NodeClass `spec.instanceProfile`."
  value       = aws_iam_instance_profile.node.name
}
