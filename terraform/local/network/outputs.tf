output "vpc_id" {
  description = "ID of the VPC (created or reused)."
  value       = local.vpc_id
}

output "vpc_cidr" {
  description = "CIDR block of the VPC."
  value       = terraform_data.vpc.output.cidr
}

output "public_subnet_ids" {
  description = "IDs of the public subnets, in zone order."
  value       = [for subnet in terraform_data.public_subnet : "subnet-${substr(replace(subnet.id, "-", ""), 0, 17)}"]
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, in zone order."
  value       = [for subnet in terraform_data.private_subnet : "subnet-${substr(replace(subnet.id, "-", ""), 0, 17)}"]
}

output "public_subnet_cidrs" {
  description = "CIDR blocks of the public subnets."
  value       = [for subnet in terraform_data.public_subnet : subnet.output.cidr]
}

output "private_subnet_cidrs" {
  description = "CIDR blocks of the private subnets."
  value       = [for subnet in terraform_data.private_subnet : subnet.output.cidr]
}

output "zones" {
  description = "Availability zones the subnets span."
  value       = var.zones
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways (documentation range locally)."
  value       = [for nat in terraform_data.nat_gateway : nat.output.public_ip]
}
