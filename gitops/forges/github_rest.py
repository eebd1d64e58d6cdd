"""GitHub's REST API as the forge uses it: rate limits, paging and conditional requests.

Public contract:

- ``GitHubRest(requester, *, max_wait_s, sleep=time.sleep, clock=time.time)`` sends requests
  through PyGithub's ``Requester`` (its authentication, base URL, connection pool and the pinned
  ``X-GitHub-Api-Version``) and returns decoded JSON:

  - ``request(verb, path, *, params=None, body=None) -> Any`` — raises ``GitHubError`` (a
    ``ForgeError`` carrying ``status``) for 4xx, ``Unavailable`` for 5xx and connection errors,
    ``RateLimited`` (temporary, carries ``retry_after_s``) for a rate limit whose wait is longer
    than ``max_wait_s``;
  - ``status_of(verb, path)`` -> the HTTP status of a body-less request (204/404 probes);
  - ``get(path, *, params=None)`` -> a conditional GET: the ETag of the last answer is sent as
    ``If-None-Match`` and a ``304`` (which GitHub does not count against the rate limit) returns
    the remembered body;
  - ``pages(path, *, params=None, key=None) -> list[Any]`` -> every item of a list read, following
    the ``Link: rel="next"`` header to the last page (``key`` names the array inside an object
    answer such as ``check_runs``); each page is a conditional GET.
- ``rate_limit_wait(status, headers, message, *, now, attempt) -> float | None``: the seconds to
  wait before retrying an answer, or None when the answer is not a rate limit.

Rate limits follow GitHub's "Rate limits for the REST API" and "Best practices for using the REST
API": a ``403`` or ``429`` with ``retry-after`` waits that many seconds; with
``x-ratelimit-remaining: 0`` it waits until ``x-ratelimit-reset`` (epoch seconds); a ``429`` (or a
``403`` saying "secondary rate limit") without either header waits at least one minute, doubling
on each further refusal. A rate-limited request was not carried out, so every method — PATCH and
POST included — is sent again after the wait. A wait longer than ``max_wait_s`` (a setting well
under the worker's lease) is not slept: ``RateLimited`` ends the call so that the task or job is
retried later instead of holding a thread.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urlencode

import requests

from gitops.forges.base import ForgeError, RateLimited
from portal.errors import Unavailable

log = logging.getLogger("caas.forge.github")

API_VERSION = "2022-11-28"  # the REST API version every request pins (X-GitHub-Api-Version)
PER_PAGE = 100  # the largest page GitHub serves
SECONDARY_WAIT_S = 60.0  # "wait for at least one minute before retrying"
MAX_ATTEMPTS = 6
_ETAG_ENTRIES = 512
_ETAG_MAX_BYTES = 256 * 1024  # larger answers (big files) are not remembered
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class Requester(Protocol):
    """The part of PyGithub's ``Requester`` used here: one request, status not judged."""

    def requestJson(self, verb: str, url: str, parameters: dict[str, Any] | None = None,  # noqa: N802
                    headers: dict[str, Any] | None = None, input: Any | None = None,
                    ) -> tuple[int, dict[str, Any], str]: ...


class GitHubError(ForgeError):
    """GitHub refused a request (4xx). ``status`` is GitHub's, ``message`` its message."""

    def __init__(self, message: str, *, status: int, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.github_status = status
        self.errors = errors or []


def rate_limit_wait(status: int, headers: Mapping[str, str], message: str, *, now: float,
                    attempt: int = 1) -> float | None:
    """Seconds to wait before sending a refused request again; None when it was no rate limit.

    ``attempt`` counts the refusals of this request so far (1 for the first): without headers
    the wait starts at one minute and doubles, as GitHub's best practices ask.
    """
    if status not in (403, 429):
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    retry_after = lower.get("retry-after", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    if lower.get("x-ratelimit-remaining", "").strip() == "0":
        reset = lower.get("x-ratelimit-reset", "").strip()
        if reset.isdigit():
            return max(float(reset) - now, 0.0) + 1.0  # one second past the reset
        return SECONDARY_WAIT_S * float(2 ** (attempt - 1))
    if status == 429 or "rate limit" in message.lower():
        return SECONDARY_WAIT_S * float(2 ** (attempt - 1))
    return None  # a plain 403: permissions, not a limit


class GitHubRest:
    """One repository host's REST API; thread-safe: requests are sent one at a time (rate-limit
    waits happen outside that lock), the ETag memory has its own lock."""

    def __init__(self, requester: Requester, *, max_wait_s: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._requester = requester
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self._clock = clock
        self._etags: OrderedDict[str, tuple[str, Any, str]] = OrderedDict()
        self._lock = threading.Lock()
        # One request at a time: GitHub asks to "make requests for a single user or client ID
        # serially" (secondary rate limits), and PyGithub's connection object keeps the request
        # it is about to send in attributes, so it is not safe across threads anyway.
        self._serial = threading.Lock()

    # --- sending --------------------------------------------------------------------------
    def _send(self, verb: str, url: str, body: Any, headers: dict[str, str] | None
              ) -> tuple[int, dict[str, str], Any]:
        """One request, sent again after each rate limit GitHub asks to wait out."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._serial:
                    status, raw_headers, text = self._requester.requestJson(
                        verb, url, None, dict(headers or {}), body)
            except (requests.RequestException, OSError) as exc:
                raise Unavailable(f"GitHub cannot be reached: {exc}") from exc
            response_headers = {k.lower(): str(v) for k, v in raw_headers.items()}
            response_headers["x-caas-body-bytes"] = str(len(text or ""))
            data = _decode(text)
            message = data.get("message", "") if isinstance(data, dict) else ""
            wait = rate_limit_wait(status, response_headers, str(message), now=self._clock(),
                                   attempt=attempt)
            if wait is None:
                return status, response_headers, data
            if wait > self.max_wait_s or attempt >= MAX_ATTEMPTS:
                raise RateLimited(f"GitHub's rate limit asks to wait {wait:.0f} s ({verb} "
                                  f"{_path(url)}); retried later", retry_after_s=wait)
            log.warning("GitHub rate limit: waiting %.0f s before %s %s again", wait, verb,
                        _path(url))
            self._sleep(wait)

    def request_raw(self, verb: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, headers: dict[str, str] | None = None
                    ) -> tuple[int, dict[str, str], Any]:
        """(status, lower-case headers, JSON) without judging the status; rate limits waited."""
        return self._send(verb, _with_query(path, params), body, headers)

    def request(self, verb: str, path: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None) -> Any:
        status, _headers, data = self.request_raw(verb, path, params=params, body=body)
        _raise_for(status, data, verb, path)
        return data

    def status_of(self, verb: str, path: str) -> int:
        """The status of a body-less probe (``204`` yes, ``404`` no); 5xx raise."""
        status, _headers, data = self.request_raw(verb, path)
        if status >= 500:
            _raise_for(status, data, verb, path)
        return status

    # --- reading --------------------------------------------------------------------------
    def _conditional(self, url: str) -> tuple[int, Any, str]:
        """GET ``url`` with the remembered ETag: (status, body, next page url or "")."""
        with self._lock:
            known = self._etags.get(url)
        headers = {"If-None-Match": known[0]} if known else None
        status, response_headers, data = self._send("GET", url, None, headers)
        if status == 304 and known is not None:
            with self._lock:
                self._etags.move_to_end(url)
            return 200, known[1], known[2]
        link = _next_link(response_headers.get("link", ""))
        etag = response_headers.get("etag")
        small = int(response_headers.get("x-caas-body-bytes", "0")) <= _ETAG_MAX_BYTES
        if status == 200 and etag and small:
            with self._lock:
                self._etags[url] = (etag, data, link)
                self._etags.move_to_end(url)
                while len(self._etags) > _ETAG_ENTRIES:
                    self._etags.popitem(last=False)
        return status, data, link

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """A conditional GET (see the module docstring); 4xx raise ``GitHubError``."""
        url = _with_query(path, params)
        status, data, _link = self._conditional(url)
        _raise_for(status, data, "GET", path)
        return data

    def get_or_none(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        """Like ``get`` but a 404 is None (reads of things that may not exist)."""
        url = _with_query(path, params)
        status, data, _link = self._conditional(url)
        if status == 404:
            return None
        _raise_for(status, data, "GET", path)
        return data

    def pages(self, path: str, *, params: Mapping[str, Any] | None = None,
              key: str | None = None) -> list[Any]:
        """Every item of a paginated list, page after page to the last (``Link: rel=next``)."""
        url = _with_query(path, {"per_page": PER_PAGE, **(params or {})})
        items: list[Any] = []
        while url:
            status, data, url = self._conditional(url)
            _raise_for(status, data, "GET", path)
            page = data.get(key, []) if key is not None and isinstance(data, dict) else data
            if not isinstance(page, list):
                raise ForgeError(f"GitHub answered GET {path} with no list")
            items += page
        return items


def _decode(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {"message": text[:200]}


def _raise_for(status: int, data: Any, verb: str, path: str) -> None:
    if status < 400:
        return
    message = data.get("message") if isinstance(data, dict) else None
    text = f"GitHub answered {status} to {verb} {_path(path)}: {message or 'no message'}"
    if status >= 500:
        raise Unavailable(text)
    errors = data.get("errors") if isinstance(data, dict) else None
    raise GitHubError(text, status=status, errors=errors if isinstance(errors, list) else None)


def _with_query(path: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return path
    return f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"


def _next_link(header: str) -> str:
    found = _NEXT.search(header)
    return found.group(1) if found else ""


def _path(url: str) -> str:
    return url.split("?", 1)[0]
