"""Re-render the template units of gitops-skeleton/ (every folder holding .caas-answers.yaml)
from their stored answers with the current templates, as the portal would.

Run after changing a template: ``python scripts/render_skeleton_units.py``;
tests/templates/test_skeleton.py checks the units are exactly template output.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gitops import lists
from scaffolder.registry import load_template
from scaffolder.render import render

REPO = Path(__file__).resolve().parents[1]
SKELETON = REPO / "gitops-skeleton"


def main() -> None:
    namespaces = lists.team_namespaces(
        p.relative_to(SKELETON).as_posix() for p in SKELETON.rglob("*") if p.is_file())
    for answers_file in sorted(SKELETON.rglob(".caas-answers.yaml")):
        unit = answers_file.parent
        stored = yaml.safe_load(answers_file.read_text(encoding="utf-8"))
        template = load_template(REPO / "templates" / stored["template"], trusted=True)
        files = render(template, stored["answers"], target=unit.relative_to(SKELETON).as_posix())
        for old in [p for p in unit.rglob("*") if p.is_file()]:
            old.unlink()
        for path, data in files.items():
            if path.startswith("teams/") and path.endswith("/appproject.yaml"):
                # The destinations list is derived from the team's tenants (gitops.lists).
                data = lists.with_destinations(data, namespaces.get(path.split("/")[1], set()))
            out = SKELETON / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        print(f"{unit.relative_to(SKELETON)}: {len(files)} files")


if __name__ == "__main__":
    main()
