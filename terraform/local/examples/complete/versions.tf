terraform {
  # Built-in resources only (terraform_data): the local units need no provider at all, so they
  # run offline. terraform_data arrived in 1.4.
  required_version = ">= 1.5.0, < 2.0.0"
}
