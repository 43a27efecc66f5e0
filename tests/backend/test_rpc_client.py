"""The JSON-RPC client of the hot paths (konbit.chain.rpc), against a local HTTP server
that answers as a node does, and as a node should not. (Every test on Anvil uses it too.)

What callers rely on: a node that cannot be reached, is too slow or answers an HTTP error
raises requests' exceptions (all OSErrors), which the API turns into a 503 and the
workers into a retry, as they do web3's.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import requests

from konbit.chain.local import free_port
from konbit.chain.rpc import RpcClient, RpcError


class _Node(BaseHTTPRequestHandler):
    """Answers as told by ``mode``; records each request's body and headers."""

    mode: ClassVar[str] = "ok"
    seen: ClassVar[list[tuple[Any, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((body, {k.lower(): v for k, v in self.headers.items()}))
        if self.mode == "slow":
            time.sleep(1.0)
        if self.mode == "500":
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        calls = body if isinstance(body, list) else [body]
        replies = [
            {"jsonrpc": "2.0", "id": c["id"], "error": {"code": 3, "message": "execution reverted"}}
            if c["method"] == "eth_call"
            else {"jsonrpc": "2.0", "id": c["id"], "result": hex(c["id"])}
            for c in calls
        ]
        out = json.dumps(replies if isinstance(body, list) else replies[0]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def node() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    _Node.mode, _Node.seen = "ok", []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_calls_batches_and_errors_by_id(node: str) -> None:
    rpc = RpcClient(f"http://{node}")
    assert int(rpc.call("eth_blockNumber"), 16) >= 1
    replies = rpc.batch([("eth_chainId", []), ("eth_call", [{}]), ("eth_blockNumber", [])])
    assert isinstance(replies[1], RpcError) and replies[1].code == 3
    first, _, third = replies
    assert int(third, 16) == int(first, 16) + 2  # each reply found by its own id
    with pytest.raises(RpcError, match="execution reverted"):
        rpc.call("eth_call", {})
    body, headers = _Node.seen[0]
    assert body["method"] == "eth_blockNumber" and headers["content-type"] == "application/json"


def test_credentials_in_the_url_go_as_basic_auth_not_in_the_path(node: str) -> None:
    RpcClient(f"http://konbit:s%40cret@{node}/rpc").call("eth_chainId")
    _, headers = _Node.seen[0]
    assert headers["authorization"] == "Basic " + base64.b64encode(b"konbit:s@cret").decode()


def test_a_node_that_cannot_be_reached_is_a_connection_error() -> None:
    rpc = RpcClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(requests.ConnectionError) as caught:
        rpc.call("eth_blockNumber")
    assert isinstance(caught.value, OSError)
    assert not isinstance(caught.value, requests.Timeout)


def test_a_slow_node_is_a_timeout_and_an_http_error_is_an_http_error(node: str) -> None:
    _Node.mode = "slow"
    with pytest.raises(requests.Timeout):
        RpcClient(f"http://{node}", timeout=0.2).call("eth_blockNumber")
    _Node.mode = "500"
    with pytest.raises(requests.HTTPError, match="500"):
        RpcClient(f"http://{node}").batch([("eth_blockNumber", [])])


def test_threads_share_the_client(node: str) -> None:
    rpc = RpcClient(f"http://{node}")
    found: list[int] = []

    def calls() -> None:
        found.extend(int(rpc.call("eth_blockNumber"), 16) for _ in range(20))

    threads = [threading.Thread(target=calls) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 160 and len(set(found)) == 160  # every call its own id and answer
