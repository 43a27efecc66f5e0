"""GET /healthz over real HTTP, served by uvicorn, against a real Anvil and database."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from konbit.chain.local import LocalChain, free_port
from konbit.db.engine import make_engine
from konbit.db.migrate import upgrade
from konbit.settings import Settings


@pytest.fixture
def settings(anvil: LocalChain, database_url: str, tmp_path: Path) -> Settings:
    engine = make_engine(database_url)
    upgrade(engine)
    engine.dispose()
    return Settings.load(
        env_file=None,
        environ={},
        data_dir=tmp_path,
        rpc_url=anvil.url,
        database_url=database_url,
        port=free_port(),
    )


@pytest.fixture
def server(settings: Settings, live_server: Any) -> Iterator[Any]:
    with live_server(settings) as srv:
        yield srv


def test_healthz_reports_chain_and_database(
    server: Any, settings: Settings, anvil: LocalChain
) -> None:
    reply = httpx.get(server.url + "/healthz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["chain_id"] == 31337
    assert body["latest_block"] == anvil.status().block_number
    assert body["database"] == settings.effective_database_url.split(":")[0].split("+")[0]


def test_healthz_503_when_chain_is_down(tmp_path: Path, live_server: Any) -> None:
    settings = Settings.load(
        env_file=None,
        environ={},
        data_dir=tmp_path,
        rpc_url=f"http://127.0.0.1:{free_port()}",
        database_url=f"sqlite:///{tmp_path / 'k.db'}",
        port=free_port(),
    )
    with live_server(settings) as srv:
        reply = httpx.get(srv.url + "/healthz")
    assert reply.status_code == 503
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["part"] == "chain"
