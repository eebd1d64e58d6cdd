"""Catalog tables and their public shapes.

One ``catalog_entities`` row per entity, keyed by its stable key (``team:<t>``,
``namespace:<t>/<ns>``, ``environment:<env>``, ``application:<t>/<app>``). Lists page by
``(kind, key)`` with keyset pagination, so every filter has an index that ends in ``key``.
Quotas per tenant-environment pair live in ``catalog_placements`` (environment filters and the
cost/capacity roll-ups are plain indexed aggregates over it); edges in ``catalog_relations``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, SmallInteger, String
from sqlmodel import Field, SQLModel

from portal.db import utcnow


class Kind(StrEnum):
    team = "team"
    namespace = "namespace"
    environment = "environment"
    application = "application"


class Status(StrEnum):
    requested = "requested"
    merged = "merged"
    applying = "applying"
    applied = "applied"  # every job that applies the entity succeeded
    # In git, but a job that would apply it was skipped (integration not connected: no
    # cluster for ArgoCD, no Keycloak): "committed, not deployed".
    committed = "committed"
    failed = "failed"
    # Its files left main (a decommission merged): the row stays with its timeline and the
    # quotas it ran with; lists hide it unless asked (``status=decommissioned``).
    decommissioned = "decommissioned"


class Entity(SQLModel, table=True):
    __tablename__ = "catalog_entities"
    __table_args__ = (
        Index("ix_catalog_entities_kind_key", "kind", "key"),
        Index("ix_catalog_entities_kind_owner_key", "kind", "owner", "key"),
        Index("ix_catalog_entities_kind_status_key", "kind", "status", "key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True)
    kind: str = Field(max_length=16)
    name: str = Field(max_length=200)
    owner: str = Field(default="", max_length=100)
    title: str = Field(default="", max_length=300)
    description: str = Field(default="")
    # Lower-cased name, title, description, owner and tags: what `q` matches.
    search: str = Field(default="")
    status: str = Field(default="", max_length=16)
    previous_status: str = Field(default="", max_length=16)
    sync: str = Field(default="", max_length=16)
    health: str = Field(default="", max_length=16)
    # False for an entity that only exists in an open pull request (status `requested`).
    on_main: bool = Field(default=True)
    flagged: bool = Field(default=False)
    orphaned: bool = Field(default=False)
    parse_problems: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    problems: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    path: str = Field(default="", max_length=300)
    commit: str = Field(default="", max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    # When the indexer found its files gone from main (None while it lives).
    decommissioned_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class Relation(SQLModel, table=True):
    """A directed edge: ``namespace|application ownedBy team``, ``namespace runsIn environment``,
    ``application runsIn namespace``. Reverse edges (a team's tenants and applications, what runs
    in an environment or a namespace) are read through the ``target`` index."""

    __tablename__ = "catalog_relations"
    __table_args__ = (
        Index("ix_catalog_relations_source", "source"),
        Index("ix_catalog_relations_target_type", "target", "type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=300)
    type: str = Field(max_length=32)
    target: str = Field(max_length=300)


class Placement(SQLModel, table=True):
    """One tenant in one environment: its quota requests (priced when read, by the env tier)."""

    __tablename__ = "catalog_placements"
    __table_args__ = (
        Index("ix_catalog_placements_namespace", "namespace"),
        Index("ix_catalog_placements_env_namespace", "environment", "namespace"),
        Index("ix_catalog_placements_owner", "owner"),
    )

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(max_length=300)  # entity key
    environment: str = Field(max_length=100)  # environment name
    owner: str = Field(default="", max_length=100)
    cpu_milli: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    memory_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    storage_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


# Search terms compare byte-wise on both databases, so a prefix is one index range
# (``term >= w AND term < successor(w)``): SQLite's default collation is binary; PostgreSQL's
# database collation may be linguistic, so the column says "C".
TERM_TYPE = String(100).with_variant(String(100, collation="C"), "postgresql")


class SearchTerm(SQLModel, table=True):
    """One lower-cased word (or whole name) of an entity, with the field it came from
    (``catalog.search`` writes and reads them; ``field`` is its rank: 1 name, 2 a word of the
    name, 3 owner, 4 title, description or tags). Every search word is a prefix range over
    ``(kind, term)``; the index ends in ``key`` so the range needs no table lookup."""

    __tablename__ = "catalog_search_terms"
    __table_args__ = (
        Index("ix_catalog_search_terms_kind_term_key", "kind", "term", "key"),
        Index("ix_catalog_search_terms_key", "key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300)
    kind: str = Field(max_length=16)
    term: str = Field(sa_column=Column(TERM_TYPE, nullable=False))
    field: int = Field(sa_column=Column(SmallInteger, nullable=False))


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "catalog_timeline"
    __table_args__ = (Index("ix_catalog_timeline_entity_at", "entity", "at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    entity: str = Field(max_length=300)
    event: str = Field(max_length=64)
    actor: str = Field(default="", max_length=100)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class IndexState(SQLModel, table=True):
    """The commit of ``main`` the catalog was last built from (one row)."""

    __tablename__ = "catalog_index_state"

    id: int = Field(default=1, primary_key=True)
    commit: str = Field(default="", max_length=64)
    indexed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


# ---- public shapes ------------------------------------------------------------------------------


class EntitySummary(SQLModel):
    """One row of a list: enough to render a table without a second request."""

    key: str
    kind: str
    name: str
    title: str
    owner: str
    description: str
    status: str
    sync: str
    health: str
    on_main: bool
    flagged: bool
    orphaned: bool
    problems: list[str]
    environments: list[str] = []
    tier: str = ""
    monthly_cost: float | None = None


class EntityPage(SQLModel):
    items: list[EntitySummary]
    next_cursor: str | None
    limit: int


class SearchHit(SQLModel):
    """One search result. ``match`` says where the words matched (``name`` when the name
    equals, starts with or has a word starting with the query; else ``owner`` or
    ``description`` — title and tags count as description); ``rank`` orders hits within a
    group, lower first: 0 the name is the query, 1 the name starts with it, 2 a word of the
    name does, 3 the owner, 4 title, description or tags."""

    kind: str  # team | namespace | environment | application | template
    key: str  # catalog key (``namespace:payments/api``) or ``template:<name>``
    name: str
    title: str
    owner: str
    description: str  # at most 200 characters
    status: str  # "" for templates
    url: str  # the portal page of the hit
    match: str
    rank: int


class SearchGroup(SQLModel):
    kind: str
    items: list[SearchHit]
    more: bool  # more hits of this kind than ``limit``: ask again with ``kind=`` and a limit


class SearchResults(SQLModel):
    """Hits grouped by kind; only kinds with hits, the group with the best hit first (ties in
    the order team, namespace, environment, application, template)."""

    q: str
    words: list[str]  # the words every hit matched (a prefix of one of its terms)
    limit: int
    groups: list[SearchGroup]
