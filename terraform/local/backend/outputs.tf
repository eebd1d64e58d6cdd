output "state_bucket" {
  description = "Name of the (simulated) bucket that holds the other units' state."
  value       = terraform_data.state_bucket.output.name
}

output "state_bucket_arn" {
  description = "ARN-shaped identifier of the state bucket."
  value       = "arn:local:s3:::${terraform_data.state_bucket.output.name}"
}

output "lock_table" {
  description = "Name of the (simulated) state lock table."
  value       = terraform_data.lock_table.output.name
}

output "kms_key_arn" {
  description = "ARN-shaped identifier of the environment's key (state, parameters, cluster Secrets)."
  value       = "arn:local:kms:${var.region}:000000000000:key/${terraform_data.kms_key.id}"
}

output "parameter_prefix" {
  description = "Path under which the environment's configuration lives."
  value       = local.parameter_prefix
}

output "region" {
  description = "Region of the backend."
  value       = var.region
}
