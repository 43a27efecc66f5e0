"""Keeps the web workers' shares of keep-alive connections even.

The kernel gives each new connection to one web worker (``konbit.serving``) by a hash of
its addresses: fifty clients that connect at once land, say, 32 on one worker and 18 on the
other. They keep their connections, and the busier worker's clients wait nearly twice as
long as the other's (the SMS bench's closed-loop p99 went from 81 ms at 29/23 to 116 ms at
34/18). So each worker publishes how many connections it holds, in memory the workers
share, and a worker holding more than its even share plus one answers a request with
``Connection: close``: the client connects again, and the kernel hashes it anew. At most
one connection is closed per ``SHED_EVERY`` seconds, so a worker that has just shed one
sees its count fall before it sheds another; the margin of one keeps a worker from
closing connections for ever around an even split.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Seconds between two connections a worker closes to rebalance.
SHED_EVERY = 0.005
#: Connections over its even share a worker keeps before it closes any.
MARGIN = 1
CLOSE = (b"connection", b"close")


#: One count per web worker, in shared memory. Each worker writes only its own.
Counts = ctypes.Array[ctypes.c_int]


def shared_counts(workers: int) -> Counts:
    """Counts for ``workers`` web workers (handed to them when they are spawned)."""
    return multiprocessing.get_context("spawn").RawArray(ctypes.c_int, workers)


class ConnectionBalance:
    """ASGI middleware of web worker ``index``: publishes ``held()``, the connections it
    holds, and closes one after its answer while it holds more than its share."""

    def __init__(
        self,
        app: ASGIApp,
        counts: Counts,
        index: int,
        held: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.counts = counts
        self.index = index
        self.held = held
        self.clock = clock
        self._last_shed = -math.inf

    def over_share(self) -> bool:
        mine = self.held()
        self.counts[self.index] = mine
        share = math.ceil(sum(self.counts) / len(self.counts))
        now = self.clock()
        if mine <= share + MARGIN or now - self._last_shed < SHED_EVERY:
            return False
        self._last_shed = now
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.over_share():
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), CLOSE]}
            await send(message)

        await self.app(scope, receive, closing)
