"""The change page's Terraform plan preview names every unit of a new environment: the units
Terraform could plan with their counts, the others "planned after X is applied (needs its
outputs)" — planned for real by the in-process worker with the terraform CLI (local modules)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.frontend.axe_check import serious_violations
from tests.frontend.conftest import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.terraform, pytest.mark.slow]


def test_a_new_environment_preview_lists_all_five_units(
        new_context: Callable[[], BrowserContext]) -> None:
    ada = sign_in(new_context(), "ada")
    ada.set_viewport_size({"width": 1366, "height": 900})
    ada.goto("/templates/environment")
    ada.get_by_role("textbox", name="Name", exact=True).fill("preview")
    ada.get_by_role("textbox", name="Region").fill("local")
    ada.get_by_role("button", name="Preview the change").click()
    expect(ada.get_by_role("heading", level=1)).to_have_text("Preview: Environment")
    ada.get_by_role("button", name="Submit the request").click()
    expect(ada).to_have_url(re.compile(r"/tasks/\d+$"))
    ada.get_by_role("link", name=re.compile("Open the change")).click()
    expect(ada).to_have_url(re.compile(r"/changes/\d+$"))

    plan = ada.get_by_role("region", name="Terraform plan")
    deadline = time.monotonic() + 400  # real terraform plans on a shared 2-core machine
    while "succeeded" not in plan.inner_text() and time.monotonic() < deadline:
        time.sleep(3)
        ada.reload()
    table = plan.get_by_role("table")
    rows = table.locator("tbody tr[class^=unit-]")
    expect(rows).to_have_count(5)
    assert [r.locator("th").inner_text() for r in rows.all()] == [
        f"preview/{u}" for u in ("backend", "network", "domain", "kubernetes", "addons")]
    for unit in ("backend", "network", "domain"):
        expect(table.locator("tr.unit-planned", has_text=f"preview/{unit}")).to_contain_text("+")
    expect(table.locator("tr", has_text="preview/kubernetes")).to_contain_text(
        "planned after backend and network are applied (needs their outputs)")
    expect(table.locator("tr", has_text="preview/addons")).to_contain_text(
        "planned after domain and kubernetes are applied (needs their outputs)")
    assert ada.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert serious_violations(ada) == []
    plan.scroll_into_view_if_needed()
    screenshot(ada, "plan-preview-every-unit")
