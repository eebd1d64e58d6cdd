"""Kubernetes resource quantities: parse, compare and format them.

Public functions:

- ``parse_quantity(text) -> Decimal`` — the exact value of a quantity in base units
  (``"500m"`` → ``0.5``, ``"4Gi"`` → ``4294967296``, ``"1e3"`` → ``1000``).
- ``to_cores(text) -> float`` — CPU quantity in cores.
- ``cpu_milli(text) -> int`` — CPU quantity in whole millicores (rounded up), for exact sums.
- ``to_bytes(text) -> int`` — memory/storage quantity in bytes (rounded up, as the API server does).
- ``format_cpu(cores) -> str`` and ``format_bytes(n) -> str`` — the shortest canonical spelling
  (``"500m"``, ``"2"``, ``"4Gi"``).

Magnitudes above 2^63 - 1 are refused: the Kubernetes API holds no larger quantity ("no quantity
may represent a number greater than 2^63-1 in magnitude", ``resource.Quantity``), and bounding
it keeps every later sum and float conversion finite (``"1e309"`` would be ``inf`` as a float).

Only the grammar of the Kubernetes API (``resource.Quantity``) is accepted: a signed decimal
number followed by one binary suffix (``Ki Mi Gi Ti Pi Ei``), one decimal suffix
(``n u m k M G T P E``) or a decimal exponent (``e3``/``E3``). Anything else raises
``QuantityError`` (a ``ValueError``): quantities come from form answers, so junk must be refused,
never guessed at. ``cpu_milli`` and ``to_bytes`` also refuse negative amounts (a quota or a
capacity is never negative). Source: Kubernetes ``resource.Quantity``
(https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

GIB = 2**30
BIGINT_MAX = 2**63 - 1


class QuantityError(ValueError):
    """Not a Kubernetes quantity, or a negative amount where none is allowed."""


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# The API server's grammar ([0-9], not \d: no other scripts' digits); the length cap keeps
# Decimal away from absurd inputs.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<exp>[eE][+-]?[0-9]{1,3})|(?P<dec>[numkMGTPE]?))$"
)
_MAX_LENGTH = 64
# k8s.io/apimachinery/pkg/api/resource.Quantity: the largest magnitude a quantity may have.
MAX_MAGNITUDE = Decimal(2**63 - 1)


def parse_quantity(text: object) -> Decimal:
    """Return the exact value of ``text`` in base units; ``ValueError`` if it is not a quantity."""
    if isinstance(text, bool):
        raise QuantityError(f"not a Kubernetes quantity: {text!r}")
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise QuantityError(f"not a Kubernetes quantity: {text!r}")
        text = str(text)
    if not isinstance(text, str):
        raise QuantityError(f"not a Kubernetes quantity: {text!r}")
    if len(text) > _MAX_LENGTH:
        raise QuantityError("not a Kubernetes quantity: too long")
    match = _QUANTITY.match(text)
    if match is None:
        raise QuantityError(f"not a Kubernetes quantity: {text!r}")
    try:
        number = Decimal(match["num"])
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise QuantityError(f"not a Kubernetes quantity: {text!r}") from exc
    if match["bin"]:
        value = number * _BINARY[match["bin"]]
    elif match["exp"]:
        value = number.scaleb(int(match["exp"][1:]))
    else:
        value = number * _DECIMAL[match["dec"] or ""]
    if not value.is_finite() or abs(value) > MAX_MAGNITUDE:
        raise QuantityError(f"not a Kubernetes quantity: {text!r} is above 2^63-1 in magnitude")
    return value


def to_cores(text: object) -> float:
    """CPU quantity in cores (``"250m"`` → ``0.25``)."""
    return float(parse_quantity(text))


def cpu_milli(value: object) -> int:
    """CPU quantity in whole millicores, rounded up (``"250m"`` → ``250``, ``"1.5"`` → ``1500``);
    ``QuantityError`` for junk or a negative amount."""
    # Quotas repeat the same few spellings thousands of times per reindex.
    return _cpu_milli(value) if isinstance(value, str) else _cpu_milli_uncached(value)


def to_bytes(value: object) -> int:
    """Memory or storage quantity in bytes, rounded up like the API server rounds;
    ``QuantityError`` for junk or a negative amount."""
    return _to_bytes(value) if isinstance(value, str) else _to_bytes_uncached(value)


@lru_cache(maxsize=4096)
def _cpu_milli(value: str) -> int:
    return _cpu_milli_uncached(value)


@lru_cache(maxsize=4096)
def _to_bytes(value: str) -> int:
    return _to_bytes_uncached(value)


def _non_negative(value: object, example: str) -> Decimal:
    try:
        quantity = parse_quantity(value)
    except QuantityError as exc:
        raise QuantityError(f"{exc} (e.g. {example})") from None
    if quantity < 0:
        raise QuantityError(f"{value!r} is negative")
    return quantity


def _cpu_milli_uncached(value: object) -> int:
    milli = math.ceil(_non_negative(value, "500m, 2") * 1000)
    if milli > BIGINT_MAX:  # sums are stored in BIGINT columns
        raise QuantityError(f"{value!r} is more CPU than 2^63-1 millicores")
    return milli


def _to_bytes_uncached(value: object) -> int:
    return math.ceil(_non_negative(value, "512Mi, 4Gi"))


def format_cpu(cores: float | Decimal) -> str:
    """Shortest spelling of a CPU amount: whole cores as ``"2"``, the rest in millicores."""
    value = Decimal(str(cores))
    if value < 0:
        raise ValueError("a CPU amount cannot be negative")
    if value == value.to_integral_value():
        return str(int(value))
    millis = math.ceil(value * 1000)
    return f"{millis}m"


def format_bytes(amount: int | Decimal) -> str:
    """Shortest exact binary spelling of a byte count (``4294967296`` → ``"4Gi"``)."""
    value = math.ceil(Decimal(amount))
    if value < 0:
        raise ValueError("a byte count cannot be negative")
    for suffix in ("Ei", "Pi", "Ti", "Gi", "Mi", "Ki"):
        unit = _BINARY[suffix]
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(value)
