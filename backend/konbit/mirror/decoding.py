"""Logs to ``Event``s, in this process or in a child process beside the indexer.

Decoding ABI data is pure Python and costs about as much as writing the rows it becomes.
During a catch-up the indexer therefore hands chunks to a ``DecodeWorker``: a child
process that fetches a chunk (block headers and ``eth_getLogs`` in one batch), decodes
it and streams the events back in slices. The indexer writes slice *k* while the child
decodes slice *k + 1* and then fetches the next chunk, so decoding and SQL run on two
cores. Requests and replies go through the child's stdin and stdout in order; each
reply carries the ticket of its request, and replies to a request the indexer gave up
on are dropped.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from konbit.chain.contracts import EventDecoder, konbit_event_decoder
from konbit.chain.rpc import RpcClient, RpcError

#: Events per message from the worker: small enough that the indexer starts writing
#: early, large enough that pickling stays a small share.
SLICE_EVENTS = 500

_HEAD, _EVENTS, _END, _ERROR, _READY = range(5)


class DecodeWorkerError(RuntimeError):
    """The decode worker failed a request or died."""


@dataclass(slots=True)
class Event:
    """A decoded log with its position on chain."""

    block_number: int
    block_hash: str
    block_time: int | None
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
    contract: str
    name: str
    args: dict[str, Any]


def hex_int(value: str | int | None) -> int | None:
    """A JSON-RPC quantity (0x-hex) as an int; ints and None pass through."""
    if value is None:
        return None
    return value if isinstance(value, int) else int(value, 16)


def iter_events(
    decoder: EventDecoder, names: dict[str, str], logs: Sequence[dict[str, Any]]
) -> Iterator[Event]:
    """Decode logs in chain order (block, transaction index, log index).

    Removed logs and logs of unknown events are skipped; ``names`` maps lower-case
    addresses to contract names.
    """
    keyed = sorted(
        (
            (int(e["blockNumber"], 16), int(e["transactionIndex"], 16), int(e["logIndex"], 16), e)
            for e in logs
            if not e.get("removed")
        ),
        key=lambda k: k[:3],
    )
    decode = decoder.decode
    for block_number, tx_index, log_index, entry in keyed:
        decoded = decode(entry["topics"], entry["data"])
        if decoded is None:
            continue
        yield Event(
            block_number,
            entry["blockHash"],
            hex_int(entry.get("blockTimestamp")),
            entry["transactionHash"],
            tx_index,
            log_index,
            entry["address"],
            names.get(entry["address"].lower(), decoded.contract),
            decoded.name,
            decoded.args,
        )


def chunk_calls(last: int, end: int, addresses: Sequence[str]) -> list[tuple[str, Sequence[Any]]]:
    """One batch for the chunk (last, end]: the node's headers of ``last`` and ``end``,
    then the logs of the followed contracts."""
    return [
        ("eth_getBlockByNumber", [hex(last), False]),
        ("eth_getBlockByNumber", [hex(end), False]),
        (
            "eth_getLogs",
            [{"fromBlock": hex(last + 1), "toBlock": hex(end), "address": list(addresses)}],
        ),
    ]


@dataclass
class FetchedChunk:
    """A chunk as the node gave it: ``logs`` is the number of logs, or the node's error;
    ``slices`` yields the decoded events in chain order (read it once)."""

    node_last: Any
    header: Any
    logs: int | RpcError
    slices: Iterator[list[Event]]


def _serve(conn_in: Connection, conn_out: Connection) -> None:
    """The worker's loop: one request ``(ticket, last, end)`` at a time until ``None``.

    The first message is the set-up ``(url, addresses, names)``; the node's URL comes
    through the pipe, not the command line, because it may hold an API key.
    """
    url, addresses, names = conn_in.recv()
    rpc = RpcClient(url)
    decoder = konbit_event_decoder()
    send = conn_out.send
    send((0, _READY))
    while True:
        try:
            request = conn_in.recv()
        except EOFError:
            return
        if request is None:
            return
        ticket, last, end = request
        gc.disable()  # see indexer._gc_paused
        try:
            node_last, header, logs = rpc.batch(chunk_calls(last, end, addresses))
            if not isinstance(logs, list):
                send((ticket, _HEAD, node_last, header, logs))
            else:
                send((ticket, _HEAD, node_last, header, len(logs)))
                events = iter_events(decoder, names, logs)
                while batch := list(itertools.islice(events, SLICE_EVENTS)):
                    send((ticket, _EVENTS, batch))
            send((ticket, _END))
        except Exception as exc:  # reported to the indexer, which decides what to do
            send((ticket, _ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            gc.enable()


class DecodeWorker:
    """A child process that fetches and decodes chunks ahead of the indexer.

    A plain ``python -m konbit.mirror.decoding`` subprocess talking pickles over its
    stdin and stdout: unlike ``multiprocessing`` it neither forks a process that may run
    web threads nor re-imports the parent's main module. It takes about a second to
    start (imports and the ABI tables), so the indexer starts it for catch-ups only.
    """

    def __init__(self, url: str, addresses: Sequence[str], names: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "konbit.mirror.decoding"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._out = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._in = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()
        self._out.send((url, list(addresses), dict(names)))
        self._tickets = itertools.count(1)
        self._ready = False

    def wait_ready(self) -> None:
        """Block until the child has built its decoder (else the first chunk waits)."""
        while not self._ready:
            self._recv()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def request(self, last: int, end: int) -> int:
        """Ask for the chunk (last, end]; returns the ticket to ``receive`` it with."""
        ticket = next(self._tickets)
        try:
            self._out.send((ticket, last, end))
        except OSError as exc:
            raise DecodeWorkerError(f"the decode worker is gone ({exc})") from None
        return ticket

    def receive(self, ticket: int) -> FetchedChunk:
        """The chunk of ``ticket``; replies to earlier tickets still in the pipe are dropped."""
        while True:
            message = self._recv()
            if message[0] != ticket:
                continue
            if message[1] == _ERROR:
                raise DecodeWorkerError(message[2])
            _, _, node_last, header, logs = message
            return FetchedChunk(node_last, header, logs, self._slices(ticket))

    def _slices(self, ticket: int) -> Iterator[list[Event]]:
        while True:
            message = self._recv()
            if message[0] != ticket:  # cannot happen: replies come in request order
                raise DecodeWorkerError(f"reply {message[0]} while reading chunk {ticket}")
            if message[1] == _END:
                return
            if message[1] == _ERROR:
                raise DecodeWorkerError(message[2])
            yield message[2]

    def _recv(self) -> tuple[Any, ...]:
        while not self._in.poll(1.0):
            if not self.alive:
                raise DecodeWorkerError(
                    f"the decode worker exited (code {self._process.returncode})"
                )
        try:
            message: tuple[Any, ...] = self._in.recv()
        except EOFError:
            raise DecodeWorkerError(
                f"the decode worker exited (code {self._process.wait()})"
            ) from None
        if message[1] == _READY:
            self._ready = True
        return message

    def close(self) -> None:
        """Stop the child (it finishes the request it is on, then exits)."""
        with contextlib.suppress(OSError):
            self._out.send(None)
        self._out.close()
        self._in.close()  # a child still writing gets EPIPE and exits
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def main() -> None:
    """Entry point of the worker process: ``python -m konbit.mirror.decoding``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn_in = Connection(os.dup(0), writable=False)
    conn_out = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # a stray print must not corrupt the message stream
    _serve(conn_in, conn_out)


if __name__ == "__main__":
    # Run the imported module's main, so pickled Events name konbit.mirror.decoding
    # (not __main__) and the parent can load them.
    from konbit.mirror import decoding

    decoding.main()
