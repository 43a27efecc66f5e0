// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IClusterRegistry, ISaleEscrow, ILienHolder} from "./KonbitInterfaces.sol";
import {RegistryGated} from "./RegistryGated.sol";

/// @title FinanceMarket
/// @notice Purchase-order finance: a cooperative asks for an advance against a funded order
///         (capped at `ltvBps` of the order's deposit, its expected proceeds); financiers offer
///         (amount, fee, expiry); the cooperative accepts one; the financier's tokens go straight
///         to the cooperative and SaleEscrow records a lien of amount + fee that it repays first
///         at settlement. A refund (or a short payment) marks the advance defaulted. Each
///         cooperative's repayment history is kept on chain for later lenders.
/// @dev The market never holds tokens: acceptance moves them with transferFrom (the financier
///      approves this contract beforehand).
contract FinanceMarket is RegistryGated, ILienHolder, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint8 public constant REQUEST_OPEN = 1;
    uint8 public constant REQUEST_CANCELLED = 2;
    uint8 public constant ADVANCE_ACTIVE = 3;
    uint8 public constant ADVANCE_REPAID = 4;
    uint8 public constant ADVANCE_DEFAULTED = 5;

    uint8 public constant OFFER_OPEN = 1;
    uint8 public constant OFFER_WITHDRAWN = 2;
    uint8 public constant OFFER_ACCEPTED = 3;

    uint8 private constant ORDER_FUNDED = 3;
    uint8 private constant ORDER_SHIPPED = 4;
    uint256 public constant BPS = 10_000;

    /// @notice An advance request; once an offer is accepted it is the advance (same id).
    struct Request {
        address cooperative;
        uint64 orderId;
        uint8 status;
        address financier;
        uint128 amount;
        uint128 due;
    }

    struct Offer {
        uint64 requestId;
        address financier;
        uint8 status;
        uint64 expiry;
        uint128 amount;
        uint128 fee;
    }

    /// @notice A cooperative's verified credit history.
    struct History {
        uint32 advances;
        uint32 repaid;
        uint32 defaulted;
        uint128 borrowed;
        uint128 repaidAmount;
    }

    /// @notice The escrow holding the orders advanced against.
    ISaleEscrow public immutable escrow;

    /// @notice Loan-to-value cap in basis points of an order's deposit.
    uint16 public ltvBps = 7_000;
    /// @notice Id the next request gets (ids start at 1).
    uint64 public nextRequestId = 1;
    /// @notice Id the next offer gets (ids start at 1).
    uint64 public nextOfferId = 1;

    /// @notice Requests / advances by id.
    mapping(uint64 requestId => Request) public requests;
    /// @notice Offers by id.
    mapping(uint64 offerId => Offer) public offers;
    /// @notice Credit history per cooperative.
    mapping(address cooperative => History) public histories;

    /// @notice The loan-to-value cap changed.
    event LtvSet(uint16 ltvBps);
    /// @notice A cooperative asked for an advance against an order.
    event AdvanceRequested(
        uint64 indexed requestId,
        uint64 indexed orderId,
        address indexed cooperative,
        address token,
        uint256 amount,
        uint256 maxAmount
    );
    /// @notice The cooperative withdrew its request.
    event AdvanceRequestCancelled(uint64 indexed requestId, address indexed cooperative);
    /// @notice A financier offered an advance.
    event OfferMade(
        uint64 indexed offerId,
        uint64 indexed requestId,
        address indexed financier,
        uint64 orderId,
        uint256 amount,
        uint256 fee,
        uint64 expiry
    );
    /// @notice A financier withdrew an offer.
    event OfferWithdrawn(uint64 indexed offerId, uint64 indexed requestId, address indexed financier);
    /// @notice The cooperative accepted an offer; `amount` went to it and `due` is the lien.
    event AdvanceDisbursed(
        uint64 indexed advanceId,
        uint64 indexed offerId,
        uint64 indexed orderId,
        address cooperative,
        address financier,
        uint256 amount,
        uint256 fee,
        uint256 due
    );
    /// @notice The escrow repaid the advance in full at settlement.
    event AdvanceRepaid(
        uint64 indexed advanceId, uint64 indexed orderId, address indexed cooperative, address financier, uint256 repaid
    );
    /// @notice The advance defaulted (refund, or payment short of the lien); `repaid` may be partial.
    event AdvanceDefaulted(
        uint64 indexed advanceId,
        uint64 indexed orderId,
        address indexed cooperative,
        address financier,
        uint256 repaid,
        uint256 due
    );

    error NotOrderCooperative(uint64 orderId, address caller);
    error OrderNotFinanceable(uint64 orderId, uint8 status);
    error OrderHasLien(uint64 orderId);
    error ExceedsLtv(uint256 amount, uint256 maxAmount);
    error UnknownRequest(uint64 requestId);
    error BadRequestStatus(uint64 requestId, uint8 status);
    error NotRequestCooperative(uint64 requestId, address caller);
    error OfferExceedsRequest(uint256 amount, uint256 requested);
    error OfferExceedsProceeds(uint256 due, uint256 deposit);
    error ExpiryInPast(uint64 expiry);
    error UnknownOffer(uint64 offerId);
    error BadOfferStatus(uint64 offerId, uint8 status);
    error NotOfferFinancier(uint64 offerId, address caller);
    error OfferExpired(uint64 offerId, uint64 expiry);
    error NotEscrow(address caller);

    /// @param registry_ The ClusterRegistry.
    /// @param escrow_ The SaleEscrow.
    constructor(IClusterRegistry registry_, ISaleEscrow escrow_) RegistryGated(registry_) {
        if (address(escrow_) == address(0)) revert ZeroAddress();
        escrow = escrow_;
    }

    /// @notice Set the loan-to-value cap.
    /// @dev Operator only; at most 10,000 bps.
    /// @param newLtvBps The cap in basis points of an order's deposit.
    function setLtvBps(uint16 newLtvBps) external onlyRegistryRole(OPERATOR_ROLE) {
        if (newLtvBps > BPS) revert InvalidBps(newLtvBps);
        ltvBps = newLtvBps;
        emit LtvSet(newLtvBps);
    }

    /// @notice The order's cooperative asks for an advance against a funded (or shipped) order.
    /// @param orderId The SaleEscrow order.
    /// @param amount The advance wanted, at most deposit * ltvBps / 10,000.
    /// @return requestId The new request's id (also the advance id once funded).
    function requestAdvance(uint64 orderId, uint128 amount) external returns (uint64 requestId) {
        // Only the fields needed here are read from the escrow's summary tuple.
        // slither-disable-next-line unused-return
        (, address coop, address token, uint8 status, uint256 deposit, bool hasLien) = escrow.orderSummary(orderId);
        if (coop != msg.sender) revert NotOrderCooperative(orderId, msg.sender);
        if (status != ORDER_FUNDED && status != ORDER_SHIPPED) revert OrderNotFinanceable(orderId, status);
        if (hasLien) revert OrderHasLien(orderId);
        if (amount == 0) revert InvalidAmount();
        uint256 maxAmount = (deposit * ltvBps) / BPS;
        if (amount > maxAmount) revert ExceedsLtv(amount, maxAmount);
        requestId = nextRequestId++;
        requests[requestId] = Request({
            cooperative: msg.sender,
            orderId: orderId,
            status: REQUEST_OPEN,
            financier: address(0),
            amount: amount,
            due: 0
        });
        emit AdvanceRequested(requestId, orderId, msg.sender, token, amount, maxAmount);
    }

    /// @notice The cooperative cancels its open request.
    /// @param requestId The request.
    function cancelRequest(uint64 requestId) external {
        Request storage r = _request(requestId);
        if (r.cooperative != msg.sender) revert NotRequestCooperative(requestId, msg.sender);
        if (r.status != REQUEST_OPEN) revert BadRequestStatus(requestId, r.status);
        r.status = REQUEST_CANCELLED;
        emit AdvanceRequestCancelled(requestId, msg.sender);
    }

    /// @notice A financier offers an advance on an open request.
    /// @dev Financiers only. amount + fee may not exceed the order's deposit. The financier must
    ///      approve this contract for `amount` of the order's token before acceptance.
    /// @param requestId The request.
    /// @param amount Advance offered, at most the amount requested.
    /// @param fee The financier's fee, repaid with the advance.
    /// @param expiry Last time the offer can be accepted.
    /// @return offerId The new offer's id.
    function makeOffer(uint64 requestId, uint128 amount, uint128 fee, uint64 expiry)
        external
        onlyRegistryRole(FINANCIER_ROLE)
        returns (uint64 offerId)
    {
        Request storage r = _request(requestId);
        if (r.status != REQUEST_OPEN) revert BadRequestStatus(requestId, r.status);
        if (amount == 0) revert InvalidAmount();
        if (amount > r.amount) revert OfferExceedsRequest(amount, r.amount);
        if (expiry <= block.timestamp) revert ExpiryInPast(expiry);
        // slither-disable-next-line unused-return
        (,,,, uint256 deposit,) = escrow.orderSummary(r.orderId);
        uint256 due = uint256(amount) + fee;
        if (due > deposit) revert OfferExceedsProceeds(due, deposit);
        offerId = nextOfferId++;
        offers[offerId] = Offer({
            requestId: requestId,
            financier: msg.sender,
            status: OFFER_OPEN,
            expiry: expiry,
            amount: amount,
            fee: fee
        });
        emit OfferMade(offerId, requestId, msg.sender, r.orderId, amount, fee, expiry);
    }

    /// @notice The financier withdraws an open offer.
    /// @param offerId The offer.
    function withdrawOffer(uint64 offerId) external {
        Offer storage f = _offer(offerId);
        if (f.financier != msg.sender) revert NotOfferFinancier(offerId, msg.sender);
        if (f.status != OFFER_OPEN) revert BadOfferStatus(offerId, f.status);
        f.status = OFFER_WITHDRAWN;
        emit OfferWithdrawn(offerId, f.requestId, msg.sender);
    }

    /// @notice The cooperative accepts an offer: SaleEscrow records the lien and the financier's
    ///         tokens move to the cooperative.
    /// @param offerId The offer.
    function acceptOffer(uint64 offerId) external nonReentrant {
        Offer storage f = _offer(offerId);
        uint64 requestId = f.requestId;
        Request storage r = requests[requestId];
        if (r.cooperative != msg.sender) revert NotRequestCooperative(requestId, msg.sender);
        if (r.status != REQUEST_OPEN) revert BadRequestStatus(requestId, r.status);
        if (f.status != OFFER_OPEN) revert BadOfferStatus(offerId, f.status);
        if (block.timestamp > f.expiry) revert OfferExpired(offerId, f.expiry);
        // slither-disable-next-line unused-return
        (,, address token,,,) = escrow.orderSummary(r.orderId);

        address financier = f.financier;
        uint128 amount = f.amount;
        uint128 due = amount + f.fee;
        f.status = OFFER_ACCEPTED;
        r.status = ADVANCE_ACTIVE;
        r.financier = financier;
        r.amount = amount;
        r.due = due;
        History storage h = histories[msg.sender];
        h.advances += 1;
        h.borrowed += amount;
        emit AdvanceDisbursed(requestId, offerId, r.orderId, msg.sender, financier, amount, f.fee, due);

        escrow.registerLien(r.orderId, requestId, financier, due);
        // `financier` is the offer's maker, who approved this market for the advance; only the
        // request's cooperative can trigger this, once, for an open and unexpired offer.
        // slither-disable-next-line arbitrary-send-erc20
        IERC20(token).safeTransferFrom(financier, msg.sender, amount);
    }

    /// @notice Called by SaleEscrow when the order settles or is refunded.
    /// @param advanceId The advance (request id).
    /// @param repaid What the escrow paid the financier.
    /// @param due What was owed.
    function onLienSettled(uint64 advanceId, uint256 repaid, uint256 due) external {
        if (msg.sender != address(escrow)) revert NotEscrow(msg.sender);
        Request storage r = _request(advanceId);
        if (r.status != ADVANCE_ACTIVE) revert BadRequestStatus(advanceId, r.status);
        History storage h = histories[r.cooperative];
        h.repaidAmount += uint128(repaid);
        if (repaid >= due) {
            r.status = ADVANCE_REPAID;
            h.repaid += 1;
            emit AdvanceRepaid(advanceId, r.orderId, r.cooperative, r.financier, repaid);
        } else {
            r.status = ADVANCE_DEFAULTED;
            h.defaulted += 1;
            emit AdvanceDefaulted(advanceId, r.orderId, r.cooperative, r.financier, repaid, due);
        }
    }

    function _request(uint64 requestId) private view returns (Request storage r) {
        r = requests[requestId];
        if (r.status == 0) revert UnknownRequest(requestId);
    }

    function _offer(uint64 offerId) private view returns (Offer storage f) {
        f = offers[offerId];
        if (f.status == 0) revert UnknownOffer(offerId);
    }
}
