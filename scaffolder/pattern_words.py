"""The templates' JSON Schema patterns said in words, for form errors: a person reads
"lowercase letters, digits and '-', starting and ending with a letter or digit", not a regex.

Keys are the exact ``pattern`` strings of ``templates/*/template.yaml``;
``tests/scaffolder/test_pattern_words.py`` fails when a template uses a pattern with no words.
The DNS-1123 label rule is Kubernetes' (docs: "Object Names and IDs" — RFC 1123 label names).
"""

from __future__ import annotations

WORDS: dict[str, str] = {
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$":
        "lowercase letters, digits and '-', starting and ending with a letter or digit",
    r"^[a-z]([-a-z0-9]*[a-z0-9])?$":
        "lowercase letters, digits and '-', starting with a letter and ending with a letter "
        "or digit",
    r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$":
        "lowercase letters, digits, '-', '.' and '_', starting and ending with a letter or digit",
    r"^$|^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$":
        "empty, or lowercase letters, digits, '-', '.' and '_', starting and ending with a "
        "letter or digit",
    r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$":
        "letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at "
        "most 63 characters",
    r"^[a-z0-9-]+\.[a-z0-9]+$":
        "a name and a suffix separated by one '.', each of lowercase letters, digits and '-'",
    r"^/[A-Za-z0-9._~/-]*$": "a path starting with '/' (letters, digits, '.', '_', '~', '-', '/')",
    r"^(local|[a-z]{2}(-[a-z]+)+-[0-9])$": "'local' or a cloud region such as eu-west-1",
    r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$": "empty, or an e-mail address such as team@example.org",
    r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}"
    r"|[1-9]?[0-9])/(1[6-9]|2[0-4])$":
        "an IPv4 network in CIDR notation with a prefix from /16 to /24, such as 10.0.0.0/16",
    r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*/?$":
        "an https:// address (host, optional port, path of letters, digits, '.', '_', '~', "
        "'-')",
    r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~*-]+)*/?$":
        "an https:// address or pattern (host, optional port, path of letters, digits, '.', "
        "'_', '~', '-', '*')",
    r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$":
        "a git revision: letters, digits, '.', '_', '/', '+' and '-', starting with a letter "
        "or digit",
    r"^$|^vpc-[0-9a-f]{8,17}$": "empty, or a VPC id such as vpc-0a1b2c3d",
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]{2,63}$":
        "a DNS domain of lowercase labels separated by '.', such as apps.example.org",
    r"^(\.|[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*)$":
        "'.' or a relative path of folders (letters, digits, '.', '_', '-'), without '..'",
    r"^$|^Z[A-Z0-9]{1,32}$": "empty, or a Route 53 hosted zone id such as Z0123456789ABC",
    r"^[A-Za-z0-9_][A-Za-z0-9_.\[\]-]*$":
        "a Helm value key: letters, digits, '_', '.', '-', '[' and ']'",
}


def in_words(pattern: str, *, max_length: int | None = None) -> str:
    """``pattern`` (and the field's ``maxLength``) as a phrase; the raw pattern only for one
    no template uses."""
    words = WORDS.get(pattern)
    if words is None:
        return f"must match the pattern {pattern}"
    if max_length is not None and "at most" not in words:
        words += f", at most {max_length} characters"
    return ("must use " if words.startswith(("lowercase", "letters")) else "must be ") + words
