"""Moved to ``devtools.keycloak`` (shared with the benches); this re-export keeps imports written
before the move working until they are updated. New code imports ``devtools.keycloak``."""

from devtools.keycloak import *  # noqa: F403
