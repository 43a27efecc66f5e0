"""Reading the private profiles (writes go through :mod:`konbit.services`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from konbit.profiles.models import OrganisationProfile
from konbit.vault.models import CustodialAccount


def organisation_rows(engine: Engine) -> list[dict[str, Any]]:
    """Every onboarded organisation with its role and whether Konbit holds its key."""
    with Session(engine) as session:
        custodial = set(session.exec(select(CustodialAccount.address)).all())
        rows = session.exec(
            select(OrganisationProfile).order_by(col(OrganisationProfile.created_at))
        ).all()
    return [
        {
            "address": r.address,
            "name": r.display_name,
            "role": r.kind,
            "contact": r.contact,
            "custodial": r.address in custodial,
        }
        for r in rows
    ]
