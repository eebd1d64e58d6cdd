"""Server-rendered pages: Jinja2 templates, one stylesheet, small plain JavaScript."""
