# Offline stand-in of the AWS domain unit: a created zone gets a Route53-shaped id derived
# from its terraform_data id; a reused zone id is passed through.
locals {
  create = var.zone_id == null
  tags = merge(var.tags, {
    "caas.io/environment" = var.environment
    "caas.io/tier"        = var.tier
    "caas.io/unit"        = "domain"
  })
}

resource "terraform_data" "zone" {
  input = {
    name          = var.domain_name
    reused        = !local.create
    id            = var.zone_id
    force_destroy = var.force_destroy
    tags          = local.tags
  }
}

locals {
  zone_id = local.create ? "Z${upper(substr(replace(terraform_data.zone.id, "-", ""), 0, 20))}" : var.zone_id
}
