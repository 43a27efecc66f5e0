"""A deployed chain, a migrated database and the live API, driven over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from konbit.api.auth import issue_key
from konbit.api.models import Role
from konbit.chain.deploy import deploy
from konbit.chain.local import LocalChain, free_port
from konbit.db.migrate import upgrade
from konbit.runtime import Runtime
from konbit.settings import Settings


@dataclass
class Api:
    url: str
    runtime: Runtime
    operator_key: str

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120)


@pytest.fixture
def api(anvil: LocalChain, database_url: str, tmp_path: Path, live_server: Any) -> Iterator[Api]:
    settings = Settings.load(
        env_file=None,
        environ={},
        data_dir=tmp_path,
        rpc_url=anvil.url,
        database_url=database_url,
        port=free_port(),
    )
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    deploy(runtime, progress=lambda _: None)
    operator = runtime.operator()
    assert operator is not None
    _, key = issue_key(runtime.engine, operator, Role.OPERATOR, "tests")
    with live_server(settings) as server:
        yield Api(server.url, runtime, key)
    runtime.close()
