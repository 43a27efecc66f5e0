"""The offline compile pipeline: brownie + solc-js shim -> artifact -> deploy -> call."""

import json
import subprocess

from web3 import Web3

from konbit.paths import ARTIFACTS_DIR, PROJECT_ROOT


def test_shim_reports_native_version_format() -> None:
    out = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "solc-shim" / "solc"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith("solc, the solidity compiler commandline interface\nVersion: 0.8.28")


def test_cluster_registry_artifact_deploys_and_answers(w3: Web3) -> None:
    artifact = json.loads((ARTIFACTS_DIR / "ClusterRegistry.json").read_text())
    assert artifact["abi"] and artifact["bytecode"].startswith("6080")
    assert artifact["compiler"]["version"].startswith("0.8.28")
    admin = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(admin).transact({"from": admin})
    )
    assert receipt["status"] == 1
    registry = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    admin_role = registry.functions.DEFAULT_ADMIN_ROLE().call()
    assert registry.functions.hasRole(admin_role, admin).call() is True
    assert registry.functions.hasRole(admin_role, w3.eth.accounts[1]).call() is False
