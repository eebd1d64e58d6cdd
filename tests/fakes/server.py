"""Moved to ``devtools.server`` (shared with the benches); this re-export keeps imports written
before the move working until they are updated. New code imports ``devtools.server``."""

from devtools.server import *  # noqa: F403
