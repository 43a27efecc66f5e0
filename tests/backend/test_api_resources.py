"""The read models follow the mirror's tables: every column, named statuses, text geohashes,
exact integers at any size."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlmodel import Session, SQLModel, create_engine

from konbit.api import resources
from konbit.api.reads import column_rows_page
from konbit.api.resources import LotOut, OfferOut, OrderOut, Row
from konbit.mirror.models import AdvanceOffer, Lot, SaleOrder
from konbit.services.validate import area_bytes as geohash_bytes


def row_models() -> list[type[Row]]:
    found = [
        v
        for v in vars(resources).values()
        if isinstance(v, type) and issubclass(v, Row) and v is not Row
    ]
    return sorted(found, key=lambda m: m.__name__)


@pytest.mark.parametrize("model", row_models(), ids=lambda m: m.__name__)
def test_every_column_is_a_field_in_table_order(model: type[Row]) -> None:
    table = model.table_model
    assert table is not None
    names = [model.table_renames.get(c, c) for c in model.table_columns]
    fields = list(model.model_fields)
    assert fields[: len(names)] == names, "the table's columns come first, in its order"
    assert set(model.table_columns) <= set(table.model_fields)
    schema = model.model_json_schema()
    assert set(schema["required"]) == set(fields), "every field is always in the answer"


def lot(**changes: object) -> Lot:
    values: dict[str, object] = {
        "lot_id": 7,
        "farmer": "0x" + "11" * 20,
        "cooperative": "0x" + "22" * 20,
        "crop": 1,
        "grams": 2**256 - 1,
        "grade": 3,
        "harvest_time": 1_700_000_000,
        "plot_geohash": geohash_bytes("d7q8c"),
        "evidence_hash": "0x" + "00" * 32,
        "status": 1,
        "inspection": 2,
        "paid_amount": 10**40 + 1,
        "created_block": 1,
        "updated_block": 2,
    }
    return Lot.model_validate({**values, **changes})


def test_a_lot_reads_with_names_text_and_exact_integers() -> None:
    out = LotOut.of(lot())
    body = json.loads(out.model_dump_json())
    assert body["plot_geohash"] == "d7q8c"
    assert (body["status"], body["inspection"]) == ("active", "failed")
    assert body["grams"] == 2**256 - 1 and body["paid_amount"] == 10**40 + 1
    assert str(2**256 - 1) in out.model_dump_json()
    assert LotOut.of(lot(plot_geohash=geohash_bytes(None))).plot_geohash is None
    schema = LotOut.model_json_schema()["properties"]
    assert schema["status"]["enum"] == ["active", "split", "rejected"]
    assert schema["grams"]["type"] == "integer" and "grams" in schema["grams"]["description"]


def test_the_request_id_reads_as_advance_id() -> None:
    offer = AdvanceOffer(
        offer_id=3,
        request_id=9,
        financier="0x" + "33" * 20,
        order_id=1,
        amount=5,
        fee=1,
        expiry=2,
        status=3,
        created_block=1,
        updated_block=1,
    )
    body = OfferOut.of(offer).model_dump()
    assert body["advance_id"] == 9 and "request_id" not in body
    assert body["status"] == "accepted"


def test_rejected_lots_read_as_a_list() -> None:
    order = SaleOrder.model_validate(
        {
            "order_id": 1,
            "exporter": "0x" + "44" * 20,
            "cooperative": "0x" + "22" * 20,
            "token": "0x" + "55" * 20,
            "crop": 1,
            "grams": 1_000,
            "price_per_kg": 2,
            "min_grade": 0,
            "delivery_deadline": 1,
            "coop_fee_bps": 0,
            "deposit": 2,
            "status": 5,
            "rejected_lots": "[3, 4]",
            "created_block": 1,
            "updated_block": 1,
        }
    )
    out = OrderOut.of(order)
    assert out.model_dump()["rejected_lots"] == [3, 4]
    assert out.model_dump()["status"] == "delivered"


def test_a_row_of_another_table_is_refused() -> None:
    with pytest.raises(TypeError):
        LotOut.of(AdvanceOffer())


def offer(offer_id: int) -> AdvanceOffer:
    return AdvanceOffer(
        offer_id=offer_id,
        request_id=9,
        financier="0x" + "33" * 20,
        order_id=1,
        amount=5 * offer_id,
        fee=1,
        expiry=2,
        status=1 + offer_id % 3,
        created_block=1,
        updated_block=1,
    )


@pytest.mark.parametrize(
    ("model", "stored", "key"),
    [
        (
            LotOut,
            [
                lot(lot_id=i, plot_geohash=geohash_bytes("d7q8c" * (i % 2) or None))
                for i in range(1, 6)
            ],
            "lot_id",
        ),
        (OfferOut, [offer(i) for i in range(1, 6)], "offer_id"),
    ],
    ids=["lots", "offers"],
)
def test_a_page_of_plain_rows_reads_as_each_row_alone(
    model: type[Row], stored: list[SQLModel], key: str
) -> None:
    """``of_rows`` (by position, a page at a time) answers what ``of`` answers for each row,
    over a real SQLite database and the pages' own query."""
    engine = create_engine("sqlite://")
    table = model.table_model
    assert table is not None
    SQLModel.metadata.create_all(engine, tables=[table.__table__])  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.add_all(stored)
        session.commit()
        rows, _ = column_rows_page(
            session, table, model.table_columns, getattr(table, key), [], after=0, limit=50
        )
        assert len(rows) == 5
        assert model.of_rows(rows) == [model.of(r) for r in rows]
        assert model.of_rows([]) == []
        backwards = (
            session.connection()
            .execute(
                select(*reversed(table.__table__.c)).order_by(getattr(table, key))  # type: ignore[attr-defined]
            )
            .all()
        )
        with pytest.raises(TypeError, match="in that order"):
            model.of_rows(backwards)
