"""The drift page in a real browser: an admin checks now (the run goes in the background; a
refresh shows its results), the sides table says what each side could check, the page passes
axe; a developer sees no "Check now"."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


def test_admin_checks_now_and_the_sides_say_so(
        new_context: Callable[[], BrowserContext]) -> None:
    dev = sign_in(new_context(), "dana")
    dev.goto("/drift")
    expect(dev.get_by_role("heading", name="Drift", exact=True)).to_be_visible()
    expect(dev.get_by_role("button", name="Check now")).to_have_count(0)

    admin = sign_in(new_context(), "ada")
    admin.goto("/drift")
    admin.get_by_role("button", name="Check now").click()
    expect(admin.locator("#drift-done")).to_contain_text("started")
    deadline = time.monotonic() + 180
    while admin.locator("#drift-last-run").count() == 0:  # "Running since …", then results
        assert time.monotonic() < deadline, admin.content()[:2000]
        time.sleep(0.5)
        admin.reload()
    expect(admin.locator("#drift-last-run")).to_contain_text("succeeded")
    sides = admin.get_by_role("table", name="When each side was last checked")
    for side, status in (("git", "checked"), ("catalog", "checked"),
                         ("cluster", "not connected"), ("keycloak", "not configured")):
        expect(sides.get_by_role("row").filter(has_text=side)).to_contain_text(status)
    admin.get_by_label("Side", exact=True).select_option("git")
    admin.get_by_role("button", name="Filter").click()
    admin.wait_for_url("**/drift?*side=git*")
    expect(admin.get_by_label("Side", exact=True)).to_have_value("git")
    assert serious_violations(admin) == []
    screenshot(admin, "drift")
