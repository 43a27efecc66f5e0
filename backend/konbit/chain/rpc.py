"""A lean JSON-RPC client for the hot paths (outbox worker, mirror).

web3.py's request pipeline (middlewares, formatters, an ``eth_chainId`` check before
each send) costs around a millisecond of Python per call; the worker and the indexer make
thousands of calls, so they speak JSON-RPC directly, with batching. Everything else uses
web3.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

import requests
import urllib3

#: Keep-alive connections kept per node: at least the threads that call at once.
POOL_SIZE = 32


class RpcError(Exception):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (code {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses the pipe from the mirror's decode worker intact.
        return (RpcError, (self.method, self.code, self.message, self.data))

    @property
    def method_unknown(self) -> bool:
        """The node has no such method (how Anvil, Hardhat, Geth and Ganache say it)."""
        text = self.message.lower()
        return self.code in (-32601, -32600) or any(
            words in text for words in ("not supported", "not available", "does not exist")
        )

    @property
    def revert_data(self) -> str | None:
        """The revert payload of a failed call or estimate, as 0x-hex, when the node gave one."""
        data = self.data
        if isinstance(data, dict):
            data = data.get("data")
        return data if isinstance(data, str) and data.startswith("0x") else None


class RpcClient:
    """JSON-RPC over HTTP on a pool of keep-alive connections, shared by the threads.

    urllib3 directly, not through requests: requests' session layer (hooks, adapters,
    cookie and header merging) cost as much CPU as the rest of a call (measured: the
    simulation's HTTP round trip was ~17% of a web worker's CPU under ``bench/api_load.py``).
    Errors still surface as requests' exceptions (``ConnectionError``, ``Timeout``,
    ``HTTPError``; OSErrors all), which the API and the workers handle as "the node is
    down", as they do web3's.
    """

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        parts = urlsplit(url)
        host = parts.hostname or ""
        self._ids = itertools.count(1)
        headers = {"Content-Type": "application/json"}
        if parts.username or parts.password:  # http://user:pass@node: basic auth, as requests did
            credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            headers |= urllib3.make_headers(basic_auth=credentials)
        self._target = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        proxy = None
        # A local node never goes through a proxy; another one does when the environment
        # names one for it (requests' trust_env, which was looked up on every request).
        if host not in ("127.0.0.1", "localhost", "::1") and not proxy_bypass(host):
            proxy = getproxies().get(parts.scheme)
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(proxy, maxsize=POOL_SIZE, headers=headers)
            if proxy
            else urllib3.PoolManager(maxsize=POOL_SIZE, headers=headers)
        )

    def _post(self, payload: Any) -> Any:
        try:
            response = self._pool.request(
                "POST",
                self._target,
                body=json.dumps(payload).encode(),
                timeout=self.timeout,
                retries=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError too
            raise requests.ConnectionError(f"{self.url}: {exc}") from None
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise requests.ConnectTimeout(f"{self.url}: {exc}") from None
        except urllib3.exceptions.TimeoutError as exc:
            raise requests.ReadTimeout(f"{self.url}: {exc}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise requests.ConnectionError(f"{self.url}: {exc}") from None
        if response.status >= 400:
            raise requests.HTTPError(f"{response.status} from {self.url}")
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise requests.HTTPError(f"{self.url} answered what is not JSON: {exc}") from None

    def call(self, method: str, *params: Any) -> Any:
        reply = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        )
        return _result(method, reply)

    def genesis(self) -> str:
        """Hash of the node's genesis block: which chain instance it is (local chains share
        a chain id; see konbit.services.chains)."""
        return str(self.call("eth_getBlockByNumber", "0x0", False)["hash"])

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any | RpcError]:
        """Several calls in one request; each item is the result or its RpcError."""
        if not calls:
            return []
        first = next(self._ids)
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": m, "params": list(p)}
            for i, (m, p) in enumerate(calls)
        ]
        for _ in range(len(calls) - 1):
            next(self._ids)
        replies = self._post(payload)
        if isinstance(replies, dict):  # some nodes answer a whole batch with one error
            error = _error(calls[0][0], replies)
            return [error] * len(calls)
        by_id = {r.get("id"): r for r in replies}
        out: list[Any | RpcError] = []
        for i, (method, _params) in enumerate(calls):
            reply = by_id.get(first + i, {"error": {"code": -32603, "message": "no reply"}})
            error = _error(method, reply)
            out.append(error if error is not None else reply.get("result"))
        return out


def _error(method: str, reply: dict[str, Any]) -> RpcError | None:
    err = reply.get("error")
    if not err:
        return None
    return RpcError(method, int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))


def _result(method: str, reply: dict[str, Any]) -> Any:
    error = _error(method, reply)
    if error is not None:
        raise error
    return reply.get("result")
