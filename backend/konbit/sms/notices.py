"""Notices from mirrored events, each sent exactly once, in the reader's language.

The notifier reads ``chain_event`` (the mirror's raw events, committed with the
projection) after its cursor and turns events into SMS:

=======================  ===========================================  ======================
event                    notice                                       to
=======================  ===========================================  ======================
FarmerEnrolled           welcome, with the farmer's code              the farmer
LotRecorded              lot recorded (id, kg, crop, grade, date)     the farmer; the agent
                                                                      whose reply said
                                                                      "pending"
LotInspected             inspection passed or failed                  the lot's farmer
AdvanceDisbursed         advance received on an order                 the cooperative's
                                                                      agents
OrderStatusChanged       payout receipt: sale value, each deduction,  each farmer paid
(Settled)                net, receipt code                            by the settlement
=======================  ===========================================  ======================

Exactly once: each notice has a key (``lot:12``, ``receipt:3:0xFarmer``, ...); the key's
row in ``sms_notice`` and the message in ``sms_outbound`` commit in one transaction, and
the cursor moves in the same one. A restart resumes at the cursor; an event seen twice
(after a reorg rewinds the cursor, or by a second backend on the same database) finds its
key and sends nothing. Events older than a week of chain time when first seen (a database
that had history before the gateway) are skipped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from konbit.mirror.models import BlockHeader, ChainEvent, Lot, MirrorCursor, OrderStatus
from konbit.outbox.models import OutboxTx
from konbit.profiles import codes
from konbit.profiles.agents import AgentProfile
from konbit.profiles.models import FarmerProfile, utcnow
from konbit.runtime import Runtime
from konbit.services import receipts
from konbit.sms.messages import crop_name, day, kilograms, lang_of, money, t
from konbit.sms.models import SmsCursor, SmsNotice, SmsPendingLot
from konbit.sms.outbound import Message, enqueue_many

log = logging.getLogger(__name__)

CURSOR = "notices"
EVENTS = ("FarmerEnrolled", "LotRecorded", "LotInspected", "AdvanceDisbursed", "OrderStatusChanged")
BATCH = 200
MAX_AGE_SECONDS = 7 * 86_400
REORG_REWIND = 256


@dataclass
class Prefetched:
    """What a batch's LotRecorded notices need, read in two queries (see _prefetch)."""

    #: Farmers by address. Held here: the session's identity map keeps only weak
    #: references, and a later ``session.get`` would ask the database again.
    farmers: dict[str, FarmerProfile] = field(default_factory=dict)
    #: Agents told "pending" (see SmsPendingLot), by the hash of their lot's transaction.
    waiting: dict[str, list[SmsPendingLot]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class Notice:
    key: str
    phone: str
    text: str
    language: str
    kind: str


class Notifier:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine = runtime.engine

    # ---------------------------------------------------------------- loop

    def run(self, stop: threading.Event, poll_seconds: float = 0.3) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("SMS notices round failed")
                busy = 0
            if not busy:
                stop.wait(poll_seconds)

    def run_once(self) -> int:
        """Process the next batch of events; returns how many events were read."""
        with Session(self.engine) as session:
            cursor = self._cursor(session)
            events = session.exec(
                select(ChainEvent)
                .where(col(ChainEvent.event).in_(EVENTS))
                .where(
                    (col(ChainEvent.block_number) > cursor.block_number)
                    | (
                        (col(ChainEvent.block_number) == cursor.block_number)
                        & (col(ChainEvent.log_index) > cursor.log_index)
                    )
                )
                .order_by(col(ChainEvent.block_number), col(ChainEvent.log_index))
                .limit(BATCH)
            ).all()
            if not events:
                return 0
            newest = self._newest_time(session)
            # Read everything first, then write: the database's writer lock is taken by the
            # first write and held until the commit, and every other writer (the API's, the
            # SMS replies', the outbox's) waits meanwhile. Moving the cursor before the
            # reads made the session flush it at the first of them (measured: the lock held
            # ~100 ms per batch under load).
            planned: list[Notice] = []
            prefetched = self._prefetch(session, events)
            for event in events:
                fresh = (
                    event.block_time is None
                    or newest is None
                    or newest - event.block_time <= MAX_AGE_SECONDS
                )
                if not fresh:
                    continue
                try:
                    planned.extend(self.notices(session, event, prefetched))
                except Exception:
                    log.exception("notice for %s %s failed", event.event, event.tx_hash)
            keys = {notice.key for notice in planned}
            done = set(
                session.exec(
                    select(SmsNotice.key).where(col(SmsNotice.key).in_(sorted(keys)))
                ).all()
                if keys
                else ()
            )
            new: list[Notice] = []
            for notice in planned:
                if notice.key not in done:
                    done.add(notice.key)
                    new.append(notice)
            self._send_all(session, new)
            last = events[-1]
            cursor.block_number = last.block_number
            cursor.log_index = last.log_index
            cursor.block_hash = last.block_hash
            cursor.updated_at = utcnow()
            session.add(cursor)
            session.commit()
            return len(events)

    def _cursor(self, session: Session) -> SmsCursor:
        cursor = session.get(SmsCursor, CURSOR)
        if cursor is None:
            cursor = SmsCursor(name=CURSOR, block_number=-1, log_index=-1)
            session.add(cursor)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                found = session.get(SmsCursor, CURSOR)
                assert found is not None
                return found
            return cursor
        # A reorg replaced the cursor's block: go back and let the keys drop repeats.
        if cursor.block_hash is not None and cursor.block_number >= 0:
            header = session.exec(
                select(BlockHeader.hash).where(BlockHeader.number == cursor.block_number)
            ).first()
            mirrored = session.exec(select(MirrorCursor.last_block)).first()
            replaced = header is not None and header != cursor.block_hash
            rolled_back = mirrored is not None and mirrored < cursor.block_number
            if replaced or rolled_back:
                cursor.block_number = max(-1, cursor.block_number - REORG_REWIND)
                cursor.log_index = -1
                cursor.block_hash = None
        return cursor

    @staticmethod
    def _newest_time(session: Session) -> int | None:
        return session.exec(
            select(ChainEvent.block_time)
            .where(col(ChainEvent.block_time).is_not(None))
            .order_by(col(ChainEvent.block_number).desc())
            .limit(1)
        ).first()

    def _send_all(self, session: Session, notices: list[Notice]) -> None:
        """Queue ``notices`` with their keys: in one flush (a savepoint per notice cost
        more than the rest of the batch: ~1.3 ms of CPU per lot recorded, measured under
        ``bench/api_load.py``); one at a time only when a key is taken meanwhile."""
        if notices and not self._queue(session, notices):
            for notice in notices:
                self._queue(session, [notice])

    @staticmethod
    def _queue(session: Session, notices: list[Notice]) -> bool:
        """Queue ``notices`` and their keys in a savepoint; False, and nothing queued, when
        another backend took one of the keys first."""
        nested = session.begin_nested()
        try:
            ids = enqueue_many(
                session, [Message(n.phone, n.text, n.language, n.kind, n.key) for n in notices]
            )
            now = utcnow()
            session.execute(
                insert(SmsNotice.__table__),  # type: ignore[attr-defined]
                [
                    {"key": n.key, "phone": n.phone, "outbound_id": i, "created_at": now}
                    for n, i in zip(notices, ids, strict=True)
                ],
            )
            nested.commit()
            return True
        except IntegrityError:
            nested.rollback()
            return False

    # ---------------------------------------------------------------- events -> notices

    def _prefetch(self, session: Session, events: Sequence[ChainEvent]) -> Prefetched:
        """What the batch's lots need, in two queries instead of three per lot (measured:
        ~1 ms of CPU per lot under ``bench/api_load.py``): their farmers, and the agents
        told "pending" by the hash of each lot's transaction."""
        found = Prefetched()
        recorded = [e for e in events if e.event == "LotRecorded"]
        if not recorded:
            return found
        addresses = sorted({str(json.loads(e.args).get("farmer")) for e in recorded})
        found.farmers = {
            f.address: f
            for f in session.exec(
                select(FarmerProfile).where(col(FarmerProfile.address).in_(addresses))
            ).all()
        }
        hashes = sorted({e.tx_hash for e in recorded})
        for tx_hash, pending in session.exec(
            select(OutboxTx.tx_hash, SmsPendingLot)
            .join(SmsPendingLot, col(SmsPendingLot.outbox_tx_id) == col(OutboxTx.id))
            .where(col(OutboxTx.tx_hash).in_(hashes))
            .order_by(col(OutboxTx.id))
        ).all():
            found.waiting[str(tx_hash)].append(pending)
        return found

    def notices(
        self, session: Session, event: ChainEvent, prefetched: Prefetched
    ) -> Iterator[Notice]:
        args: dict[str, Any] = json.loads(event.args)
        if event.event == "FarmerEnrolled":
            yield from self._welcome(session, args)
        elif event.event == "LotRecorded":
            yield from self._lot_recorded(event, args, prefetched)
        elif event.event == "LotInspected":
            yield from self._inspected(session, event, args)
        elif event.event == "AdvanceDisbursed":
            yield from self._advance(session, args)
        elif event.event == "OrderStatusChanged" and int(args["status"]) == OrderStatus.SETTLED:
            yield from self._receipts(session, int(args["orderId"]))

    @staticmethod
    def _farmer(session: Session, address: str) -> FarmerProfile | None:
        profile = session.get(FarmerProfile, address)
        return profile if profile is not None and profile.phone else None

    def _welcome(self, session: Session, args: dict[str, Any]) -> Iterator[Notice]:
        profile = self._farmer(session, args["farmer"])
        if profile is None or profile.phone is None:
            return
        key = f"welcome:{profile.address}"
        if session.get(SmsNotice, key) is not None:
            return
        # In a transaction of its own (giving a code is idempotent): the notices are
        # gathered before the batch writes anything (see run_once).
        with Session(self.engine) as own:
            code = codes.code_for(own, profile.address)
        lang = lang_of(profile.language)
        yield Notice(key, profile.phone, t("notice_welcome", lang, code=code), lang, "welcome")

    def _lot_recorded(
        self, event: ChainEvent, args: dict[str, Any], prefetched: Prefetched
    ) -> Iterator[Notice]:
        lot_id = int(args["lotId"])
        values = {
            "lot": lot_id,
            "grams": int(args["grams"]),
            "crop": int(args["crop"]),
            "grade": int(args["grade"]),
        }
        profile = prefetched.farmers.get(args["farmer"])
        if profile is not None and profile.phone:
            lang = lang_of(profile.language)
            text = t(
                "notice_lot_recorded",
                lang,
                lot=lot_id,
                kg=kilograms(values["grams"], lang),
                crop=crop_name(values["crop"], lang),
                grade=values["grade"],
                date=day(int(args["harvestTime"]), lang),
            )
            yield Notice(f"lot:{lot_id}", profile.phone, text, lang, "notice_lot")
        # The agent whose reply said "pending" gets the lot's number now.
        for pending in prefetched.waiting.get(event.tx_hash, []):
            lang = lang_of(pending.language)
            text = t(
                "lot_recorded_agent",
                lang,
                lot=lot_id,
                kg=kilograms(values["grams"], lang),
                crop=crop_name(values["crop"], lang),
                grade=values["grade"],
                code=pending.farmer_code,
            )
            yield Notice(f"agent-lot:{lot_id}", pending.phone, text, lang, "agent_lot")

    def _inspected(
        self, session: Session, event: ChainEvent, args: dict[str, Any]
    ) -> Iterator[Notice]:
        lot = session.get(Lot, int(args["lotId"]))
        if lot is None:
            return
        profile = self._farmer(session, lot.farmer)
        if profile is None or profile.phone is None:
            return
        lang = lang_of(profile.language)
        key = "notice_inspection_passed" if args["passed"] else "notice_inspection_failed"
        text = t(key, lang, lot=lot.lot_id, grade=int(args["grade"]))
        yield Notice(
            f"inspection:{event.tx_hash}:{event.log_index}", profile.phone, text, lang, "inspection"
        )

    def _advance(self, session: Session, args: dict[str, Any]) -> Iterator[Notice]:
        agents = session.exec(
            select(AgentProfile).where(
                AgentProfile.cooperative == args["cooperative"], AgentProfile.active
            )
        ).all()
        for agent in agents:
            lang = lang_of(agent.language)
            text = t(
                "notice_advance",
                lang,
                amount=money(int(args["amount"]), lang),
                order=int(args["orderId"]),
            )
            yield Notice(
                f"advance:{int(args['advanceId'])}:{agent.phone}",
                agent.phone,
                text,
                lang,
                "advance",
            )

    def _receipts(self, session: Session, order_id: int) -> Iterator[Notice]:
        for receipt in receipts.receipts_for_order(self.runtime, order_id):
            profile = self._farmer(session, receipt.farmer)
            if profile is None or profile.phone is None:
                continue
            lang = lang_of(profile.language)
            yield Notice(
                f"receipt:{order_id}:{receipt.farmer}",
                profile.phone,
                receipt_text(receipt, lang),
                lang,
                "receipt",
            )


def receipt_text(receipt: receipts.Receipt, lang: str) -> str:
    reader = lang_of(lang)
    lots = ", ".join(f"#{lot.lot_id}" for lot in receipt.lots[:6])
    if len(receipt.lots) > 6:
        lots += ", ..."
    return t(
        "notice_receipt",
        reader,
        code=receipt.code,
        order=receipt.order_id,
        lots=lots,
        kg=kilograms(receipt.grams, reader),
        sale=money(receipt.sale, reader),
        advance=money(receipt.advance, reader),
        transport=money(receipt.transport, reader),
        fee=money(receipt.cooperative_fee, reader),
        net=money(receipt.net, reader),
    )
