// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClusterRegistry} from "./KonbitInterfaces.sol";
import {RegistryGated} from "./RegistryGated.sol";

/// @title Traceability
/// @notice Harvest lots, lot splits, consignments (lots aggregated for one order), inspections
///         and custody hand-overs. Storage keeps only what the rules need; everything else
///         (crop, harvest time, plot geohash, evidence hash, ...) lives in the events.
/// @dev Eligibility for payout, evaluated with the consignment's minimum grade:
///      lot status Active (not Split, not Rejected) AND inspection not Failed AND grade >= minGrade.
///      `eligibleGrams` of a consignment is kept equal to the sum of its eligible lots' grams.
///      After delivery the consignment is frozen: inspections of its lots revert, so the set
///      SaleEscrow settles against cannot change under it.
contract Traceability is RegistryGated {
    // ------------------------------------------------------------------ constants

    uint8 public constant LOT_ACTIVE = 1;
    uint8 public constant LOT_SPLIT = 2;
    uint8 public constant LOT_REJECTED = 3;

    uint8 public constant INSPECTION_NONE = 0;
    uint8 public constant INSPECTION_PASSED = 1;
    uint8 public constant INSPECTION_FAILED = 2;

    uint8 public constant CONSIGNMENT_OPEN = 1;
    uint8 public constant CONSIGNMENT_SHIPPED = 2;
    uint8 public constant CONSIGNMENT_DELIVERED = 3;
    uint8 public constant CONSIGNMENT_CLOSED = 4;
    uint8 public constant CONSIGNMENT_CANCELLED = 5;

    // ------------------------------------------------------------------ types

    /// @notice Input of one lot record. Only farmer, grams and grade are stored.
    /// @dev No personal data goes on chain: `plotGeohash` is the plot's area, a geohash of at
    ///      most 5 characters (about 5 km; the ABI refuses anything longer in a bytes5), and
    ///      `plotCommitment` is keccak256 of a random salt and the exact plot, kept off chain
    ///      and disclosed by the cooperative to a buyer who can check it here.
    struct LotInput {
        address farmer;
        uint16 crop;
        uint64 grams;
        uint8 grade;
        uint64 harvestTime;
        bytes5 plotGeohash;
        bytes32 plotCommitment;
        bytes32 evidenceHash;
    }

    /// @dev Exactly one storage slot: 160 + 40 + 8 + 8 + 8 + 32 = 256 bits. `consignmentId` is the
    ///      consignment the lot was last added to (live unless that consignment is cancelled; 0
    ///      if none), so adding a lot rewrites its own slot instead of writing a new one.
    ///      Bounds: a lot weighs at most 2^40 - 1 grams (about 1.1 million tonnes), consignment
    ///      ids stay below 2^32.
    struct Lot {
        address farmer;
        uint40 grams;
        uint8 grade;
        uint8 status;
        uint8 inspection;
        uint32 consignmentId;
    }

    struct Consignment {
        // slot 0
        address cooperative;
        uint64 orderId;
        uint8 status;
        uint8 minGrade;
        // slot 1
        address custodian;
        uint64 custodySince;
        // slot 2
        address pendingCustodian;
        // slot 3
        address previousCustodian;
        // slot 4
        uint64 totalGrams;
        uint64 eligibleGrams;
    }

    // ------------------------------------------------------------------ storage

    /// @notice Id the next recorded lot gets (ids start at 1).
    uint64 public nextLotId = 1;
    /// @notice Id the next consignment gets (ids start at 1). 32 bits: lots keep their
    ///         consignment's id in their own slot (checked arithmetic stops at 2^32 - 1).
    uint32 public nextConsignmentId = 1;

    /// @notice Stored lot facts: farmer, grams, grade, status, inspection result, and the
    ///         consignment the lot was last added to (live unless cancelled; 0 if none).
    mapping(uint64 lotId => Lot) public lots;

    mapping(uint64 consignmentId => Consignment) private _consignments;
    // Written through a storage pointer (`list.push`) in addLots/removeLots, which Slither misses.
    // slither-disable-next-line uninitialized-state
    mapping(uint64 consignmentId => uint64[]) private _consignmentLots;

    // ------------------------------------------------------------------ events

    /// @notice A lot was recorded by a cooperative for one of its farmers.
    event LotRecorded(
        uint64 indexed lotId,
        address indexed farmer,
        address indexed cooperative,
        uint16 crop,
        uint64 grams,
        uint8 grade,
        uint64 harvestTime,
        bytes5 plotGeohash,
        bytes32 plotCommitment,
        bytes32 evidenceHash
    );
    /// @notice A lot was split; one event per child. The child inherits crop, harvest time,
    ///         plot and evidence from the parent, which becomes status Split.
    event LotSplit(
        uint64 indexed parentLotId,
        uint64 indexed childLotId,
        address indexed farmer,
        uint64 grams,
        uint8 grade,
        uint8 inspection
    );
    /// @notice A consignment was created for an order, with the order's minimum grade.
    event ConsignmentCreated(
        uint64 indexed consignmentId, address indexed cooperative, uint64 indexed orderId, uint8 minGrade
    );
    /// @notice A lot joined a consignment; totals are the consignment's totals after the change.
    event LotAddedToConsignment(
        uint64 indexed consignmentId, uint64 indexed lotId, uint64 grams, uint64 totalGrams, uint64 eligibleGrams
    );
    /// @notice A lot left a consignment; totals are the consignment's totals after the change.
    event LotRemovedFromConsignment(
        uint64 indexed consignmentId, uint64 indexed lotId, uint64 grams, uint64 totalGrams, uint64 eligibleGrams
    );
    /// @notice A consignment changed status (Shipped, Delivered, Closed, Cancelled).
    event ConsignmentStatusChanged(
        uint64 indexed consignmentId, uint64 indexed orderId, uint8 status, uint64 totalGrams, uint64 eligibleGrams
    );
    /// @notice A lot was rejected at delivery by the buyer.
    event LotRejected(uint64 indexed consignmentId, uint64 indexed lotId, address indexed farmer, uint64 grams);
    /// @notice An inspector recorded a result on a lot. `consignmentId` is its live consignment
    ///         (0 if none) and `eligibleGrams` that consignment's eligible total after the change.
    event LotInspected(
        uint64 indexed lotId,
        address indexed inspector,
        uint64 indexed consignmentId,
        bool passed,
        uint8 grade,
        bytes32 certificateHash,
        uint64 eligibleGrams
    );
    /// @notice An inspector recorded a result on a whole consignment.
    event ConsignmentInspected(
        uint64 indexed consignmentId, address indexed inspector, bool passed, uint8 grade, bytes32 certificateHash
    );
    /// @notice The custodian offered custody of a consignment to the next party.
    event CustodyHandedOver(
        uint64 indexed consignmentId,
        address indexed from,
        address indexed to,
        uint64 at,
        bytes5 geohash,
        bytes32 evidenceHash
    );
    /// @notice The receiving party confirmed custody; it is now the custodian.
    event CustodyReceived(
        uint64 indexed consignmentId,
        address indexed from,
        address indexed to,
        uint64 at,
        bytes5 geohash,
        bytes32 evidenceHash
    );

    // ------------------------------------------------------------------ errors

    error EmptyBatch();
    error ZeroGrams();
    error GramsTooLarge(uint64 grams);
    error FarmerNotActiveMember(address farmer, address cooperative);
    error UnknownLot(uint64 lotId);
    error LotNotActive(uint64 lotId, uint8 status);
    error NotLotCooperative(uint64 lotId, address caller);
    error LotInLiveConsignment(uint64 lotId, uint64 consignmentId);
    error InvalidSplit(uint64 lotId);
    error SplitGramsMismatch(uint64 lotId, uint64 expected, uint256 actual);
    error UnknownConsignment(uint64 consignmentId);
    error NotConsignmentCooperative(uint64 consignmentId, address caller);
    error BadConsignmentStatus(uint64 consignmentId, uint8 status);
    error LotNotInConsignment(uint64 lotId, uint64 consignmentId);
    error LotBelowMinGrade(uint64 lotId, uint8 grade, uint8 minGrade);
    error LotFailedInspection(uint64 lotId);
    error ConsignmentFrozen(uint64 consignmentId);
    error EmptyConsignment(uint64 consignmentId);
    error ConsignmentOrderMismatch(uint64 consignmentId, uint64 orderId);
    error ConsignmentGradeTooLow(uint64 consignmentId, uint8 minGrade, uint8 required);
    error NotCustodian(uint64 consignmentId, address caller);
    error NotPendingCustodian(uint64 consignmentId, address caller);
    error InvalidCustodyReceiver(address to);
    error CustodyBeforeShipping(uint64 consignmentId);

    /// @param registry_ The ClusterRegistry.
    constructor(IClusterRegistry registry_) RegistryGated(registry_) {}

    // ------------------------------------------------------------------ lots

    /// @notice Record one harvest lot for a farmer of the calling cooperative.
    /// @dev Cooperative only; the farmer must be an active member of the caller.
    /// @param input The lot facts.
    /// @return lotId The new lot's id.
    function recordLot(LotInput calldata input) external onlyRegistryRole(COOPERATIVE_ROLE) returns (uint64 lotId) {
        lotId = nextLotId;
        nextLotId = lotId + 1;
        _checkFarmer(input.farmer);
        _record(lotId, input);
    }

    /// @notice Record a batch of harvest lots for farmers of the calling cooperative.
    /// @dev Cooperative only. Ids are consecutive, starting at the returned id. One storage slot
    ///      and one event per lot; the farmer check is cached across consecutive lots of one farmer.
    /// @param inputs The lots.
    /// @return firstLotId Id of the first lot of the batch.
    function recordLots(LotInput[] calldata inputs)
        external
        onlyRegistryRole(COOPERATIVE_ROLE)
        returns (uint64 firstLotId)
    {
        uint256 n = inputs.length;
        if (n == 0) revert EmptyBatch();
        firstLotId = nextLotId;
        nextLotId = firstLotId + uint64(n);
        address checked = address(0);
        uint64 lotId = firstLotId;
        for (uint256 i; i < n; ++i) {
            LotInput calldata input = inputs[i];
            if (input.farmer != checked) {
                _checkFarmer(input.farmer);
                checked = input.farmer;
            }
            _record(lotId, input);
            // Cannot overflow: nextLotId = firstLotId + n was computed (checked) above.
            unchecked {
                ++lotId;
            }
        }
    }

    /// @notice Split a lot into new lots whose grams sum to the original (e.g. partial acceptance).
    /// @dev Cooperative of the lot's farmer only. The lot must be Active and in no live consignment.
    ///      Children inherit farmer, grade and inspection result; the parent becomes Split.
    /// @param lotId The lot to split.
    /// @param parts Grams of each child (at least two, each > 0, summing to the lot's grams).
    /// @return firstChildId Id of the first child; the others follow consecutively.
    function splitLot(uint64 lotId, uint64[] calldata parts) external returns (uint64 firstChildId) {
        Lot memory lot = _activeLot(lotId);
        _requireLotCooperative(lotId, lot.farmer);
        _requireNotInLiveConsignment(lotId, lot.consignmentId);
        uint256 n = parts.length;
        if (n < 2) revert InvalidSplit(lotId);
        uint256 sum = 0;
        for (uint256 i; i < n; ++i) {
            if (parts[i] == 0) revert ZeroGrams();
            sum += parts[i];
        }
        if (sum != lot.grams) revert SplitGramsMismatch(lotId, lot.grams, sum);

        lots[lotId].status = LOT_SPLIT;
        firstChildId = nextLotId;
        nextLotId = firstChildId + uint64(n);
        for (uint256 i; i < n; ++i) {
            uint64 childId = firstChildId + uint64(i);
            // Each part is at most the parent's grams, which fit in 40 bits.
            lots[childId] = Lot({
                farmer: lot.farmer,
                grams: uint40(parts[i]),
                grade: lot.grade,
                status: LOT_ACTIVE,
                inspection: lot.inspection,
                consignmentId: 0
            });
            emit LotSplit(lotId, childId, lot.farmer, parts[i], lot.grade, lot.inspection);
        }
    }

    // ------------------------------------------------------------------ consignments

    /// @notice Open a consignment of the calling cooperative's lots for one purchase order.
    /// @dev Cooperative only. SaleEscrow checks at shipping that the order is the caller's and that
    ///      `minGrade` is at least the order's minimum grade.
    /// @param orderId The SaleEscrow order this consignment will fill.
    /// @param minGrade Lots below this grade cannot be added (and become ineligible if downgraded).
    /// @return consignmentId The new consignment's id.
    function createConsignment(uint64 orderId, uint8 minGrade)
        external
        onlyRegistryRole(COOPERATIVE_ROLE)
        returns (uint64 consignmentId)
    {
        consignmentId = nextConsignmentId++;
        Consignment storage c = _consignments[consignmentId];
        c.cooperative = msg.sender;
        c.orderId = orderId;
        c.status = CONSIGNMENT_OPEN;
        c.minGrade = minGrade;
        c.custodian = msg.sender;
        c.custodySince = uint64(block.timestamp);
        emit ConsignmentCreated(consignmentId, msg.sender, orderId, minGrade);
    }

    /// @notice Add lots of the calling cooperative to one of its open consignments.
    /// @dev Each lot must be Active, not failed, at or above the consignment's minimum grade and
    ///      in no other live consignment. The farmer check is cached across consecutive lots of
    ///      one farmer; the link to the consignment is written into the lot's own slot.
    /// @param consignmentId The consignment.
    /// @param lotIds The lots to add.
    function addLots(uint64 consignmentId, uint64[] calldata lotIds) external {
        Consignment storage c = _openOwnConsignment(consignmentId);
        uint64[] storage list = _consignmentLots[consignmentId];
        uint8 minGrade = c.minGrade;
        uint64 total = c.totalGrams;
        uint64 eligible = c.eligibleGrams;
        address checked = address(0);
        for (uint256 i; i < lotIds.length; ++i) {
            uint64 lotId = lotIds[i];
            Lot memory lot = _activeLot(lotId);
            if (lot.farmer != checked) {
                _requireLotCooperative(lotId, lot.farmer);
                checked = lot.farmer;
            }
            _requireNotInLiveConsignment(lotId, lot.consignmentId);
            if (lot.inspection == INSPECTION_FAILED) revert LotFailedInspection(lotId);
            if (lot.grade < minGrade) revert LotBelowMinGrade(lotId, lot.grade, minGrade);
            // Consignment ids are 32-bit (nextConsignmentId).
            lots[lotId].consignmentId = uint32(consignmentId);
            list.push(lotId);
            total += lot.grams;
            eligible += lot.grams;
            emit LotAddedToConsignment(consignmentId, lotId, lot.grams, total, eligible);
        }
        c.totalGrams = total;
        c.eligibleGrams = eligible;
    }

    /// @notice Remove lots from one of the calling cooperative's open consignments.
    /// @dev The last lot of the list takes the removed lot's place. The place is found by scanning
    ///      the list from its end (no per-lot index is stored, which keeps adding a lot to one
    ///      slot rewrite): removing a recently added lot is cheap, removing the first lot of a
    ///      consignment of n lots reads about n/4 storage slots.
    /// @param consignmentId The consignment.
    /// @param lotIds The lots to remove.
    function removeLots(uint64 consignmentId, uint64[] calldata lotIds) external {
        Consignment storage c = _openOwnConsignment(consignmentId);
        uint64[] storage list = _consignmentLots[consignmentId];
        uint8 minGrade = c.minGrade;
        uint64 total = c.totalGrams;
        uint64 eligible = c.eligibleGrams;
        for (uint256 i; i < lotIds.length; ++i) {
            uint64 lotId = lotIds[i];
            Lot storage stored = lots[lotId];
            if (stored.consignmentId != consignmentId) revert LotNotInConsignment(lotId, consignmentId);
            // A lot linked to this open consignment is in its list (removal clears the link).
            uint256 last = list.length - 1;
            uint256 at = last;
            while (list[at] != lotId) --at;
            if (at != last) list[at] = list[last];
            list.pop();
            stored.consignmentId = 0;
            Lot memory lot = stored;
            total -= lot.grams;
            if (_eligible(lot, minGrade)) eligible -= lot.grams;
            emit LotRemovedFromConsignment(consignmentId, lotId, lot.grams, total, eligible);
        }
        c.totalGrams = total;
        c.eligibleGrams = eligible;
    }

    /// @notice Cancel one of the calling cooperative's open consignments; its lots become free.
    /// @param consignmentId The consignment.
    function cancelConsignment(uint64 consignmentId) external {
        Consignment storage c = _openOwnConsignment(consignmentId);
        c.status = CONSIGNMENT_CANCELLED;
        emit ConsignmentStatusChanged(consignmentId, c.orderId, CONSIGNMENT_CANCELLED, c.totalGrams, c.eligibleGrams);
    }

    // ------------------------------------------------------------------ inspections

    /// @notice Record an inspection result on a lot: pass/fail, grade and certificate hash.
    /// @dev Inspector only. The result and grade replace the lot's previous ones; a failed (or
    ///      downgraded below the minimum) lot is excluded from its consignment's payouts.
    ///      Reverts once the lot's consignment is delivered (frozen).
    /// @param lotId The lot.
    /// @param passed Whether it passed.
    /// @param grade The grade found.
    /// @param certificateHash Hash of the inspection certificate.
    function inspectLot(uint64 lotId, bool passed, uint8 grade, bytes32 certificateHash)
        external
        onlyRegistryRole(INSPECTOR_ROLE)
    {
        Lot memory lot = _activeLot(lotId);
        uint64 consignmentId = lot.consignmentId;
        uint64 eligible = 0;
        Lot memory updated = Lot({
            farmer: lot.farmer,
            grams: lot.grams,
            grade: grade,
            status: lot.status,
            inspection: passed ? INSPECTION_PASSED : INSPECTION_FAILED,
            consignmentId: lot.consignmentId
        });
        if (consignmentId != 0) {
            Consignment storage c = _consignments[consignmentId];
            uint8 st = c.status;
            if (st == CONSIGNMENT_CANCELLED) {
                consignmentId = 0;
            } else {
                if (st != CONSIGNMENT_OPEN && st != CONSIGNMENT_SHIPPED) revert ConsignmentFrozen(consignmentId);
                eligible = c.eligibleGrams;
                bool was = _eligible(lot, c.minGrade);
                bool now_ = _eligible(updated, c.minGrade);
                if (was && !now_) eligible -= lot.grams;
                else if (!was && now_) eligible += lot.grams;
                c.eligibleGrams = eligible;
            }
        }
        Lot storage s = lots[lotId];
        s.inspection = updated.inspection;
        s.grade = grade;
        emit LotInspected(lotId, msg.sender, consignmentId, passed, grade, certificateHash, eligible);
    }

    /// @notice Record an inspection result on a whole consignment (e.g. phytosanitary treatment).
    /// @dev Inspector only. Informational for buyers: payouts follow lot inspections and the
    ///      buyer's delivery confirmation.
    /// @param consignmentId The consignment.
    /// @param passed Whether it passed.
    /// @param grade The grade found.
    /// @param certificateHash Hash of the certificate.
    function inspectConsignment(uint64 consignmentId, bool passed, uint8 grade, bytes32 certificateHash)
        external
        onlyRegistryRole(INSPECTOR_ROLE)
    {
        _existingConsignment(consignmentId);
        emit ConsignmentInspected(consignmentId, msg.sender, passed, grade, certificateHash);
    }

    // ------------------------------------------------------------------ custody

    /// @notice The current custodian offers custody of a shipped consignment to the next party.
    /// @dev A new hand-over before confirmation replaces the pending receiver.
    /// @param consignmentId The consignment.
    /// @param to The next custodian (e.g. carrier, then exporter).
    /// @param at Time of the hand-over (unix seconds, as recorded at the scene).
    /// @param geohash Area of the hand-over: a geohash of at most 5 characters (about 5 km).
    /// @param evidenceHash Hash of the hand-over evidence (photo, waybill ...).
    function handOver(uint64 consignmentId, address to, uint64 at, bytes5 geohash, bytes32 evidenceHash) external {
        Consignment storage c = _existingConsignment(consignmentId);
        if (c.status == CONSIGNMENT_OPEN) revert CustodyBeforeShipping(consignmentId);
        if (c.custodian != msg.sender) revert NotCustodian(consignmentId, msg.sender);
        if (to == address(0) || to == msg.sender) revert InvalidCustodyReceiver(to);
        c.pendingCustodian = to;
        emit CustodyHandedOver(consignmentId, msg.sender, to, at, geohash, evidenceHash);
    }

    /// @notice The pending receiver confirms custody of a consignment.
    /// @param consignmentId The consignment.
    /// @param at Time of receipt (unix seconds, as recorded at the scene).
    /// @param geohash Area of receipt: a geohash of at most 5 characters.
    /// @param evidenceHash Hash of the receipt evidence.
    function confirmReceipt(uint64 consignmentId, uint64 at, bytes5 geohash, bytes32 evidenceHash) external {
        Consignment storage c = _existingConsignment(consignmentId);
        if (c.pendingCustodian != msg.sender || msg.sender == address(0)) {
            revert NotPendingCustodian(consignmentId, msg.sender);
        }
        address from = c.custodian;
        c.previousCustodian = from;
        c.custodian = msg.sender;
        c.custodySince = uint64(block.timestamp);
        c.pendingCustodian = address(0);
        emit CustodyReceived(consignmentId, from, msg.sender, at, geohash, evidenceHash);
    }

    // ------------------------------------------------------------------ SaleEscrow hooks

    /// @notice Seal a consignment for shipping: no more adds or removes.
    /// @dev SaleEscrow only (ESCROW_CONTRACT_ROLE).
    /// @param consignmentId The consignment.
    /// @param orderId The order it must be for.
    /// @param cooperative The order's cooperative, which must own the consignment.
    /// @param minGrade The order's minimum grade; the consignment's must be at least this.
    function lockForShipping(uint64 consignmentId, uint64 orderId, address cooperative, uint8 minGrade)
        external
        onlyRegistryRole(ESCROW_CONTRACT_ROLE)
    {
        Consignment storage c = _existingConsignment(consignmentId);
        if (c.cooperative != cooperative) revert NotConsignmentCooperative(consignmentId, cooperative);
        if (c.orderId != orderId) revert ConsignmentOrderMismatch(consignmentId, orderId);
        if (c.status != CONSIGNMENT_OPEN) revert BadConsignmentStatus(consignmentId, c.status);
        if (_consignmentLots[consignmentId].length == 0) revert EmptyConsignment(consignmentId);
        if (c.minGrade < minGrade) revert ConsignmentGradeTooLow(consignmentId, c.minGrade, minGrade);
        c.status = CONSIGNMENT_SHIPPED;
        emit ConsignmentStatusChanged(consignmentId, orderId, CONSIGNMENT_SHIPPED, c.totalGrams, c.eligibleGrams);
    }

    /// @notice Freeze a shipped consignment at delivery and mark the buyer's rejected lots.
    /// @dev SaleEscrow only. Rejected lots become status Rejected (excluded from payouts).
    /// @param consignmentId The consignment.
    /// @param rejectedLots Lots of this consignment the buyer rejected.
    /// @return eligibleGrams The grams eligible for payout after the rejections.
    function freezeAtDelivery(uint64 consignmentId, uint64[] calldata rejectedLots)
        external
        onlyRegistryRole(ESCROW_CONTRACT_ROLE)
        returns (uint64 eligibleGrams)
    {
        Consignment storage c = _existingConsignment(consignmentId);
        if (c.status != CONSIGNMENT_SHIPPED) revert BadConsignmentStatus(consignmentId, c.status);
        uint8 minGrade = c.minGrade;
        eligibleGrams = c.eligibleGrams;
        for (uint256 i; i < rejectedLots.length; ++i) {
            uint64 lotId = rejectedLots[i];
            Lot memory lot = lots[lotId];
            if (lot.consignmentId != consignmentId) revert LotNotInConsignment(lotId, consignmentId);
            if (lot.status != LOT_ACTIVE) revert LotNotActive(lotId, lot.status);
            if (_eligible(lot, minGrade)) eligibleGrams -= lot.grams;
            lots[lotId].status = LOT_REJECTED;
            emit LotRejected(consignmentId, lotId, lot.farmer, lot.grams);
        }
        c.eligibleGrams = eligibleGrams;
        c.status = CONSIGNMENT_DELIVERED;
        emit ConsignmentStatusChanged(consignmentId, c.orderId, CONSIGNMENT_DELIVERED, c.totalGrams, eligibleGrams);
    }

    /// @notice Close a consignment: Closed after settlement, or Cancelled (lots freed) after a refund.
    /// @dev SaleEscrow only.
    /// @param consignmentId The consignment.
    /// @param releaseLots True to cancel (lots may join another consignment), false to close.
    function closeConsignment(uint64 consignmentId, bool releaseLots)
        external
        onlyRegistryRole(ESCROW_CONTRACT_ROLE)
    {
        Consignment storage c = _existingConsignment(consignmentId);
        uint8 st = releaseLots ? CONSIGNMENT_CANCELLED : CONSIGNMENT_CLOSED;
        if (c.status == CONSIGNMENT_CLOSED || c.status == CONSIGNMENT_CANCELLED) {
            revert BadConsignmentStatus(consignmentId, c.status);
        }
        c.status = st;
        emit ConsignmentStatusChanged(consignmentId, c.orderId, st, c.totalGrams, c.eligibleGrams);
    }

    // ------------------------------------------------------------------ views

    /// @notice Read-only facts about a consignment.
    function consignmentInfo(uint64 consignmentId)
        external
        view
        returns (
            address cooperative,
            uint64 orderId,
            uint8 status,
            uint8 minGrade,
            uint32 lotCount,
            uint64 totalGrams,
            uint64 eligibleGrams
        )
    {
        Consignment storage c = _consignments[consignmentId];
        return (
            c.cooperative,
            c.orderId,
            c.status,
            c.minGrade,
            uint32(_consignmentLots[consignmentId].length),
            c.totalGrams,
            c.eligibleGrams
        );
    }

    /// @notice Current custody of a consignment; `custodySince` is the block time of the last receipt.
    function custodyInfo(uint64 consignmentId)
        external
        view
        returns (address custodian, address previousCustodian, address pendingCustodian, uint64 custodySince)
    {
        Consignment storage c = _consignments[consignmentId];
        return (c.custodian, c.previousCustodian, c.pendingCustodian, c.custodySince);
    }

    /// @notice All lot ids of a consignment (for small consignments / off-chain use).
    function consignmentLots(uint64 consignmentId) external view returns (uint64[] memory) {
        return _consignmentLots[consignmentId];
    }

    /// @notice A slice [start, start+count) of a consignment's lots for settlement.
    /// @return lotIds The lot ids.
    /// @return farmers Each lot's farmer.
    /// @return grams Each lot's grams, or 0 when the lot is not eligible for payout.
    function settlementSlice(uint64 consignmentId, uint256 start, uint256 count)
        external
        view
        returns (uint64[] memory lotIds, address[] memory farmers, uint64[] memory grams)
    {
        uint64[] storage list = _consignmentLots[consignmentId];
        uint256 len = list.length;
        uint256 end = start + count;
        if (end > len) end = len;
        uint256 n = end > start ? end - start : 0;
        lotIds = new uint64[](n);
        farmers = new address[](n);
        grams = new uint64[](n);
        uint8 minGrade = _consignments[consignmentId].minGrade;
        for (uint256 i; i < n; ++i) {
            uint64 lotId = list[start + i];
            Lot memory lot = lots[lotId];
            lotIds[i] = lotId;
            farmers[i] = lot.farmer;
            if (_eligible(lot, minGrade)) grams[i] = lot.grams;
        }
    }

    /// @notice The live consignment of a lot (0 if none).
    function liveConsignmentOf(uint64 lotId) external view returns (uint64) {
        uint64 cid = lots[lotId].consignmentId;
        // Status values are small enumerations; equality is the intended test.
        // slither-disable-next-line incorrect-equality
        if (cid != 0 && _consignments[cid].status == CONSIGNMENT_CANCELLED) return 0;
        return cid;
    }

    // ------------------------------------------------------------------ internals

    function _record(uint64 lotId, LotInput calldata input) private {
        uint64 grams = input.grams;
        if (grams == 0) revert ZeroGrams();
        if (grams > type(uint40).max) revert GramsTooLarge(grams);
        lots[lotId] = Lot({
            farmer: input.farmer,
            grams: uint40(grams),
            grade: input.grade,
            status: LOT_ACTIVE,
            inspection: INSPECTION_NONE,
            consignmentId: 0
        });
        emit LotRecorded(
            lotId,
            input.farmer,
            msg.sender,
            input.crop,
            input.grams,
            input.grade,
            input.harvestTime,
            input.plotGeohash,
            input.plotCommitment,
            input.evidenceHash
        );
    }

    function _checkFarmer(address farmer) private view {
        (address coop, bool active) = registry.farmerInfo(farmer);
        if (coop != msg.sender || !active) revert FarmerNotActiveMember(farmer, msg.sender);
    }

    function _activeLot(uint64 lotId) private view returns (Lot memory lot) {
        lot = lots[lotId];
        if (lot.status == 0) revert UnknownLot(lotId);
        if (lot.status != LOT_ACTIVE) revert LotNotActive(lotId, lot.status);
    }

    function _requireLotCooperative(uint64 lotId, address farmer) private view {
        // The active flag is irrelevant here: a cooperative keeps managing lots of inactive farmers.
        // slither-disable-next-line unused-return
        (address coop,) = registry.farmerInfo(farmer);
        if (coop != msg.sender) revert NotLotCooperative(lotId, msg.sender);
    }

    function _requireNotInLiveConsignment(uint64 lotId, uint64 cid) private view {
        if (cid != 0 && _consignments[cid].status != CONSIGNMENT_CANCELLED) revert LotInLiveConsignment(lotId, cid);
    }

    function _existingConsignment(uint64 consignmentId) private view returns (Consignment storage c) {
        c = _consignments[consignmentId];
        if (c.status == 0) revert UnknownConsignment(consignmentId);
    }

    function _openOwnConsignment(uint64 consignmentId) private view returns (Consignment storage c) {
        c = _existingConsignment(consignmentId);
        if (c.cooperative != msg.sender) revert NotConsignmentCooperative(consignmentId, msg.sender);
        if (c.status != CONSIGNMENT_OPEN) revert BadConsignmentStatus(consignmentId, c.status);
    }

    function _eligible(Lot memory lot, uint8 minGrade) private pure returns (bool) {
        return lot.status == LOT_ACTIVE && lot.inspection != INSPECTION_FAILED && lot.grade >= minGrade;
    }
}
