"""Pre-merge check engines: manifest schemas, ``kubectl kustomize`` builds, Gatekeeper policies.

- ``scaffolder.checks.manifests`` — ``validate_manifest(obj) -> list[str]``,
  ``validate_documents(docs) -> list[str]``, ``load_documents(text) -> list[dict]``.
- ``scaffolder.checks.kustomize`` — ``build(path) -> str``, ``KustomizeError``.
- ``scaffolder.checks.policy`` — ``PolicySet.from_directory(path)``, ``PolicySet.evaluate(obj)``
  → ``list[Violation]``.
- ``scaffolder.checks.answer_rules`` — the platform rules for form answers that
  ``scaffolder.parameters.validate_answers`` applies after JSON Schema.
"""
