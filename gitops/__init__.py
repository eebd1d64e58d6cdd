"""The GitOps core: what every domain reads and writes of the GitOps repository."""
