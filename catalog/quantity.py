"""Kubernetes resource quantities (``500m``, ``2``, ``4Gi``, ``1.5G``) as integers.

CPU becomes millicores and memory/storage bytes, so sums and comparisons are exact.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^\s*([+]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]{0,2})\s*$")
GIB = 2 ** 30


class QuantityError(ValueError):
    pass


def parse(value: object) -> Decimal:
    """The quantity's value in base units (cores, bytes)."""
    if isinstance(value, bool) or value is None:
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 4Gi)")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
        raise QuantityError(f"{value!r} is not a quantity") from exc


def cpu_milli(value: object) -> int:
    return int((parse(value) * 1000).to_integral_value())


def to_bytes(value: object) -> int:
    return int(parse(value).to_integral_value())
