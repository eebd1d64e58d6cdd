"""The price sheet and what a quota costs.

Cost is list price, not usage: a namespace pays for what its ResourceQuota requests in each
environment, priced by that environment's tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gitops import yaml
from gitops.quantity import GIB
from portal.errors import ConfigError


@dataclass(frozen=True)
class TierPrice:
    cpu: float  # per core and month
    memory_gib: float
    storage_gib: float


@dataclass(frozen=True)
class PriceSheet:
    currency: str
    tiers: dict[str, TierPrice]
    aliases: dict[str, str]

    def for_tier(self, tier: str) -> TierPrice | None:
        return self.tiers.get(self.aliases.get(tier, tier))

    def monthly(self, tier: str, *, cpu_milli: int, memory_bytes: int,
                storage_bytes: int) -> float | None:
        """Cost of one quota in an environment of ``tier``; None when the tier has no price."""
        price = self.for_tier(tier)
        if price is None:
            return None
        return round(cpu_milli / 1000 * price.cpu + memory_bytes / GIB * price.memory_gib
                     + storage_bytes / GIB * price.storage_gib, 2)


def parse_price_sheet(text: str, *, source: str = "price sheet") -> PriceSheet:
    try:
        data = yaml.load(text)
    except yaml.YamlError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}", field="CAAS_PRICE_SHEET") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tiers"), dict):
        raise ConfigError(f"{source}: needs a `tiers` mapping", field="CAAS_PRICE_SHEET")
    tiers: dict[str, TierPrice] = {}
    for tier, prices in data["tiers"].items():
        if not isinstance(prices, dict):
            raise ConfigError(f"{source}: tiers.{tier} must be a mapping",
                              field="CAAS_PRICE_SHEET")
        try:
            tiers[str(tier)] = TierPrice(cpu=float(prices["cpu"]),
                                         memory_gib=float(prices["memory_gib"]),
                                         storage_gib=float(prices["storage_gib"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: tiers.{tier} needs numeric cpu, memory_gib and "
                              f"storage_gib ({exc})", field="CAAS_PRICE_SHEET") from exc
    aliases = data.get("aliases") or {}
    return PriceSheet(currency=str(data.get("currency", "EUR")), tiers=tiers,
                      aliases={str(k): str(v) for k, v in aliases.items()})


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> PriceSheet:
    return parse_price_sheet(Path(path).read_text(encoding="utf-8"), source=path)


def load_price_sheet(path: Path) -> PriceSheet:
    """The sheet at ``path``, re-read when the file changes."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ConfigError(f"price sheet {path} cannot be read: {exc}",
                          field="CAAS_PRICE_SHEET") from exc
    return _load(str(path), mtime)


DEFAULT_PRICE_SHEET = Path(__file__).resolve().parent / "prices.yaml"
