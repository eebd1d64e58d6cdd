"""Write one kustomize overlay per chosen environment: envs/<env>/{kustomization,quota}.yaml.

Cookiecutter cannot repeat a folder per list item, so this hook does it. The answers arrive as
one JSON document (rendered with ``tojson`` twice: a Python string literal holding JSON), are
parsed as data and written with a YAML dumper — never by pasting strings into YAML. Runs in the
generated folder, i.e. the tenant's root (``tenants/<team>/<namespace>/``).
"""

import json
import os
import re
import sys

import yaml

ANSWERS = json.loads({{ cookiecutter | tojson | tojson }})
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def as_list(value):
    # The plain cookiecutter CLI may hand a single choice over as a string.
    if isinstance(value, str):
        return [value]
    return list(value or [])


def main():
    environments = as_list(ANSWERS["environments"])
    overrides = ANSWERS.get("environment_quotas") or {}
    for env in environments:
        # Paths are built only from DNS-1123 labels, whatever called this hook.
        if not isinstance(env, str) or not DNS_LABEL.match(env) or len(env) > 63:
            sys.exit(f"environment name {env!r} is not a DNS-1123 label")
        override = overrides.get(env) or {}
        cpu = str(override.get("cpu") or ANSWERS["cpu_quota"])
        memory = str(override.get("memory") or ANSWERS["memory_quota"])
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["../../base"],
            "labels": [
                {"pairs": {"caas.io/environment": env}, "includeSelectors": False},
            ],
            "patches": [{"path": "quota.yaml"}],
        }
        quota = {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "tenant-quota", "namespace": ANSWERS["namespace"]},
            "spec": {
                "hard": {
                    "requests.cpu": cpu,
                    "limits.cpu": cpu,
                    "requests.memory": memory,
                    "limits.memory": memory,
                    "requests.storage": str(ANSWERS["storage_quota"]),
                    "pods": str(ANSWERS["max_pods"]),
                }
            },
        }
        folder = os.path.join("envs", env)
        os.makedirs(folder, exist_ok=True)
        for name, document in (("kustomization.yaml", kustomization), ("quota.yaml", quota)):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
                handle.write(f"# The tenant in the environment {env}; quota for this environment.\n")
                yaml.safe_dump(document, handle, sort_keys=False, default_flow_style=False)


if __name__ == "__main__":
    main()
