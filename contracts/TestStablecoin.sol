// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestStablecoin
/// @notice A 6-decimal ERC-20 with an open faucet. FOR LOCAL CHAINS AND DEMOS ONLY:
///         anyone can mint up to FAUCET_MAX per call.
contract TestStablecoin is ERC20 {
    /// @notice Largest amount one faucet call mints (1,000,000 units of 6 decimals).
    uint256 public constant FAUCET_MAX = 1_000_000 * 1e6;

    /// @notice The faucet minted tokens (in addition to the ERC-20 Transfer from address 0).
    event FaucetMinted(address indexed to, uint256 amount);

    error FaucetLimitExceeded(uint256 requested, uint256 max);
    error FaucetZeroAddress();

    constructor() ERC20("Konbit Test USD", "kUSD") {}

    /// @notice 6 decimals, like USDC.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint test tokens to `to`.
    /// @param to Recipient.
    /// @param amount Amount in minor units, at most FAUCET_MAX.
    function faucet(address to, uint256 amount) external {
        if (amount > FAUCET_MAX) revert FaucetLimitExceeded(amount, FAUCET_MAX);
        if (to == address(0)) revert FaucetZeroAddress();
        _mint(to, amount);
        emit FaucetMinted(to, amount);
    }
}
