"""checkov (Bridgecrew's scanner, from PyPI, in its own venv) finds nothing in the AWS units and
the GitOps skeleton; every suppression is inline and gives its reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.checkov, pytest.mark.slow, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def checkov() -> Path:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "checkov.sh"), "--install"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return CHECKOV


def scan(checkov: Path, folder: str, framework: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(checkov), "--skip-download", "--framework", framework, "-o", "json",
         "-d", folder], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "HOME": str(ROOT / ".caas")})
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


@pytest.mark.parametrize(("folder", "framework"), [("terraform/aws", "terraform"),
                                                   ("gitops-skeleton", "kubernetes")])
def test_no_failed_check_and_every_skip_has_a_reason(checkov: Path, folder: str,
                                                     framework: str) -> None:
    reports = scan(checkov, folder, framework)
    mine = [r for r in reports if r.get("check_type") == framework]
    results = [r["results"] for r in mine]
    assert results, reports
    failed = [f"{c['check_id']} {c['resource']} {c['file_path']}"
              for r in results for c in r["failed_checks"]]
    assert failed == []
    assert sum(r["summary"]["passed"] for r in mine) > 100  # the scan really ran
    for r in results:
        for skipped in r["skipped_checks"]:
            reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
            assert len(reason) > 20, skipped["check_id"]


def test_a_planted_problem_is_found(checkov: Path, tmp_path: Path) -> None:
    """The scan is live: a public EKS endpoint open to the world fails it."""
    (tmp_path / "main.tf").write_text(
        'resource "aws_eks_cluster" "open" {\n  name     = "open"\n  role_arn = "arn"\n'
        '  vpc_config {\n    subnet_ids             = ["subnet-1"]\n'
        '    endpoint_public_access = true\n    public_access_cidrs    = ["0.0.0.0/0"]\n  }\n}\n')
    (report,) = scan(checkov, str(tmp_path), "terraform")
    failed = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert {"CKV_AWS_38", "CKV_AWS_39"} <= failed


def test_skips_are_inline_with_the_reason_on_the_same_line() -> None:
    pattern = re.compile(r"checkov:skip=(CKV2?_[A-Z0-9_]+)(:?)(.*)")
    for path in [*ROOT.joinpath("terraform", "aws").rglob("*.tf"),
                 *ROOT.joinpath("gitops-skeleton").rglob("*.yaml")]:
        for line in path.read_text().splitlines():
            match = pattern.search(line)
            if match:
                assert match.group(2) == ":" and len(match.group(3).strip()) > 20, (path, line)
