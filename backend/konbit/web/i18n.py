"""What the pages say, in Kreyòl (ht), French (fr) and English (en), and which one to use.

The language is, in order: ``?lang=`` (the switch on every page, remembered in a cookie),
the ``kb_lang`` cookie, the browser's ``Accept-Language``, then English (most people who
scan a box abroad read it). Amounts, weights and dates are formatted with Babel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, Literal

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

Lang = Literal["ht", "fr", "en"]
LANGUAGES: Final[tuple[Lang, ...]] = ("ht", "fr", "en")
DEFAULT: Final[Lang] = "en"
COOKIE = "kb_lang"
NAMES: Final[dict[Lang, str]] = {"ht": "Kreyòl", "fr": "Français", "en": "English"}
LOCALES: Final[dict[Lang, str]] = {"ht": "fr_HT", "fr": "fr_HT", "en": "en_US"}
KREYOL_MONTHS = [
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
]
TOKEN_DECIMALS = 6

#: key -> (Kreyòl, French, English). Every key has all three (a test checks it).
CATALOGUE: Final[dict[str, tuple[str, str, str]]] = {
    "trace_title": ("Orijin fwi sa a", "Origine de ce fruit", "Where this fruit comes from"),
    "lot": ("Lo", "Lot", "Lot"),
    "consignment": ("Chajman", "Expédition", "Consignment"),
    "product": ("Pwodui", "Produit", "Product"),
    "cooperative": ("Kowoperativ", "Coopérative", "Cooperative"),
    "region": ("Rejyon", "Région", "Region"),
    "harvest": ("Rekòt", "Récolte", "Harvest"),
    "farmers": ("Kantite kiltivatè", "Nombre d'agriculteurs", "Number of farmers"),
    "farmers_note": (
        "Non kiltivatè yo pa parèt san dakò yo.",
        "Le nom des agriculteurs n'apparaît pas sans leur accord.",
        "Farmers' names are not shown without their consent.",
    ),
    "weight": ("Pwa", "Poids", "Weight"),
    "grade": ("Kalite", "Calibre", "Grade"),
    "inspections": (
        "Enspeksyon ak sètifika",
        "Inspections et certificats",
        "Inspections and certificates",
    ),
    "passed": ("Pase", "Réussie", "Passed"),
    "failed": ("Pa pase", "Échouée", "Failed"),
    "certificate": ("Sètifika", "Certificat", "Certificate"),
    "none_yet": ("Poko genyen.", "Aucune pour l'instant.", "None yet."),
    "custody": (
        "Kiyès ki te genyen l, ki kote, ki lè",
        "Chaîne de garde : qui, où, quand",
        "Custody: who had it, where, when",
    ),
    "handover": ("Remèt", "Remis", "Handed over"),
    "receipt": ("Resevwa", "Reçu", "Received"),
    "from": ("soti nan men", "de", "from"),
    "to": ("bay", "à", "to"),
    "sale": ("Vant lan", "La vente", "The sale"),
    "price": ("Pri pa kilo", "Prix au kilo", "Price per kg"),
    "exporter": ("Ekspòtatè", "Exportateur", "Exporter"),
    "status": ("Eta", "Statut", "Status"),
    "farmers_share": (
        "Pati pri a ki rive jwenn kiltivatè yo",
        "Part du prix de vente reçue par les agriculteurs",
        "Share of the sale price that reached the farmers",
    ),
    "not_settled": (
        "Kiltivatè yo poko peye.",
        "Les agriculteurs ne sont pas encore payés.",
        "The farmers are not paid yet.",
    ),
    "where_money": (
        "Kote chak dola te ale",
        "Où est allé chaque dollar",
        "Where every dollar went",
    ),
    "payouts": ("Peman pou chak kiltivatè", "Paiement par agriculteur", "Payout per farmer"),
    "farmer_n": ("Kiltivatè {n}", "Agriculteur {n}", "Farmer {n}"),
    "proof": ("prèv", "preuve", "proof"),
    "block": ("blòk", "bloc", "block"),
    "proof_intro": (
        "Chak fè gen yon lyen pou prèv li sou chèn blòk la (tranzaksyon, blòk).",
        "Chaque fait renvoie à sa preuve sur la chaîne de blocs (transaction, bloc).",
        "Every fact links to its proof on the blockchain (transaction, block).",
    ),
    "check_receipt": (
        "Verifye yon resi peman",
        "Vérifier un reçu de paiement",
        "Check a payout receipt",
    ),
    "receipt_code": ("Kòd resi a", "Code du reçu", "Receipt code"),
    "check": ("Verifye", "Vérifier", "Check"),
    "receipt_ok": (
        "Resi sa a konfòm ak chèn blòk la.",
        "Ce reçu est confirmé par la chaîne.",
        "This receipt is confirmed by the chain.",
    ),
    "receipt_bad": (
        "Resi sa a pa konfòm ak chèn blòk la.",
        "Ce reçu n'est pas confirmé par la chaîne.",
        "This receipt is NOT confirmed by the chain.",
    ),
    "receipt_unknown": (
        "Pa gen resi ak kòd sa a.",
        "Aucun reçu ne porte ce code.",
        "No receipt has this code.",
    ),
    "net_paid": ("Sa kiltivatè a touche", "Net payé à l'agriculteur", "Net paid to the farmer"),
    "order": ("Kòmand", "Commande", "Order"),
    "not_found": ("Nou pa jwenn sa.", "Introuvable.", "Not found."),
    "not_found_hint": (
        "Tcheke nimewo ki sou etikèt la, oswa eskane kòd QR la ankò.",
        "Vérifiez le numéro sur l'étiquette, ou scannez à nouveau son code QR.",
        "Check the number on the label, or scan its QR code again.",
    ),
    "language": ("Lang", "Langue", "Language"),
    "transaction": ("Tranzaksyon", "Transaction", "Transaction"),
    "tx_verified": (
        "Tranzaksyon sa a nan chèn lan.",
        "Transaction trouvée sur la chaîne.",
        "This transaction is on the chain.",
    ),
    "tx_unverified": (
        "Nou pa ka verifye l sou chèn lan kounye a.",
        "Impossible de la vérifier sur la chaîne pour l'instant.",
        "It could not be checked on the chain right now.",
    ),
    "events": ("Evènman", "Événements", "Events"),
    "timeline": ("Wout chajman an", "Parcours de l'expédition", "Timeline of the consignment"),
    "recorded": ("Anrejistre", "Enregistré", "Recorded"),
    # waterfall kinds
    "kind_farmer": ("Kiltivatè", "Agriculteurs", "Farmers"),
    "kind_financier": ("Ranbousman avans", "Remboursement d'avance", "Advance repaid"),
    "kind_carrier": ("Transpò", "Transport", "Transport"),
    "kind_cooperative_residual": (
        "Rès pou kowoperativ",
        "Reliquat coopérative",
        "Cooperative residual",
    ),
    "kind_funder_refund": ("Ranbouse bayè fon", "Remboursé au financeur", "Refunded to the funder"),
    "kind_cooperative_fee": ("Frè kowoperativ", "Frais de coopérative", "Cooperative fee"),
    "kind_exporter_refund": (
        "Ranbouse ekspòtatè",
        "Remboursé à l'exportateur",
        "Refunded to the exporter",
    ),
    "kind_other": ("Lòt", "Autre", "Other"),
    # dashboards
    "sign_in": ("Konekte", "Se connecter", "Sign in"),
    "sign_out": ("Dekonekte", "Se déconnecter", "Sign out"),
    "username": ("Non itilizatè", "Nom d'utilisateur", "Username"),
    "password": ("Modpas", "Mot de passe", "Password"),
    "or_api_key": ("Oswa ak yon kle API", "Ou avec une clé API", "Or with an API key"),
    "api_key": ("Kle API", "Clé API", "API key"),
    "bad_login": (
        "Non, modpas oswa kle a pa bon.",
        "Identifiants incorrects.",
        "Wrong username, password or key.",
    ),
    "pending": ("Tranzaksyon k ap tann", "Transactions en attente", "Pending transactions"),
    "dashboard": ("Tablo", "Tableau de bord", "Dashboard"),
    "error": ("Erè", "Erreur", "Error"),
    # Form errors, one per kind of refusal (konbit.services.errors' codes).
    "err_invalid_input": (
        "Tcheke sa ou tape nan «{field}».",
        "Vérifiez ce que vous avez saisi dans « {field} ».",
        "Check what you typed in “{field}”.",
    ),
    "err_invalid": (
        "Tcheke sa ou tape a.",
        "Vérifiez ce que vous avez saisi.",
        "Check what you typed.",
    ),
    "err_not_found": (
        "Nou pa jwenn sa: tcheke nimewo a.",
        "Introuvable : vérifiez le numéro.",
        "Not found: check the number.",
    ),
    "err_forbidden": (
        "Ou pa gen dwa fè sa.",
        "Vous n'avez pas le droit de faire cela.",
        "You may not do this.",
    ),
    "err_conflict": (
        "Sa pa ka fèt kounye a.",
        "Impossible pour le moment.",
        "This cannot be done now.",
    ),
    "err_contract_refused": (
        "Kontra a refize: {error}.",
        "Le contrat refuse : {error}.",
        "The contract refuses: {error}.",
    ),
    "err_idempotency_conflict": (
        "Fòm sa a te deja voye.",
        "Ce formulaire a déjà été envoyé.",
        "This form was already sent.",
    ),
    "err_own_wallet": (
        "Òganizasyon sa a siyen ak pwòp bous li.",
        "Cette organisation signe avec son propre portefeuille.",
        "This organisation signs with its own wallet.",
    ),
    "err_gas_budget_spent": (
        "Limit jounen an fini; eseye ankò pita.",
        "Le budget du jour est épuisé ; réessayez plus tard.",
        "Today's budget is spent; try again later.",
    ),
    "err_chain_unavailable": (
        "Chèn lan pa reponn; eseye ankò nan yon ti moman.",
        "La chaîne ne répond pas ; réessayez dans un instant.",
        "The chain is not answering; try again in a moment.",
    ),
    "err_refused": ("Demann lan refize.", "Demande refusée.", "Refused."),
    "err_csrf": (
        "Fòm lan ekspire: rechaje paj la epi voye l ankò.",
        "Le formulaire a expiré : rechargez la page et renvoyez-le.",
        "The form expired: reload the page and send it again.",
    ),
    "err_labels_count": (
        "Chwazi ant 1 ak 210 lo pou enprime.",
        "Cochez de 1 à 210 lots à imprimer.",
        "Tick 1 to 210 lots to print.",
    ),
}


def t(lang: Lang, key: str, **values: object) -> str:
    text = CATALOGUE[key][LANGUAGES.index(lang)]
    return text.format(**values) if values else text


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> Lang:
    for value in (query, cookie):
        if value in LANGUAGES:
            return value
    best: tuple[float, Lang] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        score = quality - position / 1000
        if quality > 0 and (best is None or score > best[0]):
            best = (score, primary)
    return best[1] if best is not None else DEFAULT


def money(minor_units: int | None, lang: Lang) -> str:
    """Token minor units (6 decimals, USD) as ``$1,234.56`` in the reader's format."""
    if minor_units is None:
        return "—"
    amount = Decimal(int(minor_units)).scaleb(-TOKEN_DECIMALS)
    text = format_decimal(amount, format="#,##0.00", locale=LOCALES[lang])
    return f"{text} $" if lang != "en" else f"${text}"


def kilograms(grams: int | None, lang: Lang) -> str:
    if grams is None:
        return "—"
    kg = Decimal(int(grams)).scaleb(-3)
    return format_decimal(kg, format="#,##0.###", locale=LOCALES[lang]) + " kg"


def percent(part: int, whole: int, lang: Lang) -> str:
    if whole <= 0:
        return "—"
    return format_percent(Decimal(part) / Decimal(whole), format="#,##0.0%", locale=LOCALES[lang])


def day(timestamp: int | None, lang: Lang) -> str:
    if not timestamp:
        return "—"
    when = datetime.fromtimestamp(int(timestamp), UTC)
    if lang == "ht":
        return f"{when.day} {KREYOL_MONTHS[when.month - 1]} {when.year}"
    return format_date(when, format="long", locale=LOCALES[lang])


def moment(timestamp: int | None, lang: Lang) -> str:
    if not timestamp:
        return "—"
    when = datetime.fromtimestamp(int(timestamp), UTC)
    if lang == "ht":
        return f"{day(timestamp, lang)} {when:%H:%M} UTC"
    return format_datetime(when, format="medium", tzinfo=UTC, locale=LOCALES[lang]) + " UTC"


CROPS: Final[dict[int, tuple[str, str, str]]] = {
    1: ("Mango", "Mangue", "Mango"),
    2: ("Zaboka", "Avocat", "Avocado"),
}


def crop(code: int | None, lang: Lang) -> str:
    names = CROPS.get(int(code or 0))
    return names[LANGUAGES.index(lang)] if names else f"#{code}"
