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


def split_diff(diff: str) -> list[FileDiff]:
    """A unified git diff, one ``FileDiff`` per file, each line escaped and highlighted."""
    files: list[FileDiff] = []
    current: FileDiff | None = None
    language = "text"
    for raw in diff.splitlines():
        if raw.startswith("diff --git "):
            current = FileDiff(path=_path_from_header(raw))
            language = language_of(current.path)
            files.append(current)
            continue
        if current is None:
            continue
        if raw.startswith("new file mode"):
            current.status = "added"
        elif raw.startswith("deleted file mode"):
            current.status = "deleted"
        if raw.startswith(("index ", "new file mode", "deleted file mode", "--- ", "+++ ",
                           "similarity", "rename ", "old mode", "new mode", "Binary files")):
            if raw.startswith("Binary files"):
                current.lines.append(DiffLine("meta", escape(raw)))
            continue
        if len(current.lines) >= MAX_LINES_PER_FILE:
            current.truncated = True
            continue
        if raw.startswith("@@"):
            current.lines.append(DiffLine("hunk", escape(raw)))
        elif raw.startswith("+"):
            current.added += 1
            current.lines.append(DiffLine("add", Markup("+") + highlight_line(raw[1:], language)))
        elif raw.startswith("-"):
            current.removed += 1
            current.lines.append(DiffLine("del", Markup("-") + highlight_line(raw[1:], language)))
        elif raw.startswith("\\"):
            current.lines.append(DiffLine("meta", escape(raw)))
        else:
            body = raw[1:] if raw.startswith(" ") else raw
            current.lines.append(DiffLine("ctx", Markup(" ") + highlight_line(body, language)))
    return files


def highlight_file(path: str, content: str) -> list[Markup]:
    """Every line of a whole file (the dry-run preview shows files, not a diff)."""
    language = language_of(path)
    lines = content.splitlines()[:MAX_LINES_PER_FILE]
    return [highlight_line(line, language) for line in lines]
