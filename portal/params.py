"""Typed, bounded request parameters shared by every router.

Every integer that reaches the database is bounded by the column it is compared with: the id
columns are ``INTEGER`` (the migrations), which PostgreSQL holds as a 4-byte ``integer``
(-2^31 .. 2^31-1, https://www.postgresql.org/docs/current/datatype-numeric.html). A larger
number is refused with a 422 naming the parameter before any query runs (psycopg raises
"integer out of range"/``OverflowError``, sqlite3 ``OverflowError`` above 2^63-1).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Header, Path, Query
from pydantic import BeforeValidator

# PostgreSQL ``integer``, the type of every id column.
MAX_ID = 2**31 - 1

PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="Row id, 1 to 2^31-1.")]
"""A row id in a path (``/api/changes/{change_id}``)."""

CursorId = Annotated[int | None, Query(ge=1, le=MAX_ID,
                                        description="Cursor: only rows with a smaller id.")]
"""An id cursor in a query (``before_id``)."""

Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="Skip this many rows.")]

LastEventId = Annotated[int, Header(ge=0, le=MAX_ID, alias="last-event-id",
                                    description="Resume a Server-Sent Events stream after "
                                                "this event id.")]


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_only(value: object) -> object:
    """Pydantic also reads numbers as Unix times; the API documents RFC 3339 ``date-time``."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A timestamp in a query (``since``/``until``): RFC 3339 text only, never a bare number."""
