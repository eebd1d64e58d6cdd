"""One search across teams, namespaces, environments, applications and templates.

Matching: the query is cut into lower-cased words (letters and digits; anything else separates
words) and a hit is an entity every word of which is a prefix of one of its *terms*: its whole
name, the words of its name, of its owner, and of its title, description and tags (the
``search`` text the indexer writes). ``pay`` finds ``payments``, ``payments-api`` and a team
described as "Payment services"; ``ments`` finds nothing (word prefixes, not substrings).

Terms live in ``catalog_search_terms`` (one row per entity and distinct term, with the rank of
the field it came from), indexed ``(kind, term, key)`` and compared byte-wise on both databases
(see ``catalog.models.TERM_TYPE``): each word is one index range ``term >= w AND term < w'``
where ``w'`` is ``w`` with its last character incremented, so a query costs a few range scans
whatever the size of the catalog. Ranking: 0 the name is the query, 1 the name starts with it,
2 a word of the name does, 3 the owner, 4 title, description or tags; then by key.

Templates are files, not rows (a handful, from the scaffolder's registry): the caller passes
them as :class:`Document` and they are ranked in memory by the same terms and rules.

A team's owners count as owners (``rui`` finds the teams rui owns), its members as
description words.

Decommissioned entities (rows kept for their history) have no terms: search, like the
lists, hides them.

Who may see what: any signed-in user reads the whole catalog and every template (the catalog
API's rule), so search filters nothing by viewer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, get_args

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlmodel import Session, col

from catalog.models import Entity, Kind, SearchGroup, SearchHit, SearchResults, SearchTerm
from portal.errors import ValidationFailed

TEMPLATE = "template"
SearchKind = Literal["team", "namespace", "environment", "application", "template"]
KINDS: tuple[str, ...] = get_args(SearchKind)  # the catalog's kinds, then templates
MAX_QUERY = 100  # characters of ``q``
MAX_WORDS = 8  # words of ``q`` searched for; further words are ignored (``words`` says so)
MAX_LIMIT = 50  # hits per kind
MAX_TERM = 100  # characters of one term (longer words are cut: their prefix still matches)
MAX_TEXT_TERMS = 200  # distinct description words kept per entity
DESCRIPTION_CHARS = 200

NAME, NAME_WORD, OWNER, TEXT = 1, 2, 3, 4  # SearchTerm.field, also the rank of a match there
MATCH = {0: "name", 1: "name", 2: "name", 3: "owner", 4: "description"}
_SPLIT = re.compile(r"[\W_]+")
CHUNK = 500  # bound IN (...) lists (the indexer's chunk)
PIVOT_COUNT = 2000  # terms counted per word when choosing the one to start from


@dataclass(frozen=True)
class Document:
    """Something searchable that is not a catalog row (a template)."""

    kind: str
    key: str
    name: str
    title: str
    description: str
    url: str
    owner: str = ""


def words(text: str) -> list[str]:
    """Lower-cased words of ``text``: runs of letters and digits, at most MAX_TERM each."""
    return [w[:MAX_TERM] for w in _SPLIT.split(text.lower()) if w]


def page_path(key: str) -> str:
    """The portal page of a search key: ``namespace:payments/api`` →
    ``/catalog/namespaces/payments/api``, ``template:tenant`` → ``/templates/tenant``."""
    kind, _, name = key.partition(":")
    if kind == TEMPLATE:
        return f"/templates/{name}"
    return f"/catalog/{kind}s/{name}" if kind in KINDS else "/catalog"


def terms(*, name: str, owner: str, text: str, people: Sequence[str] = (),
          members: Sequence[str] = ()) -> dict[str, int]:
    """Term → field rank of one entity: its whole name (of a ``team/name`` name, the part
    after the slash: the team is the owner), the words of that name, of its owner and of a
    team's owners (``people``), and of ``text`` (title, description, tags) and a team's
    ``members`` (the first MAX_TEXT_TERMS distinct words of those)."""
    best: dict[str, int] = {}

    def put(term: str, field: int) -> None:
        term = term[:MAX_TERM]
        if term and best.get(term, TEXT + 1) > field:
            best[term] = field

    lowered = name.lower().rpartition("/")[2]
    put(lowered, NAME)
    for w in words(lowered):
        put(w, NAME_WORD)
    for who in [owner, *people]:
        put(who.lower(), OWNER)
        for w in words(who):
            put(w, OWNER)
    kept = 0
    for w in words(" ".join([text, *members])):
        if w not in best:
            if kept == MAX_TEXT_TERMS:
                continue
            kept += 1
        put(w, TEXT)
    return best


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def term_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``catalog_search_terms`` rows for entity rows (``key``, ``kind``, ``name``, ``owner``,
    ``search`` and ``spec`` — the indexer's row dicts; a team's spec lists its ``owners`` and
    ``members``)."""
    out: list[dict[str, Any]] = []
    for r in rows:
        spec: dict[str, Any] = r.get("spec") or {}
        found = terms(name=r["name"], owner=r["owner"], text=r.get("search") or "",
                      people=_names(spec.get("owners")) if r["kind"] == Kind.team else [],
                      members=_names(spec.get("members")) if r["kind"] == Kind.team else [])
        out += [{"key": r["key"], "kind": r["kind"], "term": term, "field": field}
                for term, field in found.items()]
    return out


def write_terms(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the terms of freshly inserted entity rows (their old terms are already gone:
    :func:`delete_terms`)."""
    new = term_rows(rows)
    if new:
        session.connection().execute(insert(SearchTerm.__table__), new)  # type: ignore[attr-defined]


def delete_terms(session: Session, keys: Sequence[str] | None) -> None:
    """Drop the terms of ``keys`` (every term when None)."""
    if keys is None:
        session.execute(delete(SearchTerm))
        return
    for i in range(0, len(keys), CHUNK):
        session.execute(delete(SearchTerm).where(col(SearchTerm.key).in_(keys[i:i + CHUNK])))


def replace_terms(session: Session, entity: Entity) -> None:
    """Bring one entity's terms in step with its row (placeholders written by set_status)."""
    delete_terms(session, [entity.key])
    write_terms(session, [{"key": entity.key, "kind": entity.kind, "name": entity.name,
                           "owner": entity.owner, "search": entity.search,
                           "spec": entity.spec}])


# ---- query --------------------------------------------------------------------------------------


def _successor(word: str) -> str:
    """The least string greater than every string starting with ``word`` (code point order,
    which both databases' byte-wise comparison of UTF-8 follows)."""
    return word[:-1] + chr(min(ord(word[-1]) + 1, 0x10FFFF))


def parse_query(q: str) -> tuple[str, list[str]]:
    """``q`` → (the phrase a name is compared with, its first MAX_WORDS distinct words), or
    ValidationFailed when ``q`` is longer than MAX_QUERY. No words (only punctuation or
    spaces) match nothing. The phrase of ``payments/api`` is ``api`` (the team part is
    matched as the owner)."""
    if len(q) > MAX_QUERY:
        raise ValidationFailed(f"q must be at most {MAX_QUERY} characters", field="q",
                               rule="length")
    phrase = q.strip().lower()
    found = list(dict.fromkeys(words(phrase)))[:MAX_WORDS]
    return (phrase.rpartition("/")[2] or phrase)[:MAX_TERM], found


def _range(column: Any, name: str) -> ColumnElement[bool]:
    """``column`` starts with the bound word ``name`` (its successor bound as ``name_end``)."""
    return and_(column >= bindparam(name), column < bindparam(f"{name}_end"))


def _bind(name: str, word: str) -> dict[str, str]:
    return {name: word, f"{name}_end": _successor(word)}


@lru_cache(maxsize=MAX_WORDS)
def _catalog_statement(n_words: int) -> Select[Any]:
    """The statement of :func:`_search_catalog` for ``n_words`` words, built once: words,
    phrase, pivot, kinds and limit are bound parameters (building the expression costs more
    than running it)."""
    t = SearchTerm
    rank = func.min(case(
        (and_(col(t.field) == NAME, col(t.term) == bindparam("phrase")), 0),
        (and_(col(t.field) == NAME, _range(col(t.term), "phrase")), 1),
        (col(t.field) == NAME, NAME_WORD),  # the name has a word starting with a query word
        else_=col(t.field))).label("rank")
    kinds = col(t.kind).in_(bindparam("kinds", expanding=True))
    # The phrase needs no range of its own: it starts with one of the words (or with a
    # separator, which no term starts with), so a term starting with it is in that range.
    if n_words == 1:
        where = and_(kinds, _range(col(t.term), "w0"))
    else:
        # Only entities matching the most selective word (the pivot) can match them all:
        # their terms are read by key (one index lookup each; a key names its kind) instead
        # of every term in every word's range (an OR of ranges is no index range on SQLite:
        # it scanned every term of the kind).
        candidates = select(col(t.key)).where(kinds, _range(col(t.term), "pivot"))
        where = and_(col(t.key).in_(candidates),
                     or_(*[_range(col(t.term), f"w{i}") for i in range(n_words)]))
    ranked = select(col(t.kind), col(t.key), rank).where(where).group_by(col(t.kind),
                                                                          col(t.key))
    if n_words > 1:  # every word must match some term of the entity
        ranked = ranked.having(and_(*[
            func.max(case((_range(col(t.term), f"w{i}"), 1), else_=0)) == 1
            for i in range(n_words)]))
    sub = ranked.subquery()
    numbered = select(sub.c.kind, sub.c.key, sub.c.rank, func.row_number().over(
        partition_by=sub.c.kind, order_by=(sub.c.rank, sub.c.key)).label("n")).subquery()
    return (select(numbered.c.kind, numbered.c.key, numbered.c.rank, col(Entity.name),
                   col(Entity.title), col(Entity.owner), col(Entity.description),
                   col(Entity.status))
            .join(Entity, col(Entity.key) == numbered.c.key)
            .where(numbered.c.n <= bindparam("last"))
            .order_by(numbered.c.kind, numbered.c.rank, numbered.c.key))


@lru_cache(maxsize=MAX_WORDS)
def _count_statement(n_words: int) -> Select[Any]:
    """One row: for each word ``w{i}``, how many terms of the kinds start with it (counted up
    to PIVOT_COUNT, in the index alone): one round trip for every word."""
    t = SearchTerm

    def count(i: int) -> Any:
        inner = select(col(t.key)).where(col(t.kind).in_(bindparam("kinds", expanding=True)),
                                         _range(col(t.term), f"w{i}")
                                         ).limit(PIVOT_COUNT).subquery()
        return select(func.count()).select_from(inner).scalar_subquery()

    return select(*[count(i) for i in range(n_words)])


def _search_catalog(session: Session, kinds: list[str], phrase: str, found: list[str],
                    limit: int) -> dict[str, list[SearchHit]]:
    """The best ``limit + 1`` entities of each of ``kinds`` matching every word, in one
    statement: one index range for one word; with several, the terms of the entities in the
    most selective word's range (:func:`_most_selective`), grouped by entity (an entity
    must have a term in each word's range); numbered per kind by (rank, key), joined to the
    entities' columns."""
    params: dict[str, Any] = {"kinds": kinds, "last": limit + 1, **_bind("phrase", phrase)}
    for i, w in enumerate(found):
        params.update(_bind(f"w{i}", w))
    if len(found) > 1:
        params.update(_bind("pivot", _most_selective(session, kinds, found)))
    rows = session.execute(_catalog_statement(len(found)), params).all()
    hits: dict[str, list[SearchHit]] = {}
    for r in rows:
        hits.setdefault(r.kind, []).append(SearchHit(
            kind=r.kind, key=r.key, name=r.name, title=r.title, owner=r.owner,
            description=r.description[:DESCRIPTION_CHARS], status=r.status,
            url=page_path(r.key), match=MATCH[int(r.rank)], rank=int(r.rank)))
    return hits


def _most_selective(session: Session, kinds: list[str], found: list[str]) -> str:
    """The word of ``found`` whose prefix range holds the fewest terms of ``kinds`` (each
    counted up to PIVOT_COUNT, in the index alone); the first of the least on a tie."""
    params: dict[str, Any] = {"kinds": kinds}
    for i, w in enumerate(found):
        params.update(_bind(f"w{i}", w))
    counts = [int(n) for n in session.execute(_count_statement(len(found)), params).one()]
    return found[counts.index(min(counts))]


def rank_document(doc: Document, phrase: str, found: list[str]) -> int | None:
    """The rank of a document for a query, None when some word matches none of its terms:
    the rules of :func:`_search_kind`, in memory."""
    own = terms(name=doc.name, owner=doc.owner, text=f"{doc.title} {doc.description}")
    if not all(any(term.startswith(w) for term in own) for w in found):
        return None
    ranks = [(0 if term == phrase else 1 if term.startswith(phrase) else NAME_WORD)
             if field == NAME else field
             for term, field in own.items() if any(term.startswith(w) for w in found)]
    return min(ranks)


def _documents(docs: Sequence[Document], phrase: str, found: list[str],
               limit: int) -> list[SearchHit]:
    ranked = sorted((r, d.key, d) for d in docs
                    if (r := rank_document(d, phrase, found)) is not None)
    return [SearchHit(kind=d.kind, key=d.key, name=d.name, title=d.title, owner=d.owner,
                      description=d.description[:DESCRIPTION_CHARS], status="", url=d.url,
                      match=MATCH[r], rank=r) for r, _, d in ranked[:limit + 1]]


def search(session: Session, *, q: str, kinds: Sequence[str] | None = None, limit: int = 5,
           documents: Sequence[Document] = ()) -> SearchResults:
    """Search ``kinds`` (every kind when None) for ``q``: at most ``limit`` hits per kind.

    Errors: ValidationFailed naming ``q`` (over MAX_QUERY characters), ``limit`` (outside
    1-MAX_LIMIT) or ``kind`` (unknown).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit",
                               rule="range")
    wanted = list(dict.fromkeys(kinds)) if kinds else list(KINDS)
    unknown = [k for k in wanted if k not in KINDS]
    if unknown:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}", field="kind",
                               rule="enum")
    phrase, found = parse_query(q)
    groups: list[SearchGroup] = []
    catalog_kinds = [k for k in wanted if k != TEMPLATE]
    found_hits = _search_catalog(session, catalog_kinds, phrase, found, limit) if (
        found and catalog_kinds) else {}
    if found and TEMPLATE in wanted:
        found_hits[TEMPLATE] = _documents(documents, phrase, found, limit)
    for kind in wanted:
        hits = found_hits.get(kind, [])
        if hits:
            groups.append(SearchGroup(kind=kind, items=hits[:limit], more=len(hits) > limit))
    groups.sort(key=lambda g: (g.items[0].rank, KINDS.index(g.kind)))
    return SearchResults(q=q, words=found, limit=limit, groups=groups)
