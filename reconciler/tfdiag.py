"""Terraform's machine-readable output, and the one place that decides temporary vs permanent.

``terraform init|plan|apply -json`` print one JSON object per line (Terraform's "machine-readable
UI", https://developer.hashicorp.com/terraform/internals/machine-readable-ui): every line has
``@level``, ``@message`` and ``type``; a ``diagnostic`` line carries ``diagnostic.severity``,
``.summary``, ``.detail`` and (for a resource) ``.address``.

A failure is temporary only for what its *structure* says, never for a word found somewhere in
the output (an echoed command or a log line may contain any word):

- Terraform's own diagnostics whose summary is in ``TEMPORARY_SUMMARIES`` (a held state lock, a
  saved plan overtaken by a newer state);
- a provider diagnostic whose detail (or, for SDKv2 resources that put the whole error in the
  summary and leave the detail empty, whose summary) holds an AWS SDK error in its documented
  form ``operation error <Service>: <Operation>, … api error <Code>: <message>`` with ``<Code>``
  in ``TEMPORARY_AWS_CODES``;
- the command timed out and was interrupted (its diagnostics only report the interruption).

Provisioner diagnostics (``local-exec provisioner error`` …) hold the command's own output, never
a provider's API error: they are permanent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Terraform core diagnostics after which the same command can succeed later.
TEMPORARY_SUMMARIES = frozenset({
    "Error acquiring the state lock",  # another run holds the unit's state
    "Saved plan is stale",  # the state moved on after the plan: plan again
})

# AWS error codes worth retrying: the throttling and transient codes of the AWS SDK's own
# retry classification (aws-sdk-js-v3 packages/service-error-classification/src/constants.ts:
# THROTTLING_ERROR_CODES, TRANSIENT_ERROR_CODES, STILL_PROCESSING_ERROR_CODES; aws-sdk-go-v2
# aws/retry: DefaultThrottleErrorCodes, DefaultRetryableErrorCodes).
TEMPORARY_AWS_CODES = frozenset({
    # throttling
    "BandwidthLimitExceeded", "EC2ThrottledException", "LimitExceededException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "RequestThrottled",
    "RequestThrottledException", "SlowDown", "ThrottledException", "Throttling",
    "ThrottlingException", "TooManyRequestsException", "TransactionInProgressException",
    # transient
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
    "ServiceUnavailable",
    # still processing
    "PriorRequestNotComplete",
})

# The AWS SDK for Go v2 (smithy) operation error, as the AWS provider prints it:
# "operation error EC2: RunInstances, https response error StatusCode: 400, RequestID: …,
#  api error RequestLimitExceeded: Request limit exceeded."
_AWS_ERROR = re.compile(
    r"operation error [A-Za-z0-9 ._-]+: [A-Za-z0-9]+, (?:[^\n]*?, )?"
    r"api error (?P<code>[A-Za-z][A-Za-z0-9.]*): ")
_PROVISIONER = re.compile(r"^[a-z0-9-]+ provisioner error$")
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Diagnostic:
    """One Terraform diagnostic (``severity`` is ``error`` or ``warning``)."""

    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    @classmethod
    def from_json(cls, raw: object) -> Diagnostic | None:
        if not isinstance(raw, dict):
            return None
        return cls(severity=str(raw.get("severity") or ""), summary=str(raw.get("summary") or ""),
                   detail=str(raw.get("detail") or ""), address=str(raw.get("address") or ""))

    @property
    def text(self) -> str:
        """``summary: detail`` (the detail's lines joined), what a job's message shows."""
        detail = " ".join(line.strip() for line in self.detail.splitlines() if line.strip())
        return f"{self.summary}: {detail}" if detail else self.summary

    @property
    def aws_code(self) -> str | None:
        """The AWS error code in the documented SDK form, from the detail (the summary only
        when the detail is empty); None for provisioner diagnostics and anything else."""
        if _PROVISIONER.match(self.summary):
            return None
        match = _AWS_ERROR.search(self.detail or self.summary)
        return match.group("code") if match else None

    @property
    def temporary(self) -> bool:
        return self.summary in TEMPORARY_SUMMARIES or self.aws_code in TEMPORARY_AWS_CODES


@dataclass(frozen=True)
class UiLine:
    """One line of ``-json`` output: what to log and the diagnostic it carries, if any."""

    text: str
    diagnostic: Diagnostic | None = None


def parse_line(line: str) -> UiLine:
    """A line of Terraform's machine-readable UI; a line that is not JSON is logged as is."""
    try:
        obj: Any = json.loads(line)
    except ValueError:
        return UiLine(line)
    if not isinstance(obj, dict):
        return UiLine(line)
    message = str(obj.get("@message") or "").rstrip()
    if obj.get("type") != "diagnostic":
        return UiLine(message)
    diagnostic = Diagnostic.from_json(obj.get("diagnostic"))
    if diagnostic is None:
        return UiLine(message)
    text = message + ("\n" + diagnostic.detail.rstrip() if diagnostic.detail else "")
    return UiLine(text, diagnostic)


def errors_of(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]


def is_temporary(diagnostics: list[Diagnostic], *, interrupted: bool) -> bool:
    """Retry when the command was interrupted (it timed out: its diagnostics only report the
    interruption) or when it has error diagnostics and every one is temporary (a permanent one
    among them wins). A failure nothing diagnosed is permanent."""
    if interrupted:
        return True
    errors = errors_of(diagnostics)
    return bool(errors) and all(d.temporary for d in errors)


def failure_message(diagnostics: list[Diagnostic], fallback: str) -> str:
    """The error diagnostics' summaries and details (the cause, not just a headline)."""
    errors = errors_of(diagnostics)
    # "execution halted" only repeats that an interrupt stopped the run.
    causes = [d for d in errors if d.summary != "execution halted"] or errors
    text = "; ".join(dict.fromkeys(d.text for d in causes)) or fallback
    return text[:MAX_MESSAGE]
