"""What a pull request says: labels, body (routing, files, checks) and the preview comment."""

from __future__ import annotations

from portal.redact import redact
from scaffolder.changeset import Prepared
from scaffolder.models import CheckResult

_MARK = {"success": "✅", "pending": "⏳"}


def labels(prepared: Prepared) -> list[str]:
    return ["caas", f"template:{prepared.template.name}", f"tier:{prepared.tier.value}",
            *(["envs"] if prepared.touches_envs else []), *prepared.extra_labels]


def body(prepared: Prepared, checks: list[CheckResult]) -> str:
    lines = [prepared.body, "", f"Template `{prepared.template.name}` version "
             f"`{prepared.template.version[:12]}` → `{prepared.target}`.", "",
             f"**Review:** {prepared.routing}", ""]
    return redact("\n".join(lines) + preview(prepared, checks))


def preview(prepared: Prepared, checks: list[CheckResult]) -> str:
    files = "\n".join(f"- `{f.path}` ({f.status})" for f in prepared.files)
    results = "\n".join(f"- {_MARK.get(c.state, '❌')} **{c.name}**: {c.summary}"
                        for c in checks)
    return f"### Files\n{files}\n\n### Checks\n{results}\n"
