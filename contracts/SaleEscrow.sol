// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IClusterRegistry, ITraceability, ILienHolder} from "./KonbitInterfaces.sol";
import {RegistryGated} from "./RegistryGated.sol";

/// @title SaleEscrow
/// @notice Purchase orders between an exporter and a cooperative, escrowed in an allow-listed
///         ERC-20 stablecoin and released by a waterfall: the financier's lien (advance + fee),
///         the carrier's fee, the cooperative's fee, then the farmers pro rata to the accepted
///         grams of their lots. Settlement is chunked with a cursor.
/// @dev Roles come from the ClusterRegistry (an OpenZeppelin AccessControl): EXPORTER_ROLE,
///      COOPERATIVE_ROLE, ARBITER_ROLE, OPERATOR_ROLE, and the system roles
///      FINANCE_CONTRACT_ROLE / LOGISTICS_CONTRACT_ROLE for the markets.
///
///      Rounding rule (all integer, floor):
///        deposit  = floor(grams * pricePerKg / 1000)
///        payment  = floor(acceptedGrams * pricePerKg / 1000)   (or the arbiter's amount)
///        exporter refund = deposit - payment
///        lien paid = min(lien due, payment); carrier paid = min(fee, rest);
///        cooperative fee = min(floor(payment * feeBps / 10000), rest); farmer pool = rest.
///        Farmer share of the k-th eligible lot (in consignment order), with C_k the cumulative
///        eligible grams up to and including it and E the total eligible grams:
///          share_k = floor(pool * C_k / E) - floor(pool * C_{k-1} / E).
///        Shares telescope to exactly `pool`; each differs from the exact pro-rata value by
///        less than one minor unit. If E is 0 the pool goes to the cooperative.
///      Only plain ERC-20 stablecoins may be allow-listed (no fee-on-transfer or rebasing tokens):
///      the escrow's accounting assumes it receives exactly the deposit.
///      Every token leaving the contract goes to the order's funder (the exporter, or the
///      financier who funded it for the exporter), lien financier, carrier, cooperative or a
///      farmer of an eligible lot; the parts of one order sum to its deposit.
///
///      Release agent (optional): a financier both parties agreed on before funding. Once delivery
///      is confirmed, the cooperative (or the order's carrier) presents the shipping documents as
///      hashes; the agent releases (settlement may start; the dispute window waived or not, as the
///      agent chooses) or refuses with a reason hash (the order is disputed: the arbiter rules).
///      An absent agent never freezes money: `agentWindow` seconds after the dispute window,
///      anyone may settle as without an agent.
///
///      Financier funding (optional): the exporter names a financier and the hash of their
///      agreement; that financier funds the deposit for the exporter. Every refund (the deadline
///      refund and the unused part of the deposit at settlement) goes to whoever funded.
contract SaleEscrow is RegistryGated, ReentrancyGuard {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    // ------------------------------------------------------------------ constants

    uint8 public constant PROPOSED = 1;
    uint8 public constant ACCEPTED = 2;
    uint8 public constant FUNDED = 3;
    uint8 public constant SHIPPED = 4;
    uint8 public constant DELIVERED = 5;
    uint8 public constant DISPUTED = 6;
    uint8 public constant RESOLVED = 7;
    uint8 public constant SETTLING = 8;
    uint8 public constant SETTLED = 9;
    uint8 public constant REFUNDED = 10;
    uint8 public constant CANCELLED = 11;

    uint8 public constant PAY_EXPORTER_REFUND = 1;
    uint8 public constant PAY_FINANCIER = 2;
    uint8 public constant PAY_CARRIER = 3;
    uint8 public constant PAY_COOPERATIVE_FEE = 4;
    uint8 public constant PAY_COOPERATIVE_RESIDUAL = 5;
    uint8 public constant PAY_FUNDER_REFUND = 6;

    /// @notice Release-agent states: none, proposed by one party, agreed by both, documents
    ///         presented, released, refused, lapsed (settlement started without the agent).
    uint8 public constant AGENT_NONE = 0;
    uint8 public constant AGENT_PROPOSED = 1;
    uint8 public constant AGENT_AGREED = 2;
    uint8 public constant AGENT_PRESENTED = 3;
    uint8 public constant AGENT_RELEASED = 4;
    uint8 public constant AGENT_REFUSED = 5;
    uint8 public constant AGENT_LAPSED = 6;

    uint256 public constant BPS = 10_000;
    uint256 public constant MAX_DISPUTE_WINDOW = 30 days;
    /// @notice Longest time after the dispute window a release agent may be given to act.
    uint32 public constant MAX_AGENT_WINDOW = 30 days;

    // ------------------------------------------------------------------ types

    struct Order {
        // slot 0
        address exporter;
        uint64 deliveryDeadline;
        uint8 status;
        uint8 minGrade;
        // slot 1
        address cooperative;
        uint16 coopFeeBps;
        uint16 crop;
        uint64 consignmentId;
        // slot 2
        address token;
        uint64 disputeUntil;
        // slot 3
        uint64 grams;
        uint128 pricePerKg;
        uint64 acceptedGrams;
        // slot 4
        uint128 deposit;
        uint128 payment;
    }

    struct Settlement {
        // slot 0 (read-only once settling)
        uint128 farmerPool;
        uint64 eligibleGrams;
        // slot 1 (advanced per chunk)
        uint32 cursor;
        uint64 cumulativeGrams;
        uint128 paidToFarmers;
    }

    struct Lien {
        address financier;
        uint64 advanceId;
        address market;
        uint128 amountDue;
    }

    struct Carrier {
        address carrier;
        uint64 jobId;
        uint128 fee;
    }

    /// @notice An order's release agent and the documents presented to it.
    struct Release {
        // slot 0
        address agent;
        uint32 window;
        uint8 state;
        bool proposedByCooperative;
        bool waived;
        // slot 1
        bytes32 documentsHash;
    }

    /// @notice A financier named by the exporter to fund the order for it.
    struct Funding {
        address financier;
        bool funded;
        bytes32 agreementHash;
    }

    /// @dev The waterfall head computed when settlement starts (memory only).
    struct Head {
        bool started;
        Lien lien;
        address carrier;
        address funder;
        uint256 exporterRefund;
        uint256 lienPaid;
        uint256 carrierPaid;
        uint256 coopFee;
        uint256 residual;
    }

    // ------------------------------------------------------------------ storage

    /// @notice The lot / consignment ledger.
    ITraceability public immutable traceability;

    /// @notice Stablecoins orders may be denominated in.
    mapping(address token => bool allowed) public allowedTokens;
    /// @notice Seconds after delivery confirmation during which either party may dispute.
    uint64 public disputeWindow = 3 days;
    /// @notice Id the next order gets (ids start at 1).
    uint64 public nextOrderId = 1;

    mapping(uint64 orderId => Order) private _orders;
    /// @notice Settlement progress of an order.
    mapping(uint64 orderId => Settlement) public settlements;
    /// @notice The financier's lien on an order, if any.
    mapping(uint64 orderId => Lien) public liens;
    /// @notice The carrier paid out of an order's waterfall, if any.
    mapping(uint64 orderId => Carrier) public carriers;
    /// @notice An order's release agent, if any, and the documents presented to it.
    mapping(uint64 orderId => Release) public releases;
    /// @notice The financier named to fund an order for its exporter, if any.
    mapping(uint64 orderId => Funding) public fundings;

    // ------------------------------------------------------------------ events

    /// @notice A token was added to or removed from the allow-list.
    event TokenAllowed(address indexed token, bool allowed);
    /// @notice The dispute window changed (applies to deliveries confirmed afterwards).
    event DisputeWindowSet(uint64 seconds_);
    /// @notice An exporter proposed a purchase order to a cooperative.
    event OrderProposed(
        uint64 indexed orderId,
        address indexed exporter,
        address indexed cooperative,
        address token,
        uint16 crop,
        uint64 grams,
        uint128 pricePerKg,
        uint8 minGrade,
        uint64 deliveryDeadline,
        uint16 coopFeeBps,
        uint128 deposit
    );
    /// @notice Any order status change; `status` is the new status.
    event OrderStatusChanged(uint64 indexed orderId, uint8 status, address indexed by);
    /// @notice The escrow was funded with the full deposit by `funder`: the exporter, or the
    ///         financier named to fund the order for it.
    event OrderFunded(uint64 indexed orderId, address indexed funder, address indexed token, uint256 amount);
    /// @notice The exporter named a financier to fund the order for it (zero: none), with the hash
    ///         of their agreement (the exporter's obligation to the financier, settled off chain).
    event FunderNamed(
        uint64 indexed orderId, address indexed exporter, address indexed financier, bytes32 agreementHash
    );
    /// @notice A party proposed a release agent (zero: no agent) and the seconds after the dispute
    ///         window it has to act; the other party must agree before funding.
    event ReleaseAgentProposed(uint64 indexed orderId, address indexed by, address indexed agent, uint32 window);
    /// @notice The other party agreed: the order has this release agent (zero: none).
    event ReleaseAgentAgreed(uint64 indexed orderId, address indexed by, address indexed agent, uint32 window);
    /// @notice The cooperative or carrier presented the shipping documents (hashes) to the agent;
    ///         `documentsHash` = keccak256(abi.encodePacked(documentHashes)); the agent may act
    ///         until `agentDeadline`.
    event DocumentsPresented(
        uint64 indexed orderId,
        address indexed by,
        bytes32 documentsHash,
        bytes32[] documentHashes,
        uint64 agentDeadline
    );
    /// @notice The release agent released the escrow: settlement may start (at once if it waived
    ///         the dispute window, else once the window closes).
    event EscrowReleased(uint64 indexed orderId, address indexed agent, bytes32 documentsHash, bool disputeWindowWaived);
    /// @notice The release agent refused; the order is disputed and goes to the arbiter.
    event ReleaseRefused(uint64 indexed orderId, address indexed agent, bytes32 documentsHash, bytes32 reasonHash);
    /// @notice Settlement started without the agent acting in time.
    event ReleaseAgentLapsed(uint64 indexed orderId, address indexed agent, uint64 agentDeadline);
    /// @notice The cooperative shipped the order's consignment (sealed in Traceability).
    event OrderShipped(uint64 indexed orderId, uint64 indexed consignmentId);
    /// @notice The exporter confirmed delivery; `payment` = floor(acceptedGrams * pricePerKg / 1000).
    event DeliveryConfirmed(
        uint64 indexed orderId,
        uint64 indexed consignmentId,
        uint64 acceptedGrams,
        uint64 eligibleGrams,
        uint256 payment,
        uint64 disputeUntil,
        uint64[] rejectedLots
    );
    /// @notice A party disputed the delivery within the window.
    event OrderDisputed(uint64 indexed orderId, address indexed by, bytes32 reasonHash);
    /// @notice An arbiter resolved a dispute; `payment` goes through the waterfall, the rest of
    ///         the deposit returns to the exporter.
    event DisputeResolved(uint64 indexed orderId, address indexed arbiter, uint256 payment, bytes32 rulingHash);
    /// @notice The deposit was refunded to its funder after the deadline passed without delivery.
    event OrderRefunded(uint64 indexed orderId, address indexed funder, uint256 amount);
    /// @notice A financier's lien was recorded on an order by a finance market.
    event LienRegistered(
        uint64 indexed orderId, uint64 indexed advanceId, address indexed financier, address market, uint256 amountDue
    );
    /// @notice A lien was closed: repaid in full, partly, or not at all (defaulted = repaid < due).
    event LienSettled(
        uint64 indexed orderId,
        uint64 indexed advanceId,
        address indexed financier,
        uint256 repaid,
        uint256 due,
        bool defaulted
    );
    /// @notice A carrier (from a logistics job) was named for an order's waterfall.
    event CarrierSet(uint64 indexed orderId, uint64 indexed jobId, address indexed carrier, uint256 fee);
    /// @notice The carrier was removed from an order's waterfall.
    event CarrierCleared(uint64 indexed orderId, uint64 indexed jobId, address indexed carrier);
    /// @notice Settlement began: the waterfall's head was computed and the farmer pool fixed.
    event SettlementStarted(
        uint64 indexed orderId, uint64 indexed consignmentId, uint256 payment, uint256 farmerPool, uint64 eligibleGrams
    );
    /// @notice One waterfall payment (kind: 1 exporter refund, 2 financier, 3 carrier,
    ///         4 cooperative fee, 5 cooperative residual when no lot is eligible, 6 refund to the
    ///         financier who funded the order).
    event WaterfallPaid(uint64 indexed orderId, address indexed payee, uint8 indexed kind, uint256 amount);
    /// @notice A farmer was paid for one eligible lot.
    event FarmerPaid(uint64 indexed orderId, uint64 indexed lotId, address indexed farmer, uint64 grams, uint256 amount);
    /// @notice A settlement chunk finished; `cursor` lots of `lotCount` are done.
    event SettlementProgress(uint64 indexed orderId, uint32 cursor, uint32 lotCount, uint256 paidToFarmers);

    // ------------------------------------------------------------------ errors

    error TokenNotAllowed(address token);
    error DisputeWindowTooLong(uint64 seconds_);
    error UnknownOrder(uint64 orderId);
    error BadStatus(uint64 orderId, uint8 status);
    error NotExporter(uint64 orderId, address caller);
    error NotCooperative(uint64 orderId, address caller);
    error NotAParty(uint64 orderId, address caller);
    error DeadlinePassed(uint64 orderId, uint64 deadline);
    error DeadlineNotPassed(uint64 orderId, uint64 deadline);
    error AcceptedExceedsOrdered(uint64 acceptedGrams, uint64 orderedGrams);
    error AcceptedExceedsEligible(uint64 acceptedGrams, uint64 eligibleGrams);
    error DisputeWindowClosed(uint64 orderId, uint64 disputeUntil);
    error DisputeWindowOpen(uint64 orderId, uint64 disputeUntil);
    error PaymentExceedsDeposit(uint256 payment, uint256 deposit);
    error LienExists(uint64 orderId);
    error CarrierJobMismatch(uint64 orderId, uint64 jobId);
    error CarrierAlreadyPaid(uint64 orderId);
    error InvalidAgentWindow(uint32 window);
    error NoAgentProposal(uint64 orderId);
    error NotCounterparty(uint64 orderId, address caller);
    error ReleaseAgentMismatch(uint64 orderId, address agent, uint32 window);
    error ReleaseAgentNotAgreed(uint64 orderId);
    error NoReleaseAgent(uint64 orderId);
    error NotDocumentPresenter(uint64 orderId, address caller);
    error NoDocuments(uint64 orderId);
    error NotReleaseAgent(uint64 orderId, address caller);
    error DocumentsNotPresented(uint64 orderId);
    error DocumentsMismatch(uint64 orderId, bytes32 presented);
    error AgentWindowClosed(uint64 orderId, uint64 agentDeadline);
    error AwaitingReleaseAgent(uint64 orderId, uint64 agentDeadline);
    error DisputeWindowWaived(uint64 orderId);
    error MissingAgreement();
    error NotFunder(uint64 orderId, address caller);
    error AgreementMismatch(uint64 orderId, bytes32 agreementHash);

    /// @param registry_ The ClusterRegistry.
    /// @param traceability_ The Traceability ledger.
    constructor(IClusterRegistry registry_, ITraceability traceability_) RegistryGated(registry_) {
        if (address(traceability_) == address(0)) revert ZeroAddress();
        traceability = traceability_;
    }

    // ------------------------------------------------------------------ admin

    /// @notice Allow or disallow a stablecoin for new orders.
    /// @dev Operator only. Existing orders keep their token.
    /// @param token The ERC-20.
    /// @param allowed Whether it may be used.
    function setTokenAllowed(address token, bool allowed) external onlyRegistryRole(OPERATOR_ROLE) {
        if (token == address(0)) revert ZeroAddress();
        allowedTokens[token] = allowed;
        emit TokenAllowed(token, allowed);
    }

    /// @notice Set the dispute window for deliveries confirmed from now on.
    /// @dev Operator only; at most MAX_DISPUTE_WINDOW.
    /// @param seconds_ The window in seconds.
    function setDisputeWindow(uint64 seconds_) external onlyRegistryRole(OPERATOR_ROLE) {
        if (seconds_ > MAX_DISPUTE_WINDOW) revert DisputeWindowTooLong(seconds_);
        disputeWindow = seconds_;
        emit DisputeWindowSet(seconds_);
    }

    // ------------------------------------------------------------------ order lifecycle

    /// @notice Propose a purchase order to a cooperative.
    /// @dev Exporter only. The deposit the exporter must fund is floor(grams * pricePerKg / 1000).
    /// @param cooperative The selling cooperative (must hold COOPERATIVE_ROLE).
    /// @param token An allow-listed stablecoin.
    /// @param crop Crop code.
    /// @param grams Ordered quantity in grams.
    /// @param pricePerKg Price per kilogram in token minor units.
    /// @param minGrade Minimum grade of the lots.
    /// @param deliveryDeadline Unix time after which an undelivered order may be refunded.
    /// @param coopFeeBps The cooperative's fee in basis points of the payment.
    /// @return orderId The new order's id.
    function propose(
        address cooperative,
        address token,
        uint16 crop,
        uint64 grams,
        uint128 pricePerKg,
        uint8 minGrade,
        uint64 deliveryDeadline,
        uint16 coopFeeBps
    ) external onlyRegistryRole(EXPORTER_ROLE) returns (uint64 orderId) {
        _requireRole(COOPERATIVE_ROLE, cooperative);
        if (!allowedTokens[token]) revert TokenNotAllowed(token);
        if (coopFeeBps > BPS) revert InvalidBps(coopFeeBps);
        if (deliveryDeadline <= block.timestamp) revert DeadlineInPast(deliveryDeadline);
        uint256 deposit = (uint256(grams) * pricePerKg) / 1000;
        if (deposit == 0) revert InvalidAmount();

        orderId = nextOrderId++;
        Order storage o = _orders[orderId];
        o.exporter = msg.sender;
        o.deliveryDeadline = deliveryDeadline;
        o.status = PROPOSED;
        o.minGrade = minGrade;
        o.cooperative = cooperative;
        o.coopFeeBps = coopFeeBps;
        o.crop = crop;
        o.token = token;
        o.grams = grams;
        o.pricePerKg = pricePerKg;
        o.deposit = deposit.toUint128();
        emit OrderProposed(
            orderId,
            msg.sender,
            cooperative,
            token,
            crop,
            grams,
            pricePerKg,
            minGrade,
            deliveryDeadline,
            coopFeeBps,
            uint128(deposit)
        );
    }

    /// @notice The cooperative accepts a proposed order.
    /// @param orderId The order.
    function accept(uint64 orderId) external {
        Order storage o = _order(orderId);
        if (msg.sender != o.cooperative) revert NotCooperative(orderId, msg.sender);
        _requireStatus(orderId, o.status, PROPOSED);
        _setStatus(orderId, o, ACCEPTED);
    }

    /// @notice Cancel an order before it is funded.
    /// @dev Exporter or cooperative of the order; status Proposed or Accepted.
    /// @param orderId The order.
    function cancel(uint64 orderId) external {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter && msg.sender != o.cooperative) revert NotAParty(orderId, msg.sender);
        if (o.status != PROPOSED && o.status != ACCEPTED) revert BadStatus(orderId, o.status);
        _setStatus(orderId, o, CANCELLED);
    }

    /// @notice A party proposes a release agent for the order (or `agent` zero: no agent), with the
    ///         seconds after the dispute window the agent has to release or refuse.
    /// @dev Exporter or cooperative, while Proposed or Accepted (before funding). The agent must
    ///      hold FINANCIER_ROLE. The other party must agree (agreeReleaseAgent) before funding; a
    ///      new proposal replaces any earlier one, agreed or not.
    /// @param orderId The order.
    /// @param agent A financier, or zero to have no agent.
    /// @param window Seconds after the dispute window (1 .. MAX_AGENT_WINDOW; 0 with no agent).
    function proposeReleaseAgent(uint64 orderId, address agent, uint32 window) external {
        Order storage o = _order(orderId);
        bool byCooperative = msg.sender == o.cooperative;
        if (msg.sender != o.exporter && !byCooperative) revert NotAParty(orderId, msg.sender);
        if (o.status != PROPOSED && o.status != ACCEPTED) revert BadStatus(orderId, o.status);
        if (agent == address(0)) {
            if (window != 0) revert InvalidAgentWindow(window);
        } else {
            if (window == 0 || window > MAX_AGENT_WINDOW) revert InvalidAgentWindow(window);
            _requireRole(FINANCIER_ROLE, agent);
        }
        releases[orderId] = Release({
            agent: agent,
            window: window,
            state: AGENT_PROPOSED,
            proposedByCooperative: byCooperative,
            waived: false,
            documentsHash: bytes32(0)
        });
        emit ReleaseAgentProposed(orderId, msg.sender, agent, window);
    }

    /// @notice The other party agrees to the proposed release agent (or to having none).
    /// @dev The party that did not propose; the same agent and window as proposed (no race).
    /// @param orderId The order.
    /// @param agent The proposed agent.
    /// @param window The proposed window.
    function agreeReleaseAgent(uint64 orderId, address agent, uint32 window) external {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter && msg.sender != o.cooperative) revert NotAParty(orderId, msg.sender);
        if (o.status != PROPOSED && o.status != ACCEPTED) revert BadStatus(orderId, o.status);
        Release storage r = releases[orderId];
        if (r.state != AGENT_PROPOSED) revert NoAgentProposal(orderId);
        address counterparty = r.proposedByCooperative ? o.exporter : o.cooperative;
        if (msg.sender != counterparty) revert NotCounterparty(orderId, msg.sender);
        if (r.agent != agent || r.window != window) revert ReleaseAgentMismatch(orderId, agent, window);
        if (agent == address(0)) delete releases[orderId];
        else r.state = AGENT_AGREED;
        emit ReleaseAgentAgreed(orderId, msg.sender, agent, window);
    }

    /// @notice The exporter names a financier to fund the order for it (zero: none), with the hash
    ///         of their agreement.
    /// @dev Exporter only, while Proposed or Accepted. The financier must hold FINANCIER_ROLE.
    ///      The exporter may still fund the order itself.
    /// @param orderId The order.
    /// @param financier The financier, or zero to name none.
    /// @param agreementHash Hash of the exporter's financing agreement with the financier.
    function nameFunder(uint64 orderId, address financier, bytes32 agreementHash) external {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter) revert NotExporter(orderId, msg.sender);
        if (o.status != PROPOSED && o.status != ACCEPTED) revert BadStatus(orderId, o.status);
        if (financier == address(0)) {
            delete fundings[orderId];
        } else {
            if (agreementHash == bytes32(0)) revert MissingAgreement();
            _requireRole(FINANCIER_ROLE, financier);
            fundings[orderId] = Funding({financier: financier, funded: false, agreementHash: agreementHash});
        }
        emit FunderNamed(orderId, msg.sender, financier, agreementHash);
    }

    /// @notice The exporter funds the escrow with the full deposit (needs a prior ERC-20 approval).
    /// @param orderId An accepted order, before its deadline.
    function fund(uint64 orderId) external nonReentrant {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter) revert NotExporter(orderId, msg.sender);
        _fund(orderId, o);
    }

    /// @notice The financier named by the exporter funds the escrow for it (needs a prior ERC-20
    ///         approval); refunds then go to the financier.
    /// @param orderId An accepted order, before its deadline.
    /// @param agreementHash The agreement hash the exporter named (guards against a change).
    function fundFor(uint64 orderId, bytes32 agreementHash) external nonReentrant onlyRegistryRole(FINANCIER_ROLE) {
        Order storage o = _order(orderId);
        Funding storage f = fundings[orderId];
        if (msg.sender != f.financier) revert NotFunder(orderId, msg.sender);
        if (agreementHash != f.agreementHash) revert AgreementMismatch(orderId, agreementHash);
        f.funded = true;
        _fund(orderId, o);
    }

    /// @notice The cooperative (or the order's carrier) presents the shipping documents to the
    ///         release agent, as hashes (bill of lading, certificates, the buyer's receipt ...).
    /// @dev Order Delivered, with an agreed agent that has not acted, before the agent's deadline.
    ///      Presenting again replaces the earlier set.
    /// @param orderId The order.
    /// @param documentHashes Hashes of the documents (at least one).
    function presentDocuments(uint64 orderId, bytes32[] calldata documentHashes) external {
        Order storage o = _order(orderId);
        if (msg.sender != o.cooperative && (msg.sender != carriers[orderId].carrier || msg.sender == address(0))) {
            revert NotDocumentPresenter(orderId, msg.sender);
        }
        _requireStatus(orderId, o.status, DELIVERED);
        Release storage r = releases[orderId];
        if (r.state != AGENT_AGREED && r.state != AGENT_PRESENTED) revert NoReleaseAgent(orderId);
        uint64 deadline = o.disputeUntil + r.window;
        if (block.timestamp > deadline) revert AgentWindowClosed(orderId, deadline);
        if (documentHashes.length == 0) revert NoDocuments(orderId);
        bytes32 documentsHash = keccak256(abi.encodePacked(documentHashes));
        r.documentsHash = documentsHash;
        r.state = AGENT_PRESENTED;
        emit DocumentsPresented(orderId, msg.sender, documentsHash, documentHashes, deadline);
    }

    /// @notice The release agent releases the escrow against the documents presented.
    /// @dev The order's agent (holding FINANCIER_ROLE), order Delivered, documents presented,
    ///      before the agent's deadline. With `waiveDisputeWindow` settlement may start at once
    ///      and the parties can no longer dispute; otherwise settlement waits for the window.
    /// @param orderId The order.
    /// @param documentsHash The documents hash the agent checked (must be the one presented).
    /// @param waiveDisputeWindow Whether to waive the rest of the dispute window.
    function release(uint64 orderId, bytes32 documentsHash, bool waiveDisputeWindow)
        external
        onlyRegistryRole(FINANCIER_ROLE)
    {
        (, Release storage r) = _agentAction(orderId);
        if (r.state != AGENT_PRESENTED) revert DocumentsNotPresented(orderId);
        if (documentsHash != r.documentsHash) revert DocumentsMismatch(orderId, r.documentsHash);
        r.state = AGENT_RELEASED;
        r.waived = waiveDisputeWindow;
        // The order stays Delivered: settle() reads the release.
        emit EscrowReleased(orderId, msg.sender, documentsHash, waiveDisputeWindow);
    }

    /// @notice The release agent refuses to release: the order is disputed and goes to the arbiter.
    /// @dev The order's agent (holding FINANCIER_ROLE), order Delivered, before the agent's
    ///      deadline, with or without documents presented.
    /// @param orderId The order.
    /// @param reasonHash Hash of the agent's off-chain reasons.
    function refuseRelease(uint64 orderId, bytes32 reasonHash) external onlyRegistryRole(FINANCIER_ROLE) {
        (Order storage o, Release storage r) = _agentAction(orderId);
        r.state = AGENT_REFUSED;
        _setStatus(orderId, o, DISPUTED);
        emit ReleaseRefused(orderId, msg.sender, r.documentsHash, reasonHash);
        emit OrderDisputed(orderId, msg.sender, reasonHash);
    }

    /// @notice The cooperative ships the order's consignment; the consignment is sealed.
    /// @param orderId A funded order, before its deadline.
    /// @param consignmentId The cooperative's open consignment created for this order.
    function markShipped(uint64 orderId, uint64 consignmentId) external nonReentrant {
        Order storage o = _order(orderId);
        if (msg.sender != o.cooperative) revert NotCooperative(orderId, msg.sender);
        _requireStatus(orderId, o.status, FUNDED);
        if (block.timestamp > o.deliveryDeadline) revert DeadlinePassed(orderId, o.deliveryDeadline);
        o.consignmentId = consignmentId;
        _setStatus(orderId, o, SHIPPED);
        emit OrderShipped(orderId, consignmentId);
        traceability.lockForShipping(consignmentId, orderId, o.cooperative, o.minGrade);
    }

    /// @notice The exporter confirms delivery with the accepted grams and the rejected lots.
    /// @dev Payment = floor(acceptedGrams * pricePerKg / 1000). acceptedGrams may not exceed the
    ///      ordered grams nor the eligible grams of the consignment after the rejections.
    ///      Opens the dispute window.
    /// @param orderId A shipped order.
    /// @param acceptedGrams Grams accepted on arrival.
    /// @param rejectedLots Lots of the consignment rejected (excluded from farmer payouts).
    function confirmDelivery(uint64 orderId, uint64 acceptedGrams, uint64[] calldata rejectedLots)
        external
        nonReentrant
    {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter) revert NotExporter(orderId, msg.sender);
        _requireStatus(orderId, o.status, SHIPPED);
        if (acceptedGrams > o.grams) revert AcceptedExceedsOrdered(acceptedGrams, o.grams);
        uint64 consignmentId = o.consignmentId;
        uint64 eligible = traceability.freezeAtDelivery(consignmentId, rejectedLots);
        if (acceptedGrams > eligible) revert AcceptedExceedsEligible(acceptedGrams, eligible);
        uint256 payment = (uint256(acceptedGrams) * o.pricePerKg) / 1000;
        uint64 disputeUntil = uint64(block.timestamp) + disputeWindow;
        o.acceptedGrams = acceptedGrams;
        o.payment = uint128(payment); // <= deposit, which fits
        o.disputeUntil = disputeUntil;
        settlements[orderId].eligibleGrams = eligible;
        _setStatus(orderId, o, DELIVERED);
        emit DeliveryConfirmed(orderId, consignmentId, acceptedGrams, eligible, payment, disputeUntil, rejectedLots);
    }

    /// @notice Dispute a confirmed delivery within the dispute window.
    /// @dev Exporter or cooperative of the order.
    /// @param orderId A delivered order.
    /// @param reasonHash Hash of the off-chain statement of the dispute.
    function dispute(uint64 orderId, bytes32 reasonHash) external {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter && msg.sender != o.cooperative) revert NotAParty(orderId, msg.sender);
        _requireStatus(orderId, o.status, DELIVERED);
        if (block.timestamp > o.disputeUntil) revert DisputeWindowClosed(orderId, o.disputeUntil);
        Release storage r = releases[orderId];
        if (r.state == AGENT_RELEASED && r.waived) revert DisputeWindowWaived(orderId);
        _setStatus(orderId, o, DISPUTED);
        emit OrderDisputed(orderId, msg.sender, reasonHash);
    }

    /// @notice An arbiter resolves a dispute by fixing the payment (the seller side's share of the deposit).
    /// @dev Arbiter only. The payment runs through the waterfall; deposit - payment returns to the exporter.
    /// @param orderId A disputed order.
    /// @param payment Amount for the seller side, at most the deposit.
    /// @param rulingHash Hash of the off-chain ruling.
    function resolveDispute(uint64 orderId, uint256 payment, bytes32 rulingHash)
        external
        onlyRegistryRole(ARBITER_ROLE)
    {
        Order storage o = _order(orderId);
        _requireStatus(orderId, o.status, DISPUTED);
        if (payment > o.deposit) revert PaymentExceedsDeposit(payment, o.deposit);
        o.payment = uint128(payment);
        _setStatus(orderId, o, RESOLVED);
        emit DisputeResolved(orderId, msg.sender, payment, rulingHash);
    }

    /// @notice Refund the full deposit to its funder when the deadline passed without delivery.
    /// @dev Anyone may call (funds only go to the funder: the exporter, or the financier that
    ///      funded the order for it). A lien on the order is defaulted;
    ///      a shipped consignment is cancelled so its lots may be sold again.
    /// @param orderId A funded or shipped order past its deadline.
    function refund(uint64 orderId) external nonReentrant {
        Order storage o = _order(orderId);
        uint8 st = o.status;
        if (st != FUNDED && st != SHIPPED) revert BadStatus(orderId, st);
        if (block.timestamp <= o.deliveryDeadline) revert DeadlineNotPassed(orderId, o.deliveryDeadline);
        uint256 amount = o.deposit;
        address funder = _funder(orderId, o);
        _setStatus(orderId, o, REFUNDED);
        emit OrderRefunded(orderId, funder, amount);
        Lien memory lien = liens[orderId];
        if (lien.financier != address(0)) {
            emit LienSettled(orderId, lien.advanceId, lien.financier, 0, lien.amountDue, true);
        }
        if (st == SHIPPED) traceability.closeConsignment(o.consignmentId, true);
        if (lien.financier != address(0)) ILienHolder(lien.market).onLienSettled(lien.advanceId, 0, lien.amountDue);
        IERC20(o.token).safeTransfer(funder, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Advance the settlement of a delivered order by at most `maxLots` lots.
    /// @dev Anyone may call (the backend relays). The first call pays the waterfall's head
    ///      (exporter's unused deposit, financier, carrier, cooperative fee) and fixes the farmer
    ///      pool; every call pays the next lots from the cursor. Settleable when Delivered and
    ///      the dispute window has closed (with a release agent: once it released, at once if it
    ///      waived the window; or, if it did not act, once its deadline passed), when Resolved,
    ///      or while Settling. All state is written before any token leaves
    ///      (checks-effects-interactions).
    /// @param orderId The order.
    /// @param maxLots Maximum number of lots to process in this call (> 0).
    /// @return done True when the order is fully settled.
    function settle(uint64 orderId, uint256 maxLots) external nonReentrant returns (bool done) {
        if (maxLots == 0) revert InvalidAmount();
        Order storage o = _order(orderId);
        uint8 st = o.status;
        // Zero-initialised on purpose: `head.started` stays false unless settlement starts here.
        // slither-disable-next-line uninitialized-local
        Head memory head;
        if (st == DELIVERED) {
            _requireReleasable(orderId, o);
            head = _startSettlement(orderId, o);
        } else if (st == RESOLVED) {
            head = _startSettlement(orderId, o);
        } else if (st != SETTLING) {
            revert BadStatus(orderId, st);
        }
        (address[] memory farmers, uint256[] memory amounts, bool finished) = _settleChunk(orderId, o, maxLots);
        done = finished;

        // ---- interactions
        IERC20 token = IERC20(o.token);
        if (head.started) {
            _pay(token, head.funder, head.exporterRefund);
            if (head.lien.financier != address(0)) {
                _pay(token, head.lien.financier, head.lienPaid);
                ILienHolder(head.lien.market).onLienSettled(head.lien.advanceId, head.lienPaid, head.lien.amountDue);
            }
            _pay(token, head.carrier, head.carrierPaid);
            _pay(token, o.cooperative, head.coopFee + head.residual);
        }
        if (finished) traceability.closeConsignment(o.consignmentId, false);
        // One transfer per run of consecutive lots of the same farmer.
        address runFarmer = address(0);
        uint256 runAmount = 0;
        uint256 n = amounts.length;
        for (uint256 i; i < n; ++i) {
            uint256 amount = amounts[i];
            if (amount == 0) continue;
            address farmer = farmers[i];
            if (farmer != runFarmer) {
                _pay(token, runFarmer, runAmount);
                runFarmer = farmer;
                runAmount = amount;
            } else {
                runAmount += amount;
            }
        }
        _pay(token, runFarmer, runAmount);
    }

    // ------------------------------------------------------------------ market hooks

    /// @notice Record a financier's lien (advance + fee) on a funded or shipped order.
    /// @dev FinanceMarket only (FINANCE_CONTRACT_ROLE); the caller is called back at settlement or refund.
    /// @param orderId The order.
    /// @param advanceId The market's advance id.
    /// @param financier Who is repaid first.
    /// @param amountDue Advance plus fee.
    function registerLien(uint64 orderId, uint64 advanceId, address financier, uint256 amountDue)
        external
        onlyRegistryRole(FINANCE_CONTRACT_ROLE)
    {
        Order storage o = _order(orderId);
        if (o.status != FUNDED && o.status != SHIPPED) revert BadStatus(orderId, o.status);
        if (liens[orderId].financier != address(0)) revert LienExists(orderId);
        if (financier == address(0)) revert ZeroAddress();
        if (amountDue == 0) revert InvalidAmount();
        liens[orderId] = Lien({
            financier: financier,
            advanceId: advanceId,
            market: msg.sender,
            amountDue: amountDue.toUint128()
        });
        emit LienRegistered(orderId, advanceId, financier, msg.sender, amountDue);
    }

    /// @notice Name the carrier whose fee the waterfall pays.
    /// @dev LogisticsMarket only (LOGISTICS_CONTRACT_ROLE); order Accepted, Funded or Shipped. Replaces any previous carrier.
    /// @param orderId The order.
    /// @param jobId The logistics job.
    /// @param carrier The carrier's address.
    /// @param fee The agreed fee in token minor units.
    function setCarrier(uint64 orderId, uint64 jobId, address carrier, uint256 fee)
        external
        onlyRegistryRole(LOGISTICS_CONTRACT_ROLE)
    {
        Order storage o = _order(orderId);
        if (o.status != ACCEPTED && o.status != FUNDED && o.status != SHIPPED) revert BadStatus(orderId, o.status);
        if (carrier == address(0)) revert ZeroAddress();
        carriers[orderId] = Carrier({carrier: carrier, jobId: jobId, fee: fee.toUint128()});
        emit CarrierSet(orderId, jobId, carrier, fee);
    }

    /// @notice Remove the carrier of a job from an order's waterfall (job cancelled or expired).
    /// @dev LogisticsMarket only. Reverts once settlement started (the carrier is then being paid).
    /// @param orderId The order.
    /// @param jobId The job whose carrier is removed.
    function clearCarrier(uint64 orderId, uint64 jobId) external onlyRegistryRole(LOGISTICS_CONTRACT_ROLE) {
        Order storage o = _order(orderId);
        Carrier memory c = carriers[orderId];
        if (c.jobId != jobId || c.carrier == address(0)) revert CarrierJobMismatch(orderId, jobId);
        if (o.status == SETTLING || o.status == SETTLED) revert CarrierAlreadyPaid(orderId);
        delete carriers[orderId];
        emit CarrierCleared(orderId, jobId, c.carrier);
    }

    // ------------------------------------------------------------------ views

    /// @notice Full order terms and status.
    function getOrder(uint64 orderId) external view returns (Order memory) {
        return _orders[orderId];
    }

    /// @notice Parties, token, status, deposit and whether a lien exists.
    function orderSummary(uint64 orderId)
        external
        view
        returns (address exporter, address cooperative, address token, uint8 status, uint256 deposit, bool hasLien)
    {
        Order storage o = _orders[orderId];
        return (o.exporter, o.cooperative, o.token, o.status, o.deposit, liens[orderId].financier != address(0));
    }

    /// @notice Who funded an order (zero before funding): the exporter, or the financier that
    ///         funded it for the exporter. Refunds go to this address.
    function funderOf(uint64 orderId) external view returns (address) {
        Order storage o = _orders[orderId];
        if (o.status < FUNDED || o.status == CANCELLED) return address(0);
        return _funder(orderId, o);
    }

    /// @notice The release agent's deadline (0 before delivery or without an agent): after it,
    ///         anyone may settle without the agent.
    function agentDeadline(uint64 orderId) external view returns (uint64) {
        Release storage r = releases[orderId];
        uint64 until = _orders[orderId].disputeUntil;
        if (r.agent == address(0) || until == 0) return 0;
        return until + r.window;
    }

    /// @notice What the escrow still holds for an order (tokens it will pay out or refund).
    function amountHeld(uint64 orderId) external view returns (uint256) {
        Order storage o = _orders[orderId];
        uint8 st = o.status;
        if (st >= FUNDED && st <= RESOLVED) return o.deposit;
        if (st == SETTLING) {
            Settlement storage s = settlements[orderId];
            return s.farmerPool - s.paidToFarmers;
        }
        return 0;
    }

    // ------------------------------------------------------------------ internals

    /// @dev Computes and records the waterfall head; emits its events; transfers nothing.
    function _startSettlement(uint64 orderId, Order storage o) private returns (Head memory h) {
        h.started = true;
        uint256 payment = o.payment;
        uint256 rest = payment;
        h.exporterRefund = uint256(o.deposit) - payment;
        h.funder = _funder(orderId, o);

        h.lien = liens[orderId];
        h.lienPaid = h.lien.amountDue < rest ? h.lien.amountDue : rest;
        rest -= h.lienPaid;

        Carrier memory carrier = carriers[orderId];
        h.carrier = carrier.carrier;
        h.carrierPaid = carrier.fee < rest ? carrier.fee : rest;
        rest -= h.carrierPaid;

        uint256 coopFee = (payment * o.coopFeeBps) / BPS;
        if (coopFee > rest) coopFee = rest;
        h.coopFee = coopFee;
        rest -= coopFee;

        Settlement storage s = settlements[orderId];
        uint64 eligible = s.eligibleGrams;
        if (eligible == 0) {
            h.residual = rest;
            rest = 0;
        }
        s.farmerPool = uint128(rest);
        _setStatus(orderId, o, SETTLING);
        emit SettlementStarted(orderId, o.consignmentId, payment, rest, eligible);
        _emitPaid(
            orderId, h.funder, h.funder == o.exporter ? PAY_EXPORTER_REFUND : PAY_FUNDER_REFUND, h.exporterRefund
        );
        if (h.lien.financier != address(0)) {
            emit LienSettled(
                orderId, h.lien.advanceId, h.lien.financier, h.lienPaid, h.lien.amountDue, h.lienPaid < h.lien.amountDue
            );
            _emitPaid(orderId, h.lien.financier, PAY_FINANCIER, h.lienPaid);
        }
        _emitPaid(orderId, h.carrier, PAY_CARRIER, h.carrierPaid);
        _emitPaid(orderId, o.cooperative, PAY_COOPERATIVE_FEE, coopFee);
        _emitPaid(orderId, o.cooperative, PAY_COOPERATIVE_RESIDUAL, h.residual);
    }

    /// @dev Computes the next chunk's farmer shares, records progress and emits events; transfers nothing.
    function _settleChunk(uint64 orderId, Order storage o, uint256 maxLots)
        private
        returns (address[] memory farmers, uint256[] memory amounts, bool done)
    {
        Settlement storage s = settlements[orderId];
        // Only the lot count is needed from the consignment tuple.
        // slither-disable-next-line unused-return
        (,,,, uint32 lotCount,,) = traceability.consignmentInfo(o.consignmentId);
        uint32 cursor;
        if (s.farmerPool != 0) {
            uint64[] memory lotIds;
            uint64[] memory grams;
            cursor = s.cursor;
            (lotIds, farmers, grams) = traceability.settlementSlice(o.consignmentId, cursor, maxLots);
            amounts = _shares(orderId, s, lotIds, farmers, grams);
            cursor += uint32(lotIds.length);
            s.cursor = cursor;
        } else {
            // Nothing for farmers (no payment left, or no eligible lot): finish at once.
            cursor = lotCount;
            s.cursor = cursor;
        }
        if (cursor >= lotCount) {
            done = true;
            _setStatus(orderId, o, SETTLED);
        }
        emit SettlementProgress(orderId, cursor, lotCount, s.paidToFarmers);
    }

    /// @dev share_k = floor(pool * C_k / E) - floor(pool * C_{k-1} / E); emits FarmerPaid per
    ///      eligible lot. paidToFarmers is always floor(pool * C / E) for the cumulative C so far.
    function _shares(
        uint64 orderId,
        Settlement storage s,
        uint64[] memory lotIds,
        address[] memory farmers,
        uint64[] memory grams
    ) private returns (uint256[] memory amounts) {
        uint256 pool = s.farmerPool;
        uint256 eligible = s.eligibleGrams;
        uint256 cum = s.cumulativeGrams;
        uint256 prevCut = (pool * cum) / eligible;
        amounts = new uint256[](lotIds.length);
        for (uint256 i; i < lotIds.length; ++i) {
            if (grams[i] == 0) continue;
            cum += grams[i];
            uint256 cut = (pool * cum) / eligible;
            amounts[i] = cut - prevCut;
            prevCut = cut;
            emit FarmerPaid(orderId, lotIds[i], farmers[i], grams[i], amounts[i]);
        }
        s.cumulativeGrams = uint64(cum);
        s.paidToFarmers = uint128(prevCut);
    }

    /// @dev Funds an accepted order before its deadline with the caller's tokens; a release agent
    ///      must be agreed (or none proposed).
    function _fund(uint64 orderId, Order storage o) private {
        _requireStatus(orderId, o.status, ACCEPTED);
        if (block.timestamp > o.deliveryDeadline) revert DeadlinePassed(orderId, o.deliveryDeadline);
        if (releases[orderId].state == AGENT_PROPOSED) revert ReleaseAgentNotAgreed(orderId);
        uint256 deposit = o.deposit;
        IERC20 token = IERC20(o.token);
        _setStatus(orderId, o, FUNDED);
        emit OrderFunded(orderId, msg.sender, address(token), deposit);
        token.safeTransferFrom(msg.sender, address(this), deposit);
    }

    /// @dev Checks for a release-agent action: the caller is the order's agent, the order is
    ///      Delivered, the agent has not acted yet, and its deadline has not passed.
    function _agentAction(uint64 orderId) private view returns (Order storage o, Release storage r) {
        o = _order(orderId);
        r = releases[orderId];
        if (r.agent != msg.sender || (r.state != AGENT_AGREED && r.state != AGENT_PRESENTED)) {
            revert NotReleaseAgent(orderId, msg.sender);
        }
        _requireStatus(orderId, o.status, DELIVERED);
        uint64 deadline = o.disputeUntil + r.window;
        if (block.timestamp > deadline) revert AgentWindowClosed(orderId, deadline);
    }

    /// @dev Whether a Delivered order may start settling: without an agent once the dispute window
    ///      closed; with one once it released (at once if it waived the window), or once its
    ///      deadline passed without it acting (then it lapses).
    function _requireReleasable(uint64 orderId, Order storage o) private {
        Release storage r = releases[orderId];
        uint8 state = r.state;
        if (state == AGENT_AGREED || state == AGENT_PRESENTED) {
            uint64 deadline = o.disputeUntil + r.window;
            if (block.timestamp <= deadline) revert AwaitingReleaseAgent(orderId, deadline);
            r.state = AGENT_LAPSED;
            emit ReleaseAgentLapsed(orderId, r.agent, deadline);
        } else if (state != AGENT_RELEASED || !r.waived) {
            if (block.timestamp <= o.disputeUntil) revert DisputeWindowOpen(orderId, o.disputeUntil);
        }
    }

    /// @dev Who funded the order: the named financier if it funded, else the exporter.
    function _funder(uint64 orderId, Order storage o) private view returns (address) {
        Funding storage f = fundings[orderId];
        return f.funded ? f.financier : o.exporter;
    }

    function _emitPaid(uint64 orderId, address to, uint8 kind, uint256 amount) private {
        if (amount != 0) emit WaterfallPaid(orderId, to, kind, amount);
    }

    function _pay(IERC20 token, address to, uint256 amount) private {
        if (amount != 0) token.safeTransfer(to, amount);
    }

    function _setStatus(uint64 orderId, Order storage o, uint8 status) private {
        o.status = status;
        emit OrderStatusChanged(orderId, status, msg.sender);
    }

    function _order(uint64 orderId) private view returns (Order storage o) {
        o = _orders[orderId];
        if (o.status == 0) revert UnknownOrder(orderId);
    }

    function _requireStatus(uint64 orderId, uint8 actual, uint8 expected) private pure {
        if (actual != expected) revert BadStatus(orderId, actual);
    }
}
