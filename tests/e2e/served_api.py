"""The live API for a test: a fresh deployment and database behind the real app, served on
a free port (:func:`serve_api`), and what tests ask of it (:class:`Api`).

A module of its own, not part of ``conftest.py``: test files import it by name, and
``from conftest import ...`` finds whichever ``conftest`` was imported first, which
depends on the order the folders were collected in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from konbit.access.keys import issue_key
from konbit.access.models import ApiKey
from konbit.chain.local import LocalChain, free_port
from konbit.db.migrate import upgrade
from konbit.outbox.models import OutboxTx
from konbit.profiles.models import FarmerProfile, OrganisationProfile
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services.deploy import deploy
from konbit.settings import Settings
from konbit.vault.models import CustodialAccount

MARKET_ROLES = tuple(r for r in Role if r is not Role.OPERATOR)


@dataclass
class Api:
    url: str
    runtime: Runtime
    operator_key: str
    # Filled by the `onboarded` helpers: one organisation and key per market role.
    keys: dict[Role, str] = field(default_factory=dict)
    addresses: dict[Role, str] = field(default_factory=dict)

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)

    def key(self, role: Role) -> str:
        return self.operator_key if role is Role.OPERATOR else self.keys[role]

    def counts(self) -> dict[str, int]:
        """Rows of every table a write request may add to (and revoked keys)."""
        return record_counts(self.runtime)

    def onboard(self) -> Api:
        """One organisation per market role (custodial), each with an API key."""
        op = self.client(self.operator_key)
        for role in MARKET_ROLES:
            reply = op.post(
                "/operator/organisations",
                params={"wait": "true"},
                json={"name": f"Matrix {role.value}", "role": role.value},
            )
            assert reply.status_code == 200, reply.text
            address = reply.json()["organisation"]["address"]
            reply = op.post(f"/operator/organisations/{address}/keys", json={"label": "matrix"})
            assert reply.status_code == 201, reply.text
            self.addresses[role] = address
            self.keys[role] = reply.json()["key"]
        return self

    def ensure_keys(self) -> None:
        """Re-issue any of this fixture's keys a test revoked (fuzzers revoke keys by id)."""
        with Session(self.runtime.engine) as session:
            revoked = {
                r.organisation.lower()
                for r in session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_not(None)))
            }
            live = {
                (r.organisation.lower(), r.role)
                for r in session.exec(select(ApiKey).where(col(ApiKey.revoked_at).is_(None)))
            }
        if not revoked:
            return
        operator = self.runtime.operator()
        assert operator is not None
        if (operator.lower(), Role.OPERATOR.value) not in live or not self._works(
            self.operator_key
        ):
            _, self.operator_key = issue_key(self.runtime.engine, operator, Role.OPERATOR, "tests")
        for role, address in self.addresses.items():
            if not self._works(self.keys[role]):
                _, self.keys[role] = issue_key(self.runtime.engine, address, role, "tests")

    def _works(self, key: str) -> bool:
        from konbit.access.keys import authenticate

        return authenticate(self.runtime.engine, key) is not None


def record_counts(runtime: Runtime) -> dict[str, int]:
    with Session(runtime.engine) as session:
        counts = {
            model.__tablename__: session.exec(select(func.count()).select_from(model)).one()  # type: ignore[attr-defined]
            for model in (OutboxTx, ApiKey, FarmerProfile, OrganisationProfile, CustodialAccount)
        }
        counts["api_key_revoked"] = session.exec(
            select(func.count()).select_from(ApiKey).where(col(ApiKey.revoked_at).is_not(None))
        ).one()
    return counts


def deployed(runtime: Runtime) -> str:
    """Migrate the database and deploy fresh contracts; returns an operator key."""
    upgrade(runtime.engine)
    deploy(runtime, progress=lambda _: None)
    operator = runtime.operator()
    assert operator is not None
    _, key = issue_key(runtime.engine, operator, Role.OPERATOR, "tests")
    return key


@contextmanager
def serve_api(
    anvil: LocalChain, database_url: str, data_dir: Path, live_server: Any, **overrides: Any
) -> Iterator[Api]:
    """Deploy a fresh set of contracts, migrate the database and serve the app."""
    settings = Settings.load(
        env_file=None,
        environ={},
        data_dir=data_dir,
        rpc_url=anvil.url,
        database_url=database_url,
        port=free_port(),
        **overrides,
    )
    runtime = Runtime(settings)
    key = deployed(runtime)
    try:
        with live_server(settings) as server:
            yield Api(server.url, runtime, key)
    finally:
        runtime.close()
