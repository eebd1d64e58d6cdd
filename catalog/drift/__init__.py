"""Drift: where git, the catalog, the cluster and Keycloak no longer agree (issue 16).

One module per concept: ``snapshot`` (main read once), a module per side (``git_side``,
``catalog_side``, ``cluster_side``, ``identity_side``), ``store`` (findings kept so pages are
fast), ``service`` (run, read, fix), ``job`` (the worker's periodic run), ``views`` (API).
"""
