"""The template language both renderers agree on: cookiecutter's Jinja2 and Backstage's
``fetch:template`` (Nunjucks syntax, ``cookiecutterCompat: true``; Nunjitsu since
plugin-scaffolder-backend 4.x), and the ``${{ }}`` expressions of ``template.yaml`` step inputs.

``check_text`` tokenises a file with Jinja2's own lexer and refuses, naming file and line, every
construct outside the subset described in ``templates/README.md``: filters other than the
listed ones (``tojson``, ``unique``, ``list``, ``dump``, ``jsonify`` … behave differently or do
not exist on one side), calls other than ``.split(…)`` and filters, slices (``[:40]`` gives an
array of characters in Nunjucks), dict literals (``{…}}`` does not parse there), arithmetic
(``+`` concatenates lists as strings there), tests (``is``), and every tag but
``if``/``elif``/``else``/``for``/``set``. What the lexer cannot see — printing a boolean or a list
(``True`` vs ``true``, ``['a']`` vs ``a``), testing a list for emptiness (``[]`` is truthy in
JavaScript) — is a written rule, and the comparison test against Backstage's real action catches it.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment
from jinja2.exceptions import TemplateSyntaxError

FILTERS = frozenset({"replace", "length", "int", "trim", "truncate", "lower", "upper", "join",
                     "dictsort"})
METHODS = frozenset({"split"})
TAGS = frozenset({"if", "elif", "else", "endif", "for", "endfor", "set"})
LOOP_FIELDS = frozenset({"index", "first", "last", "length"})
CONSTANTS = frozenset({"true", "false"})
FORBIDDEN_OPERATORS = {"+": "arithmetic '+'", "-": "arithmetic '-'", "*": "arithmetic '*'",
                       "/": "arithmetic '/'", "//": "arithmetic '//'", "%": "arithmetic '%'",
                       "**": "arithmetic '**'", "{": "a dict literal"}

# Used only to tokenise (``lex``); nothing is rendered with these, so autoescape is moot.
_FILE_ENV = Environment(keep_trailing_newline=True)  # noqa: S701
_STEP_ENV = Environment(variable_start_string="${{", variable_end_string="}}",  # noqa: S701
                        keep_trailing_newline=True)


class SubsetError(ValueError):
    """A construct outside the shared subset: ``line`` (1-based) and what it was."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(f"line {line}: {what} is outside the Jinja2/Nunjucks subset "
                         "(templates/README.md)")
        self.line = line
        self.what = what


def _tokens(text: str, *, step: bool) -> list[tuple[int, str, str]]:
    env = _STEP_ENV if step else _FILE_ENV
    try:
        return [t for t in env.lex(text) if t[1] != "whitespace"]
    except TemplateSyntaxError as exc:
        raise SubsetError(exc.lineno or 1, f"a syntax error ({exc.message})") from None


_OPENERS = {"block_begin", "variable_begin"}
_CLOSERS = {"block_end", "variable_end"}
_SKIP = {"comment", "comment_begin", "comment_end", "data", "linecomment"}


def check_text(text: str, *, step: bool = False) -> None:
    """Raise ``SubsetError`` for the first construct outside the subset (``step``: a
    ``template.yaml`` step input, ``${{ }}`` delimiters)."""
    tokens = _tokens(text, step=step)
    index = 0
    while index < len(tokens):
        line, kind, _value = tokens[index]
        if kind == "raw_begin":
            raise SubsetError(line, "the raw tag")
        if kind not in _OPENERS:
            index += 1
            continue
        end = index + 1
        while end < len(tokens) and tokens[end][1] not in _CLOSERS:
            end += 1
        _check_expression(tokens[index + 1:end], block=kind == "block_begin",
                          line=line)
        index = end + 1


def _check_expression(tokens: list[tuple[int, str, str]], *, block: bool, line: int) -> None:
    tag = ""
    if block:
        if not tokens or tokens[0][1] != "name" or tokens[0][2] not in TAGS:
            raise SubsetError(line, f"the tag {tokens[0][2] if tokens else ''!r}")
        tag, tokens = tokens[0][2], tokens[1:]
    depth: list[str] = []
    seen_in = False
    previous = ("", "")
    before = ("", "")
    for line, kind, value in tokens:
        token = (kind, value)
        if kind == "operator":
            if value in FORBIDDEN_OPERATORS:  # unary minus too: JS has no negative index
                raise SubsetError(line, FORBIDDEN_OPERATORS[value])
            if value == "(":
                if previous[0] == "name" and before == ("operator", "."):
                    if previous[1] not in METHODS:
                        raise SubsetError(line, f"the method .{previous[1]}(…)")
                elif previous[0] == "name" and before != ("operator", "|") \
                        and previous[1] not in ("in", "and", "or", "not", "if", "else"):
                    raise SubsetError(line, f"the call {previous[1]}(…)")
            if value in "([":
                depth.append(value)
            elif value in ")]" and depth:
                depth.pop()
            elif value == ":" and depth and depth[-1] == "[":
                raise SubsetError(line, "a slice")
        elif kind == "name":
            if previous == ("operator", "|") and value not in FILTERS:
                raise SubsetError(line, f"the filter {value!r}")
            if previous == ("operator", ".") and before == ("name", "loop") \
                    and value not in LOOP_FIELDS:
                raise SubsetError(line, f"loop.{value}")
            if previous != ("operator", "."):
                if value == "is":
                    raise SubsetError(line, "a test ('is')")
                if value in ("None", "none", "True", "False"):
                    raise SubsetError(line, f"the constant {value!r} (write true/false)")
                if tag == "for" and value == "in" and not depth:
                    seen_in = True
                elif tag == "for" and seen_in and not depth and value in ("if", "recursive"):
                    raise SubsetError(line, f"a loop with {value!r}")
        before, previous = previous, token


def check_file(path: Path, *, relative: str) -> None:
    """Check one template file's name and content; the error names ``relative`` and the line."""
    try:
        check_text(relative)
    except SubsetError as exc:
        raise SubsetError(1, f"{relative}: in the file name, {exc.what}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # binary files are copied as they are by both renderers
    try:
        check_text(text)
    except SubsetError as exc:
        raise SubsetError(exc.line, f"{relative}:{exc.line}: {exc.what}") from None
