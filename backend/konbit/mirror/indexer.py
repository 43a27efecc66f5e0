"""The indexer: eth_getLogs over block ranges, decoded, applied in order, reorg-safe.

One database transaction per chunk writes the raw events, their projection, the chunk's
last block header and the cursor together, so a crash never leaves half a chunk. Before
each chunk the stored hash of the cursor block is compared with the node's; on a
mismatch the mirror walks its stored headers down to the fork point, deletes raw events
and headers above it, and recomputes the projection from the remaining raw events (from
SQL, not from the chain), then continues from the fork point. A chain reset (another
chain id or genesis, another deployment, or a fork below every stored header) stops the
mirror with ``MirrorResetError``: the operator runs ``konbit mirror --rebuild``.

A chain that goes back (a reorg, or a node restarted from an older state: its head below
the cursor) is a fork like any other. ``on_reorg`` is told of each rollback (with the fork
block) and of a reset (with None): ``konbit run`` passes the outbox worker's
reconciliation there, which sends again the transactions the lost blocks held (the mirror
does not know the outbox).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ujson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from konbit.chain.contracts import KONBIT_CONTRACTS, AddressBook, konbit_event_decoder
from konbit.chain.rpc import RpcClient, RpcError
from konbit.mirror.buffer import BulkWriter
from konbit.mirror.decoding import (
    DecodeWorker,
    DecodeWorkerError,
    Event,
    FetchedChunk,
    chunk_calls,
    hex_int,
    iter_events,
)
from konbit.mirror.models import PROJECTION_MODELS, BlockHeader, ChainEvent, MirrorCursor, utcnow
from konbit.mirror.projector import Projector

log = logging.getLogger(__name__)

REBUILD_HINT = "run `konbit mirror --rebuild` to drop the projection and replay it from the chain"
#: Told of a rollback (the fork block) or of a reset (None).
ReorgListener = Callable[[int | None], None]
#: Replay from SQL reads raw events in pages of this many rows.
REPLAY_PAGE = 5000

_events = ChainEvent.__table__  # type: ignore[attr-defined]
_headers = BlockHeader.__table__  # type: ignore[attr-defined]
_cursors = MirrorCursor.__table__  # type: ignore[attr-defined]
#: The raw event row, in the order ``_write`` builds its tuples.
_EVENT_COLUMNS = (
    "chain_id",
    "block_number",
    "block_hash",
    "block_time",
    "tx_hash",
    "tx_index",
    "log_index",
    "address",
    "contract",
    "event",
    "args",
)
assert set(_EVENT_COLUMNS) == {c.name for c in _events.columns} - {"id"}


class MirrorError(RuntimeError):
    """The mirror cannot go on (nothing deployed, node unreachable, ...)."""


class MirrorResetError(MirrorError):
    """The chain under the projection is not the one it was built from."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"chain reset: {reason}; the mirror stops. {REBUILD_HINT}")
        self.reason = reason


@dataclass
class SyncResult:
    """What one ``sync`` did."""

    events: int = 0
    chunks: int = 0
    reorgs: int = 0
    last_block: int = -1
    ranges: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _Cursor:
    last_block: int
    genesis_hash: str
    deploy_block: int
    contracts: dict[str, str]


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while one chunk is fetched and written.

    A chunk allocates tens of thousands of short-lived dicts and tuples (decoded
    arguments, rows); each allocation burst sets off collections that walk every live
    object, about a tenth of the catch-up time. Reference counting still frees them; the
    collector runs again between chunks.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Mirror:
    """Follows the Konbit contracts of one deployment into SQL."""

    def __init__(
        self,
        engine: Engine,
        rpc: RpcClient,
        book: AddressBook,
        *,
        confirmations: int = 0,
        chunk_blocks: int = 2000,
        header_window: int = 256,
        adaptive: bool = True,
        max_chunk_blocks: int = 100_000,
        target_logs: int = 5000,
        parallel: bool | None = None,
        parallel_min_logs: int = 1000,
        on_reorg: ReorgListener | None = None,
    ) -> None:
        self.engine = engine
        self.rpc = rpc
        self.book = book
        self.chain_id = book.chain_id
        self.confirmations = confirmations
        self.chunk_blocks = chunk_blocks
        self.header_window = header_window
        self.adaptive = adaptive
        self.max_chunk_blocks = max_chunk_blocks
        self.target_logs = target_logs
        self.parallel = parallel
        self.parallel_min_logs = parallel_min_logs
        self.on_reorg = on_reorg
        self.decoder = konbit_event_decoder()
        self.contracts = {n: book.addresses[n] for n in self.followed(book)}
        self._names = {a.lower(): n for n, a in self.contracts.items()}
        self._addresses = sorted(a.lower() for a in self.contracts.values())
        self.projector = Projector()
        self._raw_writer = BulkWriter(_events)
        self._worker: DecodeWorker | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @staticmethod
    def followed(book: AddressBook) -> list[str]:
        """The contracts whose events the mirror reads (the test stablecoin's are not)."""
        return [n for n in KONBIT_CONTRACTS if n in book.addresses]

    @classmethod
    def from_runtime(cls, runtime: Any, **options: Any) -> Mirror:
        book = runtime.address_book()
        if book is None:
            raise MirrorError(f"nothing deployed on chain {runtime.chain_id}: run `konbit deploy`")
        settings = runtime.settings
        options.setdefault("confirmations", settings.effective_confirmations(book.chain_id))
        options.setdefault("chunk_blocks", settings.mirror_chunk_blocks)
        options.setdefault("header_window", settings.mirror_header_window)
        return cls(runtime.engine, runtime.rpc, book, **options)

    # ------------------------------------------------------------------ public

    def sync(self, *, max_chunks: int | None = None) -> SyncResult:
        """Catch up to the head minus the confirmations (at most ``max_chunks`` chunks).

        A ``DecodeWorker`` child process fetches and decodes the chunks during a
        catch-up, and already works on the next chunk while this one is written:
        always with ``parallel=True``, never with ``False``, and by default once a chunk
        brings ``parallel_min_logs`` logs with more blocks to go (a mirror following
        the head reads a few logs at a time and stays in one process). A chunk fetched
        ahead is checked like any other: the node's hash of the block it starts after
        must equal the stored one at the time it is applied.
        """
        result = SyncResult()
        cursor = self._check_chain()
        result.last_block = cursor.last_block
        worker: DecodeWorker | None = None
        if self.parallel:
            worker = self.start()
        elif self.parallel is None and self._worker is not None and self._worker.alive:
            worker = self._worker  # started by an earlier catch-up
        pending: tuple[int, int, int] | None = None  # (after block, to block, ticket)
        while max_chunks is None or result.chunks < max_chunks:
            head = hex_int(self.rpc.call("eth_blockNumber"))
            assert head is not None
            target = head - self.confirmations
            last = self._last_block()
            if target <= last:
                # Nothing new to read; still make sure the block we stand on is canonical
                # (a reorg may have replaced it with a chain of the same or lower height).
                if self._cursor_block_replaced(last, head):
                    result.reorgs += self._handle_fork(last)
                    continue
                break
            with _gc_paused():
                if pending is not None and pending[0] == last and pending[1] <= target:
                    end, ticket = pending[1], pending[2]
                else:
                    end = min(last + self.chunk_blocks, target)
                    ticket = worker.request(last, end) if worker is not None else 0
                pending = None
                if worker is not None and (max_chunks is None or result.chunks + 1 < max_chunks):
                    following = min(end + self.chunk_blocks, target)
                    if following > end:
                        pending = (end, following, worker.request(end, following))
                try:
                    fetched = (
                        worker.receive(ticket) if worker is not None else self._fetch(last, end)
                    )
                    applied = self._apply(last, end, fetched, result)
                except DecodeWorkerError as exc:
                    raise MirrorError(f"fetching blocks {last + 1}..{end}: {exc}") from exc
            if applied is None:
                pending = None
                continue
            result.events += applied
            result.chunks += 1
            result.last_block = end
            if (
                worker is None
                and self.parallel is None
                and isinstance(fetched.logs, int)
                and fetched.logs >= self.parallel_min_logs
                and end < target
            ):
                worker = self.start()
        result.last_block = self._last_block()
        return result

    def start(self) -> DecodeWorker:
        """Start the decode worker now (``sync`` starts it when it needs it)."""
        if self._worker is None or not self._worker.alive:
            self.close()
            self._worker = DecodeWorker(self.rpc.url, self._addresses, self._names)
            self._finalizer = weakref.finalize(self, self._worker.close)
        return self._worker

    def close(self) -> None:
        """Stop the decode worker, if one runs."""
        if self._finalizer is not None:
            self._finalizer()
        self._worker = None
        self._finalizer = None

    def __enter__(self) -> Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear(self) -> None:
        """Delete the projection, raw events, headers and cursors (every chain's: after a
        reset the old chain's rows are meaningless). Private profiles are not touched."""
        with self.engine.begin() as conn:
            clear_mirror(conn)

    def rebuild(self) -> SyncResult:
        """``konbit mirror --rebuild``: clear, then replay from the deployment block."""
        self.clear()
        return self.sync()

    def follow(
        self,
        stop: threading.Event,
        poll_seconds: float = 1.0,
        *,
        wake: threading.Event | None = None,
    ) -> None:
        """Sync until ``stop`` is set; a chain reset ends the loop, other errors are retried.
        Between syncs, wait ``poll_seconds``, or less when ``wake`` is set (the outbox
        worker sets it when it has recorded receipts: new blocks to apply)."""
        try:
            self._follow(stop, poll_seconds, wake)
        finally:
            self.close()

    def _follow(
        self, stop: threading.Event, poll_seconds: float, wake: threading.Event | None
    ) -> None:
        while not stop.is_set():
            try:
                result = self.sync()
                if result.events or result.reorgs:
                    # Following the head is routine (a line per block would flood the log
                    # under load); catching up and reorgs are worth a line.
                    routine = result.chunks <= 1 and not result.reorgs
                    log.log(
                        logging.DEBUG if routine else logging.INFO,
                        "mirror: %d events in %d chunks, %d reorgs, at block %d",
                        result.events,
                        result.chunks,
                        result.reorgs,
                        result.last_block,
                    )
            except MirrorResetError:
                self._tell(None)
                raise
            except OSError as exc:  # the node is down or restarting: it comes back
                log.warning("mirror: the node cannot be reached (%s); retrying", exc)
                stop.wait(max(poll_seconds, 1.0))
            except Exception:
                log.exception("mirror: sync failed; retrying")
            if wake is None:
                stop.wait(poll_seconds)
            elif wake.wait(poll_seconds):
                wake.clear()  # before the sync: a block mined during it wakes the next wait

    def apply_range(self, from_block: int, to_block: int) -> int:
        """Fetch and apply the logs of [from_block, to_block]; blocks at or below the cursor
        are skipped, so re-applying an applied chunk changes nothing. Returns events applied."""
        logs = self._get_logs(from_block, to_block)
        header = self.rpc.call("eth_getBlockByNumber", hex(to_block), False)
        with self.engine.begin() as conn:
            cursor = self._lock_cursor(conn)
            if to_block <= cursor.last_block:
                return 0
            if from_block > cursor.last_block + 1:
                raise MirrorError(f"gap: cursor at {cursor.last_block}, chunk from {from_block}")
            events = [
                e
                for e in iter_events(self.decoder, self._names, logs)
                if e.block_number > cursor.last_block
            ]
            return self._write(conn, [events], to_block, header)

    # ------------------------------------------------------------------ chain checks

    def _check_chain(self) -> _Cursor:
        replies = self.rpc.batch([("eth_chainId", []), ("eth_getBlockByNumber", ["0x0", False])])
        for reply in replies:
            if isinstance(reply, RpcError):
                raise MirrorError(f"node error: {reply}")
        chain_id = hex_int(str(replies[0]))
        genesis: str = replies[1]["hash"]  # type: ignore[index]
        if chain_id != self.chain_id:
            raise MirrorResetError(
                f"the node is chain {chain_id}, the address book is for chain {self.chain_id}"
            )
        with self.engine.begin() as conn:
            others = conn.execute(
                select(_cursors.c.chain_id).where(_cursors.c.chain_id != self.chain_id)
            ).first()
            if others is not None:
                raise MirrorResetError(
                    f"this database mirrors chain {others[0]}, the node is chain {chain_id}"
                )
            cursor = self._read_cursor(conn)
            if cursor is None:
                return self._init_cursor(conn, genesis)
        if cursor.genesis_hash != genesis:
            raise MirrorResetError(
                f"the genesis block changed ({cursor.genesis_hash[:12]}… -> {genesis[:12]}…): "
                "the node was restarted without its state (`konbit run` binds a new local"
                " chain by itself within seconds)"
            )
        if {k: v.lower() for k, v in cursor.contracts.items()} != {
            k: v.lower() for k, v in self.contracts.items()
        }:
            raise MirrorResetError("the contracts were redeployed since the projection was built")
        return cursor

    def _init_cursor(self, conn: Connection, genesis: str) -> _Cursor:
        start = max(self.book.deploy_block - 1, 0)
        block = self.rpc.call("eth_getBlockByNumber", hex(start), False)
        if block is None:
            raise MirrorResetError(f"block {start} (before the deployment) is not on the node")
        conn.execute(
            insert(_cursors).values(
                chain_id=self.chain_id,
                last_block=start,
                genesis_hash=genesis,
                deploy_block=self.book.deploy_block,
                contracts=json.dumps(self.contracts, sort_keys=True),
                updated_at=utcnow(),
            )
        )
        self._store_header(conn, block)
        return _Cursor(start, genesis, self.book.deploy_block, dict(self.contracts))

    def _read_cursor(self, conn: Connection, *, lock: bool = False) -> _Cursor | None:
        query = select(_cursors).where(_cursors.c.chain_id == self.chain_id)
        if lock:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return _Cursor(
            row["last_block"],
            row["genesis_hash"],
            row["deploy_block"],
            json.loads(row["contracts"]),
        )

    def _lock_cursor(self, conn: Connection) -> _Cursor:
        """Begin a mirror write: lock the cursor row (the transaction's first statement)."""
        if conn.dialect.name == "postgresql":
            # The projection is derived data: a crash may lose the last chunks committed,
            # cursor and rows together, and the mirror reads them again. So its commits
            # need not wait for the WAL flush.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        cursor = self._read_cursor(conn, lock=True)
        if cursor is None:
            raise MirrorError("the mirror cursor vanished (a rebuild is running?)")
        return cursor

    def _last_block(self) -> int:
        with self.engine.connect() as conn:
            cursor = self._read_cursor(conn)
        if cursor is None:
            raise MirrorError("no mirror cursor")
        return cursor.last_block

    # ------------------------------------------------------------------ chunks

    def _get_logs(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = self.rpc.call(
            "eth_getLogs",
            {"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": self._addresses},
        )
        return logs

    def _fetch(self, last: int, end: int) -> FetchedChunk:
        """The chunk (last, end] fetched and decoded in this process."""
        node_last, header, logs = self.rpc.batch(chunk_calls(last, end, self._addresses))
        if not isinstance(logs, list):
            return FetchedChunk(node_last, header, logs, iter(()))
        events = list(iter_events(self.decoder, self._names, logs))
        return FetchedChunk(node_last, header, len(logs), iter([events]))

    def _apply(self, last: int, end: int, fetched: FetchedChunk, result: SyncResult) -> int | None:
        """Apply (last, end]; None when the chunk was not applied (reorg, retry)."""
        node_last, header, logs = fetched.node_last, fetched.header, fetched.logs
        if isinstance(node_last, RpcError) or isinstance(header, RpcError):
            raise MirrorError(
                f"node error: {node_last if isinstance(node_last, RpcError) else header}"
            )
        stored = self._stored_hash(last)
        if node_last is None or (stored is not None and node_last["hash"] != stored):
            result.reorgs += self._handle_fork(last)
            return None
        if header is None:  # the head moved back between calls
            return None
        if isinstance(logs, RpcError):
            if self.chunk_blocks == 1:
                raise MirrorError(f"eth_getLogs failed on one block: {logs}")
            self.chunk_blocks = max(1, self.chunk_blocks // 2)
            log.info(
                "mirror: eth_getLogs refused (%s); chunk now %d blocks", logs, self.chunk_blocks
            )
            return None
        with self.engine.begin() as conn:
            cursor = self._lock_cursor(conn)
            if cursor.last_block != last:  # another instance got there first
                return None
            written = self._write(conn, fetched.slices, end, header)
        result.ranges.append((last + 1, end))
        self._adapt(logs)
        return written

    def _adapt(self, n_logs: int) -> None:
        if not self.adaptive:
            return
        if n_logs > 2 * self.target_logs:
            self.chunk_blocks = max(1, self.chunk_blocks // 2)
        elif n_logs < self.target_logs // 2:
            self.chunk_blocks = min(self.max_chunk_blocks, self.chunk_blocks * 2)

    def _write(
        self, conn: Connection, slices: Iterable[list[Event]], end: int, header: dict[str, Any]
    ) -> int:
        """Raw events, projection, header and cursor of one chunk; returns events written."""
        written = self._project(conn, slices, store_raw=True)
        self._store_header(conn, header)
        self._prune_headers(conn)
        conn.execute(
            update(_cursors)
            .where(_cursors.c.chain_id == self.chain_id)
            .values(last_block=end, updated_at=utcnow())
        )
        return written

    def _insert_raw(self, conn: Connection, events: list[Event]) -> None:
        chain_id = self.chain_id
        dumps = ujson.dumps
        self._raw_writer.insert(
            conn,
            _EVENT_COLUMNS,
            [
                (
                    chain_id,
                    e.block_number,
                    e.block_hash,
                    e.block_time,
                    e.tx_hash,
                    e.tx_index,
                    e.log_index,
                    e.address,
                    e.contract,
                    e.name,
                    dumps(e.args),
                )
                for e in events
            ],
        )

    def _project(self, conn: Connection, slices: Iterable[list[Event]], *, store_raw: bool) -> int:
        """Apply slices of events in chain order (storing them as raw events first when
        ``store_raw``); the projection is flushed once, after the last slice."""
        projector = self.projector
        projector.buffer.bind(conn)
        count = 0
        try:
            for events in slices:
                if not events:
                    continue
                if store_raw:
                    self._insert_raw(conn, events)
                projector.apply(events)
                count += len(events)
            projector.buffer.flush()
        except BaseException:
            projector.buffer.discard()
            raise
        finally:
            projector.buffer.bind(None)
        return count

    # ------------------------------------------------------------------ headers and reorgs

    def _store_header(self, conn: Connection, block: dict[str, Any]) -> None:
        number = hex_int(block["number"])
        conn.execute(
            delete(_headers).where(
                _headers.c.chain_id == self.chain_id, _headers.c.number == number
            )
        )
        conn.execute(
            insert(_headers).values(
                chain_id=self.chain_id,
                number=number,
                hash=block["hash"],
                parent_hash=block.get("parentHash"),
                timestamp=hex_int(block.get("timestamp")),
            )
        )

    def _prune_headers(self, conn: Connection) -> None:
        nth = conn.execute(
            select(_headers.c.number)
            .where(_headers.c.chain_id == self.chain_id)
            .order_by(_headers.c.number.desc())
            .offset(self.header_window - 1)
            .limit(1)
        ).scalar()
        if nth is not None:
            conn.execute(
                delete(_headers).where(
                    _headers.c.chain_id == self.chain_id, _headers.c.number < nth
                )
            )

    def _cursor_block_replaced(self, last: int, head: int) -> bool:
        if head < last:
            return True
        block = self.rpc.call("eth_getBlockByNumber", hex(last), False)
        stored = self._stored_hash(last)
        return block is None or (stored is not None and block["hash"] != stored)

    def _stored_hash(self, number: int) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(_headers.c.hash).where(
                    _headers.c.chain_id == self.chain_id, _headers.c.number == number
                )
            ).scalar()
        return str(value) if value is not None else None

    def _handle_fork(self, last: int) -> int:
        """Roll the projection back to the highest stored header the node still has."""
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(_headers.c.number, _headers.c.hash)
                .where(_headers.c.chain_id == self.chain_id, _headers.c.number <= last)
                .order_by(_headers.c.number.desc())
            ).all()
        if not stored:
            raise MirrorResetError(f"no stored block header at or below block {last}")
        replies = self.rpc.batch(
            [("eth_getBlockByNumber", [hex(number), False]) for number, _ in stored]
        )
        fork: int | None = None
        for (number, hash_), reply in zip(stored, replies, strict=True):
            if isinstance(reply, dict) and reply.get("hash") == hash_:
                fork = number
                break
        if fork is None:
            raise MirrorResetError(
                f"none of the {len(stored)} stored block hashes (down to block {stored[-1][0]}) "
                "is on the node any more"
            )
        if fork == last:
            return 0
        if fork < self.book.deploy_block:
            head = hex_int(self.rpc.call("eth_blockNumber"))
            raise MirrorResetError(
                f"the node's chain (head {head}) no longer holds the deployment at block "
                f"{self.book.deploy_block} the projection (at block {last}) was built from"
            )
        log.warning("mirror: reorg; rolling back from block %d to block %d", last, fork)
        self.rollback_to(fork)
        self._tell(fork)
        return 1

    def _tell(self, fork: int | None) -> None:
        if self.on_reorg is None:
            return
        try:
            self.on_reorg(fork)
        except Exception:  # a listener's failure is not the mirror's
            log.exception("mirror: the reorg listener failed")

    def rollback_to(self, block: int) -> None:
        """Forget everything above ``block`` and recompute the projection from SQL."""
        with self.engine.begin() as conn:
            self._lock_cursor(conn)
            removed = conn.execute(
                delete(_events).where(
                    _events.c.chain_id == self.chain_id, _events.c.block_number > block
                )
            ).rowcount
            conn.execute(
                delete(_headers).where(
                    _headers.c.chain_id == self.chain_id, _headers.c.number > block
                )
            )
            conn.execute(
                update(_cursors)
                .where(_cursors.c.chain_id == self.chain_id)
                .values(last_block=block, updated_at=utcnow())
            )
            if removed:
                self.reproject(conn)

    def reproject(self, conn: Connection) -> int:
        """Truncate the projection and re-apply every stored raw event, in chain order."""
        self._truncate_projection(conn)
        return self._project(conn, self._stored_events(conn), store_raw=False)

    def _stored_events(self, conn: Connection) -> Iterator[list[Event]]:
        after: tuple[int, int] = (-1, -1)
        c = _events.c
        while True:
            rows = conn.execute(
                select(
                    c.block_number,
                    c.block_hash,
                    c.block_time,
                    c.tx_hash,
                    c.tx_index,
                    c.log_index,
                    c.address,
                    c.contract,
                    c.event,
                    c.args,
                )
                .where(
                    c.chain_id == self.chain_id,
                    (c.block_number > after[0])
                    | ((c.block_number == after[0]) & (c.log_index > after[1])),
                )
                .order_by(c.block_number, c.log_index)
                .limit(REPLAY_PAGE)
            ).all()
            if not rows:
                return
            yield [
                Event(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], json.loads(r[9]))
                for r in rows
            ]
            after = (rows[-1][0], rows[-1][5])

    def _truncate_projection(self, conn: Connection) -> None:
        for model in PROJECTION_MODELS:
            conn.execute(delete(model.__table__))  # type: ignore[attr-defined]

    def event_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(_events)
                    .where(_events.c.chain_id == self.chain_id)
                ).scalar_one()
            )


def clear_mirror(conn: Connection) -> None:
    """Delete the projection, raw events, headers and cursors, in ``conn``'s transaction
    (``Mirror.clear``; and when the database moves to another chain instance)."""
    for model in PROJECTION_MODELS:
        conn.execute(delete(model.__table__))  # type: ignore[attr-defined]
    conn.execute(delete(_events))
    conn.execute(delete(_headers))
    conn.execute(delete(_cursors))


def follow_in_thread(
    runtime: Any,
    stop: threading.Event,
    *,
    on_reorg: ReorgListener | None = None,
    wake: threading.Event | None = None,
) -> threading.Thread:
    """Run the mirror's follow loop in a daemon thread (used by ``konbit run``); ``wake``
    cuts its pause short (see :meth:`Mirror.follow`)."""

    def run() -> None:
        while not stop.is_set():
            try:
                mirror = Mirror.from_runtime(runtime, on_reorg=on_reorg)
            except Exception as exc:  # nothing deployed yet, chain down: try again later
                log.info("mirror not started yet: %s", exc)
                stop.wait(runtime.settings.mirror_poll_seconds * 5)
                continue
            try:
                mirror.follow(stop, runtime.settings.mirror_poll_seconds, wake=wake)
            except MirrorResetError as exc:
                log.error("mirror stopped: %s", exc)
                return

    thread = threading.Thread(target=run, name="mirror", daemon=True)
    thread.start()
    return thread
