"""The test session's PostgreSQL: the benches' throwaway server (``bench/postgres.py``, its one
owner)."""

from __future__ import annotations

from bench.postgres import postgres_server

__all__ = ["postgres_server"]
