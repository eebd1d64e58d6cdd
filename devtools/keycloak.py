"""A fake Keycloak (token endpoint + the admin REST slice for groups and users) on loopback.

Shaped like Keycloak 24+: no ``/auth`` prefix, ``client_credentials`` tokens from
``/realms/<realm>/protocol/openid-connect/token``, admin calls under ``/admin/realms/<realm>``
that answer 401 without a valid bearer token, 201 + ``Location`` on create, 204 on membership
changes, 404/409 bodies like Keycloak's, ``first``/``max`` paging, sub-groups
(``POST /groups/{id}/children``, ``/group-by-path/a/b``). Path segments are percent-decoded
once, as JAX-RS does for ``@PathParam`` (so ``team-%41`` names ``team-A``, as in Keycloak).

``writes`` logs every state-changing call so tests can assert idempotence and "nothing moved";
``requests`` logs every admin request (method, raw path, query, JSON body) so tests can check
each against the Admin REST API's resource definitions; ``revoke_tokens_after`` makes every
issued token invalid after that many admin requests (an expiry mid-sync); tokens live
``token_lifetime_s`` (300, Keycloak's default; answered as ``expires_in``) and are refused
after it; ``on_request`` runs
before each admin request is answered (a concurrent create; a status it returns is the
answer).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeRealm:
    name: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> representation
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {name, parent, members}

    def add_user(self, username: str) -> str:
        user_id = str(uuid.uuid4())
        self.users[user_id] = {"id": user_id, "username": username.lower(), "enabled": True,
                               "email": f"{username.lower()}@example.org"}
        return user_id

    def add_group(self, path: str, members: tuple[str, ...] = ()) -> str:
        parent_path, _, name = path.strip("/").rpartition("/")
        parent = self.group_id(parent_path) if parent_path else None
        group_id = str(uuid.uuid4())
        self.groups[group_id] = {"name": name, "parent": parent, "attributes": {},
                                 "members": {self.user_id(m) for m in members}}
        return group_id

    def path(self, group_id: str) -> str:
        group = self.groups[group_id]
        prefix = self.path(group["parent"]) if group["parent"] else ""
        return f"{prefix}/{group['name']}"

    def group_id(self, path: str) -> str | None:
        wanted = "/" + path.strip("/")
        return next((i for i in self.groups if self.path(i) == wanted), None)

    def user_id(self, username: str) -> str:
        return next(i for i, u in self.users.items() if u["username"] == username)

    def group(self, path: str) -> dict[str, Any] | None:
        group_id = self.group_id(path)
        return self.groups[group_id] if group_id else None

    def members(self, path: str) -> set[str]:
        group = self.group(path)
        assert group is not None, path
        return {self.users[i]["username"] for i in group["members"]}


class FakeKeycloak:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.realms: dict[str, FakeRealm] = {}
        self.tokens: set[str] = set()
        self.token_lifetime_s = 300
        self._expires: dict[str, float] = {}  # token -> time.monotonic() it expires at
        self.writes: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.token_requests = 0
        self.fail_next: list[int] = []  # statuses to answer admin calls with, first in first out
        self.revoke_tokens_after: int | None = None
        self.on_request: Callable[[str, list[str]], int | None] | None = None
        self.lock = threading.Lock()
        self.app = Starlette(routes=[
            Route("/realms/{realm}/protocol/openid-connect/token", self._token,
                  methods=["POST"]),
            Route("/admin/realms/{realm}/{rest:path}", self._admin,
                  methods=["GET", "POST", "PUT", "DELETE"]),
        ])

    def add_realm(self, name: str) -> FakeRealm:
        realm = self.realms[name] = FakeRealm(name)
        return realm

    def reset(self) -> None:
        self.fail_next.clear()
        self.writes.clear()
        self.requests.clear()
        self.revoke_tokens_after = None
        self.token_lifetime_s = 300
        self.on_request = None

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        self.token_requests += 1
        if (request.path_params["realm"] not in self.realms
                or form.get("grant_type") != "client_credentials"
                or form.get("client_id") != self.client_id
                or form.get("client_secret") != self.client_secret):
            return JSONResponse({"error": "unauthorized_client",
                                 "error_description": "Invalid client or Invalid client "
                                 "credentials"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        self._expires[token] = time.monotonic() + self.token_lifetime_s
        return JSONResponse({"access_token": token, "expires_in": self.token_lifetime_s,
                             "refresh_expires_in": 0, "token_type": "Bearer",
                             "not-before-policy": 0, "scope": "profile email"})

    async def _admin(self, request: Request) -> Response:
        raw = request.scope["raw_path"].decode("ascii")
        query = dict(parse_qsl(request.scope["query_string"].decode("ascii")))
        body = await request.body()
        self.requests.append((request.method, raw, query,
                              json.loads(body) if body else None))
        if self.revoke_tokens_after is not None:
            if self.revoke_tokens_after <= 0:
                self.tokens.clear()
                self.revoke_tokens_after = None
            else:
                self.revoke_tokens_after -= 1
        auth = request.headers.get("Authorization", "")
        if (not auth.startswith("Bearer ") or auth[7:] not in self.tokens
                or self._expires.get(auth[7:], 0.0) <= time.monotonic()):
            return JSONResponse({"error": "HTTP 401 Unauthorized"}, status_code=401)
        realm = self.realms.get(request.path_params["realm"])
        if realm is None:
            return JSONResponse({"error": "Realm not found."}, status_code=404)
        if self.fail_next:
            return JSONResponse({"error": "unknown_error"}, status_code=self.fail_next.pop(0))
        # /admin/realms/<realm>/<rest>: each segment decoded once, like JAX-RS path params.
        parts = [unquote(p) for p in raw.split("/")[4:]]
        if self.on_request is not None:
            status = self.on_request(request.method, parts)
            if status is not None:
                return JSONResponse({"error": "unknown_error"}, status_code=status)
        with self.lock:
            if request.method != "GET":
                self.writes.append((request.method, "/".join(parts)))
            return self._route(realm, request, parts, body, query)

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        first = int(query.get("first", 0))
        size = int(query.get("max", 100))
        return items[first:first + size]

    @staticmethod
    def _group_json(realm: FakeRealm, group_id: str) -> dict[str, Any]:
        group = realm.groups[group_id]
        children = sum(1 for g in realm.groups.values() if g["parent"] == group_id)
        return {"id": group_id, "name": group["name"], "path": realm.path(group_id),
                **({"parentId": group["parent"]} if group["parent"] else {}),
                "subGroupCount": children, "subGroups": [],
                "attributes": {k: list(v) for k, v in group["attributes"].items()},
                "realmRoles": [], "clientRoles": {}, "access": {"view": True, "manage": True}}

    def _create(self, realm: FakeRealm, request: Request, body: bytes, parent: str | None
                ) -> Response:
        rep = json.loads(body)
        name = rep["name"]
        conflict = self._sibling_conflict(realm, name, parent, None)
        if conflict is not None:
            return conflict
        group_id = str(uuid.uuid4())
        realm.groups[group_id] = {"name": name, "parent": parent, "members": set(),
                                  "attributes": dict(rep.get("attributes") or {})}
        location = f"{request.base_url}admin/realms/{realm.name}/groups/{group_id}"
        return Response(status_code=201, headers={"Location": location})

    @staticmethod
    def _sibling_conflict(realm: FakeRealm, name: str, parent: str | None, me: str | None
                          ) -> Response | None:
        if any(g["parent"] == parent and g["name"] == name
               for i, g in realm.groups.items() if i != me):
            where = "Top level group" if parent is None else "Sibling group"
            return JSONResponse({"errorMessage": f"{where} named '{name}' already exists."},
                                status_code=409)
        return None

    def _route(self, realm: FakeRealm, request: Request, parts: list[str], body: bytes,
               query: dict[str, str]) -> Response:
        method = request.method
        if parts == ["groups"] and method == "GET":
            ids = [i for i, g in realm.groups.items() if g["parent"] is None]
            if "q" in query:  # "key:value key2:value2", attributes (exact=true: equal values)
                wanted = [pair.split(":", 1) for pair in query["q"].split()]
                ids = [i for i in realm.groups
                       if all(v in realm.groups[i]["attributes"].get(k, []) for k, v in wanted)]
            groups = [self._group_json(realm, i) for i in ids]
            if "search" in query:
                groups = [g for g in groups if query["search"].lower() in g["name"].lower()]
            return JSONResponse(self._page(groups, query))
        if len(parts) == 2 and parts[0] == "groups" and method == "DELETE":
            if parts[1] not in realm.groups:  # DELETE /groups/{id}: the group and subgroups
                return JSONResponse({"error": "Could not find group by id"}, status_code=404)
            doomed, grew = {parts[1]}, True
            while grew:
                children = {i for i, g in realm.groups.items() if g["parent"] in doomed}
                grew = not children <= doomed
                doomed |= children
            for group_id in doomed:
                del realm.groups[group_id]
            return Response(status_code=204)
        if len(parts) == 2 and parts[0] == "groups" and method == "PUT":
            group = realm.groups.get(parts[1])
            if group is None:
                return JSONResponse({"error": "Could not find group by id"}, status_code=404)
            rep = json.loads(body)
            if "name" in rep:
                conflict = self._sibling_conflict(realm, rep["name"], group["parent"], parts[1])
                if conflict is not None:
                    return conflict
                group["name"] = rep["name"]
            if rep.get("attributes") is not None:  # replaces them, as Keycloak does
                group["attributes"] = dict(rep["attributes"])
            return Response(status_code=204)
        if parts == ["groups"] and method == "POST":
            return self._create(realm, request, body, None)
        if (len(parts) == 3 and parts[0] == "groups" and parts[2] == "children"
                and method == "POST"):
            if parts[1] not in realm.groups:
                return JSONResponse({"error": "Could not find group by id"}, status_code=404)
            return self._create(realm, request, body, parts[1])
        if parts[0] == "group-by-path" and method == "GET":
            group_id = realm.group_id("/".join(parts[1:]))
            if group_id is not None:
                return JSONResponse(self._group_json(realm, group_id))
            return JSONResponse({"error": "Group path does not exist"}, status_code=404)
        if parts[0] == "groups" and len(parts) == 3 and parts[2] == "members":
            group = realm.groups.get(parts[1])
            if group is None:
                return JSONResponse({"error": "Could not find group by id"}, status_code=404)
            users = [realm.users[i] for i in sorted(group["members"])]
            return JSONResponse(self._page(users, query))
        if parts == ["users"] and method == "GET":
            users = list(realm.users.values())
            if "username" in query:
                wanted = query["username"].lower()
                exact = query.get("exact") in ("true", "True")
                users = [u for u in users
                         if (u["username"] == wanted if exact else wanted in u["username"])]
            return JSONResponse(self._page(users, query))
        if parts[0] == "users" and len(parts) == 4 and parts[2] == "groups":
            user, group = realm.users.get(parts[1]), realm.groups.get(parts[3])
            if user is None:
                return JSONResponse({"error": "User not found"}, status_code=404)
            if group is None:
                return JSONResponse({"error": "Group not found"}, status_code=404)
            if method == "PUT":
                group["members"].add(parts[1])
            elif method == "DELETE":
                group["members"].discard(parts[1])
            return Response(status_code=204)
        return JSONResponse({"error": "RESTEASY003210: Could not find resource"},
                            status_code=404)
