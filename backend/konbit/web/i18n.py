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
    # statuses of orders, consignments, advances and offers (French: feminine nouns)
    "st_proposed": ("pwopoze", "proposée", "proposed"),
    "st_accepted": ("aksepte", "acceptée", "accepted"),
    "st_funded": ("finanse", "financée", "funded"),
    "st_shipped": ("voye", "expédiée", "shipped"),
    "st_delivered": ("livre", "livrée", "delivered"),
    "st_disputed": ("an diskisyon", "en litige", "disputed"),
    "st_resolved": ("rezoud", "résolue", "resolved"),
    "st_settling": ("ap regle", "en règlement", "settling"),
    "st_settled": ("regle", "réglée", "settled"),
    "st_refunded": ("ranbouse", "remboursée", "refunded"),
    "st_cancelled": ("anile", "annulée", "cancelled"),
    "st_open": ("louvri", "ouverte", "open"),
    "st_closed": ("fèmen", "clôturée", "closed"),
    "st_request_open": ("demann louvri", "demande ouverte", "request open"),
    "st_request_cancelled": ("demann anile", "demande annulée", "request cancelled"),
    "st_active": ("aktif", "en cours", "active"),
    "st_repaid": ("ranbouse", "remboursée", "repaid"),
    "st_defaulted": ("pa peye", "impayée", "defaulted"),
    "st_withdrawn": ("retire", "retirée", "withdrawn"),
    # statuses of transport jobs (French: a masculine noun)
    "st_job_open": ("louvri", "ouvert", "open"),
    "st_job_awarded": ("bay", "attribué", "awarded"),
    "st_job_in_transit": ("sou wout", "en route", "in transit"),
    "st_job_delivered": ("livre", "livré", "delivered"),
    "st_job_cancelled": ("anile", "annulé", "cancelled"),
    "st_job_expired": ("ekspire", "expiré", "expired"),
    # organisation roles (konbit.roles.Role)
    "role_operator": ("operatè", "opérateur", "operator"),
    "role_cooperative": ("kowoperativ", "coopérative", "cooperative"),
    "role_exporter": ("ekspòtatè", "exportateur", "exporter"),
    "role_logistics": ("transpòtè", "transporteur", "carrier"),
    "role_financier": ("bayè fon", "financeur", "financier"),
    "role_inspector": ("enspektè", "inspecteur", "inspector"),
    "role_arbiter": ("abit", "arbitre", "arbiter"),
    # dashboards: cooperative
    "d_orders": ("Kòmand yo", "Commandes", "Orders"),
    "d_accept_order": ("Aksepte kòmand {n}", "Accepter la commande {n}", "Accept order {n}"),
    "d_advance_usd": ("Avans (USD)", "Avance (USD)", "Advance (USD)"),
    "d_request_advance": ("Mande avans", "Demander une avance", "Request advance"),
    "d_advances_offers": (
        "Demann avans ak òf",
        "Demandes d'avance et offres",
        "Advance requests and offers",
    ),
    "d_request_n": ("Demann {n}", "Demande {n}", "Request {n}"),
    "d_offer_from": (
        "Òf {n} soti nan {who}: {amount}, frè {fee}",
        "Offre {n} de {who} : {amount}, frais {fee}",
        "Offer {n} from {who}: {amount}, fee {fee}",
    ),
    "d_accept_offer": ("Aksepte òf {n}", "Accepter l'offre {n}", "Accept offer {n}"),
    "d_lots_print": (
        "Lo yo — enprime etikèt",
        "Lots — imprimer les étiquettes",
        "Lots — print labels",
    ),
    "d_lots": ("Lo yo", "Lots", "Lots"),
    "d_print": ("Enprime", "Imprimer", "Print"),
    "d_print_sheet": (
        "Enprime fèy etikèt yo",
        "Imprimer la planche d'étiquettes",
        "Print label sheet",
    ),
    "d_consignments": ("Chajman yo", "Expéditions", "Consignments"),
    "d_n_lots": ("{n} lo", "{n} lots", "{n} lots"),
    "d_jobs": ("Travay transpò", "Transports", "Transport jobs"),
    "d_job_n": ("Travay {n}", "Transport {n}", "Job {n}"),
    "d_max": ("maksimòm {amount}", "max {amount}", "max {amount}"),
    "d_bid_by": (
        "Òf {n} pa {who}: {amount}, {status}",
        "Offre {n} de {who} : {amount}, {status}",
        "Bid {n} by {who}: {amount}, {status}",
    ),
    "d_award_bid": ("Bay òf {n} an travay la", "Attribuer l'offre {n}", "Award bid {n}"),
    "d_farmers": ("Kiltivatè yo", "Agriculteurs", "Farmers"),
    "d_name": ("Non", "Nom", "Name"),
    "d_phone": ("Telefòn (+509…)", "Téléphone (+509…)", "Phone (+509…)"),
    "d_enrol_farmer": ("Enskri kiltivatè a", "Inscrire l'agriculteur", "Enrol farmer"),
    # dashboards: carrier
    "d_open_jobs": ("Travay ki louvri", "Transports ouverts", "Open jobs"),
    "d_max_fee": ("frè maksimòm {amount}", "frais max {amount}", "max fee {amount}"),
    "d_your_fee": ("Frè ou (USD)", "Vos frais (USD)", "Your fee (USD)"),
    "d_within_days": ("Livre nan (jou)", "Livré sous (jours)", "Delivered within (days)"),
    "d_bid_on_job": (
        "Fè yon òf sou travay {n}",
        "Faire une offre sur le transport {n}",
        "Bid on job {n}",
    ),
    "d_your_bids": ("Òf ou yo", "Vos offres", "Your bids"),
    "d_bid_on": (
        "Òf {n} sou travay {job}: {amount} · {status}",
        "Offre {n} sur le transport {job} : {amount} · {status}",
        "Bid {n} on job {job}: {amount} · {status}",
    ),
    "d_your_jobs": (
        "Travay ou yo: pran ak livre",
        "Vos transports : enlèvements et livraisons",
        "Your jobs: pickups and deliveries",
    ),
    "d_area5": ("Zòn (5 karaktè)", "Zone (5 caractères)", "Area (5 characters)"),
    "d_receive_consignment": (
        "Resevwa chajman {n}",
        "Recevoir l'expédition {n}",
        "Receive consignment {n}",
    ),
    "d_picked_up": ("Chajman travay {n} pran", "Transport {n} enlevé", "Picked up job {n}"),
    "d_hand_over": (
        "Remèt li bay ekspòtatè a",
        "Remettre à l'exportateur",
        "Hand over to the exporter",
    ),
    "d_delivered": ("Travay {n} livre", "Transport {n} livré", "Delivered job {n}"),
    # dashboards: exporter
    "d_order_line": (
        "{weight} {crop} a {price}/kg · depo {deposit}",
        "{weight} {crop} à {price}/kg · acompte {deposit}",
        "{weight} {crop} at {price}/kg · deposit {deposit}",
    ),
    "d_fund_order": ("Finanse kòmand {n}", "Financer la commande {n}", "Fund order {n}"),
    "d_accepted_kg": ("Pwa ou aksepte (kg)", "Poids accepté (kg)", "Accepted weight (kg)"),
    "d_rejected_lots": ("Lo ou refize", "Lots refusés", "Rejected lots"),
    "d_confirm_shipment": (
        "Konfime chajman kòmand {n}",
        "Confirmer l'expédition de la commande {n}",
        "Confirm shipment of order {n}",
    ),
    "d_dispute_reason": ("Rezon diskisyon an", "Motif du litige", "Reason for dispute"),
    "d_dispute_order": ("Konteste kòmand {n}", "Contester la commande {n}", "Dispute order {n}"),
    # dashboards: financier
    "d_open_requests": (
        "Demann avans ki louvri",
        "Demandes d'avance ouvertes",
        "Open advance requests",
    ),
    "d_asks": (
        "mande {amount} (maksimòm {max})",
        "demande {amount} (max {max})",
        "asks {amount} (max {max})",
    ),
    "d_history": (
        "Istwa verifye: {delivered} kòmand livre · {on_time}/{deliveries} livrezon alè ·"
        " {repaid} avans ranbouse · {defaulted} pa ranbouse",
        "Historique vérifié : {delivered} commandes livrées · {on_time}/{deliveries}"
        " livraisons à temps · {repaid} avances remboursées · {defaulted} impayées",
        "Verified history: {delivered} orders delivered · {on_time}/{deliveries} deliveries"
        " on time · {repaid} advances repaid · {defaulted} defaulted",
    ),
    "d_your_offer": (
        "Òf ou {n}: {amount}, frè {fee} · {status}",
        "Votre offre {n} : {amount}, frais {fee} · {status}",
        "Your offer {n}: {amount}, fee {fee} · {status}",
    ),
    "d_amount_usd": ("Montan (USD)", "Montant (USD)", "Amount (USD)"),
    "d_fee_usd": ("Frè (USD)", "Frais (USD)", "Fee (USD)"),
    "d_offer_days": ("Òf la valab (jou)", "Offre valable (jours)", "Offer stands (days)"),
    "d_make_offer": (
        "Fè yon òf sou demann {n}",
        "Faire une offre sur la demande {n}",
        "Make offer on request {n}",
    ),
    "d_portfolio": (
        "Pòtfèy ak ranbousman",
        "Portefeuille et remboursements",
        "Portfolio and repayments",
    ),
    "d_advance": ("Avans", "Avance", "Advance"),
    "d_amount": ("Montan", "Montant", "Amount"),
    "d_due": ("Pou peye", "Dû", "Due"),
    "d_repaid": ("Ranbouse", "Remboursé", "Repaid"),
    "d_agent_orders": (
        "Kòmand kote ou se ajan ki lage lajan an",
        "Commandes dont vous êtes l'agent de déblocage",
        "Orders you are release agent for",
    ),
    "d_release_state": ("lage: {state}", "déblocage : {state}", "release: {state}"),
    "d_documents": ("Dokiman yo prezante:", "Documents présentés :", "Documents presented:"),
    "d_waive": (
        "Pa tann fen delè diskisyon an",
        "Renoncer au délai de litige",
        "Waive the dispute window",
    ),
    "d_release_order": ("Lage kòmand {n}", "Débloquer la commande {n}", "Release order {n}"),
    "d_refuse_reason": ("Rezon pou refize", "Motif du refus", "Reason to refuse"),
    "d_refuse_release": (
        "Refize lage kòmand {n}",
        "Refuser le déblocage de la commande {n}",
        "Refuse release of order {n}",
    ),
    # dashboards: operator
    "d_new_key": (
        "Nouvo kle API pou {org} (li parèt yon sèl fwa):",
        "Nouvelle clé API pour {org} (affichée une seule fois) :",
        "New API key for {org} (shown once):",
    ),
    "d_key_issued": (
        "Kle {prefix}… te deja bay.",
        "La clé {prefix}… était déjà émise.",
        "Key {prefix}… was already issued.",
    ),
    "d_user_added": (
        "Itilizatè {user} ajoute pou {org}.",
        "Utilisateur {user} ajouté pour {org}.",
        "User {user} added for {org}.",
    ),
    "d_health": ("Sante sistèm nan", "État du système", "Health"),
    "d_chain_head": ("Dènye blòk chèn lan", "Tête de la chaîne", "Chain head"),
    "d_unreachable": ("pa reponn", "injoignable", "unreachable"),
    "d_mirror": ("Kopi SQL (mirror)", "Miroir SQL", "Mirror"),
    "d_behind": ("{n} dèyè", "{n} de retard", "{n} behind"),
    "d_outbox": ("Tranzaksyon pou voye (outbox)", "Transactions à envoyer (outbox)", "Outbox"),
    "d_oldest_pending": (
        "pi ansyen an k ap tann: {when}",
        "la plus ancienne en attente : {when}",
        "oldest pending {when}",
    ),
    "d_orgs_keys": ("Òganizasyon ak kle", "Organisations et clés", "Organisations and keys"),
    "d_role": ("Wòl", "Rôle", "Role"),
    "d_address": ("Adrès", "Adresse", "Address"),
    "d_keys": ("Kle", "Clés", "Keys"),
    "d_new_key_col": ("Nouvo kle", "Nouvelle clé", "New key"),
    "d_label": ("Etikèt", "Libellé", "Label"),
    "d_issue_key": ("Bay kle pou {name}", "Émettre une clé pour {name}", "Issue key for {name}"),
    "d_new_org": ("Nouvo òganizasyon", "Nouvelle organisation", "New organisation"),
    "d_create_org": ("Kreye òganizasyon an", "Créer l'organisation", "Create organisation"),
    "d_new_user": (
        "Nouvo itilizatè tablo",
        "Nouvel utilisateur du tableau de bord",
        "New dashboard user",
    ),
    "d_organisation": ("Òganizasyon", "Organisation", "Organisation"),
    "d_add_user": ("Ajoute itilizatè a", "Ajouter l'utilisateur", "Add user"),
    "d_disputes": ("Diskisyon", "Litiges", "Disputes"),
    "d_reason": ("rezon", "motif", "reason"),
    "d_gas": (
        "Gaz chak òganizasyon depanse (24 è)",
        "Gaz dépensé par organisation (24 h)",
        "Gas spent per organisation (24 h)",
    ),
    "d_gas_spent": ("Depanse (wei)", "Dépensé (wei)", "Spent (wei)"),
    "d_topups": ("Rechaj", "Recharges", "Top-ups"),
    "d_gas_left": ("Rès (wei)", "Restant (wei)", "Remaining (wei)"),
    "d_sms_outbox": ("SMS pou voye", "SMS sortants", "SMS outbox"),
    "d_phone_col": ("Telefòn", "Téléphone", "Phone"),
    "d_kind": ("Kalite", "Type", "Kind"),
    "d_attempts": ("Esè", "Tentatives", "Attempts"),
    # dashboards: roles without a page of their own
    "d_other_role": (
        "Wòl sa a travay ak API a ak SMS pou kounye a:",
        "Ce rôle passe par l'API et les SMS pour l'instant :",
        "This role works through the API and SMS for now:",
    ),
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


def status(lang: Lang, name: str, kind: str = "") -> str:
    """A status (``OrderStatus.SETTLED.name``) in the reader's words; ``kind`` ``job`` for
    transport jobs, whose noun is masculine in French."""
    key = f"st_{kind}_{name.lower()}" if kind else f"st_{name.lower()}"
    if key not in CATALOGUE:
        return name.lower().replace("_", " ")
    return t(lang, key)


def role(lang: Lang, name: str) -> str:
    """An organisation's role (``cooperative``) in the reader's words."""
    key = f"role_{name}"
    return t(lang, key) if key in CATALOGUE else name


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
