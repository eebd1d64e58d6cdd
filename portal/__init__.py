"""caas-portal: the shell (settings, database, identity, errors) and the app over the domains."""

__version__ = "0.1.0"
