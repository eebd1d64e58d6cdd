"""Request and response shapes of promotion: the request, an override, the matrix."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from portal.db import UtcDatetime

ENV = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class PromotionRequest(BaseModel):
    """Promote an application from one environment to another (``{"from": …, "to": …}``)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")
    source: str = PField(alias="from", min_length=1, max_length=63, pattern=ENV,
                         description="The environment whose version and values are carried.")
    target: str = PField(alias="to", min_length=1, max_length=63, pattern=ENV,
                         description="The environment whose overlay the pull request changes.")


class OverrideRequest(BaseModel):
    """A platform-admin passes a gate with a reason the audit log keeps."""

    model_config = ConfigDict(extra="forbid")
    gate: str = PField(min_length=1, max_length=63, description="The gate (source-health).")
    reason: str = PField(min_length=10, max_length=500, description="Why; kept in the audit.")


class MatrixRow(BaseModel):
    """One environment of an application: what git says runs there, since when, by which PR,
    and what ArgoCD says (when a cluster is connected)."""

    environment: str
    tier: str
    file: str
    repo_url: str
    chart: str
    path: str
    revision: str
    images: list[str]
    sync_policy: str
    since: UtcDatetime | None = None
    change_id: int | None = None
    change_number: int | None = None
    change_url: str = ""
    change_action: str = ""
    live_sync: str | None = None
    live_health: str | None = None
    live_reason: str | None = None
    open_promotion: int | None = PField(None, description="An open promotion into this "
                                        "environment (its change id).")


class PromotionMatrix(BaseModel):
    team: str
    app: str
    layout: str = PField(description="`envs` (one folder per environment) or `single` (the "
                         "older single file).")
    environments: list[str] = PField(description="Every environment on main (promotion "
                                     "targets), dev → prod by tier.")
    rows: list[MatrixRow]

