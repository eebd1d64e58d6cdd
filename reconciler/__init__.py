"""Reconciler: merge events → planned units → jobs (Terraform, ArgoCD, Keycloak)."""
