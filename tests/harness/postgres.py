"""Moved to ``devtools.postgres`` (shared with the benches); this re-export keeps imports written
before the move working until they are updated. New code imports ``devtools.postgres``."""

from devtools.postgres import *  # noqa: F403
