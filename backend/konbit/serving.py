"""How ``konbit run`` serves: web worker processes on one port, the background beside them.

Python runs one thread at a time per process, so one web process uses one core however many
requests wait. ``konbit run`` therefore serves from ``KONBIT_WEB_WORKERS`` spawned processes
(default: one per core, at most 4) on one port. On Linux each worker listens on a socket of
its own on that port (``SO_REUSEPORT``), the kernel hashes each new connection to one of
them, and :mod:`konbit.connection_balance` evens out what the hash left uneven; ``konbit
run`` holds the port meanwhile. Elsewhere the workers share one socket. The outbox worker,
the mirror and the SMS sender run in one more process (:mod:`konbit.background`), so there
is still a single sender of transactions and of SMS. With one web worker the server runs
in ``konbit run``'s own process, as before.

What each web worker keeps to itself: its database connections and the per-key rate limit
(each worker counts the requests it serves; see :mod:`konbit.api.rate_limit`). Everything
else a request relies on (idempotency keys, sessions, PIN attempts, USSD sessions) is in
the database.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from konbit import logs
from konbit.api import routing
from konbit.background import BackgroundProcess
from konbit.chain.rpc import RpcClient, RpcError
from konbit.connection_balance import ConnectionBalance, Counts, shared_counts
from konbit.processes import Supervised, freeze_startup_heap, watch_parent
from konbit.server import create_app
from konbit.settings import Settings

log = logging.getLogger(__name__)

#: How long a new ``konbit run`` waits for the port while an earlier one's workers drain.
BIND_PATIENCE_SECONDS = 15.0
#: The kernel's queue of connections not yet accepted, per listening socket (uvicorn's).
LISTEN_BACKLOG = 2048
#: In-flight requests a stopping worker finishes before it closes their connections.
GRACEFUL_SECONDS = 30


def web_workers(settings: Settings) -> int:
    """How many web processes to run: the setting, or one per core (at most 4)."""
    if settings.web_workers:
        return settings.web_workers
    return max(1, min(os.cpu_count() or 1, 4))


def _uvicorn_options(settings: Settings) -> dict[str, object]:
    return {
        "log_level": settings.log_level.lower(),
        # A line per request costs the server more than many requests do; errors and
        # refusals are logged by the app itself.
        "access_log": settings.log_level.upper() == "DEBUG",
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
        "backlog": LISTEN_BACKLOG,
    }


#: One listening socket per worker, spread over by the kernel. Sharing one socket, a burst
#: of new connections went mostly to the worker that woke first (40 of 52 in the SMS
#: bench), whose clients then waited twice as long as the other's.
SOCKET_PER_WORKER = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def _socket(host: str, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def bind(
    host: str,
    port: int,
    patience: float = BIND_PATIENCE_SECONDS,
    *,
    reuse_port: bool = SOCKET_PER_WORKER,
) -> socket.socket:
    """A socket bound to ``host:port`` (not listening); waits while the port is still held.

    With ``reuse_port`` it holds the port for the workers' own sockets (:func:`own_socket`) and
    for nobody else: the port must first be free for a socket without ``SO_REUSEPORT``.

    The workers of a ``konbit run`` that was killed outright stop on their own within a
    second, after their in-flight requests: a restart right away waits for them.
    """
    deadline = time.monotonic() + patience
    while True:
        sock = _socket(host, reuse_port=False)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                raise
            time.sleep(0.25)
            continue
        if reuse_port:
            port = sock.getsockname()[1]
            sock.close()
            sock = _socket(host, reuse_port=True)
            sock.bind((host, port))
        sock.set_inheritable(True)
        return sock


def own_socket(host: str, port: int) -> socket.socket:
    """A worker's own socket on the port :func:`bind` holds for it: bound, not listening.

    uvicorn listens on it once the app has started (asyncio's ``create_server``, after the
    lifespan startup), so the kernel hands this worker connections only when it can serve
    them; a listening socket whose app is still starting would hold them meanwhile (a
    worker started again after a crash, or a slow start on a busy machine).
    """
    sock = _socket(host, reuse_port=True)
    sock.bind((host, port))
    return sock


def _web_main(
    settings: Settings,
    held: socket.socket,
    parent: int,
    index: int,
    counts: Counts | None = None,
) -> None:
    """Entry point of web worker ``index`` (from 1; spawned: a clean interpreter).
    ``counts``: the workers' connection counts, to keep their shares even."""
    if SOCKET_PER_WORKER:
        host, port = held.getsockname()[:2]
        sock = own_socket(host, port)
        held.close()  # the parent holds the port
    else:
        sock = held
    logs.configure(settings.log_level, f"web {index}")
    server: uvicorn.Server  # made below, around the app; the callbacks run once it is
    api = create_app(settings, background=False, background_elsewhere=True)
    # Writes that wait to be final answer at once when the worker is stopping.
    api.state.stopping = lambda: server.should_exit
    app: ASGIApp = api
    if counts is not None:
        app = ConnectionBalance(
            app, counts, index - 1, lambda: len(server.server_state.connections)
        )
    config = uvicorn.Config(app, **_uvicorn_options(settings))  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    routing.warm(api)
    freeze_startup_heap()

    def parent_gone() -> None:
        server.should_exit = True

    watch_parent(parent, parent_gone)
    server.run(sockets=[sock])


class GenesisWatch:
    """Asks the node for its genesis block every few seconds, from a thread of its own.

    A developer who restarts their Anvil gets a new chain at the same URL (so does a managed
    Anvil whose state file was lost). Everything ``konbit run`` serves was bound to the old
    one: its contracts, its nonces, its mirror. :attr:`replaced` holds the new genesis once
    the node has another one (and ``on_change`` is called); ``konbit run`` then binds the
    new chain as it does at start.
    """

    INTERVAL_SECONDS = 2.0

    def __init__(self, settings: Settings, genesis: str) -> None:
        self.genesis = genesis
        self.replaced: str | None = None
        self.on_change: Callable[[], None] | None = None
        self._rpc = RpcClient(settings.effective_rpc_url, timeout=5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genesis-watch", daemon=True)

    def start(self) -> GenesisWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_SECONDS):
            try:
                genesis = self._rpc.genesis()
            except (OSError, RpcError, TypeError, KeyError):  # down, restarting, no block 0
                continue
            if genesis.lower() != self.genesis.lower():
                self.replaced = genesis
                if self.on_change is not None:
                    self.on_change()
                return


def serve(settings: Settings, genesis: str | None = None) -> str | None:
    """Serve HTTP until a signal stops ``konbit run``; the background runs beside it.

    With ``genesis`` (the chain bound at start), serving also stops when the node at the URL
    is another chain: the return value is then the new genesis, else None."""
    watch = GenesisWatch(settings, genesis) if genesis else None
    # The outbox worker, the mirror and the SMS sender run in a process of their own:
    # requests then never wait for them to release the interpreter lock.
    background = BackgroundProcess(settings).start()
    try:
        count = web_workers(settings)
        log.info(
            "serving on http://%s:%s with %d web worker%s (API docs at /docs)",
            settings.host,
            settings.port,
            count,
            "" if count == 1 else "s",
        )
        if count == 1:
            app = create_app(settings, background=False, background_elsewhere=True)
            freeze_startup_heap()
            config = uvicorn.Config(
                app,
                host=settings.host,
                port=settings.port,
                **_uvicorn_options(settings),  # type: ignore[arg-type]
            )
            server = uvicorn.Server(config)
            app.state.stopping = lambda: server.should_exit
            if watch is not None:
                watch.on_change = lambda: setattr(server, "should_exit", True)
                watch.start()
            server.run()
        else:
            if watch is not None:
                watch.start()
            _serve_with_workers(settings, count, background, watch)
    finally:
        background.stop()
        if watch is not None:
            watch.stop()
    return watch.replaced if watch is not None else None


def _serve_with_workers(
    settings: Settings, count: int, background: Supervised, watch: GenesisWatch | None = None
) -> None:
    # Built once here too, so that what stops an app from starting (a wrong KONBIT_GTINS)
    # stops `konbit run` with its message, as with one worker, not the workers one by one.
    create_app(settings, background=False, background_elsewhere=True)
    sock = bind(settings.host, settings.port)
    # Connections the kernel spread unevenly are spread again (konbit.connection_balance).
    counts = shared_counts(count) if SOCKET_PER_WORKER else None
    stopped = threading.Event()
    workers = [
        Supervised(
            f"web worker {index}",
            _web_main,
            (settings, sock, os.getpid(), index, counts),
            on_stopped=stopped.set,
        )
        for index in range(1, count + 1)
    ]
    try:
        for worker in workers:
            worker.start()
        # Until a signal (SIGTERM and Ctrl-C end this process through an exception), or
        # until a worker or the background stops cleanly: a signal to the process group.
        while not stopped.wait(0.5):
            if background.stopped or (watch is not None and watch.replaced is not None):
                break
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.stop(timeout=GRACEFUL_SECONDS + 5)
        sock.close()
    if any(worker.failed for worker in workers):
        raise SystemExit("konbit run: the web workers could not start (see the log above)")
