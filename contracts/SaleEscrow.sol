// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IClusterRegistry, ITraceability, ILienHolder} from "./KonbitInterfaces.sol";

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
///      Every token leaving the contract goes to the order's exporter, financier, carrier,
///      cooperative or a farmer of an eligible lot; the parts of one order sum to its deposit.
contract SaleEscrow is ReentrancyGuard {
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

    uint256 public constant BPS = 10_000;
    uint256 public constant MAX_DISPUTE_WINDOW = 30 days;

    bytes32 private constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 private constant COOPERATIVE_ROLE = keccak256("COOPERATIVE_ROLE");
    bytes32 private constant EXPORTER_ROLE = keccak256("EXPORTER_ROLE");
    bytes32 private constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 private constant LOGISTICS_CONTRACT_ROLE = keccak256("LOGISTICS_CONTRACT_ROLE");
    bytes32 private constant FINANCE_CONTRACT_ROLE = keccak256("FINANCE_CONTRACT_ROLE");

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

    /// @dev The waterfall head computed when settlement starts (memory only).
    struct Head {
        bool started;
        Lien lien;
        address carrier;
        uint256 exporterRefund;
        uint256 lienPaid;
        uint256 carrierPaid;
        uint256 coopFee;
        uint256 residual;
    }

    // ------------------------------------------------------------------ storage

    /// @notice The registry asked for roles.
    IClusterRegistry public immutable registry;
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
    /// @notice The exporter funded the escrow with the full deposit.
    event OrderFunded(uint64 indexed orderId, address indexed exporter, address indexed token, uint256 amount);
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
    /// @notice The deposit was refunded to the exporter after the deadline passed without delivery.
    event OrderRefunded(uint64 indexed orderId, address indexed exporter, uint256 amount);
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
    ///         4 cooperative fee, 5 cooperative residual when no lot is eligible).
    event WaterfallPaid(uint64 indexed orderId, address indexed payee, uint8 indexed kind, uint256 amount);
    /// @notice A farmer was paid for one eligible lot.
    event FarmerPaid(uint64 indexed orderId, uint64 indexed lotId, address indexed farmer, uint64 grams, uint256 amount);
    /// @notice A settlement chunk finished; `cursor` lots of `lotCount` are done.
    event SettlementProgress(uint64 indexed orderId, uint32 cursor, uint32 lotCount, uint256 paidToFarmers);

    // ------------------------------------------------------------------ errors

    error ZeroAddress();
    error MissingRole(bytes32 role, address account);
    error TokenNotAllowed(address token);
    error InvalidAmount();
    error InvalidBps(uint256 bps);
    error DeadlineInPast(uint64 deadline);
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

    modifier onlyRegistryRole(bytes32 role) {
        _requireRole(role);
        _;
    }

    /// @param registry_ The ClusterRegistry.
    /// @param traceability_ The Traceability ledger.
    constructor(IClusterRegistry registry_, ITraceability traceability_) {
        if (address(registry_) == address(0) || address(traceability_) == address(0)) revert ZeroAddress();
        registry = registry_;
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
        if (!registry.hasRole(COOPERATIVE_ROLE, cooperative)) revert MissingRole(COOPERATIVE_ROLE, cooperative);
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

    /// @notice The exporter funds the escrow with the full deposit (needs a prior ERC-20 approval).
    /// @param orderId An accepted order, before its deadline.
    function fund(uint64 orderId) external nonReentrant {
        Order storage o = _order(orderId);
        if (msg.sender != o.exporter) revert NotExporter(orderId, msg.sender);
        _requireStatus(orderId, o.status, ACCEPTED);
        if (block.timestamp > o.deliveryDeadline) revert DeadlinePassed(orderId, o.deliveryDeadline);
        uint256 deposit = o.deposit;
        IERC20 token = IERC20(o.token);
        _setStatus(orderId, o, FUNDED);
        emit OrderFunded(orderId, msg.sender, address(token), deposit);
        token.safeTransferFrom(msg.sender, address(this), deposit);
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

    /// @notice Refund the full deposit to the exporter when the deadline passed without delivery.
    /// @dev Anyone may call (funds only go to the exporter). A lien on the order is defaulted;
    ///      a shipped consignment is cancelled so its lots may be sold again.
    /// @param orderId A funded or shipped order past its deadline.
    function refund(uint64 orderId) external nonReentrant {
        Order storage o = _order(orderId);
        uint8 st = o.status;
        if (st != FUNDED && st != SHIPPED) revert BadStatus(orderId, st);
        if (block.timestamp <= o.deliveryDeadline) revert DeadlineNotPassed(orderId, o.deliveryDeadline);
        uint256 amount = o.deposit;
        _setStatus(orderId, o, REFUNDED);
        emit OrderRefunded(orderId, o.exporter, amount);
        Lien memory lien = liens[orderId];
        if (lien.financier != address(0)) {
            emit LienSettled(orderId, lien.advanceId, lien.financier, 0, lien.amountDue, true);
        }
        if (st == SHIPPED) traceability.closeConsignment(o.consignmentId, true);
        if (lien.financier != address(0)) ILienHolder(lien.market).onLienSettled(lien.advanceId, 0, lien.amountDue);
        IERC20(o.token).safeTransfer(o.exporter, amount);
    }

    // ------------------------------------------------------------------ settlement

    /// @notice Advance the settlement of a delivered order by at most `maxLots` lots.
    /// @dev Anyone may call (the backend relays). The first call pays the waterfall's head
    ///      (exporter's unused deposit, financier, carrier, cooperative fee) and fixes the farmer
    ///      pool; every call pays the next lots from the cursor. Settleable when Delivered and
    ///      the dispute window has closed, when Resolved, or while Settling. All state is written
    ///      before any token leaves (checks-effects-interactions).
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
            if (block.timestamp <= o.disputeUntil) revert DisputeWindowOpen(orderId, o.disputeUntil);
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
            _pay(token, o.exporter, head.exporterRefund);
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
        _emitPaid(orderId, o.exporter, PAY_EXPORTER_REFUND, h.exporterRefund);
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

    function _requireRole(bytes32 role) private view {
        if (!registry.hasRole(role, msg.sender)) revert MissingRole(role, msg.sender);
    }
}
