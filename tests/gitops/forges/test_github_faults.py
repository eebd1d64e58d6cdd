"""GitHubForge under GitHub's faults, against the fake server: rate limits on every method,
a reset an hour away, long lists, a diff past the compare API's 300 files, a 422 on reviewers,
and a failure after the pull request exists. Each ends in the documented behaviour with nothing
lost and nothing done twice. Waits go to a recording clock: no test sleeps."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from devtools.server import serve
from gitops.forges.base import ChangeSpec, Check, CheckState, FileChange
from gitops.forges.github import GitHubForge
from gitops.forges.github_rest import (
    API_VERSION,
    GitHubError,
    RateLimited,
    rate_limit_wait,
)
from portal.errors import Unavailable
from tests.fakes.github import PREFIX, FakeGitHub, FakeRepo, Fault

NOW = 1_800_000_000.0
CODEOWNERS = b"*  @acme/platform-admins\n/tenants/shop/  @acme/team-shop @carol\n"
_names = itertools.count(1)


class Clock:
    """time.time and time.sleep for the forge: sleeping advances the clock and is recorded."""

    def __init__(self) -> None:
        self.now = NOW
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    github = FakeGitHub()
    with serve(github.app) as url:
        github.base_url = url
        yield github


@pytest.fixture
def repo(fake: FakeGitHub) -> Iterator[FakeRepo]:
    repo = fake.add_repo(f"acme/faults-{next(_names)}")
    repo.commit_files("main", {"README.md": b"# gitops\n", "CODEOWNERS": CODEOWNERS}, "seed")
    fake.faults.clear()
    fake.reset_log()
    yield repo
    fake.faults.clear()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(fake: FakeGitHub, repo: FakeRepo, clock: Clock) -> Callable[..., GitHubForge]:
    def build(max_wait_s: float = 60.0) -> GitHubForge:
        return GitHubForge(f"{repo.owner}/{repo.name}", token="ghs_test",
                           base_url=fake.base_url + PREFIX, max_wait_s=max_wait_s,
                           sleep=clock.sleep, clock=clock.time, seconds_between_writes=None)
    return build


@pytest.fixture
def forge(make: Callable[..., GitHubForge]) -> GitHubForge:
    return make()


def _spec(**overrides: object) -> ChangeSpec:
    values: dict[str, object] = {
        "branch": "caas/tenant-shop-web", "title": "Add tenant shop-web", "body": "Requested.",
        "author": "alice", "labels": ["caas", "tenant"], "reviewers": ["erin"],
        "files": [FileChange("tenants/shop/web/base/namespace.yaml", b"kind: Namespace\n")]}
    values.update(overrides)
    return ChangeSpec(**values)  # type: ignore[arg-type]


# --- the rule, as GitHub documents it ------------------------------------------------------

@pytest.mark.parametrize(("status", "headers", "message", "attempt", "wait"), [
    (429, {"Retry-After": "7"}, "", 1, 7.0),
    (403, {"retry-after": "30"}, "secondary rate limit", 1, 30.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 10)},
     "API rate limit exceeded", 1, 11.0),
    (429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600)}, "", 1,
     3601.0),
    (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) - 5)}, "", 1, 1.0),
    (429, {}, "", 1, 60.0),  # no headers: at least a minute ...
    (429, {}, "", 3, 240.0),  # ... doubling while it goes on
    (403, {}, "You have exceeded a secondary rate limit.", 1, 60.0),
    (403, {"x-ratelimit-remaining": "4999"}, "Resource not accessible by integration", 1, None),
    (404, {"retry-after": "5"}, "Not Found", 1, None),
    (500, {}, "", 1, None),
])
def test_rate_limit_wait_follows_githubs_rules(status: int, headers: dict[str, str],
                                               message: str, attempt: int,
                                               wait: float | None) -> None:
    assert rate_limit_wait(status, headers, message, now=NOW, attempt=attempt) == wait


# --- every method waits and is sent again exactly once ------------------------------------

LIMITS = [
    pytest.param(429, {"Retry-After": "3"}, "", 3.0, id="429-retry-after"),
    pytest.param(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 20)},
                 "API rate limit exceeded", 21.0, id="403-primary-reset"),
    pytest.param(429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 20)},
                 "", 21.0, id="429-primary-reset"),
    pytest.param(429, {}, "", 60.0, id="429-no-headers"),
    pytest.param(403, {}, "You have exceeded a secondary rate limit", 60.0,
                 id="403-secondary-no-headers"),
]


@pytest.mark.parametrize(("status", "headers", "message", "wait"), LIMITS)
def test_get_waits_and_reads(forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub,
                             clock: Clock, status: int, headers: dict[str, str], message: str,
                             wait: float) -> None:
    fake.faults.append(Fault("GET", "/git/ref/heads/main", status, headers, message))
    assert forge.head() == repo.refs["heads/main"]
    assert clock.waits == [wait]


@pytest.mark.parametrize(("status", "headers", "message", "wait"), LIMITS)
def test_post_waits_and_writes_once(forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub,
                                    clock: Clock, status: int, headers: dict[str, str],
                                    message: str, wait: float) -> None:
    info = forge.open_change(_spec())
    fake.faults.append(Fault("POST", "/statuses/", status, headers, message))
    fake.reset_log()
    forge.set_check(info.number, Check("caas/policy", CheckState.success, "ok"))
    assert clock.waits == [wait]
    assert [w for w in fake.writes() if "/statuses/" in w[1]] == [
        ("POST", f"/repos/{repo.owner}/{repo.name}/statuses/{info.head_sha}")]
    assert len(repo.statuses[info.head_sha]) == 1


@pytest.mark.parametrize(("status", "headers", "message", "wait"), LIMITS)
def test_patch_waits_and_writes_once(forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub,
                                     clock: Clock, status: int, headers: dict[str, str],
                                     message: str, wait: float) -> None:
    info = forge.open_change(_spec())
    fake.faults.append(Fault("PATCH", "/git/refs/heads/", status, headers, message))
    updated = forge.update_change(info.number, [FileChange("a.yaml", b"a: 1\n")], "more")
    assert clock.waits == [wait]
    assert repo.commits[updated.head_sha]["parents"] == [info.head_sha]
    assert repo.refs["heads/caas/tenant-shop-web"] == updated.head_sha
    fake.faults.append(Fault("PATCH", "/pulls/", status, headers, message))
    clock.now = NOW  # the same fault again, at the same time
    assert forge.close_change(info.number, by="alice").state.value == "closed"
    assert clock.waits == [wait, wait]


def test_a_plain_403_is_an_error_not_a_wait(forge: GitHubForge, fake: FakeGitHub,
                                            clock: Clock) -> None:
    fake.faults.append(Fault("GET", "/git/ref/heads/main", 403,
                             {"x-ratelimit-remaining": "4000"},
                             "Resource not accessible by integration"))
    with pytest.raises(GitHubError, match="403"):
        forge.head()
    assert clock.waits == []


def test_a_reset_an_hour_away_is_a_temporary_error_then_resumes(
        forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub, clock: Clock) -> None:
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 3600)}
    fake.faults.append(Fault("POST", "/pulls", 403, reset))
    with pytest.raises(RateLimited) as raised:
        forge.open_change(_spec())
    assert isinstance(raised.value, Unavailable)  # temporary: the task/job retries later
    assert raised.value.retry_after_s == 3601.0
    assert clock.waits == []  # no thread held for an hour
    assert repo.pulls == {}
    branch_head = repo.refs["heads/caas/tenant-shop-web"]

    info = forge.open_change(_spec())  # the retry, after the reset
    assert list(repo.pulls) == [info.number]
    assert repo.files_at(info.head_sha)["tenants/shop/web/base/namespace.yaml"]
    assert repo.files_at(branch_head) == repo.files_at(info.head_sha)  # the same content
    assert sorted(repo.pulls[info.number]["labels"]) == ["caas", "tenant"]


def test_repeated_secondary_limits_double_then_give_up(make: Callable[..., GitHubForge],
                                                       fake: FakeGitHub, clock: Clock) -> None:
    fake.faults.append(Fault("GET", "/git/ref/heads/main", 429, times=3))
    patient = make(max_wait_s=300)
    patient.head()
    assert clock.waits == [60.0, 120.0, 240.0]
    fake.faults.append(Fault("GET", "/git/ref/heads/main", 429, times=2))
    with pytest.raises(RateLimited):
        make(max_wait_s=100).head()
    assert clock.waits[3:] == [60.0]  # 120 s would pass the bound


# --- lists to the last page; the compare API's 300 files ------------------------------------

def test_43_statuses_and_130_check_runs_all_reach_the_change(forge: GitHubForge,
                                                             repo: FakeRepo) -> None:
    info = forge.open_change(_spec())
    repo.statuses[info.head_sha] = [
        {"id": i, "state": "success", "context": f"ci/{i:02}", "description": "ok",
         "target_url": None, "created_at": "2026-01-01T00:00:00Z"} for i in range(43)]
    repo.check_runs[info.head_sha] = [
        {"id": i, "name": f"run-{i:03}", "status": "completed",
         "conclusion": "failure" if i == 129 else "success", "html_url": f"https://x/{i}",
         "output": {"title": None}} for i in range(130)]
    checks = forge.get_change(info.number).checks
    assert len(checks) == 43 + 130
    assert {c.name for c in checks} >= {"ci/42", "run-000", "run-129"}
    assert next(c for c in checks if c.name == "run-129").state is CheckState.failure


def test_comment_on_a_later_page_is_edited_not_doubled(forge: GitHubForge, repo: FakeRepo,
                                                       fake: FakeGitHub) -> None:
    info = forge.open_change(_spec())
    for i in range(120):
        fake.calls.clear()
        repo.comments[10_000 + i] = {"id": 10_000 + i, "issue": info.number, "body": f"c{i}"}
    forge.comment(info.number, "preview v1")
    forge.comment(info.number, "preview v2")
    mine = [c for c in repo.comments.values() if "caas:preview" in c["body"]]
    assert [c["body"] for c in mine] == ["<!-- caas:preview -->\npreview v2"]


def test_350_changed_files_fall_back_to_the_trees(forge: GitHubForge, repo: FakeRepo,
                                                  fake: FakeGitHub) -> None:
    base = repo.refs["heads/main"]
    head = repo.commit_files("main", {f"tenants/t{i:03}/ns.yaml": b"x" for i in range(350)},
                             "many")
    fake.reset_log()
    paths = forge.changed_paths(base, head)
    assert len(paths) == 350
    assert paths[0] == "tenants/t000/ns.yaml" and paths[-1] == "tenants/t349/ns.yaml"
    assert any("/git/trees/" in c.path for c in fake.calls)


# --- partial failures after the pull request exists ----------------------------------------

def test_422_on_reviewers_asks_the_collaborators_and_reports_the_rest(
        forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub) -> None:
    repo.collaborators = {"erin"}
    repo.teams = {"team-shop"}
    info = forge.open_change(_spec())
    pr = repo.pulls[info.number]
    assert (pr["reviewers"], pr["teams"]) == (["erin"], ["team-shop"])
    reports = [c["body"] for c in repo.comments.values() if "caas:reviewers" in c["body"]]
    assert len(reports) == 1 and "@carol" in reports[0]

    fake.reset_log()
    again = forge.open_change(_spec())  # a retry: nothing asked or said twice
    assert again.number == info.number
    assert fake.writes() == []
    assert forge.codeowners_problems() == ["@carol", "@acme/platform-admins"]


def test_a_failure_after_the_pr_exists_is_finished_by_the_retry(
        forge: GitHubForge, repo: FakeRepo, fake: FakeGitHub) -> None:
    fake.faults.append(Fault("POST", "/labels", 502, message="Server Error"))
    with pytest.raises(Unavailable):
        forge.open_change(_spec())
    assert len(repo.pulls) == 1 and repo.pulls[1]["labels"] == []
    fake.reset_log()
    info = forge.open_change(_spec())
    assert info.number == 1 and sorted(info.labels) == ["caas", "tenant"]
    assert sorted(info.reviewers) == ["acme/team-shop", "carol", "erin"]
    writes = fake.writes()
    assert [p.rsplit("/", 1)[-1] for _, p in writes] == ["labels", "requested_reviewers"]


def test_statuses_already_reported_are_not_posted_again(forge: GitHubForge, repo: FakeRepo,
                                                        fake: FakeGitHub) -> None:
    info = forge.open_change(_spec())
    check = Check("caas/policy", CheckState.failure, "x" * 300)
    forge.set_check(info.number, check)
    forge.set_check(info.number, check)
    assert len(repo.statuses[info.head_sha]) == 1


# --- conditional requests and the pinned version --------------------------------------------

def test_repeated_reads_are_conditional_and_every_request_pins_the_version(
        forge: GitHubForge, fake: FakeGitHub) -> None:
    info = forge.open_change(_spec())
    fake.reset_log()
    assert forge.get_change(info.number) == forge.get_change(info.number)
    second = fake.calls[len(fake.calls) // 2:]
    assert second and all(c.status == 304 for c in second)
    assert all(c.headers.get("x-github-api-version") == API_VERSION for c in fake.calls)


def test_large_answers_are_not_remembered(forge: GitHubForge, repo: FakeRepo,
                                          fake: FakeGitHub) -> None:
    repo.commit_files("main", {"big.txt": b"z" * 400_000, "small.txt": b"s"}, "sizes")
    fake.reset_log()
    for _ in range(2):
        assert forge.read_file("big.txt") == b"z" * 400_000
        assert forge.read_file("small.txt") == b"s"
    assert [c.status for c in fake.calls] == [200, 200, 200, 304]
