"""Forges: where change sets become branches and pull requests (local bare repository, GitHub)."""
