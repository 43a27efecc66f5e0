"""A nudge to the outbox worker when a write is recorded, so that it need not sleep out its poll.

``konbit run`` serves HTTP from web worker processes and signs in a background process
beside them, on one host. Once a write's rows are committed, :class:`Nudge` sends one
datagram to a Linux abstract UNIX socket named after the database the outbox lives in;
an idle worker waits on that socket (:class:`WakeListener`) instead of sleeping. A lone
write is then signed within a millisecond or so instead of up to a poll (0.2 s) later,
and an agent's SMS or a ``?wait=true`` answer comes that much sooner.

Nothing depends on it. A datagram lost, no worker listening, or a worker on another host
(several backends on one PostgreSQL) only means the next poll finds the rows, as before.
Abstract sockets have no file to clean up and no path length limit; the name is a digest
of the database URL, so the URL (and any password in it) is not exposed.
"""

from __future__ import annotations

import hashlib
import logging
import select
import socket
import threading
import time

log = logging.getLogger(__name__)


def address(database_url: str) -> bytes:
    """The abstract socket (leading NUL) of the outbox in ``database_url``."""
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:32]
    return b"\0konbit-outbox-" + digest.encode()


class Nudge:
    """Tells this host's outbox worker that rows were recorded (thread-safe, never raises)."""

    def __init__(self, database_url: str) -> None:
        self._address = address(database_url)
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        try:
            with self._lock:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.setblocking(False)
                self._socket.sendto(b"!", self._address)
        except OSError:
            pass  # nobody listening (yet), or its queue is full: it is awake anyway

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


#: How often a listener whose socket was taken tries again (the background process that
#: held it may be on its way out: ``konbit run`` starts the next one meanwhile).
RETRY_BIND_SECONDS = 5.0


class WakeListener:
    """The worker's side: waits for a nudge or a timeout, whichever comes first."""

    def __init__(self, database_url: str) -> None:
        self._address = address(database_url)
        self._socket: socket.socket | None = None
        self._next_bind = 0.0
        self._bind(first=True)

    def _bind(self, *, first: bool = False) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self._address)
        except OSError as exc:  # another worker of this database on this host has it
            sock.close()
            self._next_bind = time.monotonic() + RETRY_BIND_SECONDS
            if first:
                log.info("outbox worker polls for now: its wake-up socket is taken (%s)", exc)
            return
        sock.setblocking(False)
        self._socket = sock
        if not first:
            log.info("outbox worker listens for wake-ups again")

    @property
    def listening(self) -> bool:
        return self._socket is not None

    def wait(self, stop: threading.Event, timeout: float) -> None:
        """Return on a nudge, when ``timeout`` has passed, or (within ``timeout``) on ``stop``."""
        if self._socket is None and time.monotonic() >= self._next_bind:
            self._bind()
        if self._socket is None:
            stop.wait(timeout)
            return
        readable, _, _ = select.select([self._socket], [], [], timeout)
        if readable:
            self._drain()

    def _drain(self) -> None:
        """Read every nudge queued: one pass serves them all."""
        assert self._socket is not None
        while True:
            try:
                self._socket.recv(16)
            except (BlockingIOError, InterruptedError):
                return

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._next_bind = float("inf")  # closed for good

    def __enter__(self) -> WakeListener:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
