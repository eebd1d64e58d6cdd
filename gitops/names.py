"""DNS-1123 label names: teams, namespaces, environments, template folders.

A DNS-1123 label is at most 63 characters of lower-case ASCII letters, digits and ``-``, starting
and ending with a letter or digit (Kubernetes "Object Names and IDs",
https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-label-names).
Every part of the portal that checks such a name calls this module.
"""

from __future__ import annotations

import re

DNS_LABEL_MAX = 63
# For pydantic ``Field(pattern=...)`` (Rust regex): wrap it as ``^...$``.
DNS_LABEL_PATTERN = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
# ``\Z``: unlike ``$``, no trailing newline slips through ``match``.
DNS_LABEL = re.compile(rf"^{DNS_LABEL_PATTERN}\Z")


def is_dns_label(value: object) -> bool:
    """True when ``value`` is a string that is a DNS-1123 label."""
    return isinstance(value, str) and DNS_LABEL.match(value) is not None
