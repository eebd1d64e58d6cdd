"""Quota quantities as exact integers for sums: CPU in millicores, memory/storage in bytes.

Parsing is ``scaffolder.quantity`` (the Kubernetes grammar, shared with the scaffolder's checks);
this module only fixes the units the catalog stores and the error it raises.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scaffolder.quantity import format_bytes, format_cpu, parse_quantity

GIB = 2 ** 30
BIGINT_MAX = 2**63 - 1

__all__ = ["GIB", "QuantityError", "cpu_milli", "format_bytes", "format_cpu", "to_bytes"]


class QuantityError(ValueError):
    pass


def cpu_milli(value: object) -> int:
    # Quotas repeat the same few spellings thousands of times per reindex.
    return _cpu_milli(value) if isinstance(value, str) else _cpu_milli_uncached(value)


def to_bytes(value: object) -> int:
    return _to_bytes(value) if isinstance(value, str) else _to_bytes_uncached(value)


@lru_cache(maxsize=4096)
def _cpu_milli(value: str) -> int:
    return _cpu_milli_uncached(value)


@lru_cache(maxsize=4096)
def _to_bytes(value: str) -> int:
    return _to_bytes_uncached(value)


def _cpu_milli_uncached(value: object) -> int:
    try:
        quantity = parse_quantity(value)
    except ValueError as exc:
        raise QuantityError(f"{exc} (e.g. 500m, 2)") from None
    if quantity < 0:
        raise QuantityError(f"{value!r} is negative")
    milli = math.ceil(quantity * 1000)
    if milli > BIGINT_MAX:  # the catalog's BIGINT column
        raise QuantityError(f"{value!r} is more CPU than the catalog can count")
    return milli


def _to_bytes_uncached(value: object) -> int:
    try:
        quantity = parse_quantity(value)
    except ValueError as exc:
        raise QuantityError(f"{exc} (e.g. 512Mi, 4Gi)") from None
    if quantity < 0:
        raise QuantityError(f"{value!r} is negative")
    return math.ceil(quantity)
