"""The web workers' connection balance: a worker over its share closes one connection at a
time (``Connection: close``), through real HTTP on a real server in test_serving."""

from __future__ import annotations

import asyncio
from typing import Any

from konbit.connection_balance import MARGIN, SHED_EVERY, ConnectionBalance, shared_counts


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-a", b"1")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _answer(balance: ConnectionBalance, kind: str = "http") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    asyncio.run(balance({"type": kind}, receive, send))  # type: ignore[arg-type]
    return sent


def _closes(sent: list[dict[str, Any]]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def test_a_worker_within_its_share_keeps_its_connections_and_publishes_its_count() -> None:
    counts = shared_counts(2)
    counts[1] = 24
    held = 25 + MARGIN  # share 26 of 50 (+1 over the even 25), within the margin
    balance = ConnectionBalance(_app, counts, 0, lambda: held, clock=Clock())
    sent = _answer(balance)
    assert counts[0] == held
    assert not _closes(sent) and sent[0]["headers"] == [(b"x-a", b"1")]
    assert sent[1]["body"] == b"ok"


def test_a_worker_over_its_share_closes_one_connection_per_interval() -> None:
    counts = shared_counts(2)
    counts[1] = 18
    clock = Clock()
    balance = ConnectionBalance(_app, counts, 0, lambda: 32, clock=clock)
    first = _answer(balance)
    assert _closes(first) and (b"x-a", b"1") in first[0]["headers"]
    assert first[1]["body"] == b"ok"
    # Its count has not fallen yet: the next answers within the interval keep theirs.
    assert not _closes(_answer(balance))
    clock.now += SHED_EVERY * 1.01
    assert _closes(_answer(balance))


def test_other_scopes_pass_through_untouched() -> None:
    counts = shared_counts(2)
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    balance = ConnectionBalance(app, counts, 0, lambda: 40, clock=Clock())
    _answer(balance, "lifespan")
    assert seen == ["lifespan"] and counts[0] == 0
