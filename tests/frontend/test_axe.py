"""axe-core on every page of the portal, signed out, as a developer and as a platform-admin:
no serious or critical violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext

from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser

PAGES = ["/", "/catalog", "/catalog?kind=teams", "/catalog?kind=environments",
         "/catalog?kind=applications", "/catalog?kind=namespaces&q=zzz-nothing",
         "/catalog/teams/payments", "/catalog/environments/dev", "/templates",
         "/templates/tenant", "/templates/team", "/templates/application",
         "/templates/environment", "/changes", "/search?q=payments", "/search?q=zzz-nothing"]
ADMIN_PAGES = ["/audit"]


def _links(page_urls: list[str], found: list[str]) -> list[str]:
    return page_urls + [u for u in found if u not in page_urls]


def test_no_serious_or_critical_violation_on_any_page(
        new_context: Callable[[], BrowserContext]) -> None:
    anonymous = new_context().new_page()
    anonymous.goto("/login")
    assert serious_violations(anonymous) == [], "/login"

    dev = sign_in(new_context(), "dana")
    dev.goto("/changes")
    # Changes and tasks other tests opened are pages too.
    extra = dev.eval_on_selector_all("main a[href^='/changes/']",
                                     "els => els.slice(0, 3).map(e => e.getAttribute('href'))")
    for url in _links(PAGES, [str(u) for u in extra]):
        dev.goto(url)
        assert serious_violations(dev) == [], url
    admin = sign_in(new_context(), "ada")
    for url in ADMIN_PAGES:
        admin.goto(url)
        assert serious_violations(admin) == [], url
    screenshot(admin, "axe-audit")
