"""Temporary vs permanent from Terraform's machine-readable diagnostics, never from words."""

from __future__ import annotations

import json

import pytest

from reconciler.tfdiag import (
    TEMPORARY_AWS_CODES,
    TEMPORARY_SUMMARIES,
    Diagnostic,
    failure_message,
    is_temporary,
    parse_line,
)


def aws_detail(code: str, operation: str = "RunInstances") -> str:
    """The AWS SDK for Go v2 operation error as the AWS provider prints it."""
    return (f"operation error EC2: {operation}, https response error StatusCode: 400, "
            f"RequestID: 7f8e0c0a-1b2c-4d5e-8f90-123456789abc, api error {code}: "
            "the service said so.")


def ui(diagnostic: dict[str, str], level: str = "error") -> str:
    return json.dumps({"@level": level, "@message": f"Error: {diagnostic['summary']}",
                       "@module": "terraform.ui", "type": "diagnostic",
                       "diagnostic": {"severity": level, **diagnostic}})


@pytest.mark.parametrize("code", sorted(TEMPORARY_AWS_CODES))
def test_every_listed_aws_code_in_the_documented_form_is_temporary(code: str) -> None:
    line = parse_line(ui({"summary": "creating EC2 Instance", "detail": aws_detail(code)}))
    assert line.diagnostic is not None and line.diagnostic.aws_code == code
    assert is_temporary([line.diagnostic], interrupted=False)


@pytest.mark.parametrize("code", ["InvalidParameterValue", "UnauthorizedOperation",
                                  "InvalidAMIID.NotFound", "VcpuLimitExceeded"])
def test_other_aws_codes_are_permanent(code: str) -> None:
    diag = Diagnostic("error", "creating EC2 Instance", aws_detail(code))
    assert diag.aws_code == code
    assert not is_temporary([diag], interrupted=False)


def test_sdkv2_resources_put_the_error_in_the_summary() -> None:
    diag = Diagnostic("error", "creating EC2 VPC: " + aws_detail("RequestLimitExceeded",
                                                                 "CreateVpc"))
    assert diag.aws_code == "RequestLimitExceeded" and diag.temporary


@pytest.mark.parametrize("summary", sorted(TEMPORARY_SUMMARIES))
def test_terraform_core_temporary_summaries(summary: str) -> None:
    assert is_temporary([Diagnostic("error", summary, "Lock Info: …")], interrupted=False)


@pytest.mark.parametrize("detail", [
    "Error running command 'echo RequestLimitExceeded; exit 1': exit status 1. "
    "Output: RequestLimitExceeded",
    # even the documented form, when it is only a provisioner's command or output
    "Error running command 'x': exit status 1. Output: " + aws_detail("Throttling"),
])
def test_a_provisioner_error_is_permanent_whatever_its_output_says(detail: str) -> None:
    diag = Diagnostic("error", "local-exec provisioner error", detail)
    assert diag.aws_code is None
    assert not is_temporary([diag], interrupted=False)


def test_words_outside_the_documented_form_are_not_codes() -> None:
    for detail in ("RequestLimitExceeded", "Throttling: slow down", "api error Throttling:",
                   "ServiceUnavailable while reading"):
        assert not Diagnostic("error", "reading thing", detail).temporary, detail


def test_log_lines_never_carry_a_diagnostic() -> None:
    line = parse_line(json.dumps({
        "@level": "info", "@message": "x: (local-exec): api error RequestLimitExceeded: x",
        "type": "provision_progress"}))
    assert line.diagnostic is None and "RequestLimitExceeded" in line.text
    assert parse_line("not json at all").text == "not json at all"


def test_one_permanent_error_among_temporary_ones_fails() -> None:
    diags = [Diagnostic("error", "Error acquiring the state lock"),
             Diagnostic("error", "Unsupported argument", "An argument named \"x\" …"),
             Diagnostic("warning", "Deprecated")]
    assert not is_temporary(diags, interrupted=False)
    assert not is_temporary([Diagnostic("warning", "Deprecated")], interrupted=False)
    assert is_temporary([], interrupted=True)


def test_the_message_is_summary_and_detail() -> None:
    diags = [Diagnostic("error", "local-exec provisioner error",
                        "Error running command 'false': exit status 1.\nOutput: boom\n"),
             Diagnostic("error", "execution halted")]
    assert failure_message(diags, "fallback") == (
        "local-exec provisioner error: Error running command 'false': exit status 1. "
        "Output: boom")
    assert failure_message([], "fallback") == "fallback"
