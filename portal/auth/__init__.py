"""Identity: users, teams, memberships, sessions, API tokens, the ``Principal`` and the audit log."""
