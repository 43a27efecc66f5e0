"""Every custom error declared in the Konbit contracts is exercised by some test."""

import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONTRACTS = [
    "ClusterRegistry",
    "Traceability",
    "SaleEscrow",
    "LogisticsMarket",
    "FinanceMarket",
    "TestStablecoin",
    "RegistryGated",
]


def _own_errors(name):
    src = (ROOT / "contracts" / f"{name}.sol").read_text()
    build = json.loads((ROOT / "build" / "contracts" / f"{name}.json").read_text())
    # errors declared in our source (inherited OpenZeppelin ones are covered where they matter)
    return sorted(
        i["name"] for i in build["abi"] if i["type"] == "error" and f"error {i['name']}(" in src
    )


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_custom_error_is_tested(name):
    tests = "".join(p.read_text() for p in pathlib.Path(__file__).parent.glob("test_*.py"))
    missing = [e for e in _own_errors(name) if f'err("{e}")' not in tests]
    assert not missing, f"{name}: untested custom errors {missing}"
