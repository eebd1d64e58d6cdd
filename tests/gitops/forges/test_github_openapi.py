"""Every request GitHubForge sends is a real GitHub operation with valid parameters and body,
per GitHub's own OpenAPI description (``@octokit/openapi``, pinned in tests/github_npm).

The forge runs every public method against the fake server (including the paths taken after a
422 on reviewers, a binary blob, a diff of more than 300 files, paging and rate limits); each
recorded request is matched to one operation of the description — method and path template —
and its query parameters and JSON body are validated against that operation's schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from gitops.forges.base import ChangeSpec, Check, CheckState, FileChange
from gitops.forges.github import GitHubForge
from gitops.forges.github_rest import API_VERSION
from tests.fakes.github import PREFIX, Call, Fault, served
from tests.fakes.github_npm import openapi

pytestmark = pytest.mark.github_spec

# Path parameters GitHub documents as possibly holding slashes.
_SLASHED = {"ref", "path", "basehead"}


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    spec: dict[str, Any]

    @property
    def literal(self) -> int:
        return len(re.sub(r"\{[^}]+\}", "", self.template))


@pytest.fixture(scope="module")
def operations() -> list[Operation]:
    ops = []
    for template, item in openapi()["paths"].items():
        pattern = re.sub(r"\{([^}]+)\}",
                         lambda m: "(.+)" if m.group(1) in _SLASHED else "([^/]+)", template)
        regex = re.compile(f"^{pattern}$")
        for method, spec in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                ops.append(Operation(method.upper(), template, regex, spec))
    # The most specific template first (``git/ref/{ref}`` before ``{path}``-style catch-alls).
    return sorted(ops, key=lambda o: -o.literal)


def _operation(operations: list[Operation], call: Call) -> Operation:
    for op in operations:
        if op.method == call.method and op.regex.match(call.path):
            return op
    raise AssertionError(f"{call.method} {call.path} is no operation of GitHub's REST API")


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        return int(value)
    if kind == "boolean":
        return {"true": True, "false": False}.get(value, value)
    return value


def _problems(op: Operation, call: Call) -> list[str]:
    problems: list[str] = []
    declared = {p["name"]: p for p in op.spec.get("parameters", []) if p["in"] == "query"}
    for name, value in call.query.items():
        if name not in declared:
            problems.append(f"query parameter {name!r} is not declared")
            continue
        schema = declared[name].get("schema", {})
        problems += [f"query {name}={value!r}: {e.message}" for e in
                     OAS30Validator(schema).iter_errors(_coerce(value, schema))]
    content = (op.spec.get("requestBody") or {}).get("content", {})
    if call.body is not None:
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            problems.append("a JSON body where the operation takes none")
        else:
            problems += [f"body: {e.message} at {list(e.absolute_path)}"
                         for e in OAS30Validator(schema).iter_errors(call.body)]
    elif (op.spec.get("requestBody") or {}).get("required"):
        problems.append("no body where the operation requires one")
    if call.headers.get("x-github-api-version") != API_VERSION:
        problems.append("X-GitHub-Api-Version is not pinned")
    return problems


@pytest.fixture(scope="module")
def calls() -> Iterator[list[Call]]:
    """Every forge method, run once against the fake; the requests it sent."""
    with served("acme/gitops", {"README.md": b"# gitops\n", "CODEOWNERS":
                                b"* @acme/platform-admins\n/tenants/ @carol @acme/team-shop\n"}
                ) as (fake, repo):
        url = fake.base_url
        repo.collaborators, repo.teams = {"erin"}, {"team-shop"}
        forge = GitHubForge("acme/gitops", token="ghs_test", base_url=url + PREFIX,
                            sleep=lambda _s: None, seconds_between_writes=None)
        before = forge.head()
        fake.faults.append(Fault("POST", "/git/trees", 429, {"Retry-After": "1"}))
        info = forge.open_change(ChangeSpec(
            branch="caas/tenant-shop-web", title="Add tenant shop-web", body="Requested.",
            author="alice", labels=["caas", "tenant"], reviewers=["erin"],
            files=[FileChange("tenants/shop/web/ns.yaml", b"kind: Namespace\n"),
                   FileChange("tenants/shop/web/logo.bin", bytes(range(256))),
                   FileChange("tenants/shop/web/big.txt", b"y" * (1024 * 1024 + 1)),
                   FileChange("README.md", None)]))
        forge.open_change(ChangeSpec(branch=info.branch, title="again", body="", author="alice",
                                     files=[], labels=["extra"], reviewers=["erin"]))
        forge.find_change(info.branch)
        forge.set_check(info.number, Check("caas/policy", CheckState.failure, "x" * 200,
                                           "https://portal.example/changes/1"))
        forge.comment(info.number, "preview v1")
        forge.comment(info.number, "preview v2")
        updated = forge.update_change(info.number, [FileChange("tenants/a.yaml", b"a: 1\n")],
                                      "more")
        forge.get_change(info.number)
        forge.read_file("README.md")
        forge.read_file("tenants/shop/web/logo.bin", updated.head_sha)
        assert forge.read_file("tenants/shop/web/big.txt", updated.head_sha) == b"y" * (
            1024 * 1024 + 1)
        forge.list_files("tenants", updated.head_sha)
        forge.changed_paths(before, updated.head_sha)
        many = repo.commit_files("main", {f"t/{i:03}.yaml": b"x" for i in range(310)}, "many")
        forge.changed_paths(before, many)
        forge.is_ancestor(before)
        forge.approvals(info.number)
        forge.codeowners_problems()
        forge.close_change(info.number, by="alice")
        yield list(fake.calls)


def test_every_request_is_a_documented_operation_with_valid_parameters_and_body(
        operations: list[Operation], calls: list[Call]) -> None:
    problems = {}
    for call in calls:
        op = _operation(operations, call)
        found = _problems(op, call)
        if found:
            problems[f"{call.method} {call.path} ({op.spec.get('operationId')})"] = found
    assert problems == {}


def test_the_scenario_reaches_every_operation_the_forge_uses(
        operations: list[Operation], calls: list[Call]) -> None:
    used = {_operation(operations, call).spec["operationId"] for call in calls}
    assert used == {
        "git/get-ref", "git/get-commit", "git/create-blob", "git/create-tree",
        "git/create-commit", "git/create-ref", "git/update-ref", "git/get-tree",
        "git/get-blob", "pulls/list", "pulls/create", "pulls/get", "pulls/update",
        "pulls/list-reviews", "pulls/request-reviewers", "issues/add-labels",
        "issues/list-comments", "issues/create-comment", "issues/update-comment",
        "repos/get-content", "repos/compare-commits", "repos/get-combined-status-for-ref",
        "repos/create-commit-status", "checks/list-for-ref", "repos/check-collaborator",
        "teams/check-permissions-for-repo-in-org",
    }


def test_a_bare_label_array_would_be_refused_by_the_description(
        operations: list[Operation]) -> None:
    """The check can fail: the form the forge no longer sends is not GitHub's."""
    call = Call("POST", "/repos/acme/gitops/issues/1/labels", {}, ["caas"],
                {"x-github-api-version": API_VERSION})
    assert _problems(_operation(operations, call), call)
