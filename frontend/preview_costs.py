"""The dry-run preview's "cost and capacity" table, one row per environment the change touches.

Cost is the catalog's list price (``catalog.cost.PriceSheet.monthly``: the requested quota priced
by the environment's tier, per month); capacity is ``scaffolder.capacity`` (what every tenant's
quota takes of the environment's declared capacity once this change is in, and what remains).
This module only puts the two side by side in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from catalog.cost import PriceSheet
from scaffolder.capacity import RESOURCES, show
from scaffolder.models import EnvironmentPreview

NAMES = {"cpu": "CPU", "memory": "memory", "storage": "storage"}


@dataclass(frozen=True)
class EnvironmentRow:
    env: str
    tier: str
    requested: str  # "CPU 8, memory 16Gi, storage 50Gi" or "" (no quota requested)
    monthly_cost: float | None  # None: no quota requested, or no price for the tier
    priced: bool
    remaining: list[str]  # "CPU: 4 left of 16", "memory: 2Gi over 32Gi"
    over: bool
    capacity_note: str  # why no remaining capacity is shown


@dataclass(frozen=True)
class CostTable:
    rows: list[EnvironmentRow]
    currency: str
    monthly_total: float | None


def _remaining(env: EnvironmentPreview) -> list[str]:
    lines: list[str] = []
    for key in RESOURCES:
        if key not in env.capacity:
            continue
        left = env.remaining[key]
        limit = show(key, env.capacity[key])
        lines.append(f"{NAMES[key]}: {show(key, left)} left of {limit}" if left >= 0
                     else f"{NAMES[key]}: {show(key, -left)} over {limit}")
    return lines


def cost_table(environments: Sequence[EnvironmentPreview], prices: PriceSheet) -> CostTable:
    rows: list[EnvironmentRow] = []
    for env in environments:
        cost = prices.monthly(env.tier, cpu_milli=env.requested["cpu"],
                              memory_bytes=env.requested["memory"],
                              storage_bytes=env.requested["storage"]) \
            if env.requests_quota else None
        requested = ", ".join(f"{NAMES[k]} {show(k, env.requested[k])}" for k in RESOURCES
                              if env.requested.get(k)) if env.requests_quota else ""
        note = ("; ".join(env.problems) if env.problems else
                "" if env.capacity_declared else "no capacity declared")
        rows.append(EnvironmentRow(
            env=env.env, tier=env.tier, requested=requested, monthly_cost=cost,
            priced=prices.for_tier(env.tier) is not None, remaining=_remaining(env),
            over=bool(env.over), capacity_note=note))
    costs = [r.monthly_cost for r in rows if r.monthly_cost is not None]
    total = round(sum(costs), 2) if costs else None
    return CostTable(rows=rows, currency=prices.currency, monthly_total=total)
