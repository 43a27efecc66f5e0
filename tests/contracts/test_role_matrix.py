"""Role matrix: every restricted function reverts for every account that lacks the role (or is
not the named party), then succeeds for the one that has it."""

import pytest
from brownie import accounts, chain, web3
from conftest import (
    CERT,
    DAY,
    EVIDENCE,
    GEO,
    META,
    USD,
    consignment,
    delivered_order,
    err,
    funded_order,
    lot_input,
    propose,
    record,
    shipped_order,
)

ROLES = [
    "admin",
    "coop",
    "exporter",
    "carrier",
    "financier",
    "inspector",
    "arbiter",
    "farmer",
    "outsider",
]


def _job(s, award=False):
    oid = funded_order(s)
    lots = record(s, [(s.farmer, 100_000)])
    cid = consignment(s, oid, lots)
    job = s.logistics.postJob(
        cid, GEO, GEO, chain.time() + 10 * DAY, 10 * USD, {"from": s.coop}
    ).return_value
    bid = s.logistics.placeBid(job, USD, chain.time() + DAY, {"from": s.carrier}).return_value
    if award:
        s.logistics.awardJob(job, bid, {"from": s.coop})
    return oid, cid, job, bid


def _picked(s):
    oid, cid, job, _ = _job(s, award=True)
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    s.trace.handOver(cid, s.carrier, 0, GEO, EVIDENCE, {"from": s.coop})
    s.trace.confirmReceipt(cid, 0, GEO, EVIDENCE, {"from": s.carrier})
    return oid, cid, job


def _delivered_job(s):
    _oid, cid, job = _picked(s)
    s.logistics.recordPickup(job, {"from": s.carrier})
    s.trace.handOver(cid, s.exporter, 0, GEO, EVIDENCE, {"from": s.carrier})
    s.trace.confirmReceipt(cid, 0, GEO, EVIDENCE, {"from": s.exporter})
    return job


def _request(s):
    oid = funded_order(s)
    return s.finance.requestAdvance(oid, 10 * USD, {"from": s.coop}).return_value


def _offer(s):
    rid = _request(s)
    return s.finance.makeOffer(
        rid, 10 * USD, USD, chain.time() + DAY, {"from": s.financier}
    ).return_value


def _shipped_cid(s):
    _oid, cid, _lots = shipped_order(s)
    s.trace.handOver(cid, s.carrier, 0, GEO, EVIDENCE, {"from": s.coop})
    return cid


AGREEMENT = "0x" + "a9" * 32


def _agent_proposed(s):
    oid = propose(s)
    s.escrow.proposeReleaseAgent(oid, s.financier, DAY, {"from": s.exporter})
    return oid


def _funder_named(s):
    oid = propose(s)
    s.escrow.nameFunder(oid, s.financier, AGREEMENT, {"from": s.exporter})
    s.escrow.accept(oid, {"from": s.coop})
    return oid


def _agent_delivered(s):
    oid = _agent_proposed(s)
    s.escrow.agreeReleaseAgent(oid, s.financier, DAY, {"from": s.coop})
    s.escrow.accept(oid, {"from": s.coop})
    s.escrow.fund(oid, {"from": s.exporter})
    cid = consignment(s, oid, record(s, [(s.farmer, 10_000)]))
    s.escrow.markShipped(oid, cid, {"from": s.coop})
    s.escrow.confirmDelivery(oid, 10_000, [], {"from": s.exporter})
    return oid


def _docs_hash(docs):
    return web3.keccak(hexstr="".join(str(d)[2:] for d in docs))


# name -> (allowed roles, the custom error every other role gets (or {role: error, "*": default}),
#          setup(s) -> (bound function, args))
CASES = {
    # ClusterRegistry
    "registry.registerOrganisation": (
        ["admin"],
        "AccessControlUnauthorizedAccount",
        lambda s: (
            s.registry.registerOrganisation,
            [accounts[8], s.registry.EXPORTER_ROLE(), META],
        ),
    ),
    "registry.updateOrganisationMetadata": (
        ["admin"],
        "AccessControlUnauthorizedAccount",
        lambda s: (s.registry.updateOrganisationMetadata, [s.coop, META]),
    ),
    "registry.grantRole": (
        ["admin"],
        "AccessControlUnauthorizedAccount",
        lambda s: (s.registry.grantRole, [s.registry.COOPERATIVE_ROLE(), accounts[8]]),
    ),
    "registry.revokeRole": (
        ["admin"],
        "AccessControlUnauthorizedAccount",
        lambda s: (s.registry.revokeRole, [s.registry.COOPERATIVE_ROLE(), s.coop2]),
    ),
    "registry.enrollFarmer": (
        ["coop"],
        "NotACooperative",
        lambda s: (s.registry.enrollFarmer, [accounts.add()]),
    ),
    "registry.setFarmerActive": (
        ["coop"],
        "NotACooperative",
        lambda s: (s.registry.setFarmerActive, [s.farmer, False]),
    ),
    # Traceability
    "trace.recordLot": (
        ["coop"],
        "MissingRole",
        lambda s: (s.trace.recordLot, [lot_input(s.farmer, 10)]),
    ),
    "trace.recordLots": (
        ["coop"],
        "MissingRole",
        lambda s: (s.trace.recordLots, [[lot_input(s.farmer, 10)]]),
    ),
    "trace.splitLot": (
        ["coop"],
        "NotLotCooperative",
        lambda s: (s.trace.splitLot, [record(s, [(s.farmer, 10)])[0], [4, 6]]),
    ),
    "trace.createConsignment": (
        ["coop"],
        "MissingRole",
        lambda s: (s.trace.createConsignment, [1, 2]),
    ),
    "trace.addLots": (
        ["coop"],
        "NotConsignmentCooperative",
        lambda s: (
            s.trace.addLots,
            [consignment(s, 1, []), record(s, [(s.farmer, 10)])],
        ),
    ),
    "trace.removeLots": (
        ["coop"],
        "NotConsignmentCooperative",
        lambda s: (lambda lots: (s.trace.removeLots, [consignment(s, 1, lots), lots]))(
            record(s, [(s.farmer, 10)])
        ),
    ),
    "trace.cancelConsignment": (
        ["coop"],
        "NotConsignmentCooperative",
        lambda s: (s.trace.cancelConsignment, [consignment(s, 1, [])]),
    ),
    "trace.inspectLot": (
        ["inspector"],
        "MissingRole",
        lambda s: (s.trace.inspectLot, [record(s, [(s.farmer, 10)])[0], True, 3, CERT]),
    ),
    "trace.inspectConsignment": (
        ["inspector"],
        "MissingRole",
        lambda s: (s.trace.inspectConsignment, [consignment(s, 1, []), True, 3, CERT]),
    ),
    "trace.handOver": (
        ["coop"],
        "NotCustodian",
        lambda s: (
            s.trace.handOver,
            [shipped_order(s)[1], s.carrier, 0, GEO, EVIDENCE],
        ),
    ),
    "trace.confirmReceipt": (
        ["carrier"],
        "NotPendingCustodian",
        lambda s: (s.trace.confirmReceipt, [_shipped_cid(s), 0, GEO, EVIDENCE]),
    ),
    "trace.lockForShipping": (
        [],
        "MissingRole",
        lambda s: (s.trace.lockForShipping, [1, 1, s.coop, 0]),
    ),
    "trace.freezeAtDelivery": (
        [],
        "MissingRole",
        lambda s: (s.trace.freezeAtDelivery, [1, []]),
    ),
    "trace.closeConsignment": (
        [],
        "MissingRole",
        lambda s: (s.trace.closeConsignment, [1, True]),
    ),
    # SaleEscrow
    "escrow.setTokenAllowed": (
        ["admin"],
        "MissingRole",
        lambda s: (s.escrow.setTokenAllowed, [s.usd, True]),
    ),
    "escrow.setDisputeWindow": (
        ["admin"],
        "MissingRole",
        lambda s: (s.escrow.setDisputeWindow, [DAY]),
    ),
    "escrow.propose": (
        ["exporter"],
        "MissingRole",
        lambda s: (
            s.escrow.propose,
            [s.coop, s.usd, 1, 1000, USD, 2, chain.time() + DAY, 100],
        ),
    ),
    "escrow.accept": (
        ["coop"],
        "NotCooperative",
        lambda s: (s.escrow.accept, [propose(s)]),
    ),
    "escrow.cancel": (
        ["coop", "exporter"],
        "NotAParty",
        lambda s: (s.escrow.cancel, [propose(s)]),
    ),
    "escrow.fund": (
        ["exporter"],
        "NotExporter",
        lambda s: (
            lambda oid: (
                s.escrow.accept(oid, {"from": s.coop}),
                (s.escrow.fund, [oid]),
            )[1]
        )(propose(s)),
    ),
    "escrow.markShipped": (
        ["coop"],
        "NotCooperative",
        lambda s: (
            lambda oid: (
                s.escrow.markShipped,
                [oid, consignment(s, oid, record(s, [(s.farmer, 10)]))],
            )
        )(funded_order(s)),
    ),
    "escrow.confirmDelivery": (
        ["exporter"],
        "NotExporter",
        lambda s: (s.escrow.confirmDelivery, [shipped_order(s)[0], 1, []]),
    ),
    "escrow.dispute": (
        ["coop", "exporter"],
        "NotAParty",
        lambda s: (s.escrow.dispute, [delivered_order(s)[0], CERT]),
    ),
    "escrow.resolveDispute": (
        ["arbiter"],
        "MissingRole",
        lambda s: (
            lambda oid: (
                s.escrow.dispute(oid, CERT, {"from": s.coop}),
                (s.escrow.resolveDispute, [oid, 1, CERT]),
            )[1]
        )(delivered_order(s)[0]),
    ),
    "escrow.registerLien": (
        [],
        "MissingRole",
        lambda s: (s.escrow.registerLien, [funded_order(s), 1, s.financier, 1]),
    ),
    "escrow.setCarrier": (
        [],
        "MissingRole",
        lambda s: (s.escrow.setCarrier, [funded_order(s), 1, s.carrier, 1]),
    ),
    "escrow.clearCarrier": (
        [],
        "MissingRole",
        lambda s: (s.escrow.clearCarrier, [_job(s, award=True)[0], 1]),
    ),
    "escrow.proposeReleaseAgent": (
        ["coop", "exporter"],
        "NotAParty",
        lambda s: (s.escrow.proposeReleaseAgent, [propose(s), s.financier, DAY]),
    ),
    "escrow.agreeReleaseAgent": (
        ["coop"],
        {"exporter": "NotCounterparty", "*": "NotAParty"},
        lambda s: (s.escrow.agreeReleaseAgent, [_agent_proposed(s), s.financier, DAY]),
    ),
    "escrow.nameFunder": (
        ["exporter"],
        "NotExporter",
        lambda s: (s.escrow.nameFunder, [propose(s), s.financier, AGREEMENT]),
    ),
    "escrow.fundFor": (
        ["financier"],
        "MissingRole",
        lambda s: (s.escrow.fundFor, [_funder_named(s), AGREEMENT]),
    ),
    "escrow.presentDocuments": (
        ["coop"],
        "NotDocumentPresenter",
        lambda s: (s.escrow.presentDocuments, [_agent_delivered(s), [CERT]]),
    ),
    "escrow.release": (
        ["financier"],
        "MissingRole",
        lambda s: (
            lambda oid: (
                s.escrow.presentDocuments(oid, [CERT], {"from": s.coop}),
                (s.escrow.release, [oid, _docs_hash([CERT]), False]),
            )[1]
        )(_agent_delivered(s)),
    ),
    "escrow.refuseRelease": (
        ["financier"],
        "MissingRole",
        lambda s: (s.escrow.refuseRelease, [_agent_delivered(s), CERT]),
    ),
    # LogisticsMarket
    "logistics.postJob": (
        ["coop"],
        "MissingRole",
        lambda s: (
            s.logistics.postJob,
            [consignment(s, 1, []), GEO, GEO, chain.time() + DAY, USD],
        ),
    ),
    "logistics.placeBid": (
        ["carrier"],
        "MissingRole",
        lambda s: (s.logistics.placeBid, [_job(s)[2], USD, chain.time() + DAY]),
    ),
    "logistics.withdrawBid": (
        ["carrier"],
        "NotBidder",
        lambda s: (s.logistics.withdrawBid, [_job(s)[3]]),
    ),
    "logistics.awardJob": (
        ["coop"],
        "NotJobCooperative",
        lambda s: (s.logistics.awardJob, list(_job(s)[2:])),
    ),
    "logistics.cancelJob": (
        ["coop"],
        "NotJobCooperative",
        lambda s: (s.logistics.cancelJob, [_job(s)[2]]),
    ),
    "logistics.recordPickup": (
        ["carrier"],
        "NotJobCarrier",
        lambda s: (s.logistics.recordPickup, [_picked(s)[2]]),
    ),
    "logistics.recordDelivery": (
        ["carrier", "coop"],
        "NotJobParty",
        lambda s: (s.logistics.recordDelivery, [_delivered_job(s)]),
    ),
    # FinanceMarket
    "finance.setLtvBps": (
        ["admin"],
        "MissingRole",
        lambda s: (s.finance.setLtvBps, [5000]),
    ),
    "finance.requestAdvance": (
        ["coop"],
        "NotOrderCooperative",
        lambda s: (s.finance.requestAdvance, [funded_order(s), USD]),
    ),
    "finance.cancelRequest": (
        ["coop"],
        "NotRequestCooperative",
        lambda s: (s.finance.cancelRequest, [_request(s)]),
    ),
    "finance.makeOffer": (
        ["financier"],
        "MissingRole",
        lambda s: (s.finance.makeOffer, [_request(s), USD, 0, chain.time() + DAY]),
    ),
    "finance.withdrawOffer": (
        ["financier"],
        "NotOfferFinancier",
        lambda s: (s.finance.withdrawOffer, [_offer(s)]),
    ),
    "finance.acceptOffer": (
        ["coop"],
        "NotRequestCooperative",
        lambda s: (s.finance.acceptOffer, [_offer(s)]),
    ),
    "finance.onLienSettled": (
        [],
        "NotEscrow",
        lambda s: (s.finance.onLienSettled, [1, 0, 0]),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_role_matrix(system, name):
    allowed, errors, setup = CASES[name]
    fn, args = setup(system)
    for role in ROLES:
        if role in allowed:
            continue
        expected = errors if isinstance(errors, str) else errors.get(role, errors["*"])
        with err(expected):
            fn(*args, {"from": getattr(system, role)})
    if allowed:
        fn(*args, {"from": getattr(system, allowed[0])})


def test_every_restricted_escrow_function_is_in_the_matrix(system):
    """Every state-changing SaleEscrow function is in the matrix, or open to anyone on purpose."""
    open_to_anyone = {"refund", "settle"}
    abi = [i for i in system.escrow.abi if i["type"] == "function"]
    writes = {i["name"] for i in abi if i["stateMutability"] not in ("view", "pure")}
    covered = {n.split(".", 1)[1] for n in CASES if n.startswith("escrow.")}
    assert writes - open_to_anyone == covered
