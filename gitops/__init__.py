"""The GitOps core every domain stands on: forges, git, YAML, quantities, names, layout."""
