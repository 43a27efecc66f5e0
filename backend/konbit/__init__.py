"""Konbit: a supply-chain traceability ledger for smallholder clusters."""

__version__ = "0.1.0"
