// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Konbit cross-contract interfaces
/// @notice The narrow surfaces through which the Konbit contracts call each other.
///         Kept flat in contracts/ so that Slither (which only reads top-level files) sees them.

/// @notice Role and membership queries answered by the ClusterRegistry.
interface IClusterRegistry {
    /// @notice Whether `account` holds `role`.
    function hasRole(bytes32 role, address account) external view returns (bool);

    /// @notice The cooperative a farmer is enrolled in and whether the farmer is active.
    function farmerInfo(address farmer) external view returns (address cooperative, bool active);
}

/// @notice What SaleEscrow and LogisticsMarket need from Traceability.
interface ITraceability {
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
        );

    /// @notice Current custody of a consignment.
    function custodyInfo(uint64 consignmentId)
        external
        view
        returns (address custodian, address previousCustodian, address pendingCustodian, uint64 custodySince);

    /// @notice Seal a consignment for shipping (SaleEscrow only).
    function lockForShipping(uint64 consignmentId, uint64 orderId, address cooperative, uint8 minGrade) external;

    /// @notice Freeze a shipped consignment at delivery, marking rejected lots (SaleEscrow only).
    function freezeAtDelivery(uint64 consignmentId, uint64[] calldata rejectedLots)
        external
        returns (uint64 eligibleGrams);

    /// @notice Close a consignment after settlement or release its lots after a refund (SaleEscrow only).
    function closeConsignment(uint64 consignmentId, bool releaseLots) external;

    /// @notice A slice of a consignment's lots for settlement; grams is 0 for lots not eligible for payout.
    function settlementSlice(uint64 consignmentId, uint256 start, uint256 count)
        external
        view
        returns (uint64[] memory lotIds, address[] memory farmers, uint64[] memory grams);
}

/// @notice What FinanceMarket and LogisticsMarket need from SaleEscrow.
interface ISaleEscrow {
    /// @notice Parties, token, status and expected proceeds of an order.
    function orderSummary(uint64 orderId)
        external
        view
        returns (
            address exporter,
            address cooperative,
            address token,
            uint8 status,
            uint256 deposit,
            bool hasLien
        );

    /// @notice Record a financier's lien on an order (FinanceMarket only).
    function registerLien(uint64 orderId, uint64 advanceId, address financier, uint256 amountDue) external;

    /// @notice Name the carrier whose fee the waterfall pays (LogisticsMarket only).
    function setCarrier(uint64 orderId, uint64 jobId, address carrier, uint256 fee) external;

    /// @notice Remove the carrier from the waterfall (LogisticsMarket only).
    function clearCarrier(uint64 orderId, uint64 jobId) external;
}

/// @notice The callback SaleEscrow makes to the market that registered a lien.
interface ILienHolder {
    /// @notice Report how much of an advance was repaid when the order settled or was refunded.
    function onLienSettled(uint64 advanceId, uint256 repaid, uint256 due) external;
}
