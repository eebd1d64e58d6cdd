"""What a unit's Terraform state holds after an attempt: the source of its apply record.

An attempt can apply and then fail to record it (the worker died, the database was down). Its
retry plans no change; the record it writes must still say the commit was applied. So a record
carries a snapshot of the state (``terraform state pull``: ``serial``, ``lineage``, resource
instances — https://developer.hashicorp.com/terraform/language/state), and the retry compares
the state with the unit's last record: a newer serial means an earlier attempt applied it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StateSnapshot:
    """Serial, lineage and resource instance addresses of a unit's state (no values)."""

    serial: int = 0
    lineage: str = ""
    resources: tuple[str, ...] = ()
    tainted: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.lineage

    def to_dict(self) -> dict[str, Any]:
        return {"serial": self.serial, "lineage": self.lineage,
                "resources": list(self.resources), "tainted": list(self.tainted)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> StateSnapshot:
        if not raw:
            return cls()
        return cls(int(raw.get("serial") or 0), str(raw.get("lineage") or ""),
                   tuple(raw.get("resources") or ()), tuple(raw.get("tainted") or ()))

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StateSnapshot:
        """From the raw state document (format version 4) ``terraform state pull`` prints."""
        resources: list[str] = []
        tainted: list[str] = []
        for res in state.get("resources") or []:
            base = ("data." if res.get("mode") == "data" else "") + f"{res['type']}.{res['name']}"
            if res.get("module"):
                base = f"{res['module']}.{base}"
            for inst in res.get("instances") or []:
                key = inst.get("index_key")
                address = base if key is None else \
                    f"{base}[{key if isinstance(key, int) else repr(key)}]"
                resources.append(address)
                if inst.get("status") == "tainted":
                    tainted.append(address)
        return cls(int(state.get("serial") or 0), str(state.get("lineage") or ""),
                   tuple(sorted(resources)), tuple(sorted(tainted)))

    def moved_on_from(self, recorded: StateSnapshot | None) -> bool:
        """True when this state was written after ``recorded`` (None: nothing recorded yet)."""
        if self.empty:
            return False
        if recorded is None or recorded.empty:
            return True
        return self.lineage != recorded.lineage or self.serial > recorded.serial

    def since(self, recorded: StateSnapshot | None) -> dict[str, Any]:
        """What changed since ``recorded``: serials, resources added and removed."""
        before = recorded or StateSnapshot()
        return {"serial_before": before.serial, "serial_after": self.serial,
                "added": sorted(set(self.resources) - set(before.resources)),
                "removed": sorted(set(before.resources) - set(self.resources))}
