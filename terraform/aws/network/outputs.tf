output "vpc_id" {
  description = "ID of the VPC (created or reused)."
  value       = local.create ? aws_vpc.this[0].id : var.vpc_id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = local.create ? aws_vpc.this[0].cidr_block : local.existing_vpc.cidr_block
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, in zone order."
  value       = local.create ? aws_subnet.public[*].id : local.existing_pub
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, in zone order."
  value       = local.create ? aws_subnet.private[*].id : local.existing_priv
}

output "public_subnet_cidrs" {
  description = "CIDR blocks of the public subnets."
  value       = local.create ? aws_subnet.public[*].cidr_block : [for id in local.existing_pub : local.existing_cidrs[id]]
}

output "private_subnet_cidrs" {
  description = "CIDR blocks of the private subnets."
  value       = local.create ? aws_subnet.private[*].cidr_block : [for id in local.existing_priv : local.existing_cidrs[id]]
}

output "zones" {
  description = "Availability zones the subnets span."
  value       = var.zones
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways (egress allow-lists)."
  value       = aws_eip.nat[*].public_ip
}
