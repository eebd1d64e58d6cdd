"""Identity benchmark: prints figures, asserts nothing.

Measures, on this machine:

- scrypt password hashing and verification (one sign-in costs one verify);
- ID token verification (RS256, JWKS cached) against the loopback fake provider;
- the full OIDC code flow through the portal (authorize → callback → session), per sign-in;
- the policy check (``portal.auth.policy.check``) per call;
- ``render_codeowners`` for TEAMS teams x ENVS environments;
- audit: appending AUDIT rows and a filtered query over them (SQLite file database).

    .venv/bin/python bench/identity.py [--tokens 2000] [--flows 50] [--teams 500] [--envs 20]
                                       [--audit 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from portal import db
from portal.app import create_app
from portal.auth import audit, passwords, policy
from portal.auth.models import Role
from portal.auth.oidc import OidcClient
from portal.auth.principal import Principal
from portal.settings import Settings
from scaffolder.codeowners import TeamOwners, render_codeowners
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, running_idp


def timed(label: str, n: int, fn: Callable[[], object]) -> None:
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    p50 = statistics.median(samples) * 1e3
    print(f"{label:<44} n={n:<6} {n / total:>10.1f}/s  p50={p50:8.3f} ms"
          f"  p99={p99 * 1e3:8.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--flows", type=int, default=50)
    parser.add_argument("--teams", type=int, default=500)
    parser.add_argument("--envs", type=int, default=20)
    parser.add_argument("--audit", type=int, default=20000)
    args = parser.parse_args()

    stored = passwords.hash_password("correct-horse-battery")
    timed("scrypt hash (n=2^14, r=8)", 20, lambda: passwords.hash_password("x" * 12))
    timed("scrypt verify", 20, lambda: passwords.verify_password("correct-horse-battery", stored))

    principal = Principal(user_id=1, username="p", team_roles={"payments": Role.reviewer})
    timed("policy.check (approve, staging)", 100_000, lambda: policy.check(
        principal, policy.Action.approve, team="payments", tier=policy.Tier.staging,
        author="a"))

    teams = [TeamOwners(f"team-{i:04d}", (f"@org/team-{i:04d}",), (f"@org/team-{i:04d}-admins",))
             for i in range(args.teams)]
    envs = {f"env-{i:02d}": ("dev", "staging", "prod")[i % 3] for i in range(args.envs)}
    text = render_codeowners(teams=teams, environments=envs, admins=["@org/platform-admins"])
    timed(f"render_codeowners {args.teams} teams x {args.envs} envs", 10,
          lambda: render_codeowners(teams=teams, environments=envs,
                                    admins=["@org/platform-admins"]))
    print(f"{'':<44} CODEOWNERS: {len(text.splitlines())} lines, {len(text)} bytes")

    with running_idp() as idp, tempfile.TemporaryDirectory() as tmp:
        idp.user = {"preferred_username": "olga", "groups": ["/team-payments"]}
        client = OidcClient(issuer=idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        token = idp.sign(idp.claims())
        client.verify_id_token(token, nonce="n")
        timed("ID token verify (RS256, cached JWKS)", args.tokens,
              lambda: client.verify_id_token(token, nonce="n"))
        client.close()

        settings = Settings.model_validate({
            "data_dir": Path(tmp) / ".caas", "secret_key": "bench-secret-key",
            "log_level": "WARNING", "log_format": "text", "oidc_enabled": True,
            "oidc_issuer": idp.issuer, "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET, "base_url": "http://testserver"})
        engine = db.make_engine(settings)
        db.upgrade(engine)
        with TestClient(create_app(settings, engine=engine)) as portal, \
                httpx.Client() as browser:
            def flow() -> None:
                portal.cookies.clear()
                start = portal.get("/auth/oidc/login", follow_redirects=False)
                back = urlparse(browser.get(start.headers["location"]).headers["location"])
                done = portal.get(f"{back.path}?{back.query}", follow_redirects=False)
                assert done.status_code == 303, done.text

            timed("OIDC code flow through the portal (SQLite)", args.flows, flow)

        with Session(engine) as session:
            t0 = time.perf_counter()
            for i in range(args.audit):
                audit.record(session, actor=f"user{i % 200}", action="bench.event",
                             target=f"t/{i}", outcome=("success", "failure")[i % 2],
                             ip=f"10.0.{i % 250}.1", commit=(i % 500 == 499))
            session.commit()
            elapsed = time.perf_counter() - t0
            print(f"{'audit.record (batched commits of 500)':<44} n={args.audit:<6} "
                  f"{args.audit / elapsed:>10.1f}/s")
            timed("audit.query actor+outcome, limit 100", 200, lambda: audit.query(
                session, actor="user7", outcome="failure", limit=100))
            timed("audit.query action prefix, limit 1000", 50, lambda: audit.query(
                session, action="bench.", limit=1000))
        engine.dispose()


if __name__ == "__main__":
    main()
