"""axe-core in the browser tests: the npm package (exact version in ``tests/frontend/axe``'s
package.json + lock), installed with ``npm ci`` on first use, injected into the page by
Playwright; :func:`serious_violations` lists what axe finds of impact serious or critical."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_DIR = Path(__file__).resolve().parent / "axe"
_LOCK = threading.Lock()


def axe_source() -> str:
    """axe.min.js of the locked version; ``npm ci`` when node_modules does not hold it."""
    locked = json.loads((AXE_DIR / "package-lock.json").read_text())
    version = locked["packages"]["node_modules/axe-core"]["version"]
    installed = AXE_DIR / "node_modules" / "axe-core" / "package.json"
    with _LOCK:
        if not installed.exists() or json.loads(installed.read_text())["version"] != version:
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                           cwd=AXE_DIR, check=True, capture_output=True, timeout=600)
    return (AXE_DIR / "node_modules" / "axe-core" / "axe.min.js").read_text()


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
