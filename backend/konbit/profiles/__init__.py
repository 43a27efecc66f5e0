"""Private off-chain data (names, phones, plots): never on chain, never written by the mirror."""
