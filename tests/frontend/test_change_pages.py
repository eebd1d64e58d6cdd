"""The "Change" action of entity pages and the create forms of teams and environments (issue 15);
plain HTTP against the live server, no browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import bearer
from tests.frontend.conftest import LiveServer

UNIT = "tenants/platform/platform-tools"


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> Iterator[Callable[[str], httpx.Client]]:
    clients: list[httpx.Client] = []

    def as_user(username: str) -> httpx.Client:
        c = httpx.Client(base_url=live_server.url, timeout=60,
                         headers={"accept": "text/html", **bearer(live_server.engine, username)})
        clients.append(c)
        return c

    yield as_user
    for c in clients:
        c.close()


def _input(html: str, name: str) -> str:
    found = re.search(rf'<(input|select)[^>]*name="{name}"[^>]*>', html)
    assert found, name
    return found.group(0)


def test_change_opens_the_form_pre_filled_with_the_name_fixed(
        client: Callable[[str], httpx.Client]) -> None:
    ada = client("ada")
    entity = ada.get("/catalog/namespaces/platform/platform-tools")
    assert entity.status_code == 200
    assert f'href="/change?unit={UNIT}"' in entity.text
    form = ada.get("/change", params={"unit": UNIT})
    assert form.status_code == 200, form.text[:500]
    assert "<h1>Change: Tenant namespace</h1>" in form.text
    assert 'name="update" value="true"' in form.text
    for name, value in (("team", "platform"), ("name", "tools")):
        control = _input(form.text, name)
        assert "readonly" in control and f'value="{value}"' in control
    assert "readonly" not in _input(form.text, "storage_quota")
    assert 'value="20Gi"' in _input(form.text, "storage_quota")

    preview = ada.post("/templates/tenant/preview", data={
        "update": "true", "team": "platform", "name": "tools", "cost_center": "platform",
        "description": "Shared tools of the platform team.",
        "environments.__multi": "1", "environments": "dev", "storage_quota": "30Gi",
        "cpu_quota": "2", "memory_quota": "4Gi", "max_pods": "50",
        "default_cpu_limit": "500m", "default_memory_limit": "512Mi",
        "allow_monitoring": "true", "allow_ingress_controller": "true"})
    assert preview.status_code == 200, preview.text[:2000]
    assert "change of an existing unit" in preview.text
    files = set(re.findall(r'<li><a href="#file-\d+"><code>([^<]+)</code>', preview.text))
    assert files == {f"{UNIT}/{p}" for p in (
        ".caas-answers.yaml", "base/resourcequota.yaml", "envs/dev/quota.yaml")}
    assert preview.text.count('name="update" value="true"') == 2  # submit and back to form


def test_change_of_something_that_is_not_a_unit_says_so(
        client: Callable[[str], httpx.Client]) -> None:
    ada = client("ada")
    assert ada.get("/change", params={"unit": "tenants/platform/nothing"}).status_code == 404
    assert ada.get("/change", params={"unit": "../x"}).status_code == 422


def test_team_and_environment_forms_take_a_new_name(
        client: Callable[[str], httpx.Client]) -> None:
    ada = client("ada")
    team = ada.get("/templates/team").text
    assert _input(team, "team").startswith('<input') and "readonly" not in _input(team, "team")
    env = ada.get("/templates/environment").text
    assert _input(env, "environment").startswith("<input")
    preview = ada.post("/templates/team/preview", data={
        "team": "growth", "display_name": "Growth", "cost_center": "cc-growth",
        "owners": "rui"})
    assert preview.status_code == 200, preview.text[:2000]
    assert "teams/growth/team.yaml" in preview.text


def test_remove_is_offered_and_refusals_say_why(client: Callable[[str], httpx.Client]) -> None:
    page = client("ada").get("/catalog/namespaces/platform/platform-tools").text
    assert 'action="/decommission"' in page and f'name="unit" value="{UNIT}"' in page
    env_page = client("ada").get("/catalog/environments/dev").text
    assert 'action="/decommission"' not in env_page  # environments: `installed: false`
    refused = client("dana").post("/decommission", data={"unit": UNIT})
    assert refused.status_code == 403
    assert "not a member of team `platform`" in refused.text
    env = client("ada").post("/decommission", data={"unit": "envs/dev"})
    assert env.status_code == 400 and "installed: false" in env.text
