"""The real backend of conversations and USSD: the mirror for reads, the services for writes.

Agents act for their cooperative: a lot is recorded with ``konbit.services.lots.record_lot``
and the cooperative as the actor, under an idempotency key derived from the provider's
message id (or the USSD session), so a retried webhook records the lot once.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from konbit.access.keys import Actor
from konbit.mirror.models import Farmer, Lot, OrderStatus, SaleOrder
from konbit.outbox.models import OutboxTx, TxStatus
from konbit.profiles import codes
from konbit.profiles.agents import AgentProfile
from konbit.profiles.models import FarmerProfile, utcnow
from konbit.roles import Role
from konbit.runtime import Runtime
from konbit.services import agents, lots, receipts, writes
from konbit.services.actors import holds_role
from konbit.services.errors import (
    ChainUnavailable,
    ContractRefused,
    ServiceError,
)
from konbit.services.lots import LotInput
from konbit.sms.conversation import (
    AgentRef,
    FarmerLookup,
    FarmerRef,
    LotRequest,
    LotView,
    OrderView,
    Party,
    PaymentView,
    ReceiptView,
    RecordOutcome,
)
from konbit.sms.messages import Lang, lang_of
from konbit.sms.models import SmsPendingLot, UssdSessionRow
from konbit.sms.ussd import UssdSession

log = logging.getLogger(__name__)

OPEN_ORDERS = (OrderStatus.PROPOSED, OrderStatus.ACCEPTED, OrderStatus.FUNDED)

# The queries of every SMS, built once: building a statement costs more than running it.
_farmers = FarmerProfile.__table__.c  # type: ignore[attr-defined]
_agents = AgentProfile.__table__.c  # type: ignore[attr-defined]
_lots = Lot.__table__.c  # type: ignore[attr-defined]
_FARMER_BY_PHONE = (
    sa.select(_farmers.address, _farmers.cooperative, _farmers.name, _farmers.language)
    .where(_farmers.phone == sa.bindparam("phone"))
    .limit(1)
)
_AGENT_BY_PHONE = (
    sa.select(_agents.id, _agents.cooperative, _agents.name, _agents.language)
    .where(_agents.phone == sa.bindparam("phone"), _agents.active, _agents.id.is_not(None))
    .limit(1)
)
_LOT_COLUMNS = (
    _lots.lot_id,
    _lots.crop,
    _lots.grams,
    _lots.grade,
    _lots.harvest_time,
    _lots.status,
    _lots.inspection,
    _lots.consignment_id,
    _lots.paid_amount,
)
_LOTS_OF = (
    sa.select(*_LOT_COLUMNS)
    .where(_lots.farmer == sa.bindparam("farmer"))
    .order_by(_lots.lot_id.desc())
    .limit(sa.bindparam("limit"))
)
_LOT_COUNT_OF = sa.select(sa.func.count()).where(_lots.farmer == sa.bindparam("farmer"))


class Gateway:
    """Reads and writes of the SMS and USSD channels for one runtime."""

    def __init__(self, runtime: Runtime, *, mirror_running: bool = True) -> None:
        self.runtime = runtime
        self.engine = runtime.engine
        self.mirror_running = mirror_running

    # ---------------------------------------------------------------- who is speaking

    def identify(self, phone: str | None) -> Party:
        if phone is None:
            return Party(phone="")
        # Every SMS and USSD step asks this first: prepared statements, one connection.
        with self.engine.connect() as connection:
            profile = connection.execute(_FARMER_BY_PHONE, {"phone": phone}).first()
            agent = connection.execute(_AGENT_BY_PHONE, {"phone": phone}).first()
        farmer = (
            FarmerRef(
                address=profile.address,
                cooperative=profile.cooperative,
                name=profile.name,
                language=lang_of(profile.language),
            )
            if profile is not None
            else None
        )
        agent_ref = (
            AgentRef(
                id=agent.id,
                cooperative=agent.cooperative,
                name=agent.name,
                language=lang_of(agent.language),
            )
            if agent is not None
            else None
        )
        return Party(phone=phone, farmer=farmer, agent=agent_ref)

    # ---------------------------------------------------------------- reads

    @staticmethod
    def _lot_view(lot: Any) -> LotView:
        """A lot's view from a :class:`Lot` or a row with its columns."""
        return LotView(
            lot_id=lot.lot_id,
            crop=lot.crop,
            grams=int(lot.grams),
            grade=lot.grade,
            harvest_time=lot.harvest_time,
            status=lot.status,
            inspection=lot.inspection,
            consignment_id=lot.consignment_id,
            paid_amount=int(lot.paid_amount or 0),
        )

    def lots(self, farmer: str, limit: int) -> tuple[list[LotView], int]:
        with self.engine.connect() as connection:
            rows = connection.execute(_LOTS_OF, {"farmer": farmer, "limit": limit}).all()
            total = connection.execute(_LOT_COUNT_OF, {"farmer": farmer}).scalar_one()
        return [self._lot_view(r) for r in rows], int(total)

    def lot(self, farmer: str, lot_id: int) -> LotView | None:
        if not 1 <= lot_id < 2**63:
            return None
        with Session(self.engine) as session:
            row = session.get(Lot, lot_id)
        if row is None or row.farmer.lower() != farmer.lower():
            return None
        return self._lot_view(row)

    def payments(self, farmer: str) -> list[PaymentView]:
        return [
            PaymentView(order_id=r.order_id, net=r.net, code=r.code)
            for r in receipts.farmer_receipts(self.runtime, farmer, limit=10)
        ]

    def orders(self, cooperative: str | None) -> list[OrderView]:
        if cooperative is None:
            return []
        with Session(self.engine) as session:
            rows = session.exec(
                select(SaleOrder)
                .where(SaleOrder.cooperative == cooperative, col(SaleOrder.status).in_(OPEN_ORDERS))
                .order_by(col(SaleOrder.order_id).desc())
                .limit(5)
            ).all()
        return [
            OrderView(
                order_id=r.order_id,
                crop=r.crop,
                price_per_kg=int(r.price_per_kg),
                grams=int(r.grams),
            )
            for r in rows
        ]

    def receipt(self, code: str) -> ReceiptView | None:
        found = receipts.check(self.runtime, code)
        if found is None:
            return None
        return ReceiptView(
            code=found.receipt.code,
            order_id=found.receipt.order_id,
            net=found.receipt.net,
            on_chain=found.on_chain,
        )

    def farmer_code(self, address: str) -> str:
        with Session(self.engine) as session:
            return codes.code_for(session, address)

    def find_farmer(self, cooperative: str, code: str) -> FarmerLookup:
        with Session(self.engine) as session:
            address = codes.address_for(session, code)
            if address is None:
                return FarmerLookup("bad_code")
            profile = session.get(FarmerProfile, address)
            member = session.get(Farmer, address)
        coop = (member.cooperative if member is not None else None) or (
            profile.cooperative if profile is not None else None
        )
        if coop is None or coop.lower() != cooperative.lower() or (member and not member.active):
            return FarmerLookup("not_member")
        return FarmerLookup(
            "ok",
            FarmerRef(
                address=address,
                cooperative=coop,
                name=profile.name if profile is not None else code,
                language=lang_of(profile.language if profile is not None else None),
            ),
        )

    # ---------------------------------------------------------------- writes

    def set_language(self, party: Party, lang: Lang) -> None:
        with Session(self.engine) as session:
            if party.farmer is not None:
                profile = session.get(FarmerProfile, party.farmer.address)
                if profile is not None:
                    profile.language = lang
                    profile.updated_at = utcnow()
                    session.add(profile)
            if party.agent is not None:
                agent = session.get(AgentProfile, party.agent.id)
                if agent is not None:
                    agent.language = lang
                    agent.updated_at = utcnow()
                    session.add(agent)
            session.commit()

    def check_pin(self, agent: AgentRef, pin: str) -> agents.PinCheck:
        return agents.check_pin(self.runtime, agent.id, pin)

    def record_lot(self, request: LotRequest) -> RecordOutcome:
        actor = Actor(organisation=request.agent.cooperative, role=Role.COOPERATIVE)
        if not holds_role(self.runtime, actor):  # the operator deactivated the cooperative
            return RecordOutcome("refused", reason="cooperative deactivated")
        lot = LotInput(
            farmer=request.farmer.address,
            crop=request.crop,
            grams=request.grams,
            grade=request.grade,
            harvest_time=int(time.time()),
        )
        try:
            outcome = lots.record_lot(
                self.runtime, actor, lot, idempotency_key=request.idempotency_key[:100]
            )
            rows = writes.wait_final(
                self.runtime,
                outcome.transactions,
                timeout=self.runtime.settings.sms_write_wait_seconds,
                mirror_running=self.mirror_running,
            )
        except ContractRefused as exc:
            return RecordOutcome("refused", reason=exc.error)
        except ChainUnavailable:
            return RecordOutcome("unavailable")
        except ServiceError as exc:
            return RecordOutcome("refused", reason=exc.code)
        except Exception:  # the node or database failing mid-way: the agent tries again
            log.exception("recording a lot by SMS failed")
            return RecordOutcome("unavailable")
        lot_id = self._lot_id(rows)
        if lot_id is not None:
            return RecordOutcome("recorded", lot_id=lot_id)
        for row in rows:  # not mined yet: the notifier sends the number when it is
            if row.id is None:
                continue
            with Session(self.engine) as session:
                session.add(
                    SmsPendingLot(
                        outbox_tx_id=row.id,
                        phone=self._agent_phone(request.agent),
                        language=request.agent.language,
                        farmer_code=request.farmer_code[:12],
                    )
                )
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
        return RecordOutcome("pending")

    def _agent_phone(self, agent: AgentRef) -> str:
        with Session(self.engine) as session:
            row = session.get(AgentProfile, agent.id)
        return row.phone if row is not None else ""

    def _lot_id(self, rows: list[OutboxTx]) -> int | None:
        hashes = [r.tx_hash for r in rows if r.status == TxStatus.MINED and r.tx_hash]
        if len(hashes) != len(rows) or not hashes:
            return None
        try:
            events = writes.events_of(self.runtime, hashes)
        except Exception:
            return None
        for event in events:
            if event["event"] == "LotRecorded":
                return int(event["args"]["lotId"])
        return None


class SqlSessionStore:
    """USSD sessions in ``ussd_session``."""

    def __init__(self, runtime: Runtime, provider: str) -> None:
        self.engine = runtime.engine
        self.provider = provider

    @staticmethod
    def _session(row: UssdSessionRow) -> UssdSession:
        return UssdSession(
            session_id=row.session_id,
            phone=row.phone,
            state=json.loads(row.state),
            consumed=row.consumed,
            last_text=row.last_text,
            last_reply=row.last_reply,
            ended=row.ended,
            updated=row.updated_epoch,
        )

    def load(self, session_id: str) -> UssdSession | None:
        with Session(self.engine) as session:
            row = session.get(UssdSessionRow, session_id)
        return None if row is None else self._session(row)

    def save(self, value: UssdSession) -> None:
        with Session(self.engine) as session:
            row = session.get(UssdSessionRow, value.session_id)
            if row is None:
                row = UssdSessionRow(
                    session_id=value.session_id,
                    provider=self.provider,
                    phone=value.phone,
                    state="{}",
                    updated_epoch=value.updated,
                )
            row.state = json.dumps(value.state)
            row.consumed = value.consumed
            row.last_text = value.last_text
            row.last_reply = value.last_reply
            row.ended = value.ended
            row.updated_epoch = value.updated
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # the same session saved concurrently: keep the first
                session.rollback()

    def resumable(self, phone: str, since: float, exclude: str) -> UssdSession | None:
        with Session(self.engine) as session:
            row = session.exec(
                select(UssdSessionRow)
                .where(
                    UssdSessionRow.phone == phone,
                    UssdSessionRow.session_id != exclude,
                    col(UssdSessionRow.ended).is_(False),
                    UssdSessionRow.updated_epoch >= since,
                )
                .order_by(col(UssdSessionRow.updated_epoch).desc())
                .limit(1)
            ).first()
        return None if row is None else self._session(row)
