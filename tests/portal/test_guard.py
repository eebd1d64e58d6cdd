"""``portal.guard``: which value a request body was cut in when it crossed the limit."""

from __future__ import annotations

import pytest

from portal.guard import _field_at_cut


def scope(content_type: str) -> dict[str, object]:
    return {"type": "http", "headers": [(b"content-type", content_type.encode())]}


@pytest.mark.parametrize(("content_type", "prefix", "field"), [
    ("application/json", b'{"template": "t", "answers": {"description": "xx',
     "answers.description"),
    ("application/json; charset=utf-8", b'{"a": {"b": {"c": "xx', "a.b.c"),
    ("application/json", b'{"answers": {"owners": ["a", "b", "cc', "answers.owners"),
    ("application/json", b'{"name": "xxxxx', "name"),
    ("application/json", b'["xxxxx', "body"),
    ("application/json", b"not json at all", "body"),
    ("application/x-www-form-urlencoded", b"csrf=1&description=xxxx", "description"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data", "body"),
    ("text/plain", b"xxxx", "body"),
])
def test_the_value_in_progress_is_named(content_type: str, prefix: bytes, field: str) -> None:
    assert _field_at_cut(scope(content_type), prefix) == field
