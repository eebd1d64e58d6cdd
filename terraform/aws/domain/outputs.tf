output "zone_id" {
  description = "ID of the hosted zone (created or reused)."
  value       = local.zone.id
}

output "zone_name" {
  description = "DNS name of the hosted zone."
  value       = trimsuffix(local.zone.name, ".")
}

output "zone_arn" {
  description = "ARN of the hosted zone (scopes external-dns and cert-manager permissions)."
  value       = local.zone.arn
}

output "name_servers" {
  description = "Name servers to delegate the zone to from its parent."
  value       = local.zone.name_servers
}
