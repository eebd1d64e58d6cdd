"""The rendered-template fixtures are shared with tests/templates."""

from tests.templates.conftest import policies, rendered

__all__ = ["policies", "rendered"]
