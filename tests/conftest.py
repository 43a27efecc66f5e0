"""Suite-wide guards shared by contract, backend and end-to-end tests."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
from brownie._config import CONFIG as BROWNIE_CONFIG

# Brownie launches its own Anvil for the contract tests. Keep it off 8545 (the demo
# chain's port) and give it mainnet's 30M block gas limit. Set here because brownie
# 1.22 cannot read `networks.development.cmd_settings` from brownie-config.yaml.
BROWNIE_CONFIG.networks["development"].setdefault("cmd_settings", {}).update(
    port=18545, gas_limit=30_000_000, accounts=10, base_fee=0
)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_loopback(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0]
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"tests may only reach 127.0.0.1, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_loopback(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_loopback(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Any:
    """No test reaches the network beyond the loopback interface."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop brownie's Anvil before pytest prints its summary, so the summary ends the run."""
    from brownie import network

    if network.is_connected():
        network.disconnect(kill_rpc=True)
