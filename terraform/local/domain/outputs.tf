output "zone_id" {
  description = "ID of the hosted zone (created or reused)."
  value       = local.zone_id
}

output "zone_name" {
  description = "DNS name of the hosted zone."
  value       = terraform_data.zone.output.name
}

output "zone_arn" {
  description = "ARN-shaped identifier of the hosted zone."
  value       = "arn:local:route53:::hostedzone/${local.zone_id}"
}

output "name_servers" {
  description = "Name servers to delegate the zone to (illustrative locally)."
  value       = [for n in [1, 2] : "ns${n}.${terraform_data.zone.output.name}"]
}
