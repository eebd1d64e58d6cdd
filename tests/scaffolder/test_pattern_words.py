"""Every pattern of the shipped templates has words; an answer breaking one is told in them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from portal.errors import ValidationFailed
from scaffolder.parameters import ParameterContext, validate_answers
from scaffolder.pattern_words import WORDS
from tests.conftest import REPO_ROOT


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


SHIPPED = sorted({p for path in (REPO_ROOT / "templates").glob("*/template.yaml")
                  for p in _patterns(yaml.safe_load(path.read_text()))})


@pytest.mark.parametrize("pattern", SHIPPED)
def test_every_shipped_pattern_has_words(pattern: str) -> None:
    assert pattern in WORDS
    re.compile(pattern)


def test_a_broken_pattern_is_told_in_words_with_the_length() -> None:
    parameters = [{"properties": {"name": {"type": "string", "maxLength": 30,
                                           "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}}}]
    with pytest.raises(ValidationFailed) as caught:
        validate_answers(parameters, {"name": "Web_Shop"}, context=ParameterContext())
    assert caught.value.message == (
        "name: must use lowercase letters, digits and '-', starting and ending with a letter "
        "or digit, at most 30 characters (pattern)")
