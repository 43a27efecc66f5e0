"""Child processes of ``konbit run``: spawned, started again when they crash, never orphaned.

``konbit run`` is a parent that supervises its children (the background process, the web
workers). A child that exits with an error is started again; one that exits cleanly was
stopped by a signal to the whole process group, so the parent stops too. A child whose
parent was killed outright notices within half a second and stops: two outbox workers must
never send at once, and an orphaned web worker would keep the port.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)

#: A child that dies this soon after it started, this many times in a row, is not started
#: again (a setting it cannot start with, a port it cannot use): the parent stops instead.
QUICK_EXIT_SECONDS = 10.0
QUICK_EXITS_TO_GIVE_UP = 5


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the app, its routes and models: most of the
    heap) out of every later garbage collection.

    A long-lived process walks its whole heap in each full collection; requests then
    stall for that walk, which grows with the heap. What start-up built lives as long
    as the process, so it is collected once and frozen. On a busy 2-core server this took
    the API's read p99 from 257-411 ms to 218-282 ms (``bench/api_load.py``, three runs each).
    """
    gc.collect()
    gc.freeze()


def watch_parent(parent: int, on_gone: Callable[[], None], every: float = 0.5) -> None:
    """Call ``on_gone`` (once, from a daemon thread) when the process ``parent`` is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(every)
        log.warning("the server (pid %s) is gone; stopping", parent)
        on_gone()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Supervised:
    """A spawned child process running ``target(*args)``, started again if it crashes."""

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        args: tuple[Any, ...],
        *,
        check_every: float = 1.0,
        on_stopped: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.target = target
        self.args = args
        self.check_every = check_every
        # Called when the child stopped cleanly on its own (a signal to the process group).
        self.on_stopped = on_stopped
        self._context = multiprocessing.get_context("spawn")  # a clean interpreter
        self._process: BaseProcess | None = None
        self._started_at = 0.0
        self._quick_exits = 0
        #: True once the child crashed on start too often to be started again.
        self.failed = False
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep, name=f"{name}-keeper", daemon=True)

    def start(self) -> Supervised:
        self._spawn()
        self._keeper.start()
        return self

    def _spawn(self) -> None:
        self._process = self._context.Process(
            target=self.target, args=self.args, name=self.name, daemon=False
        )
        self._process.start()
        self._started_at = time.monotonic()
        log.info("%s in process %s", self.name, self._process.pid)

    def _keep(self) -> None:
        while not self._stop.wait(self.check_every):
            process = self._process
            if process is None or process.is_alive() or self._stop.is_set():
                continue
            if process.exitcode == 0:
                log.warning("%s stopped", self.name)
                self._stop.set()
                if self.on_stopped is not None:
                    self.on_stopped()
                continue
            quick = time.monotonic() - self._started_at < QUICK_EXIT_SECONDS
            self._quick_exits = self._quick_exits + 1 if quick else 0
            if self._quick_exits >= QUICK_EXITS_TO_GIVE_UP:
                log.error(
                    "%s exited (code %s) %d times in a row right after starting; giving up",
                    self.name,
                    process.exitcode,
                    self._quick_exits,
                )
                self.failed = True
                self._stop.set()
                if self.on_stopped is not None:
                    self.on_stopped()
                continue
            log.error("%s exited (code %s); starting it again", self.name, process.exitcode)
            self._spawn()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM) without waiting; no restart from now on."""
        self._stop.set()
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()

    def stop(self, timeout: float = 45.0) -> None:
        """SIGTERM, then wait up to ``timeout`` seconds before killing it."""
        self.terminate()
        if self._keeper.is_alive():
            self._keeper.join(timeout=5)
        process = self._process
        if process is None:
            return
        process.join(timeout)
        if process.is_alive():
            log.error("%s did not stop within %.0fs; killing it", self.name, timeout)
            process.kill()
            process.join(5)
