"""The README's configuration table, generated from ``Settings``: print, --write or --check."""

from __future__ import annotations

import sys
from pathlib import Path

from portal.settings import REPO_ROOT, Settings

BEGIN, END = "<!-- settings-table -->", "<!-- /settings-table -->"


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, Path):
            try:
                shown = str(default.relative_to(REPO_ROOT))
            except ValueError:
                shown = str(default)
        elif default is None:
            shown = "—"
        else:
            shown = str(getattr(default, "value", default))
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `CAAS_{name.upper()}` | `{shown}` | {description} |")
    return "\n".join(rows)


def updated_readme(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    readme = REPO_ROOT / "README.md"
    current = readme.read_text()
    wanted = updated_readme(current)
    if "--check" in sys.argv:
        if current != wanted:
            sys.exit("README.md's configuration table is stale: "
                     "run scripts/settings_table.py --write")
    elif "--write" in sys.argv:
        readme.write_text(wanted)
    else:
        print(table())
