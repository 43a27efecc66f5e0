"""GET /healthz over real HTTP, served by uvicorn, against a real Anvil and database."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from konbit.api.app import create_app
from konbit.chain.local import LocalChain, free_port
from konbit.db.engine import make_engine
from konbit.db.migrate import upgrade
from konbit.settings import Settings


class _Server:
    def __init__(self, settings: Settings) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{settings.port}"

    def __enter__(self) -> "_Server":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


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
def server(settings: Settings) -> Iterator[_Server]:
    with _Server(settings) as srv:
        yield srv


def test_healthz_reports_chain_and_database(
    server: _Server, settings: Settings, anvil: LocalChain
) -> None:
    reply = httpx.get(server.url + "/healthz")
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert body["chain_id"] == 31337
    assert body["latest_block"] == anvil.status().block_number
    assert body["database"] == settings.effective_database_url.split(":")[0].split("+")[0]


def test_healthz_503_when_chain_is_down(tmp_path: Path) -> None:
    settings = Settings.load(
        env_file=None,
        environ={},
        data_dir=tmp_path,
        rpc_url=f"http://127.0.0.1:{free_port()}",
        database_url=f"sqlite:///{tmp_path / 'k.db'}",
        port=free_port(),
    )
    with _Server(settings) as srv:
        reply = httpx.get(srv.url + "/healthz")
    assert reply.status_code == 503
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["part"] == "chain"
