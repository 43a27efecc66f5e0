"""A lean JSON-RPC client for the hot paths (outbox worker, mirror).

web3.py's request pipeline (middlewares, formatters, an ``eth_chainId`` check before
each send) costs around a millisecond of Python per call; the worker and the indexer make
thousands of calls, so they speak JSON-RPC directly, with batching. Everything else uses
web3.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests


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
    def revert_data(self) -> str | None:
        """The revert payload of a failed call or estimate, as 0x-hex, when the node gave one."""
        data = self.data
        if isinstance(data, dict):
            data = data.get("data")
        return data if isinstance(data, str) and data.startswith("0x") else None


class RpcClient:
    """JSON-RPC over HTTP with one keep-alive session per thread."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        host = urlsplit(url).hostname or ""
        # Proxy variables are looked up on every request unless turned off; a local node
        # never goes through a proxy.
        self._trust_env = host not in ("127.0.0.1", "localhost", "::1")
        self._ids = itertools.count(1)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = self._trust_env
            session.headers["Content-Type"] = "application/json"
            self._local.session = session
        return session

    def _post(self, payload: Any) -> Any:
        response = self._session().post(self.url, data=json.dumps(payload), timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def call(self, method: str, *params: Any) -> Any:
        reply = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        )
        return _result(method, reply)

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
