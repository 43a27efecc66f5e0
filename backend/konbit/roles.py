"""Organisation roles: defined once, as the registry defines them.

The HTTP API, the projector and the deploy routine derive their role names from here;
a test checks this list against ``ClusterRegistry``'s constants.
"""

from __future__ import annotations

from enum import StrEnum

from eth_utils import keccak


class Role(StrEnum):
    """An organisation's role; the registry's role names, lower case."""

    OPERATOR = "operator"
    COOPERATIVE = "cooperative"
    EXPORTER = "exporter"
    LOGISTICS = "logistics"
    FINANCIER = "financier"
    INSPECTOR = "inspector"
    ARBITER = "arbiter"

    @property
    def registry_constant(self) -> str:
        """The registry's role constant, e.g. ``COOPERATIVE_ROLE``."""
        return f"{self.value.upper()}_ROLE"

    @property
    def role_id(self) -> str:
        """The role's bytes32 id on chain (keccak256 of the constant's name), 0x-hex."""
        return "0x" + keccak(text=self.registry_constant).hex()


#: Roles the operator grants to organisations (every role but its own).
MARKET_ROLES: tuple[Role, ...] = tuple(r for r in Role if r is not Role.OPERATOR)

#: Roles held by the Konbit contracts themselves, and the contract that holds each.
SYSTEM_ROLES: tuple[tuple[str, str], ...] = (
    ("ESCROW_CONTRACT_ROLE", "SaleEscrow"),
    ("LOGISTICS_CONTRACT_ROLE", "LogisticsMarket"),
    ("FINANCE_CONTRACT_ROLE", "FinanceMarket"),
)
