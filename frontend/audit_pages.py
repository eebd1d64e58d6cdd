"""The audit log page (platform admins only): filters, paging by id, CSV export link."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from frontend.pages import render
from portal.auth import audit
from portal.deps import AdminDep, SessionDep
from portal.params import CursorId

router = APIRouter(include_in_schema=False)

PAGE = 50
OUTCOMES = ("success", "failure", "denied", "skipped")


@router.get("/audit")
def audit_page(
    request: Request,
    _admin: AdminDep,
    session: SessionDep,
    actor: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
    outcome: Annotated[str, Query(pattern="^(|success|failure|denied|skipped)$")] = "",
    target: Annotated[str, Query(max_length=300)] = "",
    before_id: CursorId = None,
) -> Response:
    events = audit.query(session, actor=actor or None, action=action or None,
                         outcome=outcome or None, target=target or None,
                         before_id=before_id, limit=PAGE + 1)
    more = len(events) > PAGE
    events = events[:PAGE]
    filters = {k: v for k, v in (("actor", actor), ("action", action), ("outcome", outcome),
                                 ("target", target)) if v}
    older = None
    if more and events and events[-1].id is not None:
        older = "/audit?" + urlencode({**filters, "before_id": events[-1].id})
    export = "/api/audit?" + urlencode({**filters, "format": "csv", "limit": 1000})
    return render(request, "audit.html", title="Audit log", events=events, filters=filters,
                  outcomes=OUTCOMES, older=older, export=export)
