"""The outbox's wake-up socket (konbit.outbox.wake): real sockets, no chain needed."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from konbit.outbox import wake as wake_module
from konbit.outbox.wake import Nudge, WakeListener


def _url() -> str:
    return f"sqlite:////tmp/konbit-wake-test-{uuid.uuid4().hex}.db"


def test_a_nudge_ends_the_wait_and_is_read_once() -> None:
    url = _url()
    listener = WakeListener(url)
    stop = threading.Event()
    try:
        assert listener.listening
        Nudge(url)()
        Nudge(url)()  # two writes, one pass
        started = time.monotonic()
        listener.wait(stop, 30.0)
        assert time.monotonic() - started < 10.0
        started = time.monotonic()
        listener.wait(stop, 0.3)  # both were read: this one times out
        assert time.monotonic() - started >= 0.25
    finally:
        listener.close()


def test_a_nudge_with_nobody_listening_is_harmless() -> None:
    nudge = Nudge(_url())
    nudge()
    nudge()
    nudge.close()


def test_a_second_listener_polls_until_the_socket_is_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A restarted background process may start before its predecessor has gone: it polls,
    then takes the socket over once it is free."""
    monkeypatch.setattr(wake_module, "RETRY_BIND_SECONDS", 0.0)
    url, stop = _url(), threading.Event()
    first = WakeListener(url)
    second = WakeListener(url)
    try:
        assert first.listening and not second.listening
        started = time.monotonic()
        second.wait(stop, 0.2)  # polls: the socket is still taken
        assert time.monotonic() - started >= 0.15 and not second.listening
        first.close()
        second.wait(stop, 0.01)
        assert second.listening
        Nudge(url)()
        started = time.monotonic()
        second.wait(stop, 30.0)
        assert time.monotonic() - started < 10.0
    finally:
        first.close()
        second.close()
