"""The backend's background work: the outbox worker, the mirror and the SMS gateway's sender.

``konbit run`` runs it in a process of its own (:class:`BackgroundProcess`) beside the web
server, so that signing, sending, following the chain and texting never compete with
requests for one interpreter lock; an app built by :func:`konbit.server.create_app` with
``background=True`` (tests, an embedding) runs the same threads in its own process instead.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

from konbit import logs
from konbit.outbox.wake import WakeListener
from konbit.processes import Supervised, freeze_startup_heap, watch_parent
from konbit.runtime import Runtime
from konbit.settings import Settings
from konbit.sms import background as sms

log = logging.getLogger(__name__)


def start(runtime: Runtime, stop: threading.Event) -> list[threading.Thread]:
    """Start the outbox worker, the mirror and the SMS threads; they end when ``stop`` is set."""
    # The mirror asks the outbox to reconcile with the chain when it sees a reorg or a
    # reset (blocks lost: their transactions are sent again).
    reconcile = threading.Event()
    # The worker wakes the mirror when it has recorded receipts: their blocks are there.
    mined = threading.Event()
    return [
        _start_worker(runtime, stop, reconcile, mined),
        _start_mirror(runtime, stop, reconcile, mined),
        *sms.start(runtime, stop),
    ]


def _start_worker(
    runtime: Runtime, stop: threading.Event, reconcile: threading.Event, mined: threading.Event
) -> threading.Thread:
    def run() -> None:
        delay = 0.5
        # Web workers nudge it when they record a write (konbit.outbox.wake).
        with WakeListener(runtime.settings.effective_database_url) as wake:
            while not stop.is_set():
                try:
                    worker = runtime.worker(reconcile_requests=reconcile)
                except Exception as exc:  # chain down, no vault table: the API still answers
                    log.warning("outbox worker not started yet (%s); retrying", exc)
                    stop.wait(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                try:
                    worker.run_forever(stop, wake=wake, on_finished=mined.set)
                finally:
                    worker.close()

    thread = threading.Thread(target=run, name="outbox-worker", daemon=True)
    thread.start()
    return thread


def _start_mirror(
    runtime: Runtime, stop: threading.Event, reconcile: threading.Event, mined: threading.Event
) -> threading.Thread:
    """Follow the chain into SQL; waits for a deployment, stops for good on a chain reset."""
    from konbit.mirror.indexer import follow_in_thread

    return follow_in_thread(runtime, stop, on_reorg=lambda _fork: reconcile.set(), wake=mined)


def serve(
    settings: Settings, stop: threading.Event, *, ready: Callable[[], None] | None = None
) -> None:
    """Run the background work until ``stop`` is set (``ready`` is called once started)."""
    runtime = Runtime(settings)
    threads = start(runtime, stop)
    if ready is not None:
        ready()
    try:
        stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        runtime.close()


def _process_main(settings: Settings, parent: int) -> None:
    """Entry point of the background process (spawned: a clean interpreter)."""
    logs.configure(settings.log_level, "background")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C reaches the whole process group; the server stops us once it has stopped
    # serving (else it would see us gone and start us again).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A server killed outright cannot stop us: two workers must never send at once.
    watch_parent(parent, stop.set)
    serve(settings, stop, ready=freeze_startup_heap)


class BackgroundProcess(Supervised):
    """The background work in a child process, started again if it dies, stopped on exit."""

    def __init__(self, settings: Settings, *, check_every: float = 1.0) -> None:
        super().__init__(
            "background work (outbox, mirror, SMS)",
            _process_main,
            (settings, os.getpid()),
            check_every=check_every,
        )
        self.settings = settings
