"""``konbit sms ...``, ``konbit ussd`` and ``konbit labels ...``: the gateway from a terminal.

``konbit sms send --from +509... "LOTS"`` and ``konbit ussd --from +509...`` (an interactive
dial) drive the same code as the webhooks (the console provider), against the configured
database and chain; messages the gateway would send go to ``sms_outbound`` (``konbit sms
outbox`` lists them).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from konbit.settings import Settings

if TYPE_CHECKING:
    from konbit.access.keys import Actor
    from konbit.runtime import Runtime
    from konbit.sms.gateway import Gateway


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sms = subparsers.add_parser("sms", help="the SMS gateway: send as a phone, the outbox, agents")
    sms_sub = sms.add_subparsers(dest="sms_command", required=True)

    send = sms_sub.add_parser("send", help="send an SMS as a phone (console provider)")
    send.add_argument("--from", dest="sender", required=True, help="the phone, e.g. +50937001111")
    send.add_argument("text", help="the message, e.g. LOTS")
    send.set_defaults(func=cmd_send)

    outbox = sms_sub.add_parser("outbox", help="messages queued, stored or sent")
    outbox.add_argument("--limit", type=int, default=30)
    outbox.add_argument("--phone", default=None)
    outbox.set_defaults(func=cmd_outbox)

    agent = sms_sub.add_parser("agent", help="a cooperative's agents (phones that record lots)")
    agent_sub = agent.add_subparsers(dest="agent_command", required=True)
    add = agent_sub.add_parser("add", help="register an agent's phone with a PIN")
    add.add_argument("--cooperative", required=True, help="the cooperative's address")
    add.add_argument("--phone", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--pin", required=True)
    add.add_argument("--language", default="ht", choices=["ht", "fr", "en"])
    add.set_defaults(func=cmd_agent_add)
    reset = agent_sub.add_parser("reset-pin", help="a new PIN (unlocks the agent)")
    reset.add_argument("--cooperative", required=True)
    reset.add_argument("--phone", required=True)
    reset.add_argument("--pin", required=True)
    reset.set_defaults(func=cmd_agent_reset)
    listing = agent_sub.add_parser("list", help="a cooperative's agents")
    listing.add_argument("--cooperative", required=True)
    listing.set_defaults(func=cmd_agent_list)

    ussd = subparsers.add_parser("ussd", help="dial the USSD menu as a phone (interactive)")
    ussd.add_argument("--from", dest="sender", required=True, help="the phone, e.g. +50937001111")
    ussd.set_defaults(func=cmd_ussd)

    labels = subparsers.add_parser("labels", help="QR labels and farmer ID cards")
    labels_sub = labels.add_subparsers(dest="labels_command", required=True)
    for kind in ("lots", "consignments"):
        sheet = labels_sub.add_parser(kind, help=f"an A4 PDF sheet of {kind[:-1]} labels")
        sheet.add_argument("ids", nargs="+", type=int)
        sheet.add_argument("-o", "--output", type=Path, required=True)
        sheet.set_defaults(func=cmd_labels, kind=kind[:-1])
    card = labels_sub.add_parser("farmer-card", help="a farmer's ID card (PDF)")
    card.add_argument("address")
    card.add_argument("-o", "--output", type=Path, required=True)
    card.set_defaults(func=cmd_farmer_card)


def _runtime(settings: Settings) -> Runtime:
    from konbit.db.migrate import upgrade
    from konbit.runtime import Runtime

    runtime = Runtime(settings)
    upgrade(runtime.engine)
    return runtime


def _gateway(settings: Settings) -> Gateway:
    from konbit.sms.gateway import Gateway

    return Gateway(_runtime(settings), mirror_running=False)


def cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.sms.webhooks import handle_sms

    gateway = _gateway(settings)
    try:
        handled = handle_sms(
            gateway, "console", f"console-{uuid.uuid4().hex}", args.sender, None, args.text
        )
        print(handled.reply)
    finally:
        gateway.runtime.close()
    return 0


def cmd_ussd(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.sms.webhooks import handle_ussd

    gateway = _gateway(settings)
    session = f"console-{uuid.uuid4().hex[:12]}"
    inputs: list[str] = []
    try:
        while True:
            reply = handle_ussd(
                gateway, "console", session, args.sender, "*".join(inputs), settings
            )
            print(reply[4:])
            if reply.startswith("END "):
                return 0
            try:
                inputs.append(input("> ").strip())
            except EOFError:  # the phone hangs up: the session can be resumed on the next dial
                print()
                return 0
    finally:
        gateway.runtime.close()


def cmd_outbox(settings: Settings, args: argparse.Namespace) -> int:
    from sqlmodel import Session, col, select

    from konbit.sms.models import SmsOutbound

    runtime = _runtime(settings)
    try:
        with Session(runtime.engine) as session:
            query = select(SmsOutbound).order_by(col(SmsOutbound.id).desc()).limit(args.limit)
            if args.phone:
                query = query.where(SmsOutbound.phone == args.phone)
            rows = list(session.exec(query).all())
    finally:
        runtime.close()
    for row in reversed(rows):
        when = row.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(
            f"#{row.id} {when} {row.phone} {row.kind} [{row.language}] {row.status} "
            f"{row.encoding}x{row.parts}"
        )
        print(f"    {row.body}")
    if not rows:
        print("the SMS outbox is empty")
    return 0


def _coop(address: str) -> Actor:
    from konbit.access.keys import Actor
    from konbit.roles import Role

    return Actor(organisation=address, role=Role.COOPERATIVE)


def cmd_agent_add(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.profiles.phones import BadPhone, normalise
    from konbit.services import agents
    from konbit.services.errors import ServiceError

    runtime = _runtime(settings)
    try:
        phone = normalise(args.phone, settings.sms_default_region)
        made = agents.register_agent(
            runtime,
            _coop(args.cooperative),
            agents.AgentInput(phone=phone, name=args.name, pin=args.pin, language=args.language),
        )
    except (ServiceError, BadPhone) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    print(f"agent {made['id']}: {made['phone']} ({made['name']}) for {made['cooperative']}")
    return 0


def cmd_agent_reset(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.profiles.phones import BadPhone, normalise
    from konbit.services import agents
    from konbit.services.errors import ServiceError

    runtime = _runtime(settings)
    try:
        phone = normalise(args.phone, settings.sms_default_region)
        agents.reset_pin(runtime, _coop(args.cooperative), phone, args.pin)
    except (ServiceError, BadPhone) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    print(f"new PIN set for {phone}; the agent is unlocked")
    return 0


def cmd_agent_list(settings: Settings, args: argparse.Namespace) -> int:
    from konbit.services import agents

    runtime = _runtime(settings)
    try:
        rows = agents.list_agents(runtime, _coop(args.cooperative))
    finally:
        runtime.close()
    for row in rows:
        state = "locked" if row["locked"] else "active" if row["active"] else "inactive"
        print(f"{row['phone']}  {row['name']}  [{row['language']}]  {state}")
    return 0


def cmd_labels(settings: Settings, args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from konbit.labels import pdf
    from konbit.mirror.models import Consignment, Lot
    from konbit.sms.resolver import consignment_label, lot_label
    from konbit.standards.digital_link import parse_gtins

    runtime = _runtime(settings)
    gtins = parse_gtins(settings.gtins)
    base = settings.effective_public_base_url
    labels = []
    try:
        with Session(runtime.engine) as session:
            for item_id in args.ids:
                if args.kind == "lot":
                    lot = session.get(Lot, item_id)
                    if lot is None:
                        print(f"error: no lot {item_id}", file=sys.stderr)
                        return 1
                    labels.append(lot_label(session, lot, base, gtins))
                else:
                    item = session.get(Consignment, item_id)
                    if item is None:
                        print(f"error: no consignment {item_id}", file=sys.stderr)
                        return 1
                    labels.append(consignment_label(session, item, base, gtins))
    finally:
        runtime.close()
    args.output.write_bytes(pdf.label_sheet(labels))
    print(f"{len(labels)} labels -> {args.output}")
    return 0


def cmd_farmer_card(settings: Settings, args: argparse.Namespace) -> int:
    from fastapi import HTTPException

    from konbit.labels import pdf
    from konbit.sms.resolver import farmer_card

    runtime = _runtime(settings)
    try:
        card = farmer_card(runtime, args.address, None)
    except HTTPException as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        runtime.close()
    args.output.write_bytes(pdf.farmer_cards([card]))
    print(f"ID card of {card.name} (code {card.code}) -> {args.output}")
    return 0
