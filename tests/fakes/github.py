"""A fake GitHub REST API (the slice the portal uses), served on loopback for PyGithub.

Shaped like the real API: GitHub Enterprise paths under ``/api/v3``, the status codes GitHub
returns (201 on create, 404 ``Not Found``, 422 on validation), and the JSON fields PyGithub
reads, with absolute ``url`` fields it follows. State is kept in memory as a tiny git object
store (blobs, flat trees, commits, refs) plus pull requests, comments and commit statuses, so
tests can assert what the forge really did. ``requests`` logs every (method, path) and
``calls`` every request in full (method, path, query, JSON body, headers) — the OpenAPI
conformance tests validate each of them.

Like GitHub: lists are paged (``per_page`` up to 100, ``page``, a ``Link`` header with
``rel="next"``), GET answers carry an ``ETag`` and ``If-None-Match`` gets a ``304``, the compare
API lists at most 300 files, and review requests for non-collaborators are refused with a 422 as a
whole (when ``FakeRepo.collaborators`` is set). ``faults`` queues refusals (rate limits, errors)
answered instead of carrying a request out.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PREFIX = "/api/v3"
EPOCH = "2026-01-01T00:00:00Z"
COMPARE_FILES_MAX = 300


@dataclass
class Call:
    """One request as the fake received it."""

    method: str
    path: str  # without PREFIX
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int = 0


@dataclass
class Fault:
    """Answer ``status`` (with ``headers`` and ``message``) instead of carrying out the next
    ``times`` requests whose method is ``method`` and whose path contains ``path``."""

    method: str
    path: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "API rate limit exceeded"
    times: int = 1
    skip: int = 0  # matching requests carried out before the fault strikes


def _sha(kind: str, payload: bytes) -> str:
    return hashlib.sha1(kind.encode() + b"\0" + payload).hexdigest()  # noqa: S324 (git-like id)


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class FakeRepo:
    owner: str
    name: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # sha -> {path: blob sha}
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "heads/main" -> sha
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    check_runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    collaborators: set[str] | None = None  # None: everybody may review
    teams: set[str] = field(default_factory=set)  # team slugs with access
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)  # branch -> settings
    admin: bool = True  # the token may administer the repository (branch protection)

    # --- object store ---------------------------------------------------------------------
    def put_blob(self, content: bytes) -> str:
        sha = _sha("blob", content)
        self.blobs[sha] = content
        return sha

    def put_tree(self, entries: dict[str, str]) -> str:
        sha = _sha("tree", json.dumps(sorted(entries.items())).encode())
        self.trees[sha] = dict(entries)
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str) -> str:
        sha = _sha("commit", json.dumps([tree, parents, message, len(self.commits)]).encode())
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message}
        return sha

    def commit_files(self, branch: str, files: dict[str, bytes], message: str) -> str:
        """Test set-up: commit ``files`` (replacing those paths) on ``branch``."""
        parent = self.refs.get(f"heads/{branch}")
        entries = dict(self.trees[self.commits[parent]["tree"]]) if parent else {}
        entries.update({path: self.put_blob(data) for path, data in files.items()})
        sha = self.put_commit(self.put_tree(entries), [parent] if parent else [], message)
        self.refs[f"heads/{branch}"] = sha
        return sha

    def resolve(self, ref: str) -> str:
        if ref in self.commits:
            return ref
        for candidate in (f"heads/{ref}", ref.removeprefix("refs/")):
            if candidate in self.refs:
                return self.refs[candidate]
        raise ApiError(404, "Not Found")

    def files_at(self, ref: str) -> dict[str, bytes]:
        tree = self.trees[self.commits[self.resolve(ref)]["tree"]]
        return {path: self.blobs[sha] for path, sha in tree.items()}

    def ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        todo = deque([sha])
        while todo:
            current = todo.popleft()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(self.commits[current]["parents"])
        return seen


@dataclass
class Paged:
    """A list answer the dispatcher cuts into pages (``key``: the array inside an object)."""

    items: list[Any]
    key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FakeGitHub:
    """One fake GitHub holding repositories; ``app`` is the ASGI application."""

    def __init__(self, login: str = "caas-bot") -> None:
        self.login = login
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.base_url = ""  # set by the test once the server runs (absolute urls in JSON)
        self.lock = threading.Lock()
        self._ids = itertools.count(1001)
        self.app = Starlette(routes=[
            Route(PREFIX + "/repos/{owner}/{name}/{rest:path}", self._dispatch,
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            Route(PREFIX + "/repos/{owner}/{name}", self._dispatch, methods=["GET"]),
            Route(PREFIX + "/orgs/{org}/teams/{slug}/repos/{owner}/{name}", self._team_repo,
                  methods=["GET"]),
        ])

    def add_repo(self, full_name: str) -> FakeRepo:
        owner, name = full_name.split("/")
        repo = self.repos[full_name] = FakeRepo(owner, name)
        return repo

    def reset_log(self) -> None:
        self.requests.clear()
        self.calls.clear()

    def writes(self) -> list[tuple[str, str]]:
        """(method, path) of every non-GET request carried out (faults excluded)."""
        return [(c.method, c.path) for c in self.calls
                if c.method != "GET" and c.status < 400]

    # --- plumbing -------------------------------------------------------------------------
    async def _record(self, request: Request) -> Call:
        body = await request.body()
        call = Call(method=request.method, path=request.url.path.removeprefix(PREFIX),
                    query=dict(request.query_params), body=json.loads(body) if body else None,
                    headers={k.lower(): v for k, v in request.headers.items()})
        self.requests.append((request.method, request.url.path))
        self.calls.append(call)
        return call

    def _fault(self, call: Call) -> Response | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == call.method and fault.path in call.path and fault.times > 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.times -= 1
                    call.status = fault.status
                    return JSONResponse({"message": fault.message, "documentation_url":
                                         "https://docs.github.com/rest/overview/rate-limits"},
                                        status_code=fault.status, headers=fault.headers)
        return None

    def _respond(self, call: Call, status: int, data: Any, headers: dict[str, str]) -> Response:
        call.status = status
        if status == 204:
            return Response(status_code=204)
        if call.method == "GET" and status == 200:
            etag = '"' + hashlib.sha256(json.dumps(data, sort_keys=True).encode()
                                        ).hexdigest()[:32] + '"'
            headers = {**headers, "ETag": etag}
            if call.headers.get("if-none-match") == etag:
                call.status = 304
                return Response(status_code=304, headers=headers)
        return JSONResponse(data, status_code=status, headers=headers)

    async def _dispatch(self, request: Request) -> Response:
        call = await self._record(request)
        refused = self._fault(call)
        if refused is not None:
            return refused
        params = request.path_params
        rest = str(params.get("rest", ""))
        full = f"{params['owner']}/{params['name']}"
        headers: dict[str, str] = {}
        try:
            with self.lock:
                repo = self.repos.get(full)
                if repo is None:
                    raise ApiError(404, "Not Found")
                status, data = self._route(repo, request.method, rest, call.body,
                                           dict(request.query_params))
                if isinstance(data, Paged):
                    data, headers = self._page(data, str(request.url))
        except ApiError as exc:
            call.status = exc.status
            return JSONResponse({"message": exc.message,
                                 "documentation_url": "https://docs.github.com/rest"},
                                status_code=exc.status)
        return self._respond(call, status, data, headers)

    async def _team_repo(self, request: Request) -> Response:
        call = await self._record(request)
        refused = self._fault(call)
        if refused is not None:
            return refused
        params = request.path_params
        repo = self.repos.get(f"{params['owner']}/{params['name']}")
        ok = (repo is not None and params["org"] == repo.owner and params["slug"] in repo.teams)
        return self._respond(call, 204 if ok else 404, None, {})

    @staticmethod
    def _page(paged: Paged, url: str) -> tuple[Any, dict[str, str]]:
        """One page of a list (GitHub's ``per_page``/``page``) and its ``Link`` header."""
        base, _, query_text = url.partition("?")
        query = dict(parse_qsl(query_text))
        per_page = min(int(query.get("per_page", "30")), 100)
        page = max(int(query.get("page", "1")), 1)
        items = paged.items[(page - 1) * per_page: page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(paged.items):
            next_url = base + "?" + urlencode({**query, "page": str(page + 1)})
            headers["Link"] = f'<{next_url}>; rel="next"'
        if paged.key is None:
            return items, headers
        return {**paged.extra, "total_count": len(paged.items), paged.key: items}, headers

    def _url(self, repo: FakeRepo, path: str = "") -> str:
        return f"{self.base_url}{PREFIX}/repos/{repo.owner}/{repo.name}{path}"

    def _route(self, repo: FakeRepo, method: str, rest: str, body: Any,
               query: dict[str, str]) -> tuple[int, Any]:
        parts = rest.split("/") if rest else []
        if parts[:1] == ["git"] and not repo.commits:
            raise ApiError(409, "Git Repository is empty.")  # GitHub's Git Data API, no commits
        if parts[:1] == ["contents"] and method == "PUT":
            return self._put_contents(repo, "/".join(parts[1:]), body)
        if parts[:1] == ["branches"]:
            return self._branch_route(repo, method, parts[1:], body)
        key = (method, parts[0] if parts else "", parts[1] if len(parts) > 1 else "")
        handlers: dict[tuple[str, str, str], Callable[[], tuple[int, Any]]] = {
            ("GET", "", ""): lambda: (200, self._repo_json(repo)),
            ("GET", "git", "ref"): lambda: (200, self._ref_json(repo, "/".join(parts[2:]))),
            ("POST", "git", "refs"): lambda: self._create_ref(repo, body),
            ("PATCH", "git", "refs"): lambda: self._update_ref(repo, "/".join(parts[2:]), body),
            ("DELETE", "git", "refs"): lambda: self._delete_ref(repo, "/".join(parts[2:])),
            ("POST", "git", "blobs"): lambda: self._create_blob(repo, body),
            ("GET", "git", "blobs"): lambda: (200, self._blob_json(repo, parts[2])),
            ("POST", "git", "trees"): lambda: self._create_tree(repo, body),
            ("GET", "git", "trees"): lambda: (200, self._tree_json(repo, parts[2], query)),
            ("POST", "git", "commits"): lambda: self._create_commit(repo, body),
            ("GET", "git", "commits"): lambda: (200, self._git_commit_json(repo, parts[2])),
            ("GET", "contents", parts[1] if len(parts) > 1 else ""):
                lambda: (200, self._contents(repo, "/".join(parts[1:]), query)),
            ("GET", "compare", parts[1] if len(parts) > 1 else ""):
                lambda: (200, self._compare(repo, "/".join(parts[1:]))),
            ("POST", "statuses", parts[1] if len(parts) > 1 else ""):
                lambda: self._create_status(repo, parts[1], body),
            ("POST", "pulls", ""): lambda: self._create_pull(repo, body),
            ("GET", "pulls", ""): lambda: (200, self._list_pulls(repo, query)),
        }
        if key in handlers:
            return handlers[key]()
        if parts[:1] == ["commits"] and len(parts) == 2 and method == "GET":
            return 200, self._commit_json(repo, repo.resolve(parts[1]))
        if parts[:1] == ["commits"] and parts[2:] == ["status"] and method == "GET":
            return 200, self._combined_status(repo, repo.resolve(parts[1]))
        if parts[:1] == ["commits"] and parts[2:] == ["check-runs"] and method == "GET":
            return 200, Paged(repo.check_runs.get(repo.resolve(parts[1]), []), "check_runs")
        if parts[:1] == ["collaborators"] and len(parts) == 2 and method == "GET":
            allowed = repo.collaborators is None or parts[1] in repo.collaborators
            return (204, None) if allowed else (404, {"message": "Not Found"})
        if parts[:1] == ["pulls"] and len(parts) >= 2 and parts[1].isdigit():
            return self._pull_route(repo, method, int(parts[1]), parts[2:], body)
        if parts[:1] == ["issues"] and len(parts) >= 2:
            return self._issue_route(repo, method, parts[1:], body)
        raise ApiError(404, "Not Found")

    # --- repository and git data ----------------------------------------------------------
    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        return {"id": 1, "name": repo.name, "full_name": f"{repo.owner}/{repo.name}",
                "owner": {"login": repo.owner, "type": "Organization"},
                "default_branch": "main", "private": True, "url": self._url(repo),
                "html_url": f"{self.base_url}/{repo.owner}/{repo.name}"}

    def _put_contents(self, repo: FakeRepo, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Create a file (GitHub's "create or update file contents"): a commit on ``branch``
        (the default branch when absent), which also starts an empty repository."""
        branch = str(body.get("branch") or "main")
        parent = repo.refs.get(f"heads/{branch}")
        if parent is None and repo.commits:
            raise ApiError(404, f"Branch {branch} not found")
        files = repo.files_at(branch) if parent else {}
        if path in files and body.get("sha") != _sha("blob", files[path]):
            raise ApiError(422, '"sha" was not supplied.')
        entries = dict(repo.trees[repo.commits[parent]["tree"]]) if parent else {}
        entries[path] = repo.put_blob(base64.b64decode(str(body["content"])))
        sha = repo.put_commit(repo.put_tree(entries), [parent] if parent else [],
                              str(body["message"]))
        repo.refs[f"heads/{branch}"] = sha
        return 201, {"content": {"name": path.rsplit("/", 1)[-1], "path": path,
                                 "sha": entries[path], "type": "file",
                                 "url": self._url(repo, f"/contents/{path}")},
                     "commit": self._git_commit_json(repo, sha)}

    def _branch_route(self, repo: FakeRepo, method: str, rest: list[str], body: Any
                      ) -> tuple[int, Any]:
        """``GET branches`` and ``GET``/``PUT branches/{b}/protection`` (admin only, like
        GitHub: a token without admin rights gets 404 on the write, 403 on the read)."""
        if not rest and method == "GET":
            return 200, Paged([{"name": r.removeprefix("heads/"), "protected":
                                r.removeprefix("heads/") in repo.protection,
                                "commit": {"sha": sha, "url": self._url(repo, f"/commits/{sha}")}}
                               for r, sha in sorted(repo.refs.items())
                               if r.startswith("heads/")])
        if len(rest) != 2 or rest[1] != "protection":
            raise ApiError(404, "Not Found")
        branch = rest[0]
        if f"heads/{branch}" not in repo.refs:
            raise ApiError(404, "Branch not found")
        if not repo.admin:
            raise ApiError(403 if method == "GET" else 404,
                           "Resource not accessible by integration" if method == "GET"
                           else "Not Found")
        if method == "GET":
            if branch not in repo.protection:
                raise ApiError(404, "Branch not protected")
            return 200, repo.protection[branch]
        if method == "PUT":
            for key in ("required_status_checks", "enforce_admins",
                        "required_pull_request_reviews", "restrictions"):
                if key not in body:
                    raise ApiError(422, f"Invalid request. No subschema matched: {key}")
            checks = body["required_status_checks"] or {}
            reviews = body["required_pull_request_reviews"] or {}
            url = self._url(repo, f"/branches/{branch}/protection")
            repo.protection[branch] = {
                "url": url,
                "required_status_checks": {
                    "url": url + "/required_status_checks", "strict": bool(checks.get("strict")),
                    "contexts": list(checks.get("contexts") or []),
                    "checks": [{"context": c, "app_id": None}
                               for c in checks.get("contexts") or []]},
                "enforce_admins": {"url": url + "/enforce_admins",
                                   "enabled": bool(body["enforce_admins"])},
                "required_pull_request_reviews": {
                    "url": url + "/required_pull_request_reviews",
                    "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews")),
                    "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews")),
                    "required_approving_review_count":
                        int(reviews.get("required_approving_review_count") or 0)},
            }
            return 200, repo.protection[branch]
        raise ApiError(404, "Not Found")

    def _ref_json(self, repo: FakeRepo, ref: str) -> dict[str, Any]:
        if ref not in repo.refs:
            raise ApiError(404, "Not Found")
        return {"ref": f"refs/{ref}", "url": self._url(repo, f"/git/refs/{ref}"),
                "object": {"sha": repo.refs[ref], "type": "commit",
                           "url": self._url(repo, f"/git/commits/{repo.refs[ref]}")}}

    def _create_ref(self, repo: FakeRepo, body: dict[str, Any]) -> tuple[int, Any]:
        ref = str(body["ref"])
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have two slashes")
        name = ref.removeprefix("refs/")
        if name in repo.refs:
            raise ApiError(422, "Reference already exists")
        if body["sha"] not in repo.commits:
            raise ApiError(422, "Object does not exist")
        repo.refs[name] = body["sha"]
        return 201, self._ref_json(repo, name)

    def _update_ref(self, repo: FakeRepo, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name not in repo.refs:
            raise ApiError(422, "Reference does not exist")
        new = str(body["sha"])
        if new not in repo.commits:
            raise ApiError(422, "Object does not exist")
        if not body.get("force") and repo.refs[name] not in repo.ancestors(new):
            raise ApiError(422, "Update is not a fast forward")
        repo.refs[name] = new
        return 200, self._ref_json(repo, name)

    def _delete_ref(self, repo: FakeRepo, name: str) -> tuple[int, Any]:
        if repo.refs.pop(name, None) is None:
            raise ApiError(422, "Reference does not exist")
        return 204, None

    def _create_blob(self, repo: FakeRepo, body: dict[str, Any]) -> tuple[int, Any]:
        encoding = body.get("encoding", "utf-8")
        if encoding not in ("utf-8", "base64"):
            raise ApiError(422, f"encoding {encoding!r} is not a valid value")
        content = str(body["content"])
        data = base64.b64decode(content) if encoding == "base64" else content.encode()
        sha = repo.put_blob(data)
        return 201, {"sha": sha, "url": self._url(repo, f"/git/blobs/{sha}")}

    def _blob_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        if sha not in repo.blobs:
            raise ApiError(404, "Not Found")
        return {"sha": sha, "size": len(repo.blobs[sha]), "encoding": "base64",
                "content": base64.b64encode(repo.blobs[sha]).decode(),
                "url": self._url(repo, f"/git/blobs/{sha}")}

    def _create_tree(self, repo: FakeRepo, body: dict[str, Any]) -> tuple[int, Any]:
        base = body.get("base_tree")
        if base is not None and base not in repo.trees:
            raise ApiError(422, "Invalid tree info")
        entries = dict(repo.trees[base]) if base else {}
        for item in body["tree"]:
            if item.get("mode") != "100644" or item.get("type") != "blob":
                raise ApiError(422, "Must supply a valid tree.mode and tree.type")
            path = str(item["path"])
            if item.get("sha") is None and "content" not in item:
                if path not in entries:  # GitHub refuses deleting what is not there
                    raise ApiError(422, "GitRPC::BadObjectState")
                del entries[path]
            elif "content" in item:
                entries[path] = repo.put_blob(str(item["content"]).encode())
            else:
                if item["sha"] not in repo.blobs:
                    raise ApiError(422, "tree.sha is not a valid blob")
                entries[path] = str(item["sha"])
        sha = repo.put_tree(entries)
        return 201, self._tree_json(repo, sha, {})

    def _tree_json(self, repo: FakeRepo, ref: str, query: dict[str, str]) -> dict[str, Any]:
        sha = ref if ref in repo.trees else repo.commits[repo.resolve(ref)]["tree"]
        items: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for path, blob in sorted(repo.trees[sha].items()):
            parts = path.split("/")
            if not query.get("recursive") and len(parts) > 1:
                dirs.add(parts[0])
                continue
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
            items.append({"path": path, "mode": "100644", "type": "blob", "sha": blob,
                          "size": len(repo.blobs[blob]),
                          "url": self._url(repo, f"/git/blobs/{blob}")})
        items += [{"path": d, "mode": "040000", "type": "tree", "sha": _sha("dir", d.encode())}
                  for d in sorted(dirs)]
        return {"sha": sha, "url": self._url(repo, f"/git/trees/{sha}"), "tree": items,
                "truncated": False}

    def _create_commit(self, repo: FakeRepo, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("tree") not in repo.trees:
            raise ApiError(422, "Tree SHA does not exist")
        parents = [str(p) for p in body.get("parents", [])]
        if any(p not in repo.commits for p in parents):
            raise ApiError(422, "Parent SHA does not exist or is not a commit object")
        sha = repo.put_commit(str(body["tree"]), parents, str(body["message"]))
        return 201, self._git_commit_json(repo, sha)

    def _git_commit_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        if sha not in repo.commits:
            raise ApiError(404, "Not Found")
        commit = repo.commits[sha]
        person = {"name": self.login, "email": f"{self.login}@example.com", "date": EPOCH}
        return {"sha": sha, "url": self._url(repo, f"/git/commits/{sha}"),
                "message": commit["message"], "author": person, "committer": person,
                "tree": {"sha": commit["tree"],
                         "url": self._url(repo, f"/git/trees/{commit['tree']}")},
                "parents": [{"sha": p, "url": self._url(repo, f"/git/commits/{p}")}
                            for p in commit["parents"]]}

    def _commit_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        return {"sha": sha, "url": self._url(repo, f"/commits/{sha}"),
                "commit": self._git_commit_json(repo, sha), "files": [],
                "parents": [{"sha": p} for p in repo.commits[sha]["parents"]]}

    def _contents(self, repo: FakeRepo, path: str, query: dict[str, str]) -> Any:
        files = repo.files_at(query.get("ref", "main"))
        if path in files:
            data = files[path]
            large = len(data) > 1024 * 1024  # GitHub leaves files over 1 MB to the blob API
            return {"type": "file", "encoding": "none" if large else "base64",
                    "size": len(data), "name": path.rsplit("/", 1)[-1], "path": path,
                    "sha": _sha("blob", data),
                    "content": "" if large else base64.encodebytes(data).decode(),
                    "url": self._url(repo, f"/contents/{path}")}
        children = sorted({p[len(path) + 1:].split("/")[0] for p in files
                           if p.startswith(path + "/")})
        if not children:
            raise ApiError(404, "Not Found")
        return [{"type": "file" if f"{path}/{c}" in files else "dir", "name": c,
                 "path": f"{path}/{c}", "sha": _sha("entry", c.encode()),
                 "url": self._url(repo, f"/contents/{path}/{c}")} for c in children]

    def _compare(self, repo: FakeRepo, basehead: str) -> dict[str, Any]:
        base_ref, _, head_ref = basehead.partition("...")
        base, head = repo.resolve(base_ref), repo.resolve(head_ref)
        base_anc, head_anc = repo.ancestors(base), repo.ancestors(head)
        if base == head:
            status = "identical"
        elif base in head_anc:
            status = "ahead"
        elif head in base_anc:
            status = "behind"
        else:
            status = "diverged"
        # Three-dot semantics: the diff runs from the merge base (a common ancestor) to head.
        common = base_anc & head_anc
        merge_base = base if base in head_anc else next(
            (c for c in self._topo(repo, base) if c in common), base)
        old = repo.trees[repo.commits[merge_base]["tree"]] if merge_base else {}
        new = repo.trees[repo.commits[head]["tree"]]
        files = []
        for path in sorted(set(old) | set(new)):
            if old.get(path) == new.get(path):
                continue
            state = "added" if path not in old else "removed" if path not in new else "modified"
            files.append({"filename": path, "status": state, "sha": new.get(path),
                          "additions": 0, "deletions": 0, "changes": 0})
        return {"url": self._url(repo, f"/compare/{basehead}"), "status": status,
                "ahead_by": len(head_anc - base_anc), "behind_by": len(base_anc - head_anc),
                "total_commits": len(head_anc - base_anc), "files": files[:COMPARE_FILES_MAX],
                "commits": [],
                "base_commit": self._commit_json(repo, base),
                "merge_base_commit": self._commit_json(repo, merge_base)}

    @staticmethod
    def _topo(repo: FakeRepo, start: str) -> list[str]:
        order, todo, seen = [], deque([start]), set()
        while todo:
            current = todo.popleft()
            if current not in seen:
                seen.add(current)
                order.append(current)
                todo.extend(repo.commits[current]["parents"])
        return order

    # --- statuses -------------------------------------------------------------------------
    def _create_status(self, repo: FakeRepo, sha: str, body: dict[str, Any]) -> tuple[int, Any]:
        if sha not in repo.commits:
            raise ApiError(422, "No commit found for SHA: " + sha)
        if body.get("state") not in ("pending", "success", "failure", "error"):
            raise ApiError(422, "state is not included in the list")
        if len(body.get("description") or "") > 140:
            raise ApiError(422, "description is too long (maximum is 140 characters)")
        status = {"id": next(self._ids), "state": body["state"],
                  "context": body.get("context", "default"),
                  "description": body.get("description"), "target_url": body.get("target_url"),
                  "created_at": EPOCH, "updated_at": EPOCH, "creator": {"login": self.login},
                  "url": self._url(repo, f"/statuses/{sha}")}
        repo.statuses.setdefault(sha, []).insert(0, status)  # newest first, like GitHub
        return 201, status

    def _combined_status(self, repo: FakeRepo, sha: str) -> Paged:
        latest: dict[str, dict[str, Any]] = {}
        for status in repo.statuses.get(sha, []):
            latest.setdefault(status["context"], status)
        states = {s["state"] for s in latest.values()}
        state = ("failure" if states & {"failure", "error"} else
                 "pending" if "pending" in states or not states else "success")
        return Paged(list(latest.values()), "statuses", {
            "state": state, "sha": sha, "url": self._url(repo, f"/commits/{sha}/status"),
            "commit_url": self._url(repo, f"/commits/{sha}"),
            "repository": self._repo_json(repo)})

    # --- pull requests and issues ---------------------------------------------------------
    def _pull_json(self, repo: FakeRepo, pr: dict[str, Any]) -> dict[str, Any]:
        number = pr["number"]
        head_sha = repo.refs.get(f"heads/{pr['head']}", pr.get("head_sha"))
        merged = pr["merged"]
        return {
            "id": 5000 + number, "number": number, "state": pr["state"],
            "title": pr["title"], "body": pr["body"], "draft": False,
            "user": {"login": self.login}, "labels": [{"name": n} for n in pr["labels"]],
            "requested_reviewers": [{"login": u} for u in pr["reviewers"]],
            "requested_teams": [{"slug": t, "name": t} for t in pr["teams"]],
            "head": {"ref": pr["head"], "sha": head_sha, "label": f"{repo.owner}:{pr['head']}"},
            "base": {"ref": pr["base"], "sha": repo.refs[f"heads/{pr['base']}"],
                     "label": f"{repo.owner}:{pr['base']}"},
            "merged": merged, "merged_at": EPOCH if merged else None,
            "merge_commit_sha": pr.get("merge_commit_sha"),
            "merged_by": {"login": pr["merged_by"]} if merged else None,
            "created_at": EPOCH, "updated_at": EPOCH, "closed_at": None,
            "url": self._url(repo, f"/pulls/{number}"),
            "issue_url": self._url(repo, f"/issues/{number}"),
            "html_url": f"{self.base_url}/{repo.owner}/{repo.name}/pull/{number}",
        }

    def _create_pull(self, repo: FakeRepo, body: dict[str, Any]) -> tuple[int, Any]:
        head, base = str(body["head"]).split(":")[-1], str(body["base"])
        if f"heads/{head}" not in repo.refs or f"heads/{base}" not in repo.refs:
            raise ApiError(422, "Validation Failed")
        if any(p["head"] == head and p["state"] == "open" for p in repo.pulls.values()):
            raise ApiError(422, f"A pull request already exists for {repo.owner}:{head}.")
        number = len(repo.pulls) + 1
        repo.pulls[number] = {"number": number, "state": "open", "title": body["title"],
                              "body": body.get("body") or "", "head": head, "base": base,
                              "labels": [], "reviewers": [], "teams": [], "merged": False,
                              "merged_by": None}
        return 201, self._pull_json(repo, repo.pulls[number])

    def _list_pulls(self, repo: FakeRepo, query: dict[str, str]) -> Paged:
        state = query.get("state", "open")
        head = query.get("head")
        result = []
        for pr in repo.pulls.values():
            if state != "all" and pr["state"] != state:
                continue
            if head and f"{repo.owner}:{pr['head']}" != head:
                continue
            if query.get("base") and pr["base"] != query["base"]:
                continue
            result.append(self._pull_json(repo, pr))
        return Paged(result)

    def _pull_route(self, repo: FakeRepo, method: str, number: int, rest: list[str],
                    body: Any) -> tuple[int, Any]:
        pr = repo.pulls.get(number)
        if pr is None:
            raise ApiError(404, "Not Found")
        if method == "GET" and not rest:
            return 200, self._pull_json(repo, pr)
        if method == "PATCH" and not rest:
            for key in ("title", "body", "state"):
                if key in body:
                    pr[key] = body[key]
            return 200, self._pull_json(repo, pr)
        if method == "GET" and rest == ["reviews"]:
            return 200, Paged(repo.reviews.get(number, []))
        if method == "POST" and rest == ["requested_reviewers"]:
            if self.login in body.get("reviewers", []):
                raise ApiError(422, "Review cannot be requested from pull request author.")
            if ((repo.collaborators is not None
                 and set(body.get("reviewers", [])) - repo.collaborators)
                    or (set(body.get("team_reviewers", [])) - repo.teams
                    and repo.collaborators is not None)):
                raise ApiError(422, "Reviews may only be requested from collaborators. One or "
                               "more of the users or teams you specified is not a collaborator "
                               f"of the {repo.owner}/{repo.name} repository.")
            pr["reviewers"] += [u for u in body.get("reviewers", []) if u not in pr["reviewers"]]
            pr["teams"] += [t for t in body.get("team_reviewers", []) if t not in pr["teams"]]
            return 201, self._pull_json(repo, pr)
        raise ApiError(404, "Not Found")

    def _issue_route(self, repo: FakeRepo, method: str, rest: list[str], body: Any
                     ) -> tuple[int, Any]:
        if rest[0] == "comments" and len(rest) == 2 and method == "PATCH":
            comment = repo.comments.get(int(rest[1]))
            if comment is None:
                raise ApiError(404, "Not Found")
            comment["body"] = body["body"]
            return 200, self._comment_json(repo, comment)
        number = int(rest[0])
        pr = repo.pulls.get(number)
        if pr is None:
            raise ApiError(404, "Not Found")
        if rest[1:] == ["labels"] and method == "POST":
            names = body if isinstance(body, list) else body.get("labels", [])
            pr["labels"] += [n for n in names if n not in pr["labels"]]
            return 200, [{"name": n} for n in pr["labels"]]
        if rest[1:] == ["comments"] and method == "GET":
            return 200, Paged([self._comment_json(repo, c) for c in repo.comments.values()
                               if c["issue"] == number])
        if rest[1:] == ["comments"] and method == "POST":
            comment = {"id": next(self._ids), "issue": number, "body": body["body"]}
            repo.comments[comment["id"]] = comment
            return 201, self._comment_json(repo, comment)
        raise ApiError(404, "Not Found")

    def _comment_json(self, repo: FakeRepo, comment: dict[str, Any]) -> dict[str, Any]:
        return {"id": comment["id"], "body": comment["body"], "user": {"login": self.login},
                "created_at": EPOCH, "updated_at": EPOCH,
                "url": self._url(repo, f"/issues/comments/{comment['id']}"),
                "issue_url": self._url(repo, f"/issues/{comment['issue']}"),
                "html_url": f"{self.base_url}/{repo.owner}/{repo.name}/pull/"
                            f"{comment['issue']}#issuecomment-{comment['id']}"}

    # --- test helpers ---------------------------------------------------------------------
    def merge(self, full_name: str, number: int, merged_by: str) -> str:
        """What a reviewer clicking "Merge" does: a merge commit on the base, PR merged."""
        repo = self.repos[full_name]
        with self.lock:
            pr = repo.pulls[number]
            base_sha = repo.refs[f"heads/{pr['base']}"]
            head_sha = repo.refs[f"heads/{pr['head']}"]
            tree = repo.commits[head_sha]["tree"]
            sha = repo.put_commit(tree, [base_sha, head_sha], f"Merge pull request #{number}")
            repo.refs[f"heads/{pr['base']}"] = sha
            pr.update(state="closed", merged=True, merged_by=merged_by,
                      merge_commit_sha=sha, head_sha=head_sha)
            return sha


@contextmanager
def served(full_name: str, main: dict[str, bytes]) -> Iterator[tuple[FakeGitHub, FakeRepo]]:
    """A ``FakeGitHub`` served on a loopback port (its ``base_url`` set) holding one repository
    ``full_name`` whose ``main`` has the files ``main`` (path → bytes) in one commit."""
    from devtools.server import serve

    fake = FakeGitHub()
    with serve(fake.app) as url:
        fake.base_url = url
        repo = fake.add_repo(full_name)
        repo.commit_files("main", main, "seed")
        yield fake, repo
