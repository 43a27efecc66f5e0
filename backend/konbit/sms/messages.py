"""What the gateway says, in Kreyòl (ht), French (fr) and English (en).

Every text the gateway sends is a key of :data:`CATALOGUE`, present in the three languages
with the same placeholders (a test checks it). Amounts, weights and dates are formatted
for the reader's language with Babel (Kreyòl dates with Kreyòl month names); spaces Babel
writes as no-break spaces become plain spaces, so that a message stays in GSM-7 when its
words allow it.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

Lang = Literal["ht", "fr", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = ("ht", "fr", "en")
DEFAULT_LANGUAGE: Final[Lang] = "ht"
#: Babel locales: Haitian Creole and Haitian French number formats; English as in the US.
LOCALES: Final[dict[Lang, str]] = {"ht": "ht", "fr": "fr_HT", "en": "en_US"}
#: The stablecoin has 6 decimals and is pegged to the US dollar.
TOKEN_DECIMALS = 6
CURRENCY = "USD"

KREYOL_MONTHS = (
    "janvye",
    "fevriye",
    "mas",
    "avril",
    "me",
    "jen",
    "jiyè",
    "out",
    "septanm",
    "oktòb",
    "novanm",
    "desanm",
)

LANGUAGE_NAMES: Final[dict[Lang, str]] = {"ht": "Kreyòl", "fr": "Français", "en": "English"}

#: Crop codes (as in the API: 1 mango, 2 avocado) and their names.
CROPS: Final[dict[int, dict[Lang, str]]] = {
    1: {"ht": "mango", "fr": "mangue", "en": "mango"},
    2: {"ht": "zaboka", "fr": "avocat", "en": "avocado"},
}


def lang_of(value: str | None) -> Lang:
    """A stored language code as a catalogue language (unknown: Kreyòl)."""
    if value == "fr":
        return "fr"
    if value == "en":
        return "en"
    return "ht"


# ---------------------------------------------------------------------------- catalogue

CATALOGUE: Final[dict[str, dict[Lang, str]]] = {
    # -- help and errors ----------------------------------------------------------------
    "help_farmer": {
        "ht": "Konbit: voye LO pou lo ou yo, LO 12 pou istwa lo 12, PEMAN pou peman ou yo, "
        "PRI pou kòmand ak pri, KOD pou kòd ou, LANG FR oswa LANG EN pou chanje lang.",
        "fr": "Konbit : envoyez LOTS pour vos lots, LOT 12 pour l'historique du lot 12, "
        "PAIEMENTS pour vos paiements, PRIX pour les commandes et prix, CODE pour votre "
        "code, LANGUE HT ou LANGUE EN pour changer de langue.",
        "en": "Konbit: send LOTS for your lots, LOT 12 for the history of lot 12, PAYMENTS "
        "for your payments, PRICES for orders and prices, CODE for your code, LANG HT or "
        "LANG FR to change language.",
    },
    "help_agent": {
        "ht": "Konbit ajan: pou anrejistre yon lo voye REKOT <kòd kiltivatè> <kg> <klas> <PIN>, "
        "egz. REKOT 10019 250 2 1234. Pou zaboka: REKOT 10019 250 2 ZABOKA 1234. "
        "PRI: kòmand ak pri.",
        "fr": "Konbit agent : pour enregistrer un lot envoyez RECOLTE <code producteur> <kg> "
        "<qualité> <PIN>, ex. RECOLTE 10019 250 2 1234. Avocat : RECOLTE 10019 250 2 AVOCAT "
        "1234. PRIX : commandes et prix.",
        "en": "Konbit agent: to record a lot send HARVEST <farmer code> <kg> <grade> <PIN>, "
        "e.g. HARVEST 10019 250 2 1234. Avocado: HARVEST 10019 250 2 AVOCADO 1234. "
        "PRICES: orders and prices.",
    },
    "unknown_number": {
        "ht": "Nimewo sa a pa anrejistre nan Konbit. Mande kowoperativ ou a anrejistre l, "
        "apre sa voye ED pou wè sa ou ka fè.",
        "fr": "Ce numéro n'est pas enregistré dans Konbit. Demandez à votre coopérative de "
        "l'enregistrer, puis envoyez AIDE pour voir les commandes.",
        "en": "This number is not registered with Konbit. Ask your cooperative to register "
        "it, then send HELP to see what you can do.",
    },
    "not_understood": {
        "ht": "Konbit pa konprann mesaj la. Voye LO, LO 12, PEMAN, PRI, KOD, LANG FR oswa ED.",
        "fr": "Konbit n'a pas compris le message. Envoyez LOTS, LOT 12, PAIEMENTS, PRIX, "
        "CODE, LANGUE EN ou AIDE.",
        "en": "Konbit did not understand the message. Send LOTS, LOT 12, PAYMENTS, PRICES, "
        "CODE, LANG FR or HELP.",
    },
    "not_understood_agent": {
        "ht": "Konbit pa konprann mesaj la. Pou anrejistre yon lo voye: "
        "REKOT <kòd kiltivatè> <kg> <klas> <PIN>, egz. REKOT 10019 250 2 1234. Oswa ED.",
        "fr": "Konbit n'a pas compris le message. Pour enregistrer un lot envoyez : "
        "RECOLTE <code producteur> <kg> <qualité> <PIN>, ex. RECOLTE 10019 250 2 1234. Ou AIDE.",
        "en": "Konbit did not understand the message. To record a lot send: "
        "HARVEST <farmer code> <kg> <grade> <PIN>, e.g. HARVEST 10019 250 2 1234. Or HELP.",
    },
    "farmers_only": {
        "ht": "Se kiltivatè ki anrejistre sèlman ki ka wè lo ak peman. Voye ED pou wè sa ou ka fè.",
        "fr": "Seuls les producteurs enregistrés voient lots et paiements. Envoyez AIDE pour "
        "voir ce que vous pouvez faire.",
        "en": "Only registered farmers can see lots and payments. Send HELP to see what you "
        "can do.",
    },
    "agents_only": {
        "ht": "Se sèlman ajan kowoperativ la ki ka anrejistre yon lo. Voye ED pou wè sa ou ka fè.",
        "fr": "Seuls les agents de la coopérative peuvent enregistrer un lot. Envoyez AIDE.",
        "en": "Only the cooperative's agents can record a lot. Send HELP to see what you can do.",
    },
    "unavailable": {
        "ht": "Konbit pa disponib kounye a. Eseye ankò nan kèk minit.",
        "fr": "Konbit n'est pas disponible pour le moment. Réessayez dans quelques minutes.",
        "en": "Konbit is not available right now. Try again in a few minutes.",
    },
    # -- farmers' queries ---------------------------------------------------------------
    "lots_none": {
        "ht": "Ou poko gen lo anrejistre. Kowoperativ ou a anrejistre lo ou yo lè ou livre.",
        "fr": "Vous n'avez pas encore de lot enregistré. La coopérative les enregistre à la "
        "livraison.",
        "en": "You have no recorded lots yet. Your cooperative records them when you deliver.",
    },
    "lots_head": {
        "ht": "Lo ou yo:",
        "fr": "Vos lots :",
        "en": "Your lots:",
    },
    "lots_line": {
        "ht": "#{lot} {kg}kg {crop} kl.{grade} {status}",
        "fr": "#{lot} {kg}kg {crop} q.{grade} {status}",
        "en": "#{lot} {kg}kg {crop} gr.{grade} {status}",
    },
    "lots_more": {
        "ht": "ak {count} lòt. Voye LO 12 pou yon lo.",
        "fr": "et {count} autres. Envoyez LOT 12 pour un lot.",
        "en": "and {count} more. Send LOT 12 for one lot.",
    },
    "lot_detail": {
        "ht": "Lo #{lot}: {kg} kg {crop}, klas {grade}, rekòt {date}. {status}.",
        "fr": "Lot #{lot} : {kg} kg {crop}, qualité {grade}, récolte du {date}. {status}.",
        "en": "Lot #{lot}: {kg} kg {crop}, grade {grade}, harvested {date}. {status}.",
    },
    "lot_not_yours": {
        "ht": "Pa gen lo #{lot} pou ou. Voye LO pou wè lo ou yo.",
        "fr": "Vous n'avez pas de lot #{lot}. Envoyez LOTS pour voir vos lots.",
        "en": "You have no lot #{lot}. Send LOTS to see your lots.",
    },
    "payments_none": {
        "ht": "Ou poko resevwa peman. N ap voye yon resi ba ou lè yon vant regle.",
        "fr": "Vous n'avez pas encore reçu de paiement. Un reçu vous sera envoyé à chaque vente "
        "réglée.",
        "en": "You have no payments yet. You will get a receipt when a sale settles.",
    },
    "payments_head": {
        "ht": "Peman ou yo:",
        "fr": "Vos paiements :",
        "en": "Your payments:",
    },
    "payments_line": {
        "ht": "kòmand {order}: {net} (resi {code})",
        "fr": "commande {order} : {net} (reçu {code})",
        "en": "order {order}: {net} (receipt {code})",
    },
    "orders_none": {
        "ht": "Pa gen kòmand ouvè kounye a.",
        "fr": "Aucune commande ouverte pour le moment.",
        "en": "No open orders right now.",
    },
    "orders_head": {
        "ht": "Kòmand ouvè:",
        "fr": "Commandes ouvertes :",
        "en": "Open orders:",
    },
    "orders_line": {
        "ht": "#{order} {crop} {price}/kg, {kg} kg",
        "fr": "#{order} {crop} {price}/kg, {kg} kg",
        "en": "#{order} {crop} {price}/kg, {kg} kg",
    },
    "code": {
        "ht": "Kòd kiltivatè ou: {code}. Montre l lè ou livre rekòt ou.",
        "fr": "Votre code producteur : {code}. Donnez-le quand vous livrez votre récolte.",
        "en": "Your farmer code: {code}. Give it when you deliver your harvest.",
    },
    "language_set": {
        "ht": "Lang ou se Kreyòl kounye a.",
        "fr": "Votre langue est maintenant le français.",
        "en": "Your language is now English.",
    },
    "language_which": {
        "ht": "Ki lang? Voye LANG HT, LANG FR oswa LANG EN.",
        "fr": "Quelle langue ? Envoyez LANGUE HT, LANGUE FR ou LANGUE EN.",
        "en": "Which language? Send LANG HT, LANG FR or LANG EN.",
    },
    "receipt_which": {
        "ht": "Ki resi? Voye RESI ak kòd la, egz. RESI 7-482913.",
        "fr": "Quel reçu ? Envoyez RECU suivi du code, ex. RECU 7-482913.",
        "en": "Which receipt? Send RECEIPT and its code, e.g. RECEIPT 7-482913.",
    },
    "receipt_ok": {
        "ht": "Resi {code} bon: kòmand {order}, {net} peye sou chèn nan.",
        "fr": "Reçu {code} valide : commande {order}, {net} payés sur la chaîne.",
        "en": "Receipt {code} is valid: order {order}, {net} paid on chain.",
    },
    "receipt_bad": {
        "ht": "Resi {code} pa koresponn ak chèn nan. Pale ak kowoperativ ou a.",
        "fr": "Le reçu {code} ne correspond pas à la chaîne. Parlez-en à votre coopérative.",
        "en": "Receipt {code} does not match the chain. Talk to your cooperative.",
    },
    "receipt_unknown": {
        "ht": "Pa gen resi ak kòd sa a. Tcheke kòd la, egz. RESI 7-482913.",
        "fr": "Aucun reçu avec ce code. Vérifiez-le, ex. RECU 7-482913.",
        "en": "No receipt has that code. Check it, e.g. RECEIPT 7-482913.",
    },
    # -- lot and inspection status words ------------------------------------------------
    "status_active": {"ht": "", "fr": "", "en": ""},
    "status_split": {"ht": "divize", "fr": "divisé", "en": "split"},
    "status_rejected": {"ht": "refize", "fr": "refusé", "en": "rejected"},
    "status_passed": {"ht": "bon", "fr": "validé", "en": "passed"},
    "status_failed": {"ht": "pa bon", "fr": "non conforme", "en": "failed"},
    "status_paid": {"ht": "peye", "fr": "payé", "en": "paid"},
    "detail_waiting": {
        "ht": "Li poko enspekte",
        "fr": "Pas encore inspecté",
        "en": "Not inspected yet",
    },
    "detail_passed": {
        "ht": "Li pase enspeksyon",
        "fr": "Inspection réussie",
        "en": "Passed inspection",
    },
    "detail_failed": {
        "ht": "Li pa pase enspeksyon",
        "fr": "Inspection échouée",
        "en": "Failed inspection",
    },
    "detail_rejected": {
        "ht": "Achtè a refize l",
        "fr": "Refusé par l'acheteur",
        "en": "Rejected by the buyer",
    },
    "detail_split": {
        "ht": "Li divize an plizyè lo",
        "fr": "Divisé en plusieurs lots",
        "en": "Split into several lots",
    },
    "detail_paid": {
        "ht": "Peye: {amount}",
        "fr": "Payé : {amount}",
        "en": "Paid: {amount}",
    },
    "detail_consignment": {
        "ht": "Nan chajman #{consignment}",
        "fr": "Dans l'expédition #{consignment}",
        "en": "In consignment #{consignment}",
    },
    # -- agents -------------------------------------------------------------------------
    "harvest_usage": {
        "ht": "Pou anrejistre yon lo voye: REKOT <kòd kiltivatè> <kg> <klas> <PIN>, "
        "egz. REKOT 10019 250 2 1234.",
        "fr": "Pour enregistrer un lot envoyez : RECOLTE <code producteur> <kg> <qualité> "
        "<PIN>, ex. RECOLTE 10019 250 2 1234.",
        "en": "To record a lot send: HARVEST <farmer code> <kg> <grade> <PIN>, "
        "e.g. HARVEST 10019 250 2 1234.",
    },
    "harvest_need_pin": {
        "ht": "Mete PIN ou nan fen mesaj la: {example}",
        "fr": "Ajoutez votre PIN à la fin du message : {example}",
        "en": "Put your PIN at the end of the message: {example}",
    },
    "harvest_bad_kg": {
        "ht": "Pwa a pa bon: ekri kg an chif (egz. 250 oswa 250,5). {example}",
        "fr": "Le poids n'est pas valable : écrivez les kg en chiffres (ex. 250 ou 250,5). "
        "{example}",
        "en": "The weight is not valid: write the kg in figures (e.g. 250 or 250.5). {example}",
    },
    "harvest_bad_grade": {
        "ht": "Klas la pa bon: ekri yon chif 0 a 99. {example}",
        "fr": "La qualité n'est pas valable : un nombre de 0 à 99. {example}",
        "en": "The grade is not valid: a number from 0 to 99. {example}",
    },
    "harvest_bad_code": {
        "ht": "Kòd kiltivatè {code} pa bon. Tcheke l sou kat kiltivatè a. {example}",
        "fr": "Le code producteur {code} n'est pas valable. Vérifiez-le sur sa carte. {example}",
        "en": "Farmer code {code} is not valid. Check it on the farmer's card. {example}",
    },
    "harvest_not_member": {
        "ht": "Kiltivatè {code} pa manm kowoperativ ou a.",
        "fr": "Le producteur {code} n'est pas membre de votre coopérative.",
        "en": "Farmer {code} is not a member of your cooperative.",
    },
    "pin_wrong": {
        "ht": "PIN lan pa bon. Ou gen {left} chans ankò.",
        "fr": "PIN incorrect. Il vous reste {left} essais.",
        "en": "Wrong PIN. You have {left} tries left.",
    },
    "pin_locked": {
        "ht": "PIN ou bloke. Mande kowoperativ ou a ba ou yon nouvo PIN.",
        "fr": "Votre PIN est bloqué. Demandez un nouveau PIN à votre coopérative.",
        "en": "Your PIN is locked. Ask your cooperative for a new PIN.",
    },
    "lot_recorded_agent": {
        "ht": "Lo #{lot} anrejistre: {kg} kg {crop}, klas {grade}, pou {code}.",
        "fr": "Lot #{lot} enregistré : {kg} kg {crop}, qualité {grade}, pour {code}.",
        "en": "Lot #{lot} recorded: {kg} kg {crop}, grade {grade}, for {code}.",
    },
    "lot_pending_agent": {
        "ht": "Lo a ap anrejistre ({kg} kg {crop} pou {code}). N ap voye nimewo lo a nan yon SMS.",
        "fr": "Le lot est en cours d'enregistrement ({kg} kg {crop} pour {code}). Son numéro "
        "suivra par SMS.",
        "en": "The lot is being recorded ({kg} kg {crop} for {code}). Its number will follow "
        "by SMS.",
    },
    "lot_refused": {
        "ht": "Konbit pa t ka anrejistre lo a ({reason}). Tcheke kòd, kg ak klas la.",
        "fr": "Konbit n'a pas pu enregistrer le lot ({reason}). Vérifiez code, kg et qualité.",
        "en": "Konbit could not record the lot ({reason}). Check the code, kg and grade.",
    },
    # -- notices ------------------------------------------------------------------------
    "notice_welcome": {
        "ht": "Byenveni nan Konbit! Kòd kiltivatè ou: {code}. Voye ED nan nimewo sa a pou wè "
        "sa ou ka fè.",
        "fr": "Bienvenue dans Konbit ! Votre code producteur : {code}. Envoyez AIDE à ce "
        "numéro pour voir ce que vous pouvez faire.",
        "en": "Welcome to Konbit! Your farmer code: {code}. Send HELP to this number to see "
        "what you can do.",
    },
    "notice_lot_recorded": {
        "ht": "Konbit: lo #{lot} anrejistre pou ou: {kg} kg {crop}, klas {grade}, {date}. "
        "Voye LO {lot} pou istwa li.",
        "fr": "Konbit : lot #{lot} enregistré pour vous : {kg} kg {crop}, qualité {grade}, "
        "{date}. Envoyez LOT {lot} pour son historique.",
        "en": "Konbit: lot #{lot} recorded for you: {kg} kg {crop}, grade {grade}, {date}. "
        "Send LOT {lot} for its history.",
    },
    "notice_inspection_passed": {
        "ht": "Konbit: lo #{lot} pase enspeksyon, klas {grade}.",
        "fr": "Konbit : le lot #{lot} a réussi l'inspection, qualité {grade}.",
        "en": "Konbit: lot #{lot} passed inspection, grade {grade}.",
    },
    "notice_inspection_failed": {
        "ht": "Konbit: lo #{lot} pa pase enspeksyon. Kowoperativ ou a ap di w kisa pou fè.",
        "fr": "Konbit : le lot #{lot} n'a pas réussi l'inspection. Votre coopérative vous "
        "dira quoi faire.",
        "en": "Konbit: lot #{lot} failed inspection. Your cooperative will tell you what to do.",
    },
    "notice_advance": {
        "ht": "Konbit: kowoperativ la resevwa yon avans {amount} sou kòmand {order}. Li ap "
        "ranbouse sou vant lan.",
        "fr": "Konbit : la coopérative a reçu une avance de {amount} sur la commande {order}. "
        "Elle sera remboursée sur la vente.",
        "en": "Konbit: the cooperative received an advance of {amount} on order {order}. It "
        "is repaid from the sale.",
    },
    "notice_receipt": {
        "ht": "Konbit resi {code}: kòmand {order}, lo {lots}, {kg} kg. Vant: {sale}. Avans: "
        "-{advance}. Transpò: -{transport}. Kowoperativ: -{fee}. Ou resevwa: {net}.",
        "fr": "Konbit reçu {code} : commande {order}, lots {lots}, {kg} kg. Vente : {sale}. "
        "Avance : -{advance}. Transport : -{transport}. Coopérative : -{fee}. Net payé : {net}.",
        "en": "Konbit receipt {code}: order {order}, lots {lots}, {kg} kg. Sale: {sale}. "
        "Advance: -{advance}. Transport: -{transport}. Cooperative fee: -{fee}. Net paid: {net}.",
    },
    # -- USSD screens (each at most 182 characters with its CON/END prefix) ---------------
    "ussd_title": {"ht": "Konbit", "fr": "Konbit", "en": "Konbit"},
    "ussd_my_lots": {"ht": "Lo mwen", "fr": "Mes lots", "en": "My lots"},
    "ussd_my_payments": {"ht": "Peman mwen", "fr": "Mes paiements", "en": "My payments"},
    "ussd_orders": {"ht": "Kòmand ak pri", "fr": "Commandes et prix", "en": "Orders and prices"},
    "ussd_check_receipt": {
        "ht": "Tcheke yon resi",
        "fr": "Vérifier un reçu",
        "en": "Check a receipt",
    },
    "ussd_language": {"ht": "Lang", "fr": "Langue", "en": "Language"},
    "ussd_record_lot": {
        "ht": "Anrejistre yon lo",
        "fr": "Enregistrer un lot",
        "en": "Record a lot",
    },
    "ussd_back": {"ht": "0 Meni", "fr": "0 Menu", "en": "0 Menu"},
    "ussd_cancel": {"ht": "0 Anile", "fr": "0 Annuler", "en": "0 Cancel"},
    "ussd_resume": {
        "ht": "Ou te kite nan mitan. Kontinye kote ou te ye a?\n1 Wi\n2 Non, meni",
        "fr": "Reprendre là où vous en étiez ?\n1 Oui\n2 Non, menu",
        "en": "Continue where you left off?\n1 Yes\n2 No, menu",
    },
    "ussd_choose_language": {
        "ht": "Chwazi lang ou",
        "fr": "Choisissez la langue",
        "en": "Choose your language",
    },
    "ussd_enter_receipt": {
        "ht": "Antre kòd resi a (egz. 7482913):",
        "fr": "Entrez le code du reçu (ex. 7482913) :",
        "en": "Enter the receipt code (e.g. 7482913):",
    },
    "ussd_enter_farmer": {
        "ht": "Antre kòd kiltivatè a:",
        "fr": "Entrez le code du producteur :",
        "en": "Enter the farmer code:",
    },
    "ussd_enter_kg": {
        "ht": "Kiltivatè: {name} ({code})\nAntre pwa a an kg:",
        "fr": "Producteur : {name} ({code})\nEntrez le poids en kg :",
        "en": "Farmer: {name} ({code})\nEnter the weight in kg:",
    },
    "ussd_enter_grade": {
        "ht": "Antre klas la (0 a 99):",
        "fr": "Entrez la qualité (0 à 99) :",
        "en": "Enter the grade (0 to 99):",
    },
    "ussd_choose_crop": {
        "ht": "Ki kilti?",
        "fr": "Quelle culture ?",
        "en": "Which crop?",
    },
    "ussd_confirm": {
        "ht": "Konfime:\n{name} ({code})\n{kg} kg {crop}, klas {grade}\nAntre PIN ou pou konfime",
        "fr": "Confirmer :\n{name} ({code})\n{kg} kg {crop}, qualité {grade}\nEntrez votre PIN "
        "pour confirmer",
        "en": "Confirm:\n{name} ({code})\n{kg} kg {crop}, grade {grade}\nEnter your PIN to confirm",
    },
    "ussd_try_again": {
        "ht": "Sa pa bon. Eseye ankò.",
        "fr": "Saisie non valable. Réessayez.",
        "en": "That is not valid. Try again.",
    },
    "ussd_cancelled": {
        "ht": "Anile. Anyen pa anrejistre.",
        "fr": "Annulé. Rien n'a été enregistré.",
        "en": "Cancelled. Nothing was recorded.",
    },
    "ussd_goodbye": {
        "ht": "Mèsi. Orevwa!",
        "fr": "Merci. Au revoir !",
        "en": "Thank you. Goodbye!",
    },
}


def t(key: str, lang: Lang, **values: object) -> str:
    """The catalogue text ``key`` in ``lang`` with its placeholders filled."""
    return CATALOGUE[key][lang].format(**values)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# ---------------------------------------------------------------------------- formatting


def _plain(text: str) -> str:
    """Babel's no-break spaces as plain spaces (they are not in the GSM alphabet)."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


@functools.lru_cache(maxsize=4096)  # Babel formats slowly; replies repeat figures
def money(amount: int, lang: Lang) -> str:
    """Token minor units as the reader writes money, e.g. ``US$ 12,50``, ``$12.50``.

    Never rounded: a share of a cent shows (``$102.645``), so that a receipt adds up.
    """
    value = Decimal(int(amount)).scaleb(-TOKEN_DECIMALS)
    return _plain(
        format_currency(value, CURRENCY, locale=LOCALES[lang], decimal_quantization=False)
    )


@functools.lru_cache(maxsize=4096)  # Babel formats slowly; replies repeat figures
def kilograms(grams: int, lang: Lang) -> str:
    """Grams as kilograms with up to three decimals, e.g. ``250``, ``250,5``."""
    value = Decimal(int(grams)).scaleb(-3)
    return _plain(format_decimal(value, format="#,##0.###", locale=LOCALES[lang]))


@functools.lru_cache(maxsize=4096)  # Babel formats slowly; replies repeat figures
def day(timestamp: int, lang: Lang) -> str:
    """A chain time as a date: ``29 novanm 2026``, ``29 nov. 2026``, ``Nov 29, 2026``."""
    when = datetime.fromtimestamp(max(0, min(int(timestamp), 253402214400)), UTC).date()
    if lang == "ht":
        return f"{when.day} {KREYOL_MONTHS[when.month - 1]} {when.year}"
    return _plain(format_date(when, "medium", locale=LOCALES[lang]))


def crop_name(crop: int, lang: Lang) -> str:
    names = CROPS.get(int(crop))
    if names is not None:
        return names[lang]
    return {"ht": f"kilti {crop}", "fr": f"culture {crop}", "en": f"crop {crop}"}[lang]


@dataclass(frozen=True)
class Reply:
    """A text for one reader, in that reader's language."""

    text: str
    lang: Lang
    key: str = ""
