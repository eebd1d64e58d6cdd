"""Development tools shared by ``tests/`` and ``bench/`` (never imported by the product, never
shipped): a throwaway PostgreSQL server (``postgres``), HTTP-level fakes of the remote services
that cannot run here — the Kubernetes API on kmock (``kubernetes``), Keycloak's admin API
(``keycloak``) — and the loopback server that runs an ASGI fake (``server``)."""
