"""A fake backend for the SMS conversation and the USSD machine (pure unit tests and fuzz)."""

from __future__ import annotations

from dataclasses import dataclass, field

from konbit.services.agents import MAX_PIN_FAILURES, PinCheck
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
from konbit.sms.messages import Lang

COOP = "0x" + "C0" * 20
OTHER_COOP = "0x" + "0C" * 20
FARMER = "0x" + "F1" * 20
OUTSIDER = "0x" + "F2" * 20
FARMER_CODE = "10019"  # the first code (running number 1001 + its Damm check digit)
OUTSIDER_CODE = "10024"
PIN = "2468"
RECEIPT = "3-123456"


def farmer(lang: Lang = "ht", name: str = "Jan Pyè") -> FarmerRef:
    return FarmerRef(address=FARMER, cooperative=COOP, name=name, language=lang)


def agent(lang: Lang = "ht") -> AgentRef:
    return AgentRef(id=1, cooperative=COOP, name="Ajan", language=lang)


@dataclass
class FakeBackend:
    lot_count: int = 3
    payment_count: int = 2
    order_count: int = 2
    pin_failures: int = 0
    recorded: list[LotRequest] = field(default_factory=list)
    languages: list[Lang] = field(default_factory=list)
    outcome: str = "recorded"

    def lots(self, farmer: str, limit: int) -> tuple[list[LotView], int]:
        if farmer != FARMER:
            return [], 0
        lots = [
            LotView(
                lot_id=100 - i,
                crop=1 + i % 2,
                grams=250_500 + i * 1000,
                grade=i % 4,
                harvest_time=1_790_000_000 + i * 86_400,
                status=1 + i % 3,
                inspection=i % 3,
                consignment_id=i or None,
                paid_amount=i * 1_250_000,
            )
            for i in range(self.lot_count)
        ]
        return lots[:limit], self.lot_count

    def lot(self, farmer: str, lot_id: int) -> LotView | None:
        lots, _ = self.lots(farmer, 1000)
        return next((lot for lot in lots if lot.lot_id == lot_id), None)

    def payments(self, farmer: str) -> list[PaymentView]:
        if farmer != FARMER:
            return []
        return [
            PaymentView(order_id=i + 1, net=123_450_000 * (i + 1), code=f"{i + 1}-12345{i}")
            for i in range(self.payment_count)
        ]

    def orders(self, cooperative: str | None) -> list[OrderView]:
        if cooperative != COOP:
            return []
        return [
            OrderView(order_id=i + 1, crop=1 + i % 2, price_per_kg=2_500_000, grams=10**6 * (i + 1))
            for i in range(self.order_count)
        ]

    def receipt(self, code: str) -> ReceiptView | None:
        digits = "".join(c for c in code if c.isdigit())
        if digits == RECEIPT.replace("-", ""):
            return ReceiptView(code=RECEIPT, order_id=3, net=98_760_000, on_chain=True)
        if digits == "4654321":
            return ReceiptView(code="4-654321", order_id=4, net=1, on_chain=False)
        return None

    def farmer_code(self, address: str) -> str:
        return FARMER_CODE

    def set_language(self, party: Party, lang: Lang) -> None:
        self.languages.append(lang)

    def find_farmer(self, cooperative: str, code: str) -> FarmerLookup:
        if code == FARMER_CODE and cooperative == COOP:
            return FarmerLookup("ok", farmer())
        if code == OUTSIDER_CODE:
            return FarmerLookup("not_member")
        return FarmerLookup("bad_code")

    def check_pin(self, agent: AgentRef, pin: str) -> PinCheck:
        if self.pin_failures >= MAX_PIN_FAILURES:
            return PinCheck(ok=False, locked=True, tries_left=0)
        if pin == PIN:
            self.pin_failures = 0
            return PinCheck(ok=True, locked=False, tries_left=MAX_PIN_FAILURES)
        self.pin_failures += 1
        left = MAX_PIN_FAILURES - self.pin_failures
        return PinCheck(ok=False, locked=left <= 0, tries_left=left)

    def record_lot(self, request: LotRequest) -> RecordOutcome:
        self.recorded.append(request)
        if self.outcome == "recorded":
            return RecordOutcome("recorded", lot_id=41 + len(self.recorded))
        if self.outcome == "refused":
            return RecordOutcome("refused", reason="FarmerNotMember")
        return RecordOutcome(self.outcome)


PARTIES = {
    "unknown": Party(phone="+50937000999"),
    "farmer_ht": Party(phone="+50937000001", farmer=farmer("ht")),
    "farmer_fr": Party(phone="+50937000002", farmer=farmer("fr")),
    "farmer_en": Party(phone="+50937000003", farmer=farmer("en")),
    "agent_ht": Party(phone="+50937000004", agent=agent("ht")),
    "agent_fr": Party(phone="+50937000005", agent=agent("fr")),
    "agent_en": Party(phone="+50937000006", agent=agent("en")),
    "both": Party(phone="+50937000007", farmer=farmer("en"), agent=agent("en")),
}
