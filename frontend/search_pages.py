"""The search results page: the header search box's form target (works without JavaScript);
the box's suggestions come from the same search through ``GET /api/catalog/search``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from catalog import search
from catalog.models import SearchResults
from frontend.pages import render
from frontend.services import RegistryDep
from portal.deps import PrincipalDep, SessionDep
from portal.errors import ValidationFailed
from scaffolder import service as scaffolder_service

router = APIRouter(include_in_schema=False)

PAGE_LIMIT = 10  # hits per kind on the page; ``kind=`` shows up to search.MAX_LIMIT of one kind
LABELS = {"team": "Teams", "namespace": "Namespaces", "environment": "Environments",
          "application": "Applications", "template": "Templates"}


@router.get("/search")
def search_page(
    request: Request, principal: PrincipalDep, session: SessionDep, registry: RegistryDep,
    # Longer than search.MAX_QUERY: refused on the page itself, with the box to shorten it.
    q: Annotated[str, Query(max_length=10 * search.MAX_QUERY)] = "",
    kind: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    results: SearchResults | None = None
    error = ""
    if q.strip():
        try:
            results = search.search(
                session, q=q, kinds=[kind] if kind else None,
                limit=search.MAX_LIMIT if kind else PAGE_LIMIT,
                documents=scaffolder_service.template_documents(registry=registry))
        except ValidationFailed as exc:
            error = exc.message
        finally:
            session.rollback()
    return render(request, "search.html", status=422 if error else 200,
                  title=f"Search: {q}" if q.strip() else "Search", q=q, kind=kind,
                  results=results, error=error, labels=LABELS,
                  only=LABELS.get(kind, ""))
