"""Write one kustomize overlay per chosen environment: ``envs/<env>/{kustomization,quota}.yaml``.

Cookiecutter cannot repeat a folder per list item, so this hook does what Backstage does with
the ``each`` step of ``template.yaml``: render the overlay folder (``{{ "{{" }}cookiecutter._overlay}}``,
copied here without rendering) once per environment, with the same answers plus
``environment``, through cookiecutter's own Jinja environment — the overlay files are the one
source of truth for both. The answers arrive as one JSON document (rendered with ``tojson``
twice: a Python string literal holding JSON) and are parsed as data. Runs in the generated
folder, i.e. the tenant's root (``tenants/<team>/<namespace>/``).
"""

import json
import os
import re
import shutil
import sys

from cookiecutter.environment import StrictEnvironment

ANSWERS = json.loads({{ cookiecutter | tojson | tojson }})
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def main():
    overlay = ANSWERS["_overlay"]
    raw = ANSWERS.get("environments") or ""
    environments = raw.split(",") if raw else []
    env = StrictEnvironment(context={"cookiecutter": ANSWERS}, keep_trailing_newline=True)
    names = sorted(os.listdir(overlay))
    for environment in environments:
        # Paths are built only from DNS-1123 labels, whatever called this hook.
        if not DNS_LABEL.match(environment) or len(environment) > 63:
            sys.exit(f"environment name {environment!r} is not a DNS-1123 label")
        context = {"cookiecutter": dict(ANSWERS, environment=environment)}
        folder = os.path.join("envs", environment)
        os.makedirs(folder, exist_ok=True)
        for name in names:
            with open(os.path.join(overlay, name), encoding="utf-8") as handle:
                source = handle.read()
            text = env.from_string(source).render(**context)
            with open(os.path.join(folder, name), "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
    shutil.rmtree(overlay)


if __name__ == "__main__":
    main()
