"""The backend's enums are the contracts' constants: roles (konbit.roles) against the registry and
the RegistryGated base, statuses and payout kinds (konbit.mirror.models) against each contract."""

import json
import pathlib

import pytest
from eth_utils import keccak

from konbit.mirror.models import (
    PAYOUT_KINDS,
    AdvanceStatus,
    ConsignmentStatus,
    InspectionResult,
    JobStatus,
    LotStatus,
    OfferStatus,
    OrderStatus,
    ReleaseState,
)
from konbit.roles import SYSTEM_ROLES, Role

BUILD = pathlib.Path(__file__).resolve().parents[2] / "build" / "contracts"

# contract fixture attribute -> [(enum or {code: name}, constant prefix, member -> constant name)]
ADVANCE_NAMES = {
    AdvanceStatus.REQUEST_OPEN: "REQUEST_OPEN",
    AdvanceStatus.REQUEST_CANCELLED: "REQUEST_CANCELLED",
    AdvanceStatus.ACTIVE: "ADVANCE_ACTIVE",
    AdvanceStatus.REPAID: "ADVANCE_REPAID",
    AdvanceStatus.DEFAULTED: "ADVANCE_DEFAULTED",
}


def _expected(system):
    """{(contract, constant name): value} the backend believes in."""
    out = {}
    for m in LotStatus:
        out[("trace", f"LOT_{m.name}")] = m.value
    for m in InspectionResult:
        out[("trace", f"INSPECTION_{m.name}")] = m.value
    for m in ConsignmentStatus:
        out[("trace", f"CONSIGNMENT_{m.name}")] = m.value
    for m in OrderStatus:
        out[("escrow", m.name)] = m.value
    for m in ReleaseState:
        out[("escrow", f"AGENT_{m.name}")] = m.value
    for code, kind in PAYOUT_KINDS.items():
        out[("escrow", f"PAY_{kind.upper()}")] = code
    for m in JobStatus:
        out[("logistics", f"JOB_{m.name}")] = m.value
    for m, name in ADVANCE_NAMES.items():
        out[("finance", name)] = m.value
    for m in OfferStatus:
        out[("finance", f"OFFER_{m.name}")] = m.value
    return out


def _uint8_constants(contract):
    """Every public upper-case uint8 getter without inputs (the contract's enumerations)."""
    return {
        i["name"]
        for i in contract.abi
        if i["type"] == "function"
        and not i["inputs"]
        and i["name"].isupper()
        and [o["type"] for o in i["outputs"]] == ["uint8"]
    }


def test_status_enums_match_the_contracts(system):
    expected = _expected(system)
    for (name, constant), value in expected.items():
        assert getattr(getattr(system, name), constant)() == value, f"{name}.{constant}"
    # and nothing on chain is missing from the backend
    for name in ("trace", "escrow", "logistics", "finance"):
        on_chain = _uint8_constants(getattr(system, name))
        known = {c for (n, c) in expected if n == name}
        assert on_chain == known, f"{name}: {sorted(on_chain ^ known)}"


def test_roles_match_the_registry(system):
    for role in Role:
        assert getattr(system.registry, role.registry_constant)() == role.role_id
    for constant, _holder in SYSTEM_ROLES:
        assert getattr(system.registry, constant)() == "0x" + keccak(text=constant).hex()


def _ast_constants(node, found):
    if isinstance(node, dict):
        if node.get("nodeType") == "VariableDeclaration" and node.get("constant"):
            value = node["value"]
            assert value["nodeType"] == "FunctionCall"
            assert value["expression"]["name"] == "keccak256"
            found[node["name"]] = value["arguments"][0]["value"]
        for child in node.values():
            _ast_constants(child, found)
    elif isinstance(node, list):
        for child in node:
            _ast_constants(child, found)
    return found


@pytest.mark.parametrize("source", ["RegistryGated", "ClusterRegistry"])
def test_role_constants_are_one_list(source):
    """RegistryGated (the base of the four gated contracts) and the registry hash the same names,
    each its own name, and these are the backend's roles."""
    ast = json.loads((BUILD / f"{source}.json").read_text())["ast"]
    found = _ast_constants(ast, {})
    assert all(name == hashed for name, hashed in found.items())
    backend = {r.registry_constant for r in Role} | {c for c, _ in SYSTEM_ROLES}
    assert set(found) == backend
