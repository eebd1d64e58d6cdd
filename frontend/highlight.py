"""Server-side diff splitting and syntax highlighting.

Every character of file content is escaped before it is wrapped in a ``<span class=...>``; the
only markup in the output is the spans this module writes, so a value in a rendered file can
never become HTML on the change page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

MAX_LINES_PER_FILE = 2000

_YAML_KEY = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z0-9_./@\"'-]+)(:)(?=\s|$)")
_HCL_KEY = re.compile(r"^(\s*)([A-Za-z0-9_-]+)(\s*=)")
_HCL_BLOCK = re.compile(r"^(\s*)(resource|variable|output|module|provider|terraform|locals|data)\b")
_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def _span(cls: str, text: str) -> Markup:
    return Markup('<span class="{}">{}</span>').format(cls, text)  # format() escapes text


def _comment_at(text: str, marker: str) -> int:
    """Index of a comment start outside quotes, or -1."""
    quote: str | None = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif text.startswith(marker, index) and (index == 0 or text[index - 1].isspace()):
            return index
    return -1


def _strings(text: str) -> Markup:
    out = Markup()
    last = 0
    for match in _STRING.finditer(text):
        out += escape(text[last:match.start()])
        out += _span("str", match.group(0))
        last = match.end()
    return out + escape(text[last:])


def highlight_line(text: str, language: str) -> Markup:
    """One line of YAML, HCL (Terraform) or plain text, escaped and coloured."""
    if language not in ("yaml", "hcl"):
        return escape(text)
    marker = "#"
    cut = _comment_at(text, marker)
    if language == "hcl" and cut < 0:
        cut = _comment_at(text, "//")
    code, comment = (text[:cut], text[cut:]) if cut >= 0 else (text, "")
    out = Markup()
    pattern = _YAML_KEY if language == "yaml" else _HCL_KEY
    match = pattern.match(code) or (_HCL_BLOCK.match(code) if language == "hcl" else None)
    if match:
        out += escape(match.group(1)) + _span("key", match.group(2))
        if match.lastindex and match.lastindex >= 3:
            out += escape(match.group(3))
        code = code[match.end():]
    out += _strings(code)
    if comment:
        out += _span("cmt", comment)
    return out


def language_of(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".yaml", ".yml")) or lower.rsplit("/", 1)[-1] == "codeowners":
        return "yaml"
    if lower.endswith((".tf", ".tfvars", ".hcl")):
        return "hcl"
    return "text"


@dataclass
class DiffLine:
    kind: str  # add | del | ctx | hunk | meta
    html: Markup


@dataclass
class FileDiff:
    path: str
    status: str = "modified"  # added | modified | deleted
    added: int = 0
    removed: int = 0
    lines: list[DiffLine] = field(default_factory=list)
    truncated: bool = False

    @property
    def anchor(self) -> str:
        return "file-" + re.sub(r"[^A-Za-z0-9_-]", "-", self.path)


def _path_from_header(line: str) -> str:
    # "diff --git a/x b/x" — take the b/ side (the new path; for deletions they are equal).
    rest = line[len("diff --git "):]
    half = rest.rfind(" b/")
    return rest[half + 3:] if half >= 0 else rest


def _strip_side(name: str) -> str:
    name = name.split("\t", 1)[0]
    return name[2:] if name.startswith(("a/", "b/")) else name


_SIGNS = {"add": Markup("+"), "del": Markup("-"), "ctx": Markup(" ")}
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


def split_diff(diff: str) -> list[FileDiff]:
    """A unified diff (``git diff`` or plain ``diff -u`` / difflib), one ``FileDiff`` per file,
    each line escaped and highlighted. Hunk line counts are tracked, so a removed line that
    happens to start with ``-- `` is never mistaken for the next file's header."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    language = "text"
    old_left = new_left = 0
    lines = diff.splitlines()
    for index, raw in enumerate(lines):
        in_hunk = old_left > 0 or new_left > 0
        if not in_hunk and raw.startswith("diff --git "):
            current = FileDiff(path=_path_from_header(raw))
            language = language_of(current.path)
            files.append(current)
            continue
        if not in_hunk and raw.startswith("--- ") and index + 1 < len(lines) \
                and lines[index + 1].startswith("+++ "):
            old_name, new_name = raw[4:], lines[index + 1][4:]
            path = _strip_side(new_name if new_name != "/dev/null" else old_name)
            if current is None or current.lines or current.path != path:
                current = FileDiff(path=path)
                files.append(current)
            if old_name == "/dev/null":
                current.status = "added"
            elif new_name == "/dev/null":
                current.status = "deleted"
            language = language_of(current.path)
            continue
        if current is None:
            continue
        if not in_hunk:
            if raw.startswith("new file mode"):
                current.status = "added"
            elif raw.startswith("deleted file mode"):
                current.status = "deleted"
            elif raw.startswith("Binary files"):
                current.lines.append(DiffLine("meta", escape(raw)))
            match = _HUNK.match(raw)
            if match:
                old_left = int(match.group(1) or 1)
                new_left = int(match.group(2) or 1)
                current.lines.append(DiffLine("hunk", escape(raw)))
            continue
        kind = {"+": "add", "-": "del", "\\": "meta"}.get(raw[:1], "ctx")
        if kind == "add":
            new_left -= 1
            current.added += 1
        elif kind == "del":
            old_left -= 1
            current.removed += 1
        elif kind == "ctx":
            old_left -= 1
            new_left -= 1
        if len(current.lines) >= MAX_LINES_PER_FILE:
            current.truncated = True
            continue
        if kind == "meta":
            current.lines.append(DiffLine("meta", escape(raw)))
        else:
            current.lines.append(DiffLine(kind, _SIGNS[kind] + highlight_line(raw[1:], language)))
    return files


def highlight_file(path: str, content: str) -> list[Markup]:
    """Every line of a whole file (the dry-run preview shows files, not a diff)."""
    language = language_of(path)
    lines = content.splitlines()[:MAX_LINES_PER_FILE]
    return [highlight_line(line, language) for line in lines]
