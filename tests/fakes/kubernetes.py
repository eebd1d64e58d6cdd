"""Moved to ``devtools.kubernetes`` (shared with the benches); this re-export keeps imports written
before the move working until they are updated. New code imports ``devtools.kubernetes``."""

from devtools.kubernetes import *  # noqa: F403
