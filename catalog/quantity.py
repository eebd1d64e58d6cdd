"""Quota quantities as exact integers for sums: CPU in millicores, memory/storage in bytes.

Parsing is ``scaffolder.quantity`` (the Kubernetes grammar, shared with the scaffolder's checks);
this module only fixes the units the catalog stores and the error it raises.
"""

from __future__ import annotations

import math

from scaffolder.quantity import format_bytes, format_cpu, parse_quantity

GIB = 2 ** 30

__all__ = ["GIB", "QuantityError", "cpu_milli", "format_bytes", "format_cpu", "to_bytes"]


class QuantityError(ValueError):
    pass


def cpu_milli(value: object) -> int:
    try:
        quantity = parse_quantity(value)
    except ValueError as exc:
        raise QuantityError(f"{exc} (e.g. 500m, 2)") from None
    if quantity < 0:
        raise QuantityError(f"{value!r} is negative")
    return math.ceil(quantity * 1000)


def to_bytes(value: object) -> int:
    try:
        quantity = parse_quantity(value)
    except ValueError as exc:
        raise QuantityError(f"{exc} (e.g. 512Mi, 4Gi)") from None
    if quantity < 0:
        raise QuantityError(f"{value!r} is negative")
    return math.ceil(quantity)
