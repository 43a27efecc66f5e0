// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title ClusterRegistry
/// @notice Who is who in a Konbit cluster: organisations and the roles they hold.
contract ClusterRegistry is AccessControl {
    bytes32 public constant COOPERATIVE_ROLE = keccak256("COOPERATIVE_ROLE");

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }
}
