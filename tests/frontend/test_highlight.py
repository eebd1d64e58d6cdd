"""Diff splitting and highlighting: everything escaped, only our spans are markup."""

from __future__ import annotations

from frontend.highlight import highlight_file, highlight_line, split_diff

DIFF = """diff --git a/tenants/p/web/base/namespace.yaml b/tenants/p/web/base/namespace.yaml
new file mode 100644
index 0000000..e69de29
--- /dev/null
+++ b/tenants/p/web/base/namespace.yaml
@@ -0,0 +1,3 @@
+kind: Namespace  # the tenant
+metadata: {name: "<script>alert(1)</script>"}
+  description: '<img src=x onerror=alert(1)>'
diff --git a/envs/dev/infra.yaml b/envs/dev/infra.yaml
index 1111111..2222222 100644
--- a/envs/dev/infra.yaml
+++ b/envs/dev/infra.yaml
@@ -1,2 +1,2 @@
 provider: local
-tier: dev
+tier: staging
"""


def test_split_diff_per_file_with_counts() -> None:
    files = split_diff(DIFF)
    assert [(f.path, f.status, f.added, f.removed) for f in files] == [
        ("tenants/p/web/base/namespace.yaml", "added", 3, 0),
        ("envs/dev/infra.yaml", "modified", 1, 1),
    ]
    assert [line.kind for line in files[1].lines] == ["hunk", "ctx", "del", "add"]


def test_values_never_become_markup() -> None:
    html = "".join(str(line.html) for f in split_diff(DIFF) for line in f.lines)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x" in html
    assert '<span class="key">kind</span>' in html
    assert '<span class="cmt"># the tenant</span>' in html


def test_languages() -> None:
    assert str(highlight_line('resource "null_resource" "x" {', "hcl")).startswith(
        '<span class="key">resource</span>')
    assert str(highlight_line("a: <b>", "text")) == "a: &lt;b&gt;"
    assert len(highlight_file("main.tf", "a = 1\nb = 2\n")) == 2


def test_plain_unified_diff_as_difflib_writes_it() -> None:
    import difflib

    old = "a: 1\n-- not a header\nb: 2\n".splitlines(keepends=True)
    new = "a: 1\nb: 3\n".splitlines(keepends=True)
    text = "".join(difflib.unified_diff(old, new, "a/x.yaml", "b/x.yaml"))
    text += "".join(difflib.unified_diff([], ["k: v\n"], "/dev/null", "b/new.yaml"))
    files = split_diff(text)
    assert [(f.path, f.status, f.added, f.removed) for f in files] == [
        ("x.yaml", "modified", 1, 2), ("new.yaml", "added", 1, 0)]
