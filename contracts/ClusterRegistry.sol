// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ClusterRegistry
/// @notice Who is who in a Konbit cluster: organisations (by address, with a hash of their
///         off-chain metadata), the roles they hold, and farmers enrolled in one cooperative.
///         The other Konbit contracts ask this registry for roles. No personal data: only
///         addresses and hashes.
/// @dev Role administration: DEFAULT_ADMIN_ROLE administers OPERATOR_ROLE and the three
///      system-contract roles; OPERATOR_ROLE administers every organisation role. The
///      OpenZeppelin RoleGranted / RoleRevoked events are the mirror's source for roles.
contract ClusterRegistry is AccessControl {
    /// @notice The common-service operator: onboards organisations.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant COOPERATIVE_ROLE = keccak256("COOPERATIVE_ROLE");
    bytes32 public constant EXPORTER_ROLE = keccak256("EXPORTER_ROLE");
    bytes32 public constant LOGISTICS_ROLE = keccak256("LOGISTICS_ROLE");
    bytes32 public constant FINANCIER_ROLE = keccak256("FINANCIER_ROLE");
    bytes32 public constant INSPECTOR_ROLE = keccak256("INSPECTOR_ROLE");
    bytes32 public constant ARBITER_ROLE = keccak256("ARBITER_ROLE");
    /// @notice Held by the SaleEscrow contract (Traceability and FinanceMarket accept its calls).
    bytes32 public constant ESCROW_CONTRACT_ROLE = keccak256("ESCROW_CONTRACT_ROLE");
    /// @notice Held by the LogisticsMarket contract (SaleEscrow accepts its carrier calls).
    bytes32 public constant LOGISTICS_CONTRACT_ROLE = keccak256("LOGISTICS_CONTRACT_ROLE");
    /// @notice Held by the FinanceMarket contract (SaleEscrow accepts its lien calls).
    bytes32 public constant FINANCE_CONTRACT_ROLE = keccak256("FINANCE_CONTRACT_ROLE");

    /// @dev One slot per farmer: cooperative + active flag.
    struct Farmer {
        address cooperative;
        bool active;
    }

    /// @notice Hash of the off-chain metadata of an organisation (zero if never registered).
    mapping(address organisation => bytes32 metadataHash) public organisationMetadata;

    mapping(address farmer => Farmer) private _farmers;

    /// @notice An organisation was registered (or re-registered) with a role and metadata hash.
    event OrganisationRegistered(address indexed organisation, bytes32 indexed role, bytes32 metadataHash, address operator);
    /// @notice An organisation's metadata hash changed.
    event OrganisationMetadataUpdated(address indexed organisation, bytes32 metadataHash, address operator);
    /// @notice A farmer was enrolled in a cooperative (enrolled farmers start active).
    event FarmerEnrolled(address indexed farmer, address indexed cooperative);
    /// @notice A farmer was activated or deactivated by its cooperative.
    event FarmerStatusChanged(address indexed farmer, address indexed cooperative, bool active);

    error ZeroAddress();
    error NotAnOrganisationRole(bytes32 role);
    error UnknownOrganisation(address organisation);
    error EmptyMetadataHash();
    error NotACooperative(address account);
    error FarmerAlreadyEnrolled(address farmer, address cooperative);
    error FarmerNotInCooperative(address farmer, address cooperative);
    error FarmerStatusUnchanged(address farmer, bool active);

    /// @param admin Receives DEFAULT_ADMIN_ROLE and OPERATOR_ROLE.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _setRoleAdmin(COOPERATIVE_ROLE, OPERATOR_ROLE);
        _setRoleAdmin(EXPORTER_ROLE, OPERATOR_ROLE);
        _setRoleAdmin(LOGISTICS_ROLE, OPERATOR_ROLE);
        _setRoleAdmin(FINANCIER_ROLE, OPERATOR_ROLE);
        _setRoleAdmin(INSPECTOR_ROLE, OPERATOR_ROLE);
        _setRoleAdmin(ARBITER_ROLE, OPERATOR_ROLE);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, admin);
    }

    // ------------------------------------------------------------------ organisations

    /// @notice Onboard an organisation: grant it an organisation role and record its metadata hash.
    /// @dev Operator only. `role` must be one of the six organisation roles. Calling again with
    ///      another role adds that role; the metadata hash is overwritten.
    /// @param organisation The organisation's address.
    /// @param role COOPERATIVE_ROLE, EXPORTER_ROLE, LOGISTICS_ROLE, FINANCIER_ROLE, INSPECTOR_ROLE or ARBITER_ROLE.
    /// @param metadataHash Hash of the off-chain organisation record.
    function registerOrganisation(address organisation, bytes32 role, bytes32 metadataHash)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (organisation == address(0)) revert ZeroAddress();
        if (!_isOrganisationRole(role)) revert NotAnOrganisationRole(role);
        if (metadataHash == bytes32(0)) revert EmptyMetadataHash();
        organisationMetadata[organisation] = metadataHash;
        emit OrganisationRegistered(organisation, role, metadataHash, msg.sender);
        _grantRole(role, organisation);
    }

    /// @notice Replace an organisation's metadata hash.
    /// @dev Operator only; the organisation must have been registered.
    /// @param organisation The organisation's address.
    /// @param metadataHash New hash of the off-chain organisation record.
    function updateOrganisationMetadata(address organisation, bytes32 metadataHash)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (organisationMetadata[organisation] == bytes32(0)) revert UnknownOrganisation(organisation);
        if (metadataHash == bytes32(0)) revert EmptyMetadataHash();
        organisationMetadata[organisation] = metadataHash;
        emit OrganisationMetadataUpdated(organisation, metadataHash, msg.sender);
    }

    // ------------------------------------------------------------------ farmers

    /// @notice Enrol a farmer in the calling cooperative. A farmer belongs to one cooperative for life.
    /// @dev Cooperative only. A farmer already enrolled (in any cooperative) reverts.
    /// @param farmer The farmer's (custodial) address.
    function enrollFarmer(address farmer) external {
        _requireCooperative();
        if (farmer == address(0)) revert ZeroAddress();
        Farmer storage f = _farmers[farmer];
        if (f.cooperative != address(0)) revert FarmerAlreadyEnrolled(farmer, f.cooperative);
        f.cooperative = msg.sender;
        f.active = true;
        emit FarmerEnrolled(farmer, msg.sender);
    }

    /// @notice Activate or deactivate a farmer of the calling cooperative.
    /// @dev Cooperative only, for its own farmers. Inactive farmers cannot have new lots recorded;
    ///      lots already recorded are still paid.
    /// @param farmer The farmer's address.
    /// @param active The new status.
    function setFarmerActive(address farmer, bool active) external {
        _requireCooperative();
        Farmer storage f = _farmers[farmer];
        if (f.cooperative != msg.sender) revert FarmerNotInCooperative(farmer, msg.sender);
        if (f.active == active) revert FarmerStatusUnchanged(farmer, active);
        f.active = active;
        emit FarmerStatusChanged(farmer, msg.sender, active);
    }

    // ------------------------------------------------------------------ views

    /// @notice The cooperative a farmer is enrolled in (zero if none) and whether the farmer is active.
    function farmerInfo(address farmer) external view returns (address cooperative, bool active) {
        Farmer memory f = _farmers[farmer];
        return (f.cooperative, f.active);
    }

    /// @notice Whether `farmer` is an active farmer of `cooperative`.
    function isActiveFarmerOf(address farmer, address cooperative) external view returns (bool) {
        Farmer memory f = _farmers[farmer];
        return f.active && f.cooperative == cooperative;
    }

    function _requireCooperative() private view {
        if (!hasRole(COOPERATIVE_ROLE, msg.sender)) revert NotACooperative(msg.sender);
    }

    function _isOrganisationRole(bytes32 role) private pure returns (bool) {
        return role == COOPERATIVE_ROLE || role == EXPORTER_ROLE || role == LOGISTICS_ROLE
            || role == FINANCIER_ROLE || role == INSPECTOR_ROLE || role == ARBITER_ROLE;
    }
}
