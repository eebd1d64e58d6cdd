"""Webhook signature and event parsing, with payloads shaped like GitHub's deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from gitops.forges.base import MergeEvent
from gitops.forges.github_webhook import (
    PullRequestEvent,
    parse_event,
    sign,
    verify_signature,
)

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
# The worked example from GitHub's "Validating webhook deliveries" documentation.
GITHUB_EXAMPLE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_signature_matches_githubs_documented_example() -> None:
    assert verify_signature(SECRET, BODY, GITHUB_EXAMPLE)
    assert sign(SECRET, BODY) == GITHUB_EXAMPLE


@pytest.mark.parametrize("header", [
    None,
    "",
    "sha256=",
    GITHUB_EXAMPLE.replace("sha256=", "sha1="),
    GITHUB_EXAMPLE[:-1] + "0",
    "sha256=" + hmac.new(b"other", BODY, hashlib.sha256).hexdigest(),
    "sha256=ÿ" + GITHUB_EXAMPLE[8:],
])
def test_bad_signatures_are_refused(header: str | None) -> None:
    assert not verify_signature(SECRET, BODY, header)


def test_tampered_body_is_refused() -> None:
    assert not verify_signature(SECRET, BODY + b" ", GITHUB_EXAMPLE)


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature("", BODY, sign("", BODY))


def _push(ref: str, before: str, after: str) -> dict[str, object]:
    return {"ref": ref, "before": before, "after": after, "deleted": False,
            "pusher": {"name": "octocat"}, "repository": {"full_name": "acme/gitops"}}


def test_push_to_main_is_a_merge_event() -> None:
    event = parse_event("push", _push("refs/heads/main", "a" * 40, "b" * 40))
    assert event == MergeEvent(commit="b" * 40, before="a" * 40, source="webhook",
                               extra={"pusher": "octocat"})


def test_push_elsewhere_or_branch_deletion_means_nothing() -> None:
    assert parse_event("push", _push("refs/heads/feature", "a" * 40, "b" * 40)) is None
    assert parse_event("push", _push("refs/heads/main", "a" * 40, "0" * 40)) is None
    assert parse_event("push", _push("refs/tags/v1", "a" * 40, "b" * 40)) is None


def test_first_push_has_no_before() -> None:
    event = parse_event("push", _push("refs/heads/main", "0" * 40, "b" * 40))
    assert isinstance(event, MergeEvent)
    assert event.before is None


def _pr(action: str, *, merged: bool, base: str = "main") -> dict[str, object]:
    return {
        "action": action, "number": 7, "sender": {"login": "alice"},
        "pull_request": {
            "number": 7, "state": "closed" if action == "closed" else "open", "merged": merged,
            "merge_commit_sha": "c" * 40 if merged else None,
            "merged_by": {"login": "bob"} if merged else None,
            "head": {"ref": "caas/tenant-shop", "sha": "d" * 40},
            "base": {"ref": base, "sha": "e" * 40},
        },
    }


def test_merged_pull_request_is_a_merge_event() -> None:
    event = parse_event("pull_request", _pr("closed", merged=True))
    assert event == MergeEvent(commit="c" * 40, before="e" * 40, change_number=7,
                               merged_by="bob", source="webhook")


def test_merged_into_another_branch_means_nothing() -> None:
    assert parse_event("pull_request", _pr("closed", merged=True, base="release")) is None


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "closed"])
def test_other_pull_request_actions(action: str) -> None:
    event = parse_event("pull_request", _pr(action, merged=False))
    assert event == PullRequestEvent(action=action, number=7, head_sha="d" * 40,
                                     head_branch="caas/tenant-shop", base_branch="main",
                                     sender="alice", merged=False)


def test_unrelated_events_and_broken_payloads_mean_nothing() -> None:
    assert parse_event("ping", {"zen": "Keep it logically awesome."}) is None
    assert parse_event("issues", {"action": "opened"}) is None
    assert parse_event("pull_request", {"action": "opened"}) is None
    assert parse_event("push", json.loads("{}")) is None


@pytest.mark.parametrize("action", ["submitted", "edited", "dismissed"])
def test_a_pull_request_review_is_a_pull_request_event(action: str) -> None:
    payload = {**_pr("opened", merged=False), "action": action,
               "review": {"state": "approved", "user": {"login": "bob"}}}
    event = parse_event("pull_request_review", payload)
    assert event == PullRequestEvent(action=f"review_{action}", number=7, head_sha="d" * 40,
                                     head_branch="caas/tenant-shop", base_branch="main",
                                     sender="alice", merged=False)
    # Never a merge, whatever the pull request says; broken payloads mean nothing.
    closed = {**_pr("closed", merged=True), "action": action}
    assert isinstance(parse_event("pull_request_review", closed), PullRequestEvent)
    assert parse_event("pull_request_review", {"action": action}) is None
    assert parse_event("pull_request_review", {"pull_request": {"number": 7}}) is None
