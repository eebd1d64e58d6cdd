"""Kubernetes quantities: the API server's grammar, exact values, junk refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gitops.quantity import format_bytes, format_cpu, parse_quantity, to_bytes, to_cores


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("4Gi", Decimal(4 * 2**30)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1Ti", Decimal(2**40)),
        ("1e3", Decimal(1000)),
        ("2E2", Decimal(200)),
        ("3M", Decimal(3_000_000)),
        ("5G", Decimal(5_000_000_000)),
        ("0.5Gi", Decimal(2**29)),
        ("100k", Decimal(100_000)),
        (".5", Decimal("0.5")),
        (2, Decimal(2)),
    ],
)
def test_parses_the_api_grammar(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "lots",
        "4GB",
        "4 Gi",
        "Gi",
        "1.2.3",
        "--1",
        "1e",
        "0x10",
        "4gi",
        "1Gi ",
        "١٢",
        True,
        None,
        float("inf"),
        float("nan"),
        "9" * 80,
        [],
        "{{ 7 }}",
    ],
)
def test_refuses_junk(junk: object) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(junk)


def test_cores_and_bytes() -> None:
    assert to_cores("250m") == 0.25
    assert to_cores("2") == 2.0
    assert to_bytes("1Ki") == 1024
    assert to_bytes("1.5") == 2  # rounded up, as the API server does


def test_formatting_round_trips() -> None:
    assert format_cpu(0.5) == "500m"
    assert format_cpu(2) == "2"
    assert format_bytes(4 * 2**30) == "4Gi"
    assert format_bytes(1536 * 2**20) == "1536Mi"
    assert format_bytes(1000) == "1000"
    for text in ("500m", "3", "1250m"):
        assert parse_quantity(format_cpu(to_cores(text))) == parse_quantity(text)
    for text in ("4Gi", "512Mi", "1Ti"):
        assert format_bytes(to_bytes(text)) == text
    with pytest.raises(ValueError):
        format_cpu(-1)


@pytest.mark.parametrize("huge", ["1e309", "-1e309", "9223372036854775808", "8Ei", "10E",
                                  "1e19", 1e300, 2**64])
def test_refuses_magnitudes_above_int64(huge: object) -> None:
    """resource.Quantity: no quantity may be greater than 2^63-1 in magnitude."""
    with pytest.raises(ValueError, match="2\\^63-1"):
        parse_quantity(huge)


def test_largest_quantity_is_accepted_and_stays_finite() -> None:
    assert parse_quantity("9223372036854775807") == Decimal(2**63 - 1)
    assert to_cores("9E") == 9e18
