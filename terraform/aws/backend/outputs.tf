output "state_bucket" {
  description = "Name of the S3 bucket that holds the other units' state."
  value       = aws_s3_bucket.state.id
}

output "state_bucket_arn" {
  description = "ARN of the state bucket."
  value       = aws_s3_bucket.state.arn
}

output "lock_table" {
  description = "Name of the DynamoDB table used for state locking."
  value       = aws_dynamodb_table.lock.name
}

output "kms_key_arn" {
  description = "ARN of the environment's KMS key (state, parameters, cluster Secrets)."
  value       = aws_kms_key.this.arn
}

output "parameter_prefix" {
  description = "SSM Parameter Store path under which the environment's configuration lives."
  value       = local.parameter_prefix
}

output "region" {
  description = "Region of the backend (the other units' state lives here)."
  value       = var.region
}
