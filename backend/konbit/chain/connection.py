"""The web3 connection to the configured node."""

from __future__ import annotations

from web3 import HTTPProvider, Web3

from konbit.settings import Settings


def connect(settings: Settings, *, timeout: float = 30.0) -> Web3:
    """A Web3 instance on the configured (or managed local) node's HTTP JSON-RPC."""
    return Web3(HTTPProvider(settings.effective_rpc_url, request_kwargs={"timeout": timeout}))
