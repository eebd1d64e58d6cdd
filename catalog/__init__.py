"""catalog: the index of the GitOps repository (teams, namespaces, environments, applications),
their status and timeline, cost from quotas, and a Backstage-shaped export."""
