"""Identity: users, teams, memberships, sessions, API tokens, the ``Principal``, the audit log."""
