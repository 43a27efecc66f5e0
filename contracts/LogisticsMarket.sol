// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClusterRegistry, ITraceability, ISaleEscrow} from "./KonbitInterfaces.sol";
import {RegistryGated} from "./RegistryGated.sol";

/// @title LogisticsMarket
/// @notice Transport jobs for consignments: a cooperative posts a job, carriers bid, the
///         cooperative awards one bid; pickup and delivery are read from the custody hand-overs
///         in Traceability; the carrier's fee is paid by SaleEscrow's waterfall. Keeps an
///         on-time record per carrier.
/// @dev Rules:
///      - A consignment has at most one live job (Open, Awarded or InTransit).
///      - Cancel: the cooperative may cancel an Open or Awarded (not yet picked up) job.
///      - Timeout: once the deadline passes, anyone may expire an Open job, or an Awarded job
///        that was never picked up (the carrier's `missed` count grows). A job in transit cannot
///        expire: the goods are with the carrier; a late delivery counts as `late`.
///      - On time: the block time at which the next party confirmed receipt from the carrier
///        (Traceability custodySince) is at or before the job deadline.
///      - The fee is only paid if the sale settles; on a refund the carrier is not paid.
contract LogisticsMarket is RegistryGated {
    uint8 public constant JOB_OPEN = 1;
    uint8 public constant JOB_AWARDED = 2;
    uint8 public constant JOB_IN_TRANSIT = 3;
    uint8 public constant JOB_DELIVERED = 4;
    uint8 public constant JOB_CANCELLED = 5;
    uint8 public constant JOB_EXPIRED = 6;

    uint8 private constant CONSIGNMENT_OPEN = 1;
    uint8 private constant CONSIGNMENT_SHIPPED = 2;

    struct Job {
        // slot 0
        address cooperative;
        uint64 consignmentId;
        uint8 status;
        // slot 1
        address carrier;
        uint64 deadline;
        // slot 2
        uint64 orderId;
        uint64 acceptedBidId;
        uint128 maxFee;
        // slot 3
        uint128 fee;
    }

    struct Bid {
        uint64 jobId;
        address carrier;
        bool active;
        uint128 fee;
        uint64 eta;
    }

    /// @notice A carrier's delivery record.
    struct CarrierRecord {
        uint32 delivered;
        uint32 onTime;
        uint32 late;
        uint32 missed;
    }

    /// @notice The custody ledger.
    ITraceability public immutable traceability;
    /// @notice The escrow whose waterfall pays the carrier.
    ISaleEscrow public immutable escrow;

    /// @notice Id the next job gets (ids start at 1).
    uint64 public nextJobId = 1;
    /// @notice Id the next bid gets (ids start at 1).
    uint64 public nextBidId = 1;

    /// @notice Jobs by id.
    mapping(uint64 jobId => Job) public jobs;
    /// @notice Bids by id.
    mapping(uint64 bidId => Bid) public bids;
    /// @notice The live job of a consignment (0 if none).
    mapping(uint64 consignmentId => uint64 jobId) public liveJobOf;
    /// @notice On-time record per carrier.
    mapping(address carrier => CarrierRecord) public carrierRecords;

    /// @notice A cooperative posted a transport job for a consignment.
    event JobPosted(
        uint64 indexed jobId,
        uint64 indexed consignmentId,
        uint64 indexed orderId,
        address cooperative,
        bytes5 pickupGeohash,
        bytes5 dropoffGeohash,
        uint64 deadline,
        uint256 maxFee
    );
    /// @notice A carrier bid on a job.
    event BidPlaced(uint64 indexed bidId, uint64 indexed jobId, address indexed carrier, uint256 fee, uint64 eta);
    /// @notice A carrier withdrew a bid.
    event BidWithdrawn(uint64 indexed bidId, uint64 indexed jobId, address indexed carrier);
    /// @notice The cooperative awarded a job to a bid.
    event JobAwarded(uint64 indexed jobId, uint64 indexed bidId, address indexed carrier, uint64 orderId, uint256 fee);
    /// @notice The carrier took custody (confirmed in Traceability) and the job is in transit.
    event JobPickedUp(uint64 indexed jobId, address indexed carrier, uint64 pickedUpAt);
    /// @notice The carrier handed the consignment on and the receiver confirmed; the record is updated.
    event JobDelivered(
        uint64 indexed jobId, address indexed carrier, address indexed receiver, uint64 deliveredAt, bool onTime
    );
    /// @notice The cooperative cancelled a job (carrier is zero if none had been awarded).
    event JobCancelled(uint64 indexed jobId, address indexed carrier);
    /// @notice A job timed out (carrier is zero if none had been awarded; otherwise it missed the pickup).
    event JobExpired(uint64 indexed jobId, address indexed carrier);

    error NotConsignmentCooperative(uint64 consignmentId, address caller);
    error ConsignmentNotShippable(uint64 consignmentId, uint8 status);
    error LiveJobExists(uint64 consignmentId, uint64 jobId);
    error UnknownJob(uint64 jobId);
    error BadJobStatus(uint64 jobId, uint8 status);
    error JobDeadlinePassed(uint64 jobId);
    error JobDeadlineNotPassed(uint64 jobId);
    error FeeAboveMax(uint256 fee, uint256 maxFee);
    error EtaAfterDeadline(uint64 eta, uint64 deadline);
    error NotJobCooperative(uint64 jobId, address caller);
    error NotBidder(uint64 bidId, address caller);
    error BidNotActive(uint64 bidId);
    error BidNotForJob(uint64 bidId, uint64 jobId);
    error NotJobCarrier(uint64 jobId, address caller);
    error NotJobParty(uint64 jobId, address caller);
    error CarrierNotCustodian(uint64 jobId);
    error NotHandedOnByCarrier(uint64 jobId);

    /// @param registry_ The ClusterRegistry.
    /// @param traceability_ The Traceability ledger.
    /// @param escrow_ The SaleEscrow.
    constructor(IClusterRegistry registry_, ITraceability traceability_, ISaleEscrow escrow_)
        RegistryGated(registry_)
    {
        if (address(traceability_) == address(0) || address(escrow_) == address(0)) revert ZeroAddress();
        traceability = traceability_;
        escrow = escrow_;
    }

    /// @notice Post a transport job for one of the calling cooperative's consignments.
    /// @dev Cooperative only. The consignment must be Open or Shipped and have no live job.
    /// @param consignmentId The consignment to move.
    /// @param pickupGeohash Pickup area: a geohash of at most 5 characters (about 5 km).
    /// @param dropoffGeohash Drop-off area: a geohash of at most 5 characters.
    /// @param deadline Delivery deadline (unix seconds).
    /// @param maxFee Highest fee the cooperative accepts, in the order's token minor units.
    /// @return jobId The new job's id.
    function postJob(
        uint64 consignmentId,
        bytes5 pickupGeohash,
        bytes5 dropoffGeohash,
        uint64 deadline,
        uint128 maxFee
    ) external onlyRegistryRole(COOPERATIVE_ROLE) returns (uint64 jobId) {
        // Only the fields needed here are read from the consignment tuple.
        // slither-disable-next-line unused-return
        (address coop, uint64 orderId, uint8 cStatus,,,,) = traceability.consignmentInfo(consignmentId);
        if (coop != msg.sender) revert NotConsignmentCooperative(consignmentId, msg.sender);
        if (cStatus != CONSIGNMENT_OPEN && cStatus != CONSIGNMENT_SHIPPED) {
            revert ConsignmentNotShippable(consignmentId, cStatus);
        }
        uint64 live = liveJobOf[consignmentId];
        if (live != 0) revert LiveJobExists(consignmentId, live);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (maxFee == 0) revert InvalidAmount();

        jobId = nextJobId++;
        Job storage j = jobs[jobId];
        j.cooperative = msg.sender;
        j.consignmentId = consignmentId;
        j.status = JOB_OPEN;
        j.deadline = deadline;
        j.orderId = orderId;
        j.maxFee = maxFee;
        liveJobOf[consignmentId] = jobId;
        emit JobPosted(jobId, consignmentId, orderId, msg.sender, pickupGeohash, dropoffGeohash, deadline, maxFee);
    }

    /// @notice A carrier bids on an open job.
    /// @dev Logistics providers only; before the deadline; fee in (0, maxFee]; eta at or before the deadline.
    /// @param jobId The job.
    /// @param fee The carrier's fee.
    /// @param eta The promised delivery time.
    /// @return bidId The new bid's id.
    function placeBid(uint64 jobId, uint128 fee, uint64 eta)
        external
        onlyRegistryRole(LOGISTICS_ROLE)
        returns (uint64 bidId)
    {
        Job storage j = _job(jobId);
        if (j.status != JOB_OPEN) revert BadJobStatus(jobId, j.status);
        if (block.timestamp > j.deadline) revert JobDeadlinePassed(jobId);
        if (fee == 0) revert InvalidAmount();
        if (fee > j.maxFee) revert FeeAboveMax(fee, j.maxFee);
        if (eta > j.deadline) revert EtaAfterDeadline(eta, j.deadline);
        bidId = nextBidId++;
        bids[bidId] = Bid({jobId: jobId, carrier: msg.sender, active: true, fee: fee, eta: eta});
        emit BidPlaced(bidId, jobId, msg.sender, fee, eta);
    }

    /// @notice The bidder withdraws an active bid on a job that is still open.
    /// @param bidId The bid.
    function withdrawBid(uint64 bidId) external {
        Bid storage b = bids[bidId];
        if (b.carrier != msg.sender) revert NotBidder(bidId, msg.sender);
        if (!b.active) revert BidNotActive(bidId);
        uint64 jobId = b.jobId;
        if (jobs[jobId].status != JOB_OPEN) revert BadJobStatus(jobId, jobs[jobId].status);
        b.active = false;
        emit BidWithdrawn(bidId, jobId, msg.sender);
    }

    /// @notice The cooperative awards its open job to an active bid; SaleEscrow records the carrier's fee.
    /// @param jobId The job.
    /// @param bidId The winning bid.
    function awardJob(uint64 jobId, uint64 bidId) external {
        Job storage j = _job(jobId);
        if (j.cooperative != msg.sender) revert NotJobCooperative(jobId, msg.sender);
        if (j.status != JOB_OPEN) revert BadJobStatus(jobId, j.status);
        if (block.timestamp > j.deadline) revert JobDeadlinePassed(jobId);
        Bid storage b = bids[bidId];
        if (b.jobId != jobId) revert BidNotForJob(bidId, jobId);
        if (!b.active) revert BidNotActive(bidId);
        address carrier = b.carrier;
        uint128 fee = b.fee;
        b.active = false;
        j.status = JOB_AWARDED;
        j.carrier = carrier;
        j.fee = fee;
        j.acceptedBidId = bidId;
        uint64 orderId = j.orderId;
        emit JobAwarded(jobId, bidId, carrier, orderId, fee);
        escrow.setCarrier(orderId, jobId, carrier, fee);
    }

    /// @notice The awarded carrier records pickup, after confirming custody in Traceability.
    /// @param jobId The job.
    function recordPickup(uint64 jobId) external {
        Job storage j = _job(jobId);
        if (j.carrier != msg.sender) revert NotJobCarrier(jobId, msg.sender);
        if (j.status != JOB_AWARDED) revert BadJobStatus(jobId, j.status);
        // slither-disable-next-line unused-return
        (address custodian,,, uint64 since) = traceability.custodyInfo(j.consignmentId);
        if (custodian != msg.sender) revert CarrierNotCustodian(jobId);
        j.status = JOB_IN_TRANSIT;
        emit JobPickedUp(jobId, msg.sender, since);
    }

    /// @notice Record delivery once the carrier handed the consignment on and the receiver confirmed.
    /// @dev Carrier or cooperative of the job. Updates the carrier's on-time record.
    /// @param jobId The job.
    function recordDelivery(uint64 jobId) external {
        Job storage j = _job(jobId);
        address carrier = j.carrier;
        if (msg.sender != carrier && msg.sender != j.cooperative) revert NotJobParty(jobId, msg.sender);
        if (j.status != JOB_IN_TRANSIT) revert BadJobStatus(jobId, j.status);
        // slither-disable-next-line unused-return
        (address custodian, address previous,, uint64 since) = traceability.custodyInfo(j.consignmentId);
        if (previous != carrier || custodian == carrier) revert NotHandedOnByCarrier(jobId);
        bool onTime = since <= j.deadline;
        j.status = JOB_DELIVERED;
        liveJobOf[j.consignmentId] = 0;
        CarrierRecord storage r = carrierRecords[carrier];
        r.delivered += 1;
        if (onTime) r.onTime += 1;
        else r.late += 1;
        emit JobDelivered(jobId, carrier, custodian, since, onTime);
    }

    /// @notice The cooperative cancels an open job, or an awarded job before pickup.
    /// @param jobId The job.
    function cancelJob(uint64 jobId) external {
        Job storage j = _job(jobId);
        if (j.cooperative != msg.sender) revert NotJobCooperative(jobId, msg.sender);
        uint8 st = j.status;
        if (st != JOB_OPEN && st != JOB_AWARDED) revert BadJobStatus(jobId, st);
        j.status = JOB_CANCELLED;
        liveJobOf[j.consignmentId] = 0;
        address carrier = j.carrier;
        emit JobCancelled(jobId, carrier);
        if (st == JOB_AWARDED) escrow.clearCarrier(j.orderId, jobId);
    }

    /// @notice Expire a job past its deadline that is still open or was awarded but never picked up.
    /// @dev Anyone may call. An awarded carrier gets a `missed` mark and leaves the waterfall.
    /// @param jobId The job.
    function expireJob(uint64 jobId) external {
        Job storage j = _job(jobId);
        uint8 st = j.status;
        if (st != JOB_OPEN && st != JOB_AWARDED) revert BadJobStatus(jobId, st);
        if (block.timestamp <= j.deadline) revert JobDeadlineNotPassed(jobId);
        j.status = JOB_EXPIRED;
        liveJobOf[j.consignmentId] = 0;
        address carrier = j.carrier;
        if (st == JOB_AWARDED) carrierRecords[carrier].missed += 1;
        emit JobExpired(jobId, carrier);
        if (st == JOB_AWARDED) escrow.clearCarrier(j.orderId, jobId);
    }

    function _job(uint64 jobId) private view returns (Job storage j) {
        j = jobs[jobId];
        if (j.status == 0) revert UnknownJob(jobId);
    }
}
