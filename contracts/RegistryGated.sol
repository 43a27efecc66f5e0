// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IClusterRegistry} from "./KonbitInterfaces.sol";

/// @title RegistryGated
/// @notice The one role base of the Konbit contracts that ask the ClusterRegistry for roles
///         (Traceability, SaleEscrow, LogisticsMarket, FinanceMarket): the registry, the role
///         ids, the role modifier and the errors they share.
/// @dev The role ids are the registry's (`ClusterRegistry.<NAME>_ROLE`, keccak256 of the name);
///      tests/contracts/test_constants.py checks them, and the backend's `konbit.roles.Role`,
///      against the registry.
abstract contract RegistryGated {
    bytes32 internal constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 internal constant COOPERATIVE_ROLE = keccak256("COOPERATIVE_ROLE");
    bytes32 internal constant EXPORTER_ROLE = keccak256("EXPORTER_ROLE");
    bytes32 internal constant LOGISTICS_ROLE = keccak256("LOGISTICS_ROLE");
    bytes32 internal constant FINANCIER_ROLE = keccak256("FINANCIER_ROLE");
    bytes32 internal constant INSPECTOR_ROLE = keccak256("INSPECTOR_ROLE");
    bytes32 internal constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    bytes32 internal constant ESCROW_CONTRACT_ROLE = keccak256("ESCROW_CONTRACT_ROLE");
    bytes32 internal constant LOGISTICS_CONTRACT_ROLE = keccak256("LOGISTICS_CONTRACT_ROLE");
    bytes32 internal constant FINANCE_CONTRACT_ROLE = keccak256("FINANCE_CONTRACT_ROLE");

    /// @notice The registry asked for roles (and, by Traceability, farmer membership).
    IClusterRegistry public immutable registry;

    /// @notice A required address was zero.
    error ZeroAddress();
    /// @notice `account` lacks `role` in the registry.
    error MissingRole(bytes32 role, address account);
    /// @notice An amount (or a count) was zero or otherwise unusable.
    error InvalidAmount();
    /// @notice A basis-point rate above 10,000.
    error InvalidBps(uint256 bps);
    /// @notice A deadline at or before the current block time.
    error DeadlineInPast(uint64 deadline);

    /// @dev Reverts with MissingRole unless the caller holds `role` in the registry.
    modifier onlyRegistryRole(bytes32 role) {
        _requireRole(role, msg.sender);
        _;
    }

    /// @param registry_ The ClusterRegistry.
    constructor(IClusterRegistry registry_) {
        if (address(registry_) == address(0)) revert ZeroAddress();
        registry = registry_;
    }

    /// @dev Reverts with MissingRole unless `account` holds `role` in the registry.
    function _requireRole(bytes32 role, address account) internal view {
        if (!registry.hasRole(role, account)) revert MissingRole(role, account);
    }
}
