"""The pages' pure parts: languages, the trace URL negotiation, the SVG pictures."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from starlette.datastructures import FormData

from konbit.services.errors import InvalidInput
from konbit.web import dashboards, i18n, svg
from konbit.web.rendering import area
from konbit.web.trace import wants_html


def test_catalogue_has_three_languages_with_the_same_placeholders() -> None:
    import string

    for key, texts in i18n.CATALOGUE.items():
        assert len(texts) == 3 and all(texts), key
        fields = [{f for _, f, _, _ in string.Formatter().parse(t) if f} for t in texts]
        assert fields[0] == fields[1] == fields[2], key


def test_every_status_a_page_shows_has_words_in_each_language() -> None:
    from konbit.mirror.models import (
        AdvanceStatus,
        ConsignmentStatus,
        JobStatus,
        OfferStatus,
        OrderStatus,
    )

    for enum in (OrderStatus, ConsignmentStatus, AdvanceStatus, OfferStatus):
        for member in enum:
            assert f"st_{member.name.lower()}" in i18n.CATALOGUE, member
    for member in JobStatus:
        assert f"st_job_{member.name.lower()}" in i18n.CATALOGUE, member
    for bid in ("active", "withdrawn", "accepted"):  # a bid's status is its text
        assert f"st_{bid}" in i18n.CATALOGUE, bid
    assert i18n.status("fr", "IN_TRANSIT", "job") == "en route"
    assert i18n.status("fr", "SETTLED") == "réglée"
    assert i18n.status("en", "REQUEST_OPEN") == "request open"
    assert i18n.status("ht", "SOMETHING_NEW") == "something new"  # never a KeyError


def test_every_role_has_words_in_each_language() -> None:
    from konbit.roles import Role

    for role in Role:
        assert f"role_{role.value}" in i18n.CATALOGUE, role
    assert i18n.role("fr", "logistics") == "transporteur"


def test_language_negotiation() -> None:
    assert i18n.negotiate("ht", "fr", "en") == "ht"
    assert i18n.negotiate(None, "fr", "en") == "fr"
    assert i18n.negotiate(None, None, "de-DE,fr;q=0.8,en;q=0.5") == "fr"
    assert i18n.negotiate(None, None, "ht-HT") == "ht"
    assert i18n.negotiate(None, None, "de") == i18n.DEFAULT
    assert i18n.negotiate("xx", None, None) == i18n.DEFAULT


def test_browsers_get_html_and_json_clients_json() -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert wants_html(browser)
    assert not wants_html("application/json")
    assert not wants_html("*/*")
    assert not wants_html("")
    assert not wants_html("application/json, text/html;q=0.5")


def test_money_and_area() -> None:
    assert i18n.money(1_234_560_000, "en") == "$1,234.56"
    assert area("0x6437ns35") == ""  # not hex: nothing rather than garbage
    assert area("0x" + b"d7ns5".hex()) == "d7ns5"
    assert area("d7ns5qzk") == "d7ns5"


def test_pictures_are_well_formed_svg() -> None:
    parts = [svg.Bar("Farmers <&>", 600, "$600"), svg.Bar("Transport", 40, "$40")]
    for picture in (
        svg.waterfall("Where", "Sale", "$640", parts),
        svg.bars("Payouts", parts),
        svg.timeline("Timeline", [svg.Step(1, "Handed over", "t1"), svg.Step(5, "Received", "t2")]),
        svg.bars("Empty", []),
    ):
        root = ET.fromstring(picture)
        assert root.get("role") == "img"
        assert root.find("{http://www.w3.org/2000/svg}title") is not None


@pytest.mark.parametrize(
    ("typed", "places", "exact"),
    [
        ("12.5", 6, 12_500_000),
        ("12,5", 6, 12_500_000),
        ("1 250,5", 3, 1_250_500),
        ("1\u202f250", 3, 1_250_000),
        ("0.000001", 6, 1),
        ("7.100000000", 6, 7_100_000),
        ("42", 0, 42),
        ("99999999999999999999", 6, 99_999_999_999_999_999_999 * 10**6),
    ],
)
def test_a_number_typed_on_a_form_is_exact(typed: str, places: int, exact: int) -> None:
    form = FormData([("amount", typed)])
    assert dashboards._decimal(form, "amount", places) == exact


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "abc",
        "-5",
        "1e999999",
        "1e5",
        "NaN",
        "Infinity",
        "sNaN",
        "1_000",
        "\u0663",
        "1.2.3",
        "0.0000001",
        "1,250.50",
        "9" * 31,
    ],
)
def test_a_number_a_form_cannot_take_is_a_422_naming_the_field(typed: str) -> None:
    """Before, "1e999999" overflowed Decimal (an uncaught decimal.Overflow: a 500)."""
    with pytest.raises(InvalidInput) as refused:
        dashboards._decimal(FormData([("amount", typed)]), "amount", 6)
    assert refused.value.field == "amount"
