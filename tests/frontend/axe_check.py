"""axe-core in the browser tests: the npm package (exact version in ``tests/frontend/axe``'s
package.json + lock), installed with ``npm ci`` on first use, injected into the page by
Playwright; :func:`serious_violations` lists what axe finds of impact serious or critical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from tests.fakes.github_npm import ensure_installed

AXE_DIR = Path(__file__).resolve().parent / "axe"


def axe_source() -> str:
    """axe.min.js of the locked version; ``npm ci`` when node_modules does not hold it."""
    return (ensure_installed(AXE_DIR) / "axe-core" / "axe.min.js").read_text()


def serious_violations(page: Page) -> list[str]:
    """``rule: target (impact) — help`` for every serious or critical axe violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the portal's CSP (script-src 'self') stays on.
        page.evaluate(axe_source() + "\n;undefined")
    result: dict[str, Any] = page.evaluate("() => axe.run(document)")
    return [f"{v['id']}: {', '.join(map(str, n['target']))} ({v['impact']}) — {v['help']}: "
            f"{n.get('html', '')[:120]} {n.get('failureSummary', '')[:200]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")
            for n in v["nodes"]]
