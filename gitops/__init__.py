"""The GitOps core every domain stands on: what every domain reads and writes of the GitOps
repository (forges, git, YAML, quantities, names, layout, lists, object names)."""
