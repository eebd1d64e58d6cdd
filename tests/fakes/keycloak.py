"""A fake Keycloak (token endpoint + the admin REST slice for groups and users) on loopback.

Shaped like Keycloak 24+: no ``/auth`` prefix, ``client_credentials`` tokens from
``/realms/<realm>/protocol/openid-connect/token``, admin calls under ``/admin/realms/<realm>``
that answer 401 without a valid bearer token, 201 + ``Location`` on create, 204 on membership
changes, 404/409 bodies like Keycloak's, and ``first``/``max`` paging. ``writes`` logs every
state-changing call so tests can assert idempotence.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class FakeRealm:
    name: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> representation
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {name, members}

    def add_user(self, username: str) -> str:
        user_id = str(uuid.uuid4())
        self.users[user_id] = {"id": user_id, "username": username.lower(), "enabled": True,
                               "email": f"{username.lower()}@example.org"}
        return user_id

    def add_group(self, name: str, members: tuple[str, ...] = ()) -> str:
        group_id = str(uuid.uuid4())
        self.groups[group_id] = {"name": name, "members": {self.user_id(m) for m in members}}
        return group_id

    def user_id(self, username: str) -> str:
        return next(i for i, u in self.users.items() if u["username"] == username)

    def group(self, name: str) -> dict[str, Any] | None:
        return next((g for g in self.groups.values() if g["name"] == name), None)

    def members(self, name: str) -> set[str]:
        group = self.group(name)
        assert group is not None, name
        return {self.users[i]["username"] for i in group["members"]}


class FakeKeycloak:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.realms: dict[str, FakeRealm] = {}
        self.tokens: set[str] = set()
        self.writes: list[tuple[str, str]] = []
        self.token_requests = 0
        self.fail_next: list[int] = []  # statuses to answer admin calls with, first in first out
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
        return JSONResponse({"access_token": token, "expires_in": 300,
                             "refresh_expires_in": 0, "token_type": "Bearer",
                             "not-before-policy": 0, "scope": "profile email"})

    async def _admin(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return JSONResponse({"error": "HTTP 401 Unauthorized"}, status_code=401)
        realm = self.realms.get(request.path_params["realm"])
        if realm is None:
            return JSONResponse({"error": "Realm not found."}, status_code=404)
        if self.fail_next:
            return JSONResponse({"error": "unknown_error"}, status_code=self.fail_next.pop(0))
        body = await request.body()
        parts = [unquote(p) for p in str(request.path_params["rest"]).split("/")]
        with self.lock:
            if request.method != "GET":
                self.writes.append((request.method, "/".join(parts)))
            return self._route(realm, request, parts, body)

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        first = int(query.get("first", 0))
        size = int(query.get("max", 100))
        return items[first:first + size]

    def _group_json(self, group_id: str, group: dict[str, Any]) -> dict[str, Any]:
        return {"id": group_id, "name": group["name"], "path": "/" + group["name"],
                "subGroupCount": 0, "subGroups": [], "attributes": {}, "realmRoles": [],
                "clientRoles": {}, "access": {"view": True, "manage": True}}

    def _route(self, realm: FakeRealm, request: Request, parts: list[str], body: bytes
               ) -> Response:
        method, query = request.method, dict(request.query_params)
        if parts == ["groups"] and method == "GET":
            groups = [self._group_json(i, g) for i, g in realm.groups.items()]
            if "search" in query:
                groups = [g for g in groups if query["search"].lower() in g["name"].lower()]
            return JSONResponse(self._page(groups, query))
        if parts == ["groups"] and method == "POST":
            name = json.loads(body)["name"]
            if realm.group(name) is not None:
                return JSONResponse({"errorMessage": f"Top level group named '{name}' "
                                     "already exists."}, status_code=409)
            group_id = realm.add_group(name)
            location = f"{request.base_url}admin/realms/{realm.name}/groups/{group_id}"
            return Response(status_code=201, headers={"Location": location})
        if parts[0] == "group-by-path" and method == "GET":
            path = "/".join(parts[1:]).strip("/")
            for group_id, group in realm.groups.items():
                if group["name"] == path:
                    return JSONResponse(self._group_json(group_id, group))
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
